// One reader per tailed file: its identity, where reading stands (next byte to read, acknowledged
// offset), its open fd, and the chunk read itself. Chunks go into a buffer the caller lends (one
// buffer shared by all readers, since reads happen one at a time) and are split in place; complete
// lines go straight to the sink as byte ranges. The read offset only ever sits at a line start, so
// an incomplete last line is simply read again next time instead of being copied aside.
//
// The reads and fstat()s of a tailed file are synchronous system calls. A tailed file is a regular
// file (discovery refuses FIFOs, sockets and devices) whose new bytes are in the page cache, so
// each call takes microseconds; done asynchronously, each one was a round trip through libuv's
// thread pool — a queued work item, a thread woken, the event loop woken again, a callback and a
// promise — several times the cost of the call itself, and three of them per chunk read (fstat,
// fingerprint, chunk). Measured with bench/log-shipper.mjs (PERFORMANCE.md).
import { isUtf8 } from "node:buffer";
import { fstatSync, readSync, type Stats } from "node:fs";
import { fsAsync } from "@sidecar/shared";
import type { LineSink, SourceFile } from "../contracts.js";
import type { CheckedChunk } from "../entry.js";
import {
  ANCHOR_BYTES,
  anchorHash,
  FINGERPRINT_BYTES,
  fingerprintEnd,
  fingerprintOf,
  readAnchorSync,
} from "./fingerprint.js";
import { type LineEmitter, LineSplitter } from "./line-splitter.js";

function pread(fd: number, buf: Buffer, length: number, position: number): number {
  return readSync(fd, buf, 0, length, position);
}

export type VerifyResult = "ok" | "truncated" | "rewritten" | "gone";

export interface ChunkResult {
  read: number;
  consumed: number;
  /** The read filled the buffer: more may be waiting. */
  full: boolean;
  /** The bytes before readPos are not the ones this reader consumed there (rewritten, truncated). */
  changed: boolean;
}
const NOTHING: ChunkResult = Object.freeze({ read: 0, consumed: 0, full: false, changed: false });
const CHANGED: ChunkResult = Object.freeze({ read: 0, consumed: 0, full: false, changed: true });

export interface FileReaderInit {
  /** This reader instance: the identity plus a generation (what the sink acknowledges by). */
  id: string;
  /** The file identity (device/inode + fingerprint): what positions are keyed by. */
  key: string;
  path: string;
  dev: number;
  ino: number;
  fingerprint: string;
  fd: number;
  /** Where reading starts (a line start: an acknowledged or inherited offset). */
  offset: number;
  /** Acknowledged offset at start. */
  acked: number;
  /** The file's bytes just before `offset` (at most ANCHOR_BYTES; see fingerprint.ts). */
  anchor?: Buffer;
  size: number;
  maxLineBytes: number;
  sink: LineSink;
  now: () => number;
  /** Shared count of open descriptors, kept up to date as this reader opens and closes. */
  openCount?: OpenFiles;
}

/** The readers holding a descriptor, shared by all readers of a tailer (MAX_OPEN_FILES, polling). */
export interface OpenFiles {
  n: number;
  /** When present, the open readers themselves (so that nothing has to look at closed ones). */
  readers?: Set<FileReader>;
  /** When present, called each time a reader opens its file (after it counted itself). */
  opened?: () => void;
}

