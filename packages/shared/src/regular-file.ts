// Reading files a variable names (`*_FILE` secrets, CA bundles) without ever blocking on one that
// is not a regular file. readFileSync() of a FIFO waits for a writer on the main thread — the
// whole process stops, signals included — and a character device can hand out bytes forever.
// Opening with O_NONBLOCK returns at once for a FIFO and changes nothing for a regular file;
// fstat() on the open descriptor then says what it is, without a race between check and read.
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from "node:fs";

/** What a non-regular file is, for messages. */
export function fileKind(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isDirectory()) return "a directory";
  return "not a regular file";
}

/**
 * The content of `path` as UTF-8, when it is a regular file (symlinks followed). Otherwise throws
 * an error whose `code` says so (`not a regular file: a FIFO (named pipe)`); I/O errors keep their
 * errno code (ENOENT, EACCES …).
 */
export function readRegularFileSync(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const err = new Error(`${path} is ${fileKind(st)}, not a regular file`) as NodeJS.ErrnoException;
      err.code = `not a regular file: ${fileKind(st)}`;
      throw err;
    }
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}
