// A pino destination that appends whole lines to one file and rotates it by rename when the next
// line would push it past maxBytes: app.log.(N-1) → app.log.N … app.log → app.log.1, then a fresh
// app.log. The log shipper tails app.log and its rotated siblings by file identity, so rename (not
// copy-and-truncate) is what lets it follow a file across rotation without loss or duplicates.
//
// Why synchronous, batched writes rather than sonic-boom's asynchronous mode:
//   - Lines are collected in memory and written with one write(2) per batch (at `bufferBytes`, or
//     once per event-loop turn via setImmediate), so the syscall cost is amortised over many lines.
//   - Every write, rename and reopen happens on the main thread in program order. A line can
//     therefore never land in the wrong file, be split across two, or overtake another, and there
//     is no in-flight write that rotation or exit would have to wait for.
//   - flushSync() is always possible, so the buffer is bounded (a full buffer is written at once)
//     and a final flush works even from process.on("exit").
// The volume is a memory-backed emptyDir, where a write is a memcpy into the page cache; blocking
// on it costs microseconds. The benchmark in bench/sample-app-log-write.mjs measures the result.
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

export interface RotatingFileOptions {
  /** The live file, e.g. /app/logs/app.log. */
  path: string;
  /** Rotate before a write that would make the file larger than this. */
  maxBytes: number;
  /** Rotated files kept (path.1 … path.N); the oldest is replaced by rename. */
  maxFiles: number;
  /** Write as soon as this much is buffered (default 64 KiB). */
  bufferBytes?: number;
  /** Called for a failed write or rotation; the stream keeps going (default: one line on stderr). */
  onError?: (err: Error, during: "write" | "rotate") => void;
  /** write(2) as fs.writeSync(fd, buffer, offset, length); injected by tests to simulate a full disk. */
  writeSync?: (fd: number, buffer: Buffer, offset: number, length: number) => number;
}

export interface RotatingFileStats {
  /** Lines (write() calls) accepted. */
  lines: number;
  /** Bytes written to disk. */
  bytes: number;
  rotations: number;
  writeErrors: number;
  rotateErrors: number;
  /** Bytes lost to failed writes (the batch cannot be retried without reordering). */
  droppedBytes: number;
}

const DEFAULT_BUFFER_BYTES = 64 * 1024;

export class RotatingFile {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  private readonly bufferBytes: number;
  private readonly onError: NonNullable<RotatingFileOptions["onError"]>;
  /** Bytes in the live file, counting what is still buffered for it. */
  private size: number;
  /** Bytes really in the live file (ends on a newline): where a failed batch is cut back to. */
  private diskSize = 0;
  private readonly writeFn: NonNullable<RotatingFileOptions["writeSync"]>;
  /** -1 while the live file could not be (re)opened; the next flush retries. */
  private fd: number;
  // String concatenation (a V8 rope) is cheaper than an array join for many small lines.
  private pending = "";
  private pendingBytes = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly counters: RotatingFileStats = {
    lines: 0,
    bytes: 0,
    rotations: 0,
    writeErrors: 0,
    rotateErrors: 0,
    droppedBytes: 0,
  };

  /** Opens (appends to) the file; throws if it cannot be opened. */
  constructor(opts: RotatingFileOptions) {
    if (!(opts.maxBytes > 0)) throw new RangeError("maxBytes must be > 0");
    if (!(opts.maxFiles >= 1)) throw new RangeError("maxFiles must be >= 1");
    this.path = opts.path;
    this.maxBytes = opts.maxBytes;
    this.maxFiles = opts.maxFiles;
    this.bufferBytes = opts.bufferBytes ?? DEFAULT_BUFFER_BYTES;
    this.onError =
      opts.onError ??
      ((err, during) => process.stderr.write(`rotating-file: ${during} failed: ${err.message}\n`));
    this.writeFn = opts.writeSync ?? writeSync;
    this.fd = openSync(this.path, "a", 0o644);
    // A restart continues the existing file; it rotates on the first line that would overflow it.
    // A crash (OOM kill, SIGKILL) in the middle of a write can leave a last line without its
    // newline. Appending to it would glue the next record onto the fragment — one line that is
    // two broken records to the shipper. The fragment was never a complete record, so it is cut
    // off (counted in droppedBytes) rather than terminated and shipped as a broken line.
    this.size = this.diskSize = this.cutToLastNewline();
    // A restart with a smaller LOG_MAX_FILES: drop the surplus now, not only at the first
    // rotation (which may be hours away while the files hold memory on a tmpfs volume).
    try {
      this.removeBeyondLimit();
    } catch (err) {
      this.counters.rotateErrors++;
      this.onError(err as Error, "rotate");
    }
  }

  /**
   * Append one record (pino hands over exactly one newline-terminated line per call). A record is
   * never split: if it does not fit in the live file, the file is rotated first. A record larger
   * than maxBytes gets a fresh file to itself, which is the only way a file exceeds maxBytes.
   */
  write(chunk: string): boolean {
    if (this.closed) {
      // Late lines (after close) are counted, not silently lost.
      this.counters.droppedBytes += Buffer.byteLength(chunk);
      return false;
    }
    const n = Buffer.byteLength(chunk);
    if (this.size > 0 && this.size + n > this.maxBytes) {
      this.flushSync();
      this.rotate();
    }
    this.pending += chunk;
    this.pendingBytes += n;
    this.size += n;
    this.counters.lines++;
    if (this.pendingBytes >= this.bufferBytes) this.flushSync();
    else if (this.scheduled === undefined) this.scheduled = setImmediate(this.flushScheduled);
    return true;
  }