export class FileReader implements SourceFile, LineEmitter, CheckedChunk {
  /**
   * `key` plus this reader's generation. A file truncated and rewritten in place with the same
   * first line keeps its identity (`key`) but gets a new reader with a new `id`, so late
   * acknowledgements of the old content can never move the new content's committed offset.
   */
  readonly id: string;
  readonly key: string;
  path: string;
  /** The path the file had when first seen; a different path later means it was rotated. */
  readonly firstPath: string;
  readonly dev: number;
  readonly ino: number;
  readonly fingerprint: string;
  private fdValue: number | null = null;
  /** Open descriptors of all readers sharing this counter (the tailer's MAX_OPEN_FILES bound). */
  private readonly openCount: OpenFiles;
  /** Next byte to read; always the start of a line (or inside a long line being skipped). */
  readPos: number;
  /** Highest offset the sink acknowledged. */
  acked: number;
  /** Last known size of the file. */
  size: number;
  lastGrowthAt: number;
  /** When the tailer last started a read of this file (ms). */
  lastReadAt = 0;
  /** Renamed away from its first path, no longer matched, or deleted: its writer has moved on. */
  rotated = false;
  /** Unlinked: finish reading from the open fd, then close and forget. */
  deleted = false;
  /** Replaced (truncated/rewritten/deleted): no longer read; kept only until its acks arrive. */
  retired = false;
  /** In the tailer's ready queue. */
  queued = false;
  /** The last read reached the end of the file: check identity before reading on. */
  atEof = true;
  /**
   * A copy (copytruncate) of a file that is still being read: not read itself until that original
   * is retired (truncated, rewritten, deleted, forgotten) — reading both would ship what the
   * original gets after the copy was noticed twice.
   */
  holdFor: FileReader | null = null;
  /** While held: the copy's bytes up to here were checked equal to the original's. */
  verifiedTo = 0;
  /** Acknowledgements of the original (copytruncate) also cover this copy up to `limit`. */
  inherit: { fromId: string; limit: number } | null = null;
  /**
   * Reading skipped from `from` to `to` (a held copy had shipped those bytes already, see the
   * CopyHolding.catchUp): once this reader's own lines are acknowledged up to `from`, it is
   * acknowledged up to `to`.
   */
  ackJump: { from: number; to: number } | null = null;
  readonly splitter: LineSplitter;
  private readonly sink: LineSink;
  private readonly now: () => number;
  private readTime = 0;
  /** The last ≤ ANCHOR_BYTES bytes before readPos, as read: what must still be there to read on. */
  private readonly tail = Buffer.allocUnsafe(ANCHOR_BYTES);
  private tailLen = 0;
  /** The file's identifying first bytes, once verified (see headMatches). */
  private head: Buffer | null = null;
  /** CheckedChunk: the chunk whose lines are being handed over, and its valid UTF-8 part. */
  checkedBuf: Uint8Array | null = null;
  checkedEnd = 0;

  constructor(init: FileReaderInit) {
    this.id = init.id;
    this.key = init.key;
    this.path = init.path;
    this.firstPath = init.path;
    this.dev = init.dev;
    this.ino = init.ino;
    this.fingerprint = init.fingerprint;
    this.openCount = init.openCount ?? { n: 0 };
    this.fd = init.fd;
    this.readPos = init.offset;
    this.acked = init.acked;
    this.size = init.size;
    this.sink = init.sink;
    this.now = init.now;
    this.lastGrowthAt = init.now();
    this.splitter = new LineSplitter(init.maxLineBytes);
    if (init.anchor !== undefined) this.setTail(init.anchor);
  }

  get fd(): number | null {
    return this.fdValue;
  }

  set fd(fd: number | null) {
    const opens = this.fdValue === null && fd !== null;
    if ((this.fdValue === null) !== (fd === null)) {
      this.openCount.n += fd === null ? -1 : 1;
      if (fd === null) this.openCount.readers?.delete(this);
      else this.openCount.readers?.add(this);
    }
    this.fdValue = fd;
    if (opens) this.openCount.opened?.();
  }

  private setTail(bytes: Buffer): void {
    const n = Math.min(bytes.length, ANCHOR_BYTES);
    bytes.copy(this.tail, 0, bytes.length - n);
    this.tailLen = n;
  }

  /** `buf[0, n)` was consumed right at the old readPos: slide it into the tail. */
  private pushTail(buf: Buffer, n: number): void {
    if (n >= ANCHOR_BYTES) {
      buf.copy(this.tail, 0, n - ANCHOR_BYTES, n);
      this.tailLen = ANCHOR_BYTES;
      return;
    }
    const keep = Math.min(this.tailLen, ANCHOR_BYTES - n);
    this.tail.copy(this.tail, 0, this.tailLen - keep, this.tailLen);
    buf.copy(this.tail, keep, 0, n);
    this.tailLen = keep + n;
  }

