// Unit tests of the byte-keyed duplicate-series set used by the parser.
import { describe, expect, it } from "vitest";
import { type KeyHolder, SeriesSet } from "../src/series-set.js";

class Holder implements KeyHolder {
  bytes = Buffer.alloc(0);
  /** Append a key; returns its byte range. Replaces the buffer, as the parser's line buffer does when it grows. */
  push(key: string): [number, number] {
    const start = this.bytes.length;
    this.bytes = Buffer.concat([this.bytes, Buffer.from(key, "utf8")]);
    return [start, this.bytes.length];
  }
}

describe("SeriesSet", () => {
  it("finds every duplicate and nothing else, across holders and table growth", () => {
    const set = new SeriesSet();
    const a = new Holder();
    const b = new Holder();
    for (let i = 0; i < 5000; i++) {
      const [s, e] = (i % 2 ? a : b).push(`m{i="${i}",u="☃"}`);
      expect(set.add(i % 2 ? a : b, s, e)).toBe(true);
    }
    expect(set.size).toBe(5000);
    for (let i = 0; i < 5000; i += 7) {
      const h = i % 3 ? a : b; // the same key held by either holder is a duplicate
      const [s, e] = h.push(`m{i="${i}",u="☃"}`);
      expect(set.add(h, s, e)).toBe(false);
    }
    // Prefixes and extensions of existing keys are different keys.
    const [s1, e1] = a.push('m{i="1",u="☃"');
    expect(set.add(a, s1, e1)).toBe(true);
    const [s2, e2] = a.push('m{i="1",u="☃"}x');
    expect(set.add(a, s2, e2)).toBe(true);
    expect(set.size).toBe(5002);
  });
});
