// The TypeScript snappy compressor (src/snappy.ts: the log shipper's Loki push, the metrics
// exporter's remote-write) checked against the reference: every
// block it writes must decompress with the `snappy` package (Google's C++ snappy, as Loki's Go
// decoder reads the same format) to exactly the input, for sizes around the format's and the
// compressor's edges, for incompressible and highly repetitive data, and for inputs that hit
// its 4- and 8-byte comparisons' corner cases. It must also actually compress (a compressor
// that wrote only literals would round-trip too). Its decompressor reads the reference's blocks.
import { createHash } from "node:crypto";
import snappy from "snappy";
import { describe, expect, it } from "vitest";
import { type ByteSink, SNAPPY_FRAGMENT, SnappyCompressor, uncompress } from "../src/snappy.js";

/** A ByteSink that grows by doubling (as the log shipper's GrowableBuffer does). */
class GrowableBuffer implements ByteSink {
  buf: Uint8Array;
  len = 0;
  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}

/** A fixed pseudo-random byte sequence (xorshift32 from a constant): incompressible, reproducible. */
function noise(n: number, seed = 0x9e3779b9): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** ~200-byte pino lines, varied like the shipper's input. */
function logLines(bytes: number): Buffer {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `{"level":${i % 7 === 0 ? 40 : 30},"time":${1796600000000 + i * 13},"pid":${1000 + (i % 3)},"hostname":"sample-app-7d9f8b6c4-x2k9p","reqId":"req-${((i * 2654435761) >>> 0).toString(36)}","req":{"method":"GET","url":"/api/items/${i % 97}"},"res":{"statusCode":${i % 11 === 0 ? 500 : 200}},"msg":"request completed"}\n`;
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join("")).subarray(0, bytes);
}

/** What kinds of elements a block holds (its preamble skipped). */
function elementKinds(z: Buffer): { copy1: number; copy2Far: number; longest: number } {
  let p = 0;
  while ((z[p] as number) >= 0x80) p++;
  p++;
  const k = { copy1: 0, copy2Far: 0, longest: 0 };
  while (p < z.length) {
    const tag = z[p++] as number;
    if ((tag & 3) === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const bytes = len - 59;
        len = z.readUIntLE(p, bytes);
        p += bytes;
      }
      p += len + 1;
    } else if ((tag & 3) === 1) {
      k.copy1++;
      k.longest = Math.max(k.longest, 4 + ((tag >>> 2) & 7));
      p++;
    } else {
      if (z.readUInt16LE(p) >= 2048) k.copy2Far++;
      k.longest = Math.max(k.longest, 1 + (tag >>> 2));
      p += (tag & 3) === 2 ? 2 : 4;
    }
  }
  return k;
}

function roundTrip(input: Buffer): Buffer {
  const z = new SnappyCompressor().compress(input);
  const back = snappy.uncompressSync(z, { asBuffer: true }) as Buffer;
  expect(back.length).toBe(input.length);
  expect(back.equals(input)).toBe(true);
  expect(uncompress(z).equals(input)).toBe(true);
  return z;
}

const sizes = [
  0,
  1,
  2,
  3,
  4,
  5,
  14,
  15,
  16,
  17,
  60,
  61,
  255,
  256,
  257,
  4095,
  4096,
  65535,
  65536,
  65537,
  1 << 20,
];

