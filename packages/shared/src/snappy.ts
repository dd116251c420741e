// A snappy compressor (block format: the body of Loki's protobuf push and of Prometheus
// remote-write), in TypeScript so neither sidecar loads the native `snappy` addon: its shared
// library, the N-API glue and the Rust runtime it pulls in cost ≈ 3 MiB of resident memory in the
// log shipper (budget 64 MiB) and 8.5 MiB in the metrics exporter.
//
// The algorithm is Google's (snappy.cc, CompressFragment): the input is cut into 64 KiB
// fragments; in each, a hash table of 4-byte sequences finds earlier occurrences; what matched is
// written as a copy (offset, length), the bytes between matches as a literal. Lookups skip ahead
// faster the longer nothing matched, so incompressible input is passed over quickly. The table is
// the compressor's and reused for every fragment: a call allocates one DataView, nothing per
// fragment or element. `uncompress` is for the rare read-back of a rejected body (batch-split.ts);
// the tests check both against the reference implementation (the `snappy` package).
//
// Block format (github.com/google/snappy format_description.txt): a varint of the uncompressed
// length, then elements; the tag byte's low 2 bits say which: 00 literal (length-1 in the upper 6
// bits, or 60..63 = 1..4 little-endian length bytes follow), 01 copy with 1-byte offset (length
// 4..11, offset < 2048), 10 copy with 2-byte offset (length 1..64). Elements of consecutive
// pieces, concatenated, decompress to the pieces concatenated (see ProtobufEncoder).

/** Snappy's fragment: copies never reach further back than this, so offsets fit 16 bits. */
export const SNAPPY_FRAGMENT = 65_536;
const MAX_TABLE_BITS = 14;
/** Fragments shorter than this are written as one literal (the main loop reads 4 bytes ahead). */
const INPUT_MARGIN = 15;

/** At most this many bytes of elements for `n` input bytes (snappy.cc MaxCompressedLength). */
export function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

/** Where compressed bytes are appended (GrowableBuffer is one). */
export interface ByteSink {
  buf: Uint8Array;
  len: number;
  /** Make room for `n` more bytes after `len` (`buf` may be replaced). */
  reserve(n: number): void;
}

/** Write a block's length preamble (a varint; n < 2^32) at the start of `b`; returns its size. */
function writeLength(b: Uint8Array, n: number): number {
  let p = 0;
  let v = n;
  while (v >= 0x80) {
    b[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 0x80);
  }
  b[p++] = v;
  return p;
}

export class SnappyCompressor {
  private readonly table = new Uint16Array(1 << MAX_TABLE_BITS);

