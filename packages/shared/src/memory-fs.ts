// Whether a directory is on a memory-backed file system (tmpfs, ramfs: a pod's emptyDir with
// `medium: Memory`). There a system call takes microseconds and cannot hang, so the programs make
// it synchronously rather than through libuv's thread pool — a round trip that wakes a worker
// thread and then the event loop, several times the cost of the call itself. On any other file
// system (a disk, a network volume) calls stay asynchronous: a hung mount must not stop the
// process (the log shipper's positions writes, the metrics exporter's collections).
import { statfsSync } from "node:fs";

/** statfs f_type of the memory-backed file systems: tmpfs, ramfs. */
const MEMORY_FS_TYPES = new Set([0x01021994, 0x858458f6]);

/** Whether a statfs `type` (f_type) is a memory-backed file system's. */
export function isMemoryFsType(type: number): boolean {
  return MEMORY_FS_TYPES.has(type);
}

/** Whether `dir` is on a memory-backed file system (false when that cannot be told). */
export function onMemoryFs(dir: string): boolean {
  try {
    return isMemoryFsType(statfsSync(dir).type);
  } catch {
    return false;
  }
}