  /** The anchor at readPos: its offset and hash (for positions and for recognising copies). */
  anchorAt(): { offset: number; hash: string } {
    return { offset: this.readPos, hash: anchorHash(this.tail.subarray(0, this.tailLen)) };
  }

  /** Start reading at `offset` (a line start) with `anchor` the bytes before it. */
  moveTo(offset: number, acked: number, anchor: Buffer): void {
    this.readPos = offset;
    this.acked = acked;
    this.setTail(anchor);
  }

  /**
   * Whether readPos is a line start as far as this reader knows: offset 0, or right after a
   * newline (the last byte of its tail). A position taken from elsewhere (positions file, an
   * original's reading, a re-check) must pass this before anything is read from it.
   */
  get atLineStart(): boolean {
    return this.readPos === 0 || (this.tailLen > 0 && this.tail[this.tailLen - 1] === 10);
  }

  /** Whether `bytes` (another file's bytes just before this readPos) equal what was read here. */
  tailEquals(bytes: Buffer): boolean {
    return bytes.length === this.tailLen && bytes.equals(this.tail.subarray(0, this.tailLen));
  }

  /** LineEmitter: forward one line to the sink, tagged with this file and the read time. */
  line(buf: Buffer, start: number, end: number, offset: number, truncated: boolean): void {
    this.sink.writeLine(this, buf, start, end, offset, truncated, this.readTime);
  }

  /** Bytes on disk not yet acknowledged. */
  get lagBytes(): number {
    return Math.max(0, this.size - this.acked);
  }

  /**
   * Read one chunk at readPos into `buf` and hand its complete lines to the sink. The same read
   * also fetches the bytes just before readPos and compares them with what this reader consumed
   * there (its tail): a file truncated and written again between an identity check and this read
   * would otherwise be read from the middle of a line of its new content. Checked in the read
   * itself, there is no window between check and use (at offset 0 the fingerprint is compared
   * instead). `buf` must hold ANCHOR_BYTES more than the
   * chunk. Returns bytes read, bytes consumed (lines and terminators), whether `buf` was filled
   * (more may follow), and `changed` when the bytes before readPos are not the ones read there.
   * With `head`, at offset 0, the chunk is the `head` bytes already in `buf`.
   */
  async readChunk(buf: Buffer, head?: number): Promise<ChunkResult> {
    const fd = this.fd;
    if (fd === null) return NOTHING;
    const start = this.readPos;
    const pre = this.tailLen;
    // `head`: `buf` already holds the file's first `head` bytes, read a moment ago (a new file).
    const n = head !== undefined && start === 0 && pre === 0 ? head : pread(fd, buf, buf.length, start - pre);
    if (!this.tailMatches(buf, n)) return CHANGED;
    const data = buf.subarray(pre);
    const got = n - pre;
    // At offset 0 there is no tail to compare, but the chunk begins with the fingerprinted first
    // bytes: other ones mean other content (truncated and written again since it was identified).
    if (start === 0 && got > 0 && fingerprintOf(data, got) !== this.fingerprint) return CHANGED;
    this.atEof = got < data.length;
    if (got === 0) return NOTHING;
    this.readTime = Date.now();
    // The chunk's complete lines are checked for valid UTF-8 here, at once (simdutf over the whole
    // run), instead of line by line in the batcher (entry.ts knownUtf8): one native call per chunk
    // instead of one per line. The splitter emits its lines on exactly this view.
    const chunk = got === data.length ? data : data.subarray(0, got);
    const lastNl = chunk.lastIndexOf(10);
    this.checkedEnd = lastNl >= 0 && isUtf8(chunk.subarray(0, lastNl + 1)) ? lastNl + 1 : 0;
    this.checkedBuf = chunk;
    let consumed: number;
    try {
      consumed = this.splitter.push(chunk, got, start, this);
    } finally {
      this.checkedBuf = null;
    }
    this.readPos = start + consumed;
    if (consumed > 0) this.pushTail(data, consumed);
    this.noteSize(start + got);
    return { read: got, consumed, full: !this.atEof, changed: false };
  }

