// gzip for /metrics without re-compressing the big, rarely changing part on every scrape. The
// collected part is deflated once per collection and ends on a byte-aligned sync flush; per scrape
// only the small own-metrics part is deflated and appended, and the gzip trailer's CRC-32 is
// continued from the cached one. The result is one ordinary gzip member (RFC 1952), which every
// client decodes — unlike concatenated gzip members, which some HTTP clients stop reading after
// the first of.
import { constants, crc32, deflateRawSync } from "node:zlib";

export interface GzipPrefix {
  /** Raw deflate of the prefix in pieces, ending in a sync flush (no final block). */
  readonly deflated: readonly Buffer[];
  /** Total bytes of `deflated`. */
  readonly deflatedLength: number;
  readonly crc: number;
  readonly length: number;
}

// ID1 ID2, CM=deflate, no flags, mtime 0, no extra flags, OS=unknown.
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);

// Small pieces (HELP/TYPE headers, small families) are compressed in batches of about this size,
// so a boundary's lost context does not matter; a piece this big (a large family's line buffer)
// is compressed on its own, straight from its buffer. Nothing body-sized is ever copied.
const BATCH_BYTES = 256 * 1024;

/**
 * The raw-deflate prefix of `data` (one buffer or a list of pieces, compressed as if they were
 * concatenated). Each deflated part ends on a sync flush, so the parts — and the tail added per
 * scrape — concatenate into one valid deflate stream.
 */
export function gzipPrefix(data: Buffer | readonly Buffer[], level = 1): GzipPrefix {
  const pieces = Buffer.isBuffer(data) ? [data] : data;
  const out: Buffer[] = [];
  let crc = 0;
  let length = 0;
  let deflatedLength = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const deflate = (input: Buffer) => {
    const d = deflateRawSync(input, { level, finishFlush: constants.Z_SYNC_FLUSH });
    out.push(d);
    deflatedLength += d.length;
  };
  const flush = () => {
    if (batchBytes === 0) return;
    deflate(batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, batchBytes));
    batch = [];
    batchBytes = 0;
  };
  for (const p of pieces) {
    if (p.length === 0) continue;
    crc = crc32(p, crc) >>> 0;
    length += p.length;
    if (p.length >= BATCH_BYTES) {
      flush();
      deflate(p);
      continue;
    }
    batch.push(p);
    batchBytes += p.length;
    if (batchBytes >= BATCH_BYTES) flush();
  }
  flush();
  return { deflated: out, deflatedLength, crc, length };
}

/**
 * One gzip member holding `prefix` followed by `tail`, as the pieces to write one after the other:
 * the cached deflated prefix (most of the body) is referenced, never copied per scrape.
 */
export function gzipPiecesWithPrefix(
  prefix: GzipPrefix,
  tail: Buffer,
  level = 6,
): { pieces: Buffer[]; length: number } {
  // CRC first, and not over an empty buffer: on Node 20, crc32() of a zero-length Buffer that has
  // been through deflateRawSync() returns 0 instead of the starting value.
  const crc = tail.length === 0 ? prefix.crc : crc32(tail, prefix.crc) >>> 0;
  const rest = deflateRawSync(tail, { level });
  const trailer = Buffer.allocUnsafe(8);
  trailer.writeUInt32LE(crc, 0);
  trailer.writeUInt32LE((prefix.length + tail.length) % 0x1_0000_0000, 4);
  const pieces = [HEADER, ...prefix.deflated, rest, trailer];
  return { pieces, length: HEADER.length + prefix.deflatedLength + rest.length + trailer.length };
}

/** One gzip member holding `prefix` followed by `tail`, in one buffer. */
export function gzipWithPrefix(prefix: GzipPrefix, tail: Buffer, level = 6): Buffer {
  const { pieces, length } = gzipPiecesWithPrefix(prefix, tail, level);
  return Buffer.concat(pieces, length);
}
