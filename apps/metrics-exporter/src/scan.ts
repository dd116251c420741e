// Discovery and safe reading of the metrics directory. Only `*.prom` entries count; hidden names
// (the textfile convention's temporary files, e.g. `.app.prom.tmp`) and other suffixes are ignored.
// A symlink is followed only when it resolves inside the directory (Kubernetes projects ConfigMap
// files that way); anything else is skipped, never opened. Reading checks the size first and
// never reads more than the cap, so a 1 GiB file costs one stat.
//
// Each call goes through a ScanFs: node:fs/promises (libuv's thread pool) by default, or the same
// calls made synchronously (`syncScanFs`) where the directory is on a memory-backed file system —
// the pod's emptyDir with `medium: Memory` — where they take microseconds and cannot hang, and a
// thread-pool round trip (a worker woken, then the event loop) costs several times the call: three
// of them per collection of an unchanged file, most of an idle exporter's wake-ups after its timers.
import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  type Stats,
  statSync,
} from "node:fs";
import { open, readdir, realpath, stat } from "node:fs/promises";
import { join, sep } from "node:path";

/** An open file, as much of node:fs/promises' FileHandle as reading needs. */
export interface ScanFile {
  stat(): Promise<Stats>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** The file-system calls a collection makes. */
export interface ScanFs {
  realpath(path: string): Promise<string>;
  readdir(dir: string): Promise<Dirent[]>;
  stat(path: string): Promise<Stats>;
  open(path: string, flags: number): Promise<ScanFile>;
}

/** Through libuv's thread pool: for any file system (a hung network volume stalls only the collection). */
export const asyncScanFs: ScanFs = {
  realpath: (path) => realpath(path),
  readdir: (dir) => readdir(dir, { withFileTypes: true }),
  stat: (path) => stat(path),
  open: (path, flags) => open(path, flags),
};

/** A synchronous call as a settled promise (a thrown error as a rejection). */
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The same calls made synchronously: only for a memory-backed directory (see the header). */
export const syncScanFs: ScanFs = {
  // The native realpath, as node:fs/promises' (the JavaScript realpathSync walks the path itself).
  realpath: (path) => settled(() => realpathSync.native(path)),
  readdir: (dir) => settled(() => readdirSync(dir, { withFileTypes: true })),
  stat: (path) => settled(() => statSync(path)),
  open: (path, flags) =>
    settled(() => {
      const fd = openSync(path, flags);
      return {
        stat: () => settled(() => fstatSync(fd)),
        read: (buffer: Buffer, offset: number, length: number, position: number) =>
          settled(() => ({ bytesRead: readSync(fd, buffer, offset, length, position) })),
        close: () => settled(() => closeSync(fd)),
      };
    }),
};

export type SkipReason = "symlink_outside" | "broken_symlink" | "not_regular_file";

export interface Candidate {
  /** The entry's name in the directory (the `file` label). */
  readonly name: string;
  /** What to open: the entry itself, or the resolved target of an in-directory symlink. */
  readonly path: string;
}

export type ListResult =
  | {
      readonly ok: true;
      readonly files: Candidate[];
      readonly skipped: { name: string; reason: SkipReason }[];
    }
  | { readonly ok: false; readonly code: string; readonly message: string };

export function isCandidateName(name: string): boolean {
  return name.endsWith(".prom") && !name.startsWith(".");
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** List the collectable files of `dir`, sorted by name (byte order). Never throws. */
export async function listFiles(dir: string, fs: ScanFs = asyncScanFs): Promise<ListResult> {
  let dirReal: string;
  let entries: Dirent[];
  try {
    dirReal = await fs.realpath(dir);
    entries = await fs.readdir(dirReal);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, code: e.code ?? "error", message: e.message };
  }
  const files: Candidate[] = [];
  const skipped: { name: string; reason: SkipReason }[] = [];
  for (const entry of entries) {
    const name = entry.name;
    if (!isCandidateName(name)) continue;
    const path = join(dirReal, name);
    if (entry.isFile()) {
      files.push({ name, path });
    } else if (entry.isSymbolicLink()) {
      let target: string;
      try {
        target = await fs.realpath(path);
      } catch {
        skipped.push({ name, reason: "broken_symlink" });
        continue;
      }
      if (!target.startsWith(dirReal + sep)) {
        skipped.push({ name, reason: "symlink_outside" });
        continue;
      }
      files.push({ name, path: target });
    } else {
      skipped.push({ name, reason: "not_regular_file" });
    }
  }
  files.sort(byName);
  skipped.sort(byName);
  return { ok: true, files, skipped };
}

/**
 * Identity of one version of a file: a rename-into-place changes the inode even within one mtime
 * tick; the ctime catches metadata-only changes (a chmod that makes an unreadable file readable),
 * which would otherwise leave a rejection standing until the next rewrite.
 */
export function versionOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export type StatResult =
  | { readonly ok: true; readonly stats: Stats }
  | { readonly ok: false; readonly code: string; readonly message: string };

export async function statFile(path: string, fs: ScanFs = asyncScanFs): Promise<StatResult> {
  try {
    return { ok: true, stats: await fs.stat(path) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, code: e.code ?? "error", message: e.message };
  }
}

export type ReadResult =
  | { readonly ok: true; readonly bytes: Buffer; readonly stats: Stats }
  | {
      readonly ok: false;
      readonly reason: "too_large" | "read_error" | "not_regular_file";
      readonly message: string;
      readonly stats?: Stats;
    };

/**
 * Read at most `maxBytes` of a regular file. Opened without following symlinks and without
 * blocking (a FIFO named *.prom must not hang the collector); the size is checked on the open
 * descriptor, and the read stops past the cap in case the file grew after the check.
 */
export async function readCapped(
  path: string,
  maxBytes: number,
  fs: ScanFs = asyncScanFs,
): Promise<ReadResult> {
  let fh: ScanFile;
  try {
    fh = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, reason: "read_error", message: `${e.code ?? "error"}: ${e.message}` };
  }
  try {
    const stats = await fh.stat();
    if (!stats.isFile())
      return { ok: false, reason: "not_regular_file", message: "not a regular file", stats };
    if (stats.size > maxBytes) {
      return {
        ok: false,
        reason: "too_large",
        message: `${stats.size} bytes > MAX_FILE_BYTES ${maxBytes}`,
        stats,
      };
    }
    const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(stats.size + 1, 4096)));
    let length = 0;
    for (;;) {
      if (length === buf.length) break;
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length === buf.length) {
      // More bytes than fstat reported: the file is being written in place (not renamed into place).
      if (length > maxBytes) {
        return {
          ok: false,
          reason: "too_large",
          message: `grew past MAX_FILE_BYTES ${maxBytes} while being read`,
          stats,
        };
      }
      return {
        ok: false,
        reason: "read_error",
        message: "file grew while being read (write a temp file and rename it)",
        stats,
      };
    }
    return { ok: true, bytes: buf.subarray(0, length), stats };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, reason: "read_error", message: `${e.code ?? "error"}: ${e.message}` };
  } finally {
    await fh.close().catch(() => {});
  }
}
