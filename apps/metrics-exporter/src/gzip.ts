// gzip for /metrics without re-compressing the big, rarely changing part on every scrape. The
// collected part is deflated once per collection and ends on a byte-aligned sync flush; per scrape
// only the small own-metrics part is deflated and appended, and the gzip trailer's CRC-32 is
// continued from the cached one. The result is one ordinary gzip member (RFC 1952), which every
// client decodes — unlike concatenated gzip members, which some HTTP clients stop reading after
// the first of.
import { constants, crc32, deflateRawSync } from "node:zlib";

export interface GzipPrefix {
  /** Raw deflate of the prefix, ending in a sync flush (no final block). */
  readonly deflated: Buffer;
  readonly crc: number;
  readonly length: number;
}

// ID1 ID2, CM=deflate, no flags, mtime 0, no extra flags, OS=unknown.
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);

export function gzipPrefix(data: Buffer, level = 1): GzipPrefix {
  return {
    deflated: deflateRawSync(data, { level, finishFlush: constants.Z_SYNC_FLUSH }),
    crc: crc32(data),
    length: data.length,
  };
}

/** One gzip member holding `prefix` followed by `tail`. */
export function gzipWithPrefix(prefix: GzipPrefix, tail: Buffer, level = 6): Buffer {
  // CRC first, and not over an empty buffer: on Node 20, crc32() of a zero-length Buffer that has
  // been through deflateRawSync() returns 0 instead of the starting value.
  const crc = tail.length === 0 ? prefix.crc : crc32(tail, prefix.crc) >>> 0;
  const rest = deflateRawSync(tail, { level });
  const trailer = Buffer.allocUnsafe(8);
  trailer.writeUInt32LE(crc, 0);
  trailer.writeUInt32LE((prefix.length + tail.length) % 0x1_0000_0000, 4);
  return Buffer.concat([HEADER, prefix.deflated, rest, trailer]);
}
