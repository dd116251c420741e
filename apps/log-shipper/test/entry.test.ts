// Entry metadata read from raw line bytes: `time` (epoch in any common unit, RFC 3339 with zones
// and fractions) and `level` (pino numbers, names), with every malformed case falling back.
import { describe, expect, it } from "vitest";
import { EntryScanner, LEVEL_NAMES } from "../src/entry.js";

function scan(line: string, pad = 0) {
  // Embed the line in a bigger buffer so the scanner must respect [start, end).
  const prefix = "x".repeat(pad);
  const buf = Buffer.from(`${prefix}${line}{"time":1,"level":60}`);
  const s = new EntryScanner();
  const start = Buffer.byteLength(prefix);
  const ok = s.scan(buf, start, start + Buffer.byteLength(line));
  return {
    ok,
    ms: ok ? s.sec * 1000 + s.nanos / 1e6 : undefined,
    sec: s.sec,
    nanos: s.nanos,
    level: LEVEL_NAMES[s.level],
  };
}

describe("time", () => {
  it.each([
    ['{"level":30,"time":1700000000123,"msg":"x"}', Date.UTC(2023, 10, 14, 22, 13, 20, 123)],
    ['{"time":1700000000.5}', 1700000000500], // seconds with fraction
    ['{"time":1700000000}', 1700000000000], // seconds
    ['{"time":1700000000123456}', 1700000000123.456], // microseconds
    ['{"time":"1700000000123"}', 1700000000123], // epoch ms as a string
    ['{"time":"2024-01-31T12:00:00Z"}', Date.UTC(2024, 0, 31, 12)],
    ['{"time":"2024-01-31T12:00:00.123Z"}', Date.UTC(2024, 0, 31, 12, 0, 0, 123)],
    ['{"time":"2024-01-31t12:00:00.5z"}', Date.UTC(2024, 0, 31, 12, 0, 0, 500)],
    ['{"time":"2024-01-31 12:00:00+02:00"}', Date.UTC(2024, 0, 31, 10)],
    ['{"time":"2024-01-31T12:00:00-0530"}', Date.UTC(2024, 0, 31, 17, 30)],
    ['{"time":"2024-02-29T23:59:60Z"}', Date.UTC(2024, 1, 29, 23, 59, 59)], // leap second kept in its minute
    ['{"time":"1969-12-31T23:59:59Z"}', -1000],
    ['  { "msg" : "a \\"time\\": 5" , "time" : "2000-01-01T00:00:00Z" }', Date.UTC(2000, 0, 1)],
    ['{"a":{"time":1},"time":1700000000000}', 1700000000000], // nested `time` ignored
    ['{"a":[1,{"b":"}"}],"time":1700000000000}', 1700000000000],
  ])("%s", (line, ms) => {
    const r = scan(line, 7);
    expect(r.ok).toBe(true);
    expect(r.ms).toBeCloseTo(ms, 3);
  });

  it("keeps nanosecond precision of RFC 3339 fractions and epoch nanoseconds", () => {
    expect(scan('{"time":"2024-01-31T12:00:00.123456789Z"}')).toMatchObject({
      sec: Date.UTC(2024, 0, 31, 12) / 1000,
      nanos: 123456789,
    });
    expect(scan('{"time":"2024-01-31T12:00:00.1234567891234Z"}').nanos).toBe(123456789);
    expect(scan('{"time":1700000000123456789}')).toMatchObject({ sec: 1700000000, nanos: 123456789 });
  });

  it.each([
    ["plain text line"],
    [""],
    ['{"msg":"no time here"}'],
    ['{"time":"yesterday"}'],
    ['{"time":"2024-13-01T00:00:00Z"}'],
    ['{"time":"2024-02-30T00:00:00Z"}'],
    ['{"time":"2024-01-31T25:00:00Z"}'],
    ['{"time":"2024-01-31T12:00:00+25:00"}'],
    ['{"time":"2024-01-31T12:00:00Zjunk"}'],
    ['{"time":"2024-01-31T12:00:00."}'],
    ['{"time":null}'],
    ['{"time":-5}'],
    ['{"time":1.5e12}'],
    ['{"time":true}'],
    ['{"time":1700000000000'], // cut mid-line: still a usable number
    ['{"msg":"unterminated'],
    ['["time", 1700000000000]'],
    ['{"msg":"a \\"time\\":1700000000000"}'],
  ])("falls back for %j", (line) => {
    const r = scan(line);
    if (line === '{"time":1700000000000') expect(r.ok).toBe(true);
    else expect(r.ok).toBe(false);
  });

  it("only looks at the head of the line", () => {
    const long = `{"msg":"${"a".repeat(2000)}","time":1700000000000}`;
    expect(scan(long).ok).toBe(false);
    const short = `{"msg":"${"a".repeat(500)}","time":1700000000000}`;
    expect(scan(short).ok).toBe(true);
  });

  it("uses the first top-level time key only", () => {
    expect(scan('{"time":"bad","time":1700000000000}').ok).toBe(false);
  });
});

describe("level", () => {
  it.each([
    ['{"level":10}', "trace"],
    ['{"level":20}', "debug"],
    ['{"level":30,"time":1}', "info"],
    ['{"time":1,"level":40}', "warn"],
    ['{"level":50}', "error"],
    ['{"level":60}', "fatal"],
    ['{"level":"INFO"}', "info"],
    ['{"level":"Warning"}', "warn"],
    ['{"level":"err"}', "error"],
    ['{"level":"critical"}', "fatal"],
    ['{"level":"debug"}', "debug"],
    ['{"level":35}', ""], // custom pino levels get no label
    ['{"level":300}', ""],
    ['{"level":30.5}', ""],
    ['{"level":"verbose-ish"}', ""],
    ['{"level":"x\\u0041"}', ""],
    ['{"level":null}', ""],
    ['{"msg":{"level":50}}', ""],
    ["level=info plain text", ""],
  ])("%s → %j", (line, name) => {
    expect(scan(line).level).toBe(name);
  });

  it("pino's fixed layout and its near misses agree with the general scan", () => {
    for (const [line, level, ms] of [
      ['{"level":30,"time":1700000000123,"pid":1}', "info", 1700000000123],
      ['{"level":60,"time":1700000000123}', "fatal", 1700000000123],
      ['{"level":35,"time":1700000000123,"pid":1}', "", 1700000000123],
      ['{"level":70,"time":1700000000123,"pid":1}', "", 1700000000123],
      ['{"level":30,"time":1700000000123.5,"pid":1}', "info", 1700000000123.5],
      ['{"level":30,"time":1700000000,"pid":1,"x":"yyyy"}', "info", 1700000000000],
      ['{"level":30,"time":"2024-01-31T12:00:00Z","pid":1}', "info", Date.UTC(2024, 0, 31, 12)],
    ] as const) {
      const r = scan(line, 3);
      expect([line, r.level, r.ms]).toEqual([line, level, ms]);
    }
  });

  it("resets between lines", () => {
    const s = new EntryScanner();
    const a = Buffer.from('{"level":50}');
    const b = Buffer.from("plain");
    s.scan(a, 0, a.length);
    expect(LEVEL_NAMES[s.level]).toBe("error");
    s.scan(b, 0, b.length);
    expect(LEVEL_NAMES[s.level]).toBe("");
  });
});
