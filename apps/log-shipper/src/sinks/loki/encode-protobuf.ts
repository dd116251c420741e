// Loki's push body in protobuf, hand-encoded (no protobuf library: the message is three levels
// deep and the hot path wants to write entries straight into reusable buffers), then
// snappy-compressed in the block format Loki expects.
//
//   PushRequest   { repeated StreamAdapter streams = 1; }
//   StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; }
//   EntryAdapter  { google.protobuf.Timestamp timestamp = 1; string line = 2;
//                   repeated LabelPairAdapter structuredMetadata = 3; }
//   LabelPairAdapter { string name = 1; string value = 2; }
//   Timestamp     { int64 seconds = 1; int32 nanos = 2; }
// (grafana/loki pkg/push/push.proto; field 4, `parsed`, is for query answers only.)
//
// Entries are kept between reads and sends already in wire form, including their
// `StreamAdapter.entries` tag and length, so a stream's entry bytes are one contiguous run that
// is copied into the request as is. The JSON encoder and the dry run read the same bytes back
// with `forEachEntry`.
import { SnappyCompressor, snappyLiteralTag } from "@sidecar/shared";

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
  // Every timestamp's seconds (from 1978 to 3058) and most nanosecond counts: no division.
  if (v < 0x800000000) return 5;
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

/** Bytes a varint of `v` (0 ≤ v < 2^32) takes, without a call for the common sizes. */
function smallVarintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : varintSize(v);
}

/**
 * Append one entry, as a `StreamAdapter.entries` field, to `out`. `line` must be valid UTF-8
 * (protobuf `string`). `metadata`: the entry's structured metadata fields, already encoded
 * (processing/fields.ts encodeMetadata). Returns the number of bytes appended.
 *
 * Called once per line, so its varints are sized and written here rather than by five to nine
 * calls to `varintSize` and `writeVarint`: Maglev, the image's top tier for Loki alone, inlined
 * none of them (loops, too large for its small-function inlining), and they were ~6 % of the
 * shipper's CPU at 50k lines/s (`perf`).
 */
export function appendEntry(
  out: GrowableBuffer,
  sec: number,
  nanos: number,
  line: Uint8Array,
  metadata?: Uint8Array,
): number {
  const lineLen = line.length;
  // Seconds from 1978 to 3058 take 5 bytes; nanoseconds of a millisecond or more, 4 or 5.
  const secLen = sec <= 0 ? 0 : sec >= 0x10000000 && sec < 0x800000000 ? 5 : varintSize(sec);
  const nanosLen = nanos >= 0x200000 ? (nanos >= 0x10000000 ? 5 : 4) : nanos > 0 ? varintSize(nanos) : 0;
  // At most 1 + 10 + 1 + 5 bytes: its length is one byte.
  const tsLen = (secLen > 0 ? 1 + secLen : 0) + (nanosLen > 0 ? 1 + nanosLen : 0);
  const metaLen = metadata !== undefined ? metadata.length : 0;
  const entryLen = 2 + tsLen + 1 + smallVarintSize(lineLen) + lineLen + metaLen;
  const total = 1 + smallVarintSize(entryLen) + entryLen;
  out.reserve(total);
  const b = out.buf;
  let p = out.len;
  let v: number;
  b[p++] = 0x12; // StreamAdapter.entries, length-delimited
  for (v = entryLen; v >= 0x80; v >>>= 7) b[p++] = (v & 0x7f) | 0x80;
  b[p++] = v;
  b[p++] = 0x0a; // EntryAdapter.timestamp
  b[p++] = tsLen;
  if (secLen > 0) {
    b[p++] = 0x08; // Timestamp.seconds
    if (sec < 0x100000000) {
      for (v = sec; v >= 0x80; v >>>= 7) b[p++] = (v & 0x7f) | 0x80;
      b[p++] = v;
    } else {
      p = writeVarint(b, p, sec);
    }
  }
  if (nanosLen > 0) {
    b[p++] = 0x10; // Timestamp.nanos
    for (v = nanos; v >= 0x80; v >>>= 7) b[p++] = (v & 0x7f) | 0x80;
    b[p++] = v;
  }
  b[p++] = 0x12; // EntryAdapter.line
  for (v = lineLen; v >= 0x80; v >>>= 7) b[p++] = (v & 0x7f) | 0x80;
  b[p++] = v;
  b.set(line, p);
  p += lineLen;
  if (metadata !== undefined) {
    b.set(metadata, p);
    p += metaLen;
  }
  out.len = p;
  return total;
}