describe("snappy compressor", () => {
  it.each(sizes)("round-trips %i bytes of log lines, of noise and of one repeated byte", (n) => {
    roundTrip(logLines(n));
    roundTrip(noise(n));
    roundTrip(Buffer.alloc(n, 0x61));
  });

  it("compresses repetitive data and log lines about as well as the reference", () => {
    for (const input of [Buffer.alloc(1 << 20, 0), Buffer.from("ab".repeat(300_000)), logLines(1 << 20)]) {
      const ours = roundTrip(input).length;
      const ref = snappy.compressSync(input).length;
      expect(ours).toBeLessThan(input.length / 4);
      expect(ours).toBeLessThanOrEqual(Math.ceil(ref * 1.05));
    }
    // Incompressible data costs little more than itself (literals of up to a fragment each).
    const n = noise(1 << 20);
    expect(roundTrip(n).length).toBeLessThan(n.length + 200);
  });

  it("copies longer than 64 bytes, offsets on both sides of 2048, and matches across fragments", () => {
    // Text repeated at short and long distances, the last repeat across the 64 KiB fragment
    // boundary (copies never reach into the fragment before).
    const a = logLines(1500);
    const b = noise(2500, 7);
    const head = Buffer.concat([a, a, b, a, a.subarray(0, 67), a.subarray(0, 68)]);
    const filler = logLines(SNAPPY_FRAGMENT - head.length - 700);
    const input = Buffer.concat([head, filler, a, a]);
    const z = roundTrip(input);
    expect(z.length).toBeLessThanOrEqual(snappy.compressSync(input).length);
    const kinds = elementKinds(z);
    expect(kinds.longest).toBe(64);
    expect(kinds.copy1).toBeGreaterThan(0);
    expect(kinds.copy2Far).toBeGreaterThan(0); // offset ≥ 2048: 2-byte offset
  });

  it("8-byte words that compare equal as numbers but differ in bytes (0 and -0, NaNs) are not matched", () => {
    // As float64, 8 zero bytes equal 00..00 80 (-0); NaN words never equal themselves.
    const negZero = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x80]);
    const nan = Buffer.from([1, 0, 0, 0, 0, 0, 0xf8, 0x7f]);
    const zero = Buffer.alloc(8);
    const parts: Buffer[] = [];
    for (let i = 0; i < 2000; i++) parts.push(i % 3 === 0 ? negZero : i % 3 === 1 ? zero : nan);
    roundTrip(Buffer.concat(parts));
    roundTrip(Buffer.concat([Buffer.alloc(40), negZero, Buffer.alloc(40), zero, negZero, negZero]));
    // A 4-byte match ("abcd") whose next 8 bytes are -0 in the earlier occurrence and 0 here.
    const text = (s: string) => Buffer.from(s);
    for (const [x, y] of [
      [negZero, zero],
      [zero, negZero],
    ] as const) {
      roundTrip(
        Buffer.concat([
          text("-abcd"),
          x,
          text("0123456789ABCDEFGHIJ"),
          text("abcd"),
          y,
          text("KLMNOPQRSTUVWXYZ"),
        ]),
      );
    }
  });

  it("compressInto appends the elements of a range of a buffer that lies at an offset in its memory", () => {
    // A slice of a larger allocation (byteOffset ≠ 0), compressed from the middle, after bytes
    // already in the output: the elements, behind their own preamble, decompress to the range.
    const whole = Buffer.concat([noise(333, 5), logLines(200_000), noise(77, 6)]);
    const view = whole.subarray(100);
    const start = 1000;
    const end = view.length - 500;
    const out = new GrowableBuffer(16);
    out.buf.set(Buffer.from("junk"), 0);
    out.len = 4;
    new SnappyCompressor().compressInto(view, start, end, out);
    const elements = out.buf.subarray(4, out.len);
    const n = end - start;
    const preamble: number[] = [];
    for (let v = n; ; v >>>= 7) {
      if (v < 0x80) {
        preamble.push(v);
        break;
      }
      preamble.push((v & 0x7f) | 0x80);
    }
    const block = Buffer.concat([Buffer.from(preamble), elements]);
    expect(
      (snappy.uncompressSync(block, { asBuffer: true }) as Buffer).equals(view.subarray(start, end)),
    ).toBe(true);
  });

  it("writes exactly the blocks snappy.cc's hash (Math.imul by 0x1e35a7bd) gives", () => {
    // Digests of blocks written by this compressor when its hash was `Math.imul(w, 0x1e35a7bd)`:
    // the hash picks the table slots, so any other value changes matches and bytes.
    const digest = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
    const GOLDEN = [
      "1865f1281d8751705223b905e34ee312e6fd3ffbdb073f406380c8e0c614d159",
      "d8d9921f342242413c927280c3ef150467e5e30f14e88b7df01889a880530f9f",
      "bf3fe41b4826e8a14818182e6c9d9ec55d7bcac53459b10421e9314b2686accf",
    ];
    const c = new SnappyCompressor();
    expect(
      [
        logLines(300_000),
        noise(100_000),
        Buffer.concat([logLines(70_000), noise(5000), logLines(70_000)]),
      ].map((b) => digest(c.compress(b))),
    ).toEqual(GOLDEN);
  });

  it("one compressor gives the same bytes on reuse (its hash table is reset per fragment)", () => {
    const c = new SnappyCompressor();
    const a = logLines(100_000);
    const first = c.compress(a);
    c.compress(noise(70_000));
    expect(c.compress(a).equals(first)).toBe(true);
  });
});

describe("snappy decompressor", () => {
  it("reads the reference compressor's blocks", () => {
    for (const input of [Buffer.alloc(0), logLines(300_000), noise(70_000), Buffer.alloc(100_000, 7)]) {
      expect(uncompress(snappy.compressSync(input)).equals(input)).toBe(true);
    }
  });

  it("refuses malformed blocks", () => {
    const good = snappy.compressSync(logLines(5000));
    expect(() => uncompress(good.subarray(0, good.length - 3))).toThrow(/snappy/);
    expect(() => uncompress(Buffer.from([0x80]))).toThrow(/preamble/);
    // Length 4, then a copy 1 back before anything was written.
    expect(() => uncompress(Buffer.from([4, 0x01, 0x01]))).toThrow(/copy/);
    // Length 2, a literal of 3 bytes.
    expect(() => uncompress(Buffer.from([2, 0x08, 1, 2, 3]))).toThrow(/literal/);
    // Length 5, only 3 bytes given.
    expect(() => uncompress(Buffer.from([5, 0x08, 1, 2, 3]))).toThrow(/length/);
  });
});
