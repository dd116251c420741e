// Splitting a file's bytes into lines without copying them. The reader hands over one chunk of the
// file at a time; complete lines are emitted as byte ranges of that chunk, and the splitter says how
// much of the chunk it consumed. An incomplete last line is not copied anywhere: the reader simply
// starts its next read at that line's first byte. A line longer than maxLineBytes is never held
// whole: its head (maxLineBytes) is kept in one small buffer while the rest is skipped, chunk
// after chunk, up to the next newline; then the head is emitted, marked truncated.
//
// This is the hot path (tens of thousands of lines per second): no strings, no per-line objects.

export interface LineEmitter {
  /** One line, bytes [start, end) of `buf` (valid during the call only); `offset` = file offset past its newline. */
  line(buf: Buffer, start: number, end: number, offset: number, truncated: boolean): void;
}

const LF = 10;
const CR = 13;

export class LineSplitter {
  /** Lines emitted since the counters were last taken (see takeCounts). */
  lines = 0;
  /** Of those, how many were truncated. */
  truncated = 0;
  private skipping = false;
  private head: Buffer | null = null;

  constructor(readonly maxLineBytes: number) {}

  /**
   * The smallest read that can always decide a line: a line of maxLineBytes plus "\r\n". A reader
   * whose chunk buffer is at least this big never stalls on a line it cannot decide.
   */
  static minChunkBytes(maxLineBytes: number): number {
    return maxLineBytes + 2;
  }

  /** True while inside an over-long line whose end has not been seen yet. */
  get inLongLine(): boolean {
    return this.skipping;
  }

  /**
   * Split `buf[0, len)`, the file's bytes from file offset `base`. Emits every complete line and
   * returns how many bytes were consumed; the next read must start at `base + consumed`.
   */
  push(buf: Buffer, len: number, base: number, out: LineEmitter): number {
    const max = this.maxLineBytes;
    // Bytes past `len` are stale data from an earlier read: search only the valid part.
    const view = len === buf.length ? buf : buf.subarray(0, len);
    let pos = 0;
    if (this.skipping) {
      const nl = view.indexOf(LF);
      if (nl === -1) return len;
      out.line(this.head as Buffer, 0, max, base + nl + 1, true);
      this.lines++;
      this.truncated++;
      this.skipping = false;
      pos = nl + 1;
    }
    let lines = 0;
    for (;;) {
      const nl = view.indexOf(LF, pos);
      if (nl === -1) break;
      let end = nl;
      if (end > pos && view[end - 1] === CR) end--;
      if (end - pos > max) {
        out.line(view, pos, pos + max, base + nl + 1, true);
        this.truncated++;
      } else {
        out.line(view, pos, end, base + nl + 1, false);
      }
      lines++;
      pos = nl + 1;
    }
    this.lines += lines;
    // What is left is an incomplete line. Once it is certainly too long (even a "\r\n" ending could
    // not bring it under the bound), keep its head and skip the rest.
    if (len - pos > max + 1) {
      if (this.head === null) this.head = Buffer.allocUnsafe(max);
      view.copy(this.head, 0, pos, pos + max);
      this.skipping = true;
      return len;
    }
    return pos;
  }

  /**
   * Emit the incomplete last line as it is: `buf[0, len)` are the file's last bytes from `base`
   * (no newline among them). Used once a rotated file is drained and will not grow any more.
   * Returns the bytes consumed (always `len`).
   */
  flushPartial(buf: Buffer, len: number, base: number, out: LineEmitter): number {
    if (this.skipping) {
      out.line(this.head as Buffer, 0, this.maxLineBytes, base + len, true);
      this.lines++;
      this.truncated++;
      this.skipping = false;
      this.releaseHead();
      return len;
    }
    if (len === 0) return 0;
    let end = len;
    if (buf[end - 1] === CR) end--;
    const truncated = end > this.maxLineBytes;
    out.line(buf, 0, truncated ? this.maxLineBytes : end, base + len, truncated);
    this.lines++;
    if (truncated) this.truncated++;
    return len;
  }

  /** True when there are held bytes that flushPartial would emit even with nothing more to read. */
  get hasHeldHead(): boolean {
    return this.skipping;
  }

  /** Forget any long line in progress (the file was truncated and is read again from 0). */
  reset(): void {
    this.skipping = false;
    this.releaseHead();
  }

  /** Drop the head buffer when no long line is in progress, so idle readers hold no memory. */
  releaseHead(): void {
    if (!this.skipping) this.head = null;
  }

  takeCounts(): { lines: number; truncated: number } {
    const r = { lines: this.lines, truncated: this.truncated };
    this.lines = 0;
    this.truncated = 0;
    return r;
  }
}
