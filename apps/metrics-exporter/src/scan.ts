// Discovery and safe reading of the metrics directory. Only `*.prom` entries count; hidden names
// (the textfile convention's temporary files, e.g. `.app.prom.tmp`) and other suffixes are ignored.
// A symlink is followed only when it resolves inside the directory (Kubernetes projects ConfigMap
// files that way); anything else is skipped, never opened. Reading checks the size first and
// never reads more than the cap, so a 1 GiB file costs one stat.
import { constants, type Stats } from "node:fs";
import { open, readdir, realpath, stat } from "node:fs/promises";
import { join, sep } from "node:path";

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
export async function listFiles(dir: string): Promise<ListResult> {
  let dirReal: string;
  let entries: import("node:fs").Dirent[];
  try {
    dirReal = await realpath(dir);
    entries = await readdir(dirReal, { withFileTypes: true });
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
        target = await realpath(path);
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

export async function statFile(path: string): Promise<StatResult> {
  try {
    return { ok: true, stats: await stat(path) };
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
export async function readCapped(path: string, maxBytes: number): Promise<ReadResult> {
  let fh: import("node:fs/promises").FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
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
