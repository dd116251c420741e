// Line splitting with fuzzed chunk boundaries: whatever sizes the file grows by and whatever the
// read buffer size, the lines that come out are exactly the lines written (over-long ones cut to
// their head and flagged), each with the offset just past its terminator.
import { describe, expect, it } from "vitest";
import { type LineEmitter, LineSplitter } from "../src/source/line-splitter.js";
import { seededRng, testSeed } from "./support/random.js";

interface Out {
  text: string;
  offset: number;
  truncated: boolean;
}

function collector(): LineEmitter & { out: Out[] } {
  const out: Out[] = [];
  return {
    out,
    line(buf, start, end, offset, truncated) {
      out.push({ text: buf.toString("latin1", start, end), offset, truncated });
    },
  };
}

/**
 * Simulate a reader on a growing file: the file grows by random pieces; after each growth the
 * reader reads from its position to the end in chunks of `bufSize`, as FileReader does.
 */
function simulate(data: Buffer, growth: number[], bufSize: number, max: number) {
  const splitter = new LineSplitter(max);
  const em = collector();
  const buf = Buffer.alloc(bufSize, 0x41); // stale bytes that must never be mistaken for data
  let size = 0;
  let pos = 0;
  for (const g of growth) {
    size = Math.min(data.length, size + g);
    for (;;) {
      const n = Math.min(bufSize, size - pos);
      if (n <= 0) break;
      data.copy(buf, 0, pos, pos + n);
      const consumed = splitter.push(buf, n, pos, em);
      pos += consumed;
      if (n < bufSize) break; // reached the current end of the file
    }
  }
  return { em, splitter, pos, buf };
}

describe("LineSplitter", () => {
  it("splits fuzzed chunk boundaries exactly (\\n and \\r\\n, long lines truncated and counted)", () => {
    const seed = testSeed(20261206);
    console.log(`line-splitter fuzz seed=${seed} (replay with SEED=${seed})`);
    for (let round = 0; round < 60; round++) {
      const rng = seededRng(seed + round);
      const max = rng.int(8, 300);
      const expected: Out[] = [];
      const parts: Buffer[] = [];
      let offset = 0;
      const count = rng.int(1, 200);
      for (let i = 0; i < count; i++) {
        const kind = rng.next();
        const len = kind < 0.1 ? rng.int(max + 1, max * 5) : kind < 0.15 ? max : rng.int(0, max);
        let body = "";
        for (let j = 0; j < len; j++) body += String.fromCharCode(rng.int(0x20, 0x7e));
        const crlf = rng.chance(0.3);
        const raw = Buffer.from(body + (crlf ? "\r\n" : "\n"), "latin1");
        parts.push(raw);
        offset += raw.length;
        expected.push({ text: body.slice(0, max), offset, truncated: body.length > max });
      }
      const data = Buffer.concat(parts);
      const growth: number[] = [];
      for (let total = 0; total < data.length; ) {
        const g = rng.int(1, Math.max(1, Math.floor(max * 2.5)));
        growth.push(g);
        total += g;
      }
      const bufSize = LineSplitter.minChunkBytes(max) + rng.int(0, max * 3);
      const { em, splitter, pos } = simulate(data, growth, bufSize, max);
      expect(em.out, `round ${round} seed ${seed + round}`).toEqual(expected);
      expect(pos).toBe(data.length);
      expect(splitter.truncated).toBe(expected.filter((e) => e.truncated).length);
      expect(splitter.lines).toBe(expected.length);
    }
  });

  it("keeps a partial last line back until its newline arrives", () => {
    const s = new LineSplitter(100);
    const em = collector();
    const buf = Buffer.alloc(256);
    buf.write("one\ntw", "latin1");
    expect(s.push(buf, 6, 0, em)).toBe(4);
    expect(em.out.map((o) => o.text)).toEqual(["one"]);
    buf.write("two\n", "latin1"); // the reader re-reads from the partial line's start
    expect(s.push(buf, 4, 4, em)).toBe(4);
    expect(em.out).toEqual([
      { text: "one", offset: 4, truncated: false },
      { text: "two", offset: 8, truncated: false },
    ]);
  });

  it("flushes a partial last line as is only when asked (rotated and drained)", () => {
    const s = new LineSplitter(100);
    const em = collector();
    const buf = Buffer.from("tail without newline\r", "latin1");
    expect(s.push(buf, buf.length, 50, em)).toBe(0);
    expect(em.out).toEqual([]);
    expect(s.flushPartial(buf, buf.length, 50, em)).toBe(buf.length);
    expect(em.out).toEqual([{ text: "tail without newline", offset: 50 + buf.length, truncated: false }]);
  });

  it("never holds more than the head of a line longer than a whole chunk", () => {
    const max = 16;
    const s = new LineSplitter(max);
    const em = collector();
    const bufSize = LineSplitter.minChunkBytes(max);
    const buf = Buffer.alloc(bufSize);
    let base = 0;
    // A 1000-byte line arriving chunk after chunk, then "ok\n".
    const line = Buffer.from(`${"x".repeat(7)}${"y".repeat(993)}\nok\n`, "latin1");
    while (base < line.length) {
      const n = Math.min(bufSize, line.length - base);
      line.copy(buf, 0, base, base + n);
      const c = s.push(buf, n, base, em);
      if (base < 1000) expect(s.inLongLine || em.out.length > 0).toBe(true);
      base += c;
      if (c === 0) break;
    }
    expect(em.out).toEqual([
      { text: `${"x".repeat(7)}${"y".repeat(9)}`, offset: 1001, truncated: true },
      { text: "ok", offset: 1004, truncated: false },
    ]);
    expect(s.truncated).toBe(1);
  });

  it("flushes the held head of an unterminated long line once drained", () => {
    const max = 8;
    const s = new LineSplitter(max);
    const em = collector();
    const buf = Buffer.from("abcdefghijklmnop", "latin1");
    expect(s.push(buf, buf.length, 0, em)).toBe(16);
    expect(s.inLongLine).toBe(true);
    s.flushPartial(buf, 0, 16, em);
    expect(em.out).toEqual([{ text: "abcdefgh", offset: 16, truncated: true }]);
    expect(s.inLongLine).toBe(false);
  });
});