  /** `buf[0, n)` was read from readPos − tailLen: does it begin with this reader's tail? */
  private tailMatches(buf: Buffer, n: number): boolean {
    const pre = this.tailLen;
    return n >= pre && buf.compare(this.tail, 0, pre, 0, pre) === 0;
  }

  /**
   * Ship the incomplete last line as it is (the file was rotated away and has stopped growing).
   * Returns bytes consumed, or null when the bytes before readPos changed (see readChunk).
   */
  async flushPartial(buf: Buffer): Promise<number | null> {
    const fd = this.fd;
    if (fd === null) return 0;
    const start = this.readPos;
    const pre = this.tailLen;
    const want = Math.min(buf.length - pre, Math.max(0, this.size - start));
    const n = pread(fd, buf, pre + want, start - pre);
    if (!this.tailMatches(buf, n)) return null;
    const data = buf.subarray(pre);
    const got = n - pre;
    if (got > 0 && data.subarray(0, got).indexOf(10) !== -1) return 0; // a newline arrived: read normally
    this.readTime = Date.now();
    const consumed = this.splitter.flushPartial(data, got, start, this);
    this.readPos = start + consumed;
    if (consumed > 0) this.pushTail(data, consumed);
    return consumed;
  }

  /** Whether there are bytes on disk past readPos (a partial line counts). */
  get hasUnread(): boolean {
    return this.size > this.readPos;
  }

  noteSize(size: number): void {
    if (size !== this.size) {
      if (size > this.size) this.lastGrowthAt = this.now();
      this.size = size;
    }
  }

  /** fstat the open file: current size and link count (0 = deleted). */
  async stat(): Promise<Stats | null> {
    if (this.fd === null) return null;
    try {
      return fstatSync(this.fd);
    } catch {
      return null;
    }
  }

  /**
   * Before every read: is this still the content we were reading? A size below the read offset
   * means it was truncated; a different fingerprint, or other bytes just before the read offset
   * than we read there (the anchor), means it was truncated and written again — possibly past our
   * offset already, possibly with the same first line — while we were not looking (back-pressure,
   * catching up, an idle spell). `scratch` must hold ANCHOR_BYTES.
   */
  async verify(scratch: Buffer, checkAnchor = true): Promise<VerifyResult> {
    const st = await this.stat();
    if (st === null) return "gone";
    if (st.nlink === 0) this.deleted = true;
    if (st.size < this.readPos) return "truncated";
    this.noteSize(st.size);
    const fd = this.fd;
    if (fd === null) return "gone";
    let same: boolean;
    try {
      same = this.headMatches(fd, scratch);
    } catch {
      same = false;
    }
    if (!same) return "rewritten";
    if (this.readPos === 0 || !checkAnchor) return "ok";
    let before: Buffer | null;
    try {
      before = readAnchorSync(fd, this.readPos, scratch);
    } catch {
      before = null;
    }
    if (before === null) return "truncated";
    return this.tailEquals(before) ? "ok" : "rewritten";
  }

  /**
   * Whether the file still begins with the bytes this reader's fingerprint was taken from. The
   * first time by the fingerprint (a hash); then those bytes are kept (≤ FINGERPRINT_BYTES) and
   * compared as they are — this runs before every chunk, and a hash object per chunk cost more
   * than the comparison. Equal bytes mean an equal fingerprint (fingerprintEnd).
   */
  private headMatches(fd: number, scratch: Buffer): boolean {
    const n = readSync(fd, scratch, 0, FINGERPRINT_BYTES, 0);
    const head = this.head;
    if (head !== null) return n >= head.length && scratch.compare(head, 0, head.length, 0, head.length) === 0;
    if (fingerprintOf(scratch, n) !== this.fingerprint) return false;
    this.head = Buffer.from(scratch.subarray(0, fingerprintEnd(scratch, n)));
    return true;
  }

  async closeFd(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    this.queued = false;
    this.splitter.reset();
    if (fd !== null) await fsAsync.close(fd).catch(() => {});
  }
}
