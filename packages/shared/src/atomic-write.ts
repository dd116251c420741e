// Atomic file replacement: write a temporary sibling, fsync it, rename it over the target, fsync
// the directory. Readers see the old file or the new one, never half of either — the textfile
// convention the metrics exporter relies on, and the way positions survive a crash.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { close, fsync, open, rename, unlink, writeFd } from "./fs-async.js";

let writes = 0;

/** The temporary sibling a write of `path` goes through. */
function tempPath(path: string): string {
  // A leading dot and a .tmp suffix: globs for *.prom / *.log never match the temporary file.
  // pid + a counter: unique within the process; the random part tells two processes with the same
  // pid apart (containers sharing a volume). Not node:crypto's randomBytes, whose module graph costs
  // the log shipper ≈ 1.3 MiB of resident memory (sha256.ts).
  return join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${(++writes).toString(36)}.${Math.floor(Math.random() * 2 ** 32).toString(16)}.tmp`,
  );
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = tempPath(path);
  const fd = await open(tmp, "w", 0o644);
  try {
    await writeFd(fd, data);
    await fsync(fd);
  } catch (err) {
    await close(fd).catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await close(fd);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // The rename is durable only once the directory entry is on disk. Some file systems refuse
  // fsync on a directory; the rename has still happened, so that is not an error.
  try {
    const d = await open(dir, "r");
    try {
      await fsync(d);
    } finally {
      await close(d);
    }
  } catch {
    /* best effort */
  }
}

/**
 * writeFileAtomic with synchronous system calls: for a caller whose file is on a memory-backed file
 * system, where the calls take microseconds and cannot hang, and which waits for the write anyway
 * (the log shipper's positions). Through the thread pool the same seven calls are seven round trips.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tempPath(path);
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    try {
      closeSync(fd);
    } finally {
      removeQuietly(tmp);
    }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
  // As above: the directory's fsync makes the rename durable; best effort.
  try {
    const d = openSync(dirname(path), "r");
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    /* best effort */
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}