/** One stream of a sealed batch, as every encoder sees it. */
export interface BatchStream {
  /** Labels in protobuf string form, `{k="v", ...}`, as UTF-8 bytes. */
  readonly labelBytes: Buffer;
  /** The same labels as an object (JSON push, dry run). */
  readonly labels: Readonly<Record<string, string>>;
  /** Those of `labels` promoted from the lines' fields (LABEL_FIELDS), when any. */
  readonly promoted?: Readonly<Record<string, string>>;
  /** Entries in wire form (see `appendEntry`); only valid until the batch's streams are reused. */
  readonly entries: Buffer;
  /**
   * Only from a batcher that packs (Sink.packedEntries): the snappy elements of the stream's first
   * `packedBytes` bytes of entries, compressed as they arrived in SNAPPY_FRAGMENT pieces from the
   * stream's start; `entries` holds the bytes after them. Valid as long as `entries`.
   */
  readonly packed?: Buffer;
  readonly packedBytes?: number;
  readonly count: number;
  /**
   * Only when the sink asked for them (Sink.entryRefs): per entry, in order, the SourceFile id
   * the line came from and the file offset just past it — a line's stable identity.
   */
  readonly fileIds?: readonly string[];
  readonly offsets?: readonly number[];
}

/**
 * Read entries back from their wire form (JSON encoding, dry run). `metadata` is the entry's
 * structured metadata as [name, value] pairs, undefined when it has none.
 */
export function forEachEntry(
  entries: Uint8Array,
  fn: (sec: number, nanos: number, line: Buffer, metadata: [string, string][] | undefined) => void,
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
    let metadata: [string, string][] | undefined;
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
      } else if (tag === 0x12) {
        line = buf.subarray(p, p + len);
        p += len;
      } else {
        if (metadata === undefined) metadata = [];
        metadata.push(readPair(buf, p, p + len));
        p += len;
      }
    }
    fn(sec, nanos, line, metadata);
  }
}

/** One LabelPairAdapter (bytes [start, end) of `buf`, inside its tag and length) as [name, value]. */
export function readPair(buf: Buffer, start: number, end: number): [string, string] {
  let p = start;
  let name = "";
  let value = "";
  while (p < end) {
    const tag = buf[p++] as number;
    let len = 0;
    let mul = 1;
    for (;;) {
      const c = buf[p++] as number;
      len += (c & 0x7f) * mul;
      if (c < 0x80) break;
      mul *= 128;
    }
    const s = buf.toString("utf8", p, p + len);
    if (tag === 0x0a) name = s;
    else if (tag === 0x12) value = s;
    p += len;
  }
  return [name, value];
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
  /** The body is done with (Sink.release): its memory may serve a later body. */
  release?(body: EncodedBody): void;
}

/** Bodies this large or larger come from the encoder's spares; a smaller one is cheap to allocate. */
const POOLED_BODY_BYTES = 16 * 1024;
/** Spare bodies kept: the one in flight and the one queued behind it, given back in turn. */
const SPARE_BODIES = 2;