  /**
   * Append the elements of `src[start, end)` (no length preamble) to `out`, growing it a fragment
   * at a time (so it needs room for about what the input compresses to, not for the worst case).
   */
  compressInto(src: Uint8Array, start: number, end: number, out: ByteSink): void {
    // One view per call, for the 4- and 8-byte reads (one load instead of four byte loads).
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let at = start; at < end; at += SNAPPY_FRAGMENT) {
      const to = Math.min(end, at + SNAPPY_FRAGMENT);
      out.reserve(maxCompressedLength(to - at));
      out.len = this.fragment(src, dv, at, to, out.buf, out.len);
    }
  }

  /**
   * A whole snappy block of `src` (length preamble and elements): a view of a new buffer sized for
   * the worst case (not copied to its exact size: the caller sends it and lets it go).
   */
  compress(src: Uint8Array): Buffer {
    const n = src.length;
    const out = Buffer.allocUnsafe(5 + maxCompressedLength(n));
    const sink: ByteSink = { buf: out, len: writeLength(out, n), reserve: () => {} };
    this.compressInto(src, 0, n, sink);
    return out.subarray(0, sink.len);
  }

  private fragment(
    src: Uint8Array,
    dv: DataView,
    start: number,
    end: number,
    dst: Uint8Array,
    d: number,
  ): number {
    const len = end - start;
    if (len < INPUT_MARGIN + 1) return len > 0 ? emitLiteral(src, start, end, dst, d) : d;
    let bits = 8;
    while (1 << bits < len && bits < MAX_TABLE_BITS) bits++;
    const shift = 32 - bits;
    const table = this.table;
    table.fill(0, 0, 1 << bits);
    // Positions are kept relative to the fragment's start; an empty slot (0) points at the start,
    // a candidate like any other, checked before it is used.
    const ipLimit = end - INPUT_MARGIN;
    let nextEmit = start;
    let ip = start + 1;
    // snappy.cc's hash of 4 bytes is `Math.imul(w, 0x1e35a7bd) >>> shift`; it is written here as
    // `(w * 0xa7bd + ((w * 0x1e35) << 16)) >>> shift`, the same value for every int32 w (both products
    // are exact in a double, and `<<` / `>>>` reduce modulo 2^32): the same table slots, so the same
    // output. Maglev — the log shipper's top tier on Node 24 with Loki alone — calls the Math.imul
    // builtin instead of inlining it (5.5–7 ns a hash against 2.8–3.3, `node --no-turbofan`, 1M
    // hashes; with TurboFan 1.1–1.3 against 1.4–1.6), and does not inline a helper function for it
    // either, so the expression is written out at each use.
    let w = dv.getInt32(ip, true);
    let nextHash = (w * 0xa7bd + ((w * 0x1e35) << 16)) >>> shift;
    for (;;) {
      // Look for a 4-byte match, stepping further the longer none was found (1 byte per lookup
      // for the first 32 lookups, then 2 for 16 more, ...).
      let skip = 32;
      let nextIp = ip;
      let candidate: number;
      do {
        ip = nextIp;
        const h = nextHash;
        const step = skip >>> 5;
        skip += step;
        nextIp = ip + step;
        if (nextIp > ipLimit) return nextEmit < end ? emitLiteral(src, nextEmit, end, dst, d) : d;
        w = dv.getInt32(nextIp, true);
        nextHash = (w * 0xa7bd + ((w * 0x1e35) << 16)) >>> shift;
        candidate = start + (table[h] as number);
        table[h] = ip - start;
      } while (dv.getInt32(ip, true) !== dv.getInt32(candidate, true));
      if (ip > nextEmit) d = emitLiteral(src, nextEmit, ip, dst, d);
      // Copies, as long as the position after one starts another match at once.
      let again: boolean;
      do {
        let s = ip + 4;
        let c = candidate + 4;
        const end8 = end - 8;
        for (;;) {
          if (s > end8) break;
          const a = dv.getFloat64(s, true);
          // NaNs never compare equal (the 4-byte loop goes on), and 0 equals -0 (different bytes).
          if (a !== dv.getFloat64(c, true) || a === 0) break;
          s += 8;
          c += 8;
        }
        const end4 = end - 4;
        let tail = true;
        while (s <= end4) {
          const x = dv.getInt32(s, true) ^ dv.getInt32(c, true);
          if (x !== 0) {
            // The first differing byte is the lowest nonzero byte of x (little-endian loads).
            // Tests rather than Math.clz32, which Maglev calls as a builtin (as Math.imul).
            s += (x & 0xff) !== 0 ? 0 : (x & 0xff00) !== 0 ? 1 : (x & 0xff0000) !== 0 ? 2 : 3;
            tail = false;
            break;
          }
          s += 4;
          c += 4;
        }
        if (tail) {
          while (s < end && src[s] === src[c]) {
            s++;
            c++;
          }
        }
        d = emitCopy(dst, d, ip - candidate, s - ip);
        ip = s;
        nextEmit = ip;
        if (ip >= ipLimit) return nextEmit < end ? emitLiteral(src, nextEmit, end, dst, d) : d;
        w = dv.getInt32(ip - 1, true);
        table[(w * 0xa7bd + ((w * 0x1e35) << 16)) >>> shift] = ip - 1 - start;
        w = dv.getInt32(ip, true);
        const h = (w * 0xa7bd + ((w * 0x1e35) << 16)) >>> shift;
        candidate = start + (table[h] as number);
        table[h] = ip - start;
        again = dv.getInt32(ip, true) === dv.getInt32(candidate, true);
      } while (again);
      ip++;
      w = dv.getInt32(ip, true);
      nextHash = (w * 0xa7bd + ((w * 0x1e35) << 16)) >>> shift;
    }
  }
}

/** A literal element's tag for `len` (≥ 1) bytes at `d`; returns the position after it. */
export function writeLiteralTag(dst: Uint8Array, d: number, len: number): number {
  const n = len - 1;
  if (n < 60) {
    dst[d++] = n << 2;
    return d;
  }
  const bytes = n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
  dst[d++] = (59 + bytes) << 2;
  for (let i = 0, v = n; i < bytes; i++, v >>>= 8) dst[d++] = v & 0xff;
  return d;
}

