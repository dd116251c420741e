// Loki's push body in protobuf, hand-encoded (no protobuf library: the message is three levels
// deep and the hot path wants to write entries straight into reusable buffers), then
// snappy-compressed in the block format Loki expects.
//
//   PushRequest   { repeated StreamAdapter streams = 1; }
//   StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; }
//   EntryAdapter  { google.protobuf.Timestamp timestamp = 1; string line = 2; }
//   Timestamp     { int64 seconds = 1; int32 nanos = 2; }
//
// Entries are kept between reads and sends already in wire form, including their
// `StreamAdapter.entries` tag and length, so a stream's entry bytes are one contiguous run that
// is copied into the request as is. The JSON encoder and the dry run read the same bytes back
// with `forEachEntry`.
import snappy from "snappy";

/** A byte buffer that grows by doubling and is reused: `len` is reset, the memory is kept. */
export class GrowableBuffer {
  buf: Buffer;
  len = 0;
  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }
  /** Make room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  /**
   * Give memory back after a burst: when the capacity is more than four times what the last use
   * needed (and above `keep`), reallocate to twice that need. Steady use never reallocates.
   */
  shrink(used: number, keep: number): void {
    if (this.len !== 0) return; // only between uses
    const target = Math.max(keep, used * 2);
    if (this.buf.length <= target * 2) return;
    this.buf = Buffer.allocUnsafe(target);
  }
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** Bytes a varint of `v` (0 ≤ v < 2^53) takes. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 0x80);
  }
  return n;
}

/** Write varint `v` (0 ≤ v < 2^53) at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80000000) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/**
 * Append one entry, as a `StreamAdapter.entries` field, to `out`. `line` must be valid UTF-8
 * (protobuf `string`). Returns the number of bytes appended.
 */
export function appendEntry(out: GrowableBuffer, sec: number, nanos: number, line: Uint8Array): number {
  const lineLen = line.length;
  const tsLen = (sec > 0 ? 1 + varintSize(sec) : 0) + (nanos > 0 ? 1 + varintSize(nanos) : 0);
  const entryLen = 1 + varintSize(tsLen) + tsLen + 1 + varintSize(lineLen) + lineLen;
  const total = 1 + varintSize(entryLen) + entryLen;
  out.reserve(total);
  const b = out.buf;
  let p = out.len;
  b[p++] = 0x12; // StreamAdapter.entries, length-delimited
  p = writeVarint(b, p, entryLen);
  b[p++] = 0x0a; // EntryAdapter.timestamp
  p = writeVarint(b, p, tsLen);
  if (sec > 0) {
    b[p++] = 0x08; // Timestamp.seconds
    p = writeVarint(b, p, sec);
  }
  if (nanos > 0) {
    b[p++] = 0x10; // Timestamp.nanos
    p = writeVarint(b, p, nanos);
  }
  b[p++] = 0x12; // EntryAdapter.line
  p = writeVarint(b, p, lineLen);
  b.set(line, p);
  out.len = p + lineLen;
  return total;
}

/** One stream of a sealed batch, as every encoder sees it. */
export interface BatchStream {
  /** Labels in protobuf string form, `{k="v", ...}`, as UTF-8 bytes. */
  readonly labelBytes: Buffer;
  /** The same labels as an object (JSON push, dry run). */
  readonly labels: Readonly<Record<string, string>>;
  /** Entries in wire form (see `appendEntry`); only valid until the batch's streams are reused. */
  readonly entries: Buffer;
  readonly count: number;
  /**
   * Only when the sink asked for them (Sink.entryRefs): per entry, in order, the SourceFile id
   * the line came from and the file offset just past it — a line's stable identity.
   */
  readonly fileIds?: readonly string[];
  readonly offsets?: readonly number[];
}

/** Read entries back from their wire form (JSON encoding, dry run). */
export function forEachEntry(
  entries: Uint8Array,
  fn: (sec: number, nanos: number, line: Buffer) => void,
): void {
  const buf = Buffer.from(entries.buffer, entries.byteOffset, entries.byteLength);
  let p = 0;
  const readVarint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[p++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (p < buf.length) {
    p++; // 0x12
    const entryEnd = readVarint() + p;
    let sec = 0;
    let nanos = 0;
    let line: Buffer = Buffer.alloc(0);
    while (p < entryEnd) {
      const tag = buf[p++];
      const len = readVarint();
      if (tag === 0x0a) {
        const tsEnd = p + len;
        while (p < tsEnd) {
          const t = buf[p++];
          const v = readVarint();
          if (t === 0x08) sec = v;
          else if (t === 0x10) nanos = v;
        }
      } else {
        line = buf.subarray(p, p + len);
        p += len;
      }
    }
    fn(sec, nanos, line);
  }
}

/** Encoded body plus the headers that describe it. */
export interface EncodedBody {
  body: Buffer;
  contentType: string;
  contentEncoding?: string;
}

/** Turns a sealed batch's streams into a request body. Called synchronously at seal time. */
export interface BatchEncoder {
  encode(streams: readonly BatchStream[]): EncodedBody;
}

/**
 * PushRequest + snappy. The uncompressed request is assembled in one scratch buffer reused for
 * every batch; only the compressed body (typically 4–8× smaller) is kept until acknowledged.
 */
export class ProtobufEncoder implements BatchEncoder {
  private readonly scratch = new GrowableBuffer(64 * 1024);

  encode(streams: readonly BatchStream[]): EncodedBody {
    const out = this.scratch;
    out.len = 0;
    for (const s of streams) {
      const labelsLen = s.labelBytes.length;
      const streamLen = 1 + varintSize(labelsLen) + labelsLen + s.entries.length;
      out.reserve(1 + varintSize(streamLen) + streamLen);
      const b = out.buf;
      let p = out.len;
      b[p++] = 0x0a; // PushRequest.streams
      p = writeVarint(b, p, streamLen);
      b[p++] = 0x0a; // StreamAdapter.labels
      p = writeVarint(b, p, labelsLen);
      s.labelBytes.copy(b, p);
      p += labelsLen;
      s.entries.copy(b, p);
      out.len = p + s.entries.length;
    }
    // copyOutputData: without it the native side hands back an external buffer sized for the
    // worst case (~1.2 × input) whose memory V8 does not see, so it is collected late: measured
    // 300 batches of 1 MiB → 510 MiB RSS, against 85 MiB with the (cheap: ~100 KB) copy.
    const body = snappy.compressSync(out.view(), { copyOutputData: true });
    // Do not hold a burst-sized scratch buffer forever.
    const used = out.len;
    out.len = 0;
    out.shrink(used, 1024 * 1024);
    return { body, contentType: "application/x-protobuf" };
  }
}