  /** Write everything buffered now. Safe at any time, including from process.on("exit"). */
  flushSync(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.pendingBytes === 0) return;
    const data = this.pending;
    const bytes = this.pendingBytes;
    this.pending = "";
    this.pendingBytes = 0;
    try {
      if (this.fd < 0) {
        this.fd = openSync(this.path, "a", 0o644);
        this.diskSize = fstatSync(this.fd).size;
      }
      this.writeAll(data, bytes);
      this.counters.bytes += bytes;
      this.diskSize += bytes;
    } catch (err) {
      // A full volume typically takes part of the batch (a short write) and then fails with
      // ENOSPC. The part written ends mid-line; the next batch would be appended onto it. Cut the
      // file back to where the batch began, so the file holds whole lines only and the whole batch
      // is what was dropped.
      this.counters.writeErrors++;
      this.counters.droppedBytes += bytes;
      this.cutBack();
      this.size = this.diskSize;
      this.onError(err as Error, "write");
    }
  }

  /** pino calls flush(cb) from logger.flush(). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    if (cb) process.nextTick(cb);
  }

  /** Flush and close the file. Idempotent; later writes are counted as dropped. */
  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** pino's final flush path and stream users call end(). */
  end(): void {
    this.close();
  }

  stats(): Readonly<RotatingFileStats> {
    return { ...this.counters };
  }

  /** Name of rotated file number i (0 is the live file). */
  rotatedPath(i: number): string {
    return i === 0 ? this.path : `${this.path}.${i}`;
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = undefined;
    this.flushSync();
  };

  private writeAll(data: string, bytes: number): void {
    const buf = Buffer.from(data);
    // A short write (disk nearly full, signal) is continued from where it stopped, so no byte is
    // repeated or skipped; a full disk makes the next call throw ENOSPC.
    let off = 0;
    while (off < bytes) off += this.writeFn(this.fd, buf, off, bytes - off);
  }

  /** After a failed batch: truncate the live file back to its last complete line. */
  private cutBack(): void {
    if (this.fd < 0) return;
    try {
      ftruncateSync(this.fd, this.diskSize);
    } catch {
      // Cannot truncate (the file is gone, EIO): follow what is really there.
      this.diskSize = this.currentSize();
    }
  }

  /** Truncate the file just opened to its last newline; returns the resulting size. */
  private cutToLastNewline(): number {
    const size = fstatSync(this.fd).size;
    if (size === 0) return 0;
    // The file is opened for appending; reading its tail needs a descriptor of its own.
    const rfd = openSync(this.path, "r");
    try {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      let end = size;
      while (end > 0) {
        const start = Math.max(0, end - chunk.length);
        const n = readSync(rfd, chunk, 0, end - start, start);
        const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
        if (nl >= 0) {
          end = start + nl + 1;
          break;
        }
        end = start;
      }
      if (end < size) {
        ftruncateSync(this.fd, end);
        this.counters.droppedBytes += size - end;
      }
      return end;
    } finally {
      closeSync(rfd);
    }
  }

  private rotate(): void {
    try {
      if (this.fd >= 0) closeSync(this.fd);
    } catch {
      /* the descriptor is being replaced either way */
    }
    try {
      // Oldest first, so each rename lands on a name that has just been freed; the rename onto
      // path.N replaces the oldest kept file, which is how the count stays at maxFiles.
      for (let i = this.maxFiles - 1; i >= 1; i--)
        renameIfExists(this.rotatedPath(i), this.rotatedPath(i + 1));
      renameSync(this.path, this.rotatedPath(1));
      this.counters.rotations++;
      this.removeBeyondLimit();
    } catch (err) {
      this.counters.rotateErrors++;
      this.onError(err as Error, "rotate");
    }
    // Even when the rename failed, keep logging (to the old file) rather than lose lines; the
    // size restarts so the next attempt comes after another maxBytes, not on every line.
    this.size = 0;
    try {
      this.fd = openSync(this.path, "a", 0o644);
      // 0 after a rotation; the old file's size when the rename failed and it is appended to.
      this.diskSize = fstatSync(this.fd).size;
    } catch (err) {
      // The directory vanished or filled up: the next flush tries again (and counts its loss).
      this.fd = -1;
      this.counters.rotateErrors++;
      this.onError(err as Error, "rotate");
    }
  }

  /**
   * Files numbered above maxFiles (left by an earlier run with a larger LOG_MAX_FILES) would never
   * be replaced; removing them keeps the set — and a memory-backed volume — within its bound.
   */
  private removeBeyondLimit(): void {
    const prefix = `${basename(this.path)}.`;
    for (const name of readdirSync(dirname(this.path))) {
      if (!name.startsWith(prefix)) continue;
      const suffix = name.slice(prefix.length);
      if (/^\d+$/.test(suffix) && Number(suffix) > this.maxFiles)
        unlinkIfExists(join(dirname(this.path), name));
    }
  }

  private currentSize(): number {
    if (this.fd < 0) return 0;
    try {
      return fstatSync(this.fd).size;
    } catch {
      return 0;
    }
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