/** A literal element of `src[from, to)` (at least 1 byte) at `d`; returns the position after it. */
function emitLiteral(src: Uint8Array, from: number, to: number, dst: Uint8Array, d: number): number {
  const n = to - from;
  d = writeLiteralTag(dst, d, n);
  if (n <= 16) {
    for (let i = from; i < to; i++) dst[d++] = src[i] as number;
    return d;
  }
  dst.set(src.subarray(from, to), d);
  return d + n;
}

/** Copy elements for `len` (≥ 4) bytes `offset` (1..65535) back; returns the position after them. */
function emitCopy(dst: Uint8Array, d: number, offset: number, len: number): number {
  // As snappy.cc: 64-byte copies while more than 67 remain, so the last is never shorter than 4.
  while (len >= 68) {
    d = copyAtMost64(dst, d, offset, 64);
    len -= 64;
  }
  if (len > 64) {
    d = copyAtMost64(dst, d, offset, 60);
    len -= 60;
  }
  // The last (usually the only) element written here: Maglev would call copyAtMost64, not inline it.
  if (len < 12 && offset < 2048) {
    dst[d] = 1 | ((len - 4) << 2) | ((offset >>> 8) << 5);
    dst[d + 1] = offset & 0xff;
    return d + 2;
  }
  dst[d] = 2 | ((len - 1) << 2);
  dst[d + 1] = offset & 0xff;
  dst[d + 2] = offset >>> 8;
  return d + 3;
}

function copyAtMost64(dst: Uint8Array, d: number, offset: number, len: number): number {
  if (len < 12 && offset < 2048) {
    dst[d++] = 1 | ((len - 4) << 2) | ((offset >>> 8) << 5);
    dst[d++] = offset & 0xff;
  } else {
    dst[d++] = 2 | ((len - 1) << 2);
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
  }
  return d;
}

/**
 * Decompress a snappy block (the rare path that reads a rejected body back, batch-split.ts).
 * Throws on a malformed block: a bad preamble, an element past the input's end, a copy reaching
 * before the output's start or past its declared length, or a length that does not add up.
 */
export function uncompress(src: Uint8Array): Buffer {
  let p = 0;
  let n = 0;
  for (let mul = 1; ; mul *= 128) {
    if (p >= src.length || mul > 2 ** 28) throw new Error("snappy: bad length preamble");
    const b = src[p++] as number;
    n += (b & 0x7f) * mul;
    if (b < 0x80) break;
  }
  if (n > 0xffffffff) throw new Error("snappy: bad length preamble");
  const out = Buffer.allocUnsafe(n);
  let d = 0;
  while (p < src.length) {
    const tag = src[p++] as number;
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const bytes = len - 59;
        if (p + bytes > src.length) throw new Error("snappy: truncated literal");
        len = 0;
        for (let i = 0, mul = 1; i < bytes; i++, mul *= 256) len += (src[p++] as number) * mul;
      }
      len += 1;
      if (p + len > src.length || d + len > n) throw new Error("snappy: literal past the end");
      out.set(src.subarray(p, p + len), d);
      p += len;
      d += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (p + 1 > src.length) throw new Error("snappy: truncated copy");
      len = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | (src[p++] as number);
    } else if (kind === 2) {
      if (p + 2 > src.length) throw new Error("snappy: truncated copy");
      len = 1 + (tag >>> 2);
      offset = (src[p] as number) | ((src[p + 1] as number) << 8);
      p += 2;
    } else {
      if (p + 4 > src.length) throw new Error("snappy: truncated copy");
      len = 1 + (tag >>> 2);
      offset =
        ((src[p] as number) | ((src[p + 1] as number) << 8) | ((src[p + 2] as number) << 16)) +
        (src[p + 3] as number) * 0x1000000;
      p += 4;
    }
    if (offset === 0 || offset > d || d + len > n) throw new Error("snappy: copy out of range");
    // Byte by byte: a copy may overlap what it writes (offset < len repeats a pattern).
    for (let s = d - offset, e = d + len; d < e; ) out[d++] = out[s++] as number;
  }
  if (d !== n) throw new Error("snappy: length does not match the preamble");
  return out;
}