/**
 * PushRequest + snappy, without assembling the uncompressed request: a snappy block is a varint
 * (the uncompressed length) followed by elements — literals, and copies that refer back by
 * distance — so the compressed elements of consecutive pieces, concatenated, decompress to the
 * pieces concatenated. Each stream's small header (field tags, lengths, labels) is written as a
 * literal and its entries, already in wire form in the batcher's buffer, are compressed where they
 * lie: no request-sized scratch buffer (1–2 MiB kept for good) and no copy of every batch's
 * ~1 MiB of entries into it. The elements go to one reused buffer about the size of a compressed
 * body (typically 4–8× smaller than the entries); the body sent and kept until acknowledged is
 * a copy of exactly its size (a view of a spare buffer when one fits).
 *
 * The body's memory is reused once the pipeline is done with it (`release`): a fresh body per
 * batch (tens to hundreds of KiB, ten a second at 50k lines/s) lives through a push or two, long
 * enough for its Buffer to be promoted to V8's old space, so its malloc'd memory came back only at
 * the next major GC — external memory swung between 4.5 and 11 MB, part of the shipper's growth
 * in resident memory over minutes (issue 12).
 */
export class ProtobufEncoder implements BatchEncoder {
  private readonly out = new GrowableBuffer(64 * 1024);
  private readonly snappy = new SnappyCompressor();
  /** Released bodies' whole buffers, oldest first. */
  private readonly spares: Buffer[] = [];
  /** The memory of the bodies this encoder made: only those are taken back. */
  private readonly made = new WeakSet<ArrayBufferLike>();

  encode(streams: readonly BatchStream[]): EncodedBody {
    const out = this.out;
    let total = 0;
    for (const s of streams) {
      const labelsLen = s.labelBytes.length;
      const streamLen = 1 + varintSize(labelsLen) + labelsLen + (s.packedBytes ?? 0) + s.entries.length;
      total += 1 + varintSize(streamLen) + streamLen;
    }
    out.len = 0;
    out.reserve(10);
    out.len = writeVarint(out.buf, 0, total);
    for (const s of streams) {
      const labelsLen = s.labelBytes.length;
      const streamLen = 1 + varintSize(labelsLen) + labelsLen + (s.packedBytes ?? 0) + s.entries.length;
      const headLen = 1 + varintSize(streamLen) + 1 + varintSize(labelsLen) + labelsLen;
      out.reserve(5 + headLen);
      const b = out.buf;
      let p = snappyLiteralTag(b, out.len, headLen);
      b[p++] = 0x0a; // PushRequest.streams
      p = writeVarint(b, p, streamLen);
      b[p++] = 0x0a; // StreamAdapter.labels
      p = writeVarint(b, p, labelsLen);
      s.labelBytes.copy(b, p);
      out.len = p + labelsLen;
      // Entries packed as they arrived are elements already: the same bytes compressInto would
      // write for them here (the same fragments, from the stream's first entry byte).
      const packed = s.packed;
      if (packed !== undefined && packed.length > 0) {
        out.reserve(packed.length);
        out.buf.set(packed, out.len);
        out.len += packed.length;
      }
      this.snappy.compressInto(s.entries, 0, s.entries.length, out);
    }
    const body = this.bodyOf(out.len);
    out.buf.copy(body, 0, 0, out.len);
    const used = out.len;
    out.len = 0;
    // After a burst of incompressible lines the buffer may have grown to the entries' size.
    out.shrink(used, 256 * 1024);
    return { body, contentType: "application/x-protobuf" };
  }

  release(done: EncodedBody): void {
    const memory = done.body.buffer;
    if (!this.made.has(memory)) return;
    const spares = this.spares;
    for (const s of spares) if (s.buffer === memory) return; // given back twice: kept once
    if (spares.length >= SPARE_BODIES) spares.shift();
    spares.push(Buffer.from(memory));
  }

  /** `n` bytes for a body: a spare at most twice that size, else new memory with some room. */
  private bodyOf(n: number): Buffer {
    if (n < POOLED_BODY_BYTES) return Buffer.allocUnsafe(n);
    const spares = this.spares;
    for (let i = 0; i < spares.length; i++) {
      const s = spares[i] as Buffer;
      if (s.length >= n && n >= s.length >>> 1) {
        spares.splice(i, 1);
        return s.subarray(0, n);
      }
    }
    // Room for a body a little larger next time (successive bodies differ by a few percent).
    const fresh = Buffer.allocUnsafeSlow(n + (n >>> 3));
    this.made.add(fresh.buffer);
    return fresh.subarray(0, n);
  }
}
