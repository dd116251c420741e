// Unit tests of the text-format 0.0.4 parser and validator.
import { describe, expect, it } from "vitest";
import { decodeUtf8, normalizeValue, parseText, parseTextAsync } from "../src/parse.js";

const parse = (text: string, maxSeries = 1000) => parseText(text, { maxSeries });

function ok(text: string) {
  const r = parse(text);
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return r;
}

function fail(text: string) {
  const r = parse(text);
  if (r.ok) throw new Error("expected a parse error");
  return r.error;
}

describe("parseText", () => {
  it("accepts an empty file and a file of comments and blank lines", () => {
    expect(ok("").families).toEqual([]);
    expect(ok("\n\n# just a comment\n   \n#\n").families).toEqual([]);
  });

  it("reads HELP, TYPE and samples of every family type", () => {
    const r = ok(
      [
        "# HELP c_total Requests.",
        "# TYPE c_total counter",
        'c_total{a="1"} 3',
        "# TYPE g gauge",
        "g -1.5e3",
        "# TYPE h histogram",
        'h_bucket{le="0.5"} 1',
        'h_bucket{le="+Inf"} 2',
        "h_sum 0.7",
        "h_count 2",
        "# TYPE s summary",
        's{quantile="0.9"} 0.2',
        "s_sum 1",
        "s_count 4",
        "u 7",
        "",
      ].join("\n"),
    );
    const byName = Object.fromEntries(r.families.map((f) => [f.name, f]));
    expect(Object.keys(byName).sort()).toEqual(["c_total", "g", "h", "s", "u"]);
    expect(byName.c_total).toMatchObject({ type: "counter", help: "Requests.", series: 1 });
    expect(byName.h).toMatchObject({ type: "histogram", series: 4 });
    expect(byName.h?.lines.toString()).toBe(
      'h_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.7\nh_count 2\n',
    );
    expect(byName.s).toMatchObject({ type: "summary", series: 3 });
    expect(byName.u).toMatchObject({ type: "untyped", help: undefined });
    expect(byName.u?.lines.toString()).toBe("u 7\n");
    expect(r.series).toBe(10);
  });

  it("normalises label order, whitespace and trailing commas", () => {
    const r = ok('m { b = "2" , a="1", }   4\n');
    expect(r.families[0]?.lines.toString()).toBe('m{a="1",b="2"} 4\n');
  });

  it("gives the same bytes for a canonical line and any other spelling of it", () => {
    const canonical = ok('m{a="1",b="2"} 3\n').families[0]?.lines.toString();
    expect(canonical).toBe('m{a="1",b="2"} 3\n');
    for (const spelling of [
      'm{b="2",a="1"} 3',
      ' m {a="1", b="2"}  3 ',
      'm{a="1",b="2",} 3',
      'm{a = "1",b="2"}\t3',
    ]) {
      expect(ok(`${spelling}\n`).families[0]?.lines.toString()).toBe(canonical);
    }
    expect(ok("m 1\n").families[0]?.lines.toString()).toBe("m 1\n");
    expect(ok("m  +inf\n").families[0]?.lines.toString()).toBe("m +Inf\n");
  });

  it("keeps label-value escapes, quotes, newlines and UTF-8 intact", () => {
    const r = ok('m{path="C:\\\\dir\\"x\\"\\nnext ☃ 日本"} 1\n');
    expect(r.families[0]?.lines.toString()).toBe('m{path="C:\\\\dir\\"x\\"\\nnext ☃ 日本"} 1\n');
  });

  it("unescapes HELP (\\\\ and \\n)", () => {
    const r = ok("# HELP m a\\\\b\\nc\nm 1\n");
    expect(r.families[0]?.help).toBe("a\\b\nc");
  });

  it("normalises special values", () => {
    const r = ok("a NaN\nb +Inf\nc -Inf\nd inf\ne nan\nf 1e-3\ng .5\n");
    expect(r.families.map((f) => f.lines.toString()).join("")).toBe(
      "a NaN\nb +Inf\nc -Inf\nd +Inf\ne NaN\nf 1e-3\ng .5\n",
    );
    expect(normalizeValue("1_000")).toBeUndefined();
    expect(normalizeValue("0x10")).toBeUndefined();
  });

  it("rejects values and le/quantile labels outside the float64 range (Prometheus fails the whole scrape on them)", () => {
    // strconv.ParseFloat returns ErrRange for these; Prometheus' scrape parser then drops the
    // entire target, so one such file must be rejected, not passed through.
    expect(normalizeValue("1e400")).toBeUndefined();
    expect(normalizeValue("-1.5e309")).toBeUndefined();
    expect(normalizeValue(`1${"0".repeat(400)}`)).toBeUndefined();
    expect(normalizeValue("1e-400")).toBe("1e-400"); // underflow to 0 is not an error in Go
    expect(normalizeValue("1.7976931348623157e308")).toBe("1.7976931348623157e308");
    const e = fail("a 1\nb 1e400\n");
    expect(e).toMatchObject({ reason: "parse_error", line: 2 });
    expect(e.message).toContain("invalid value");
    expect(fail('# TYPE h histogram\nh_bucket{le="1e999"} 1\n').message).toContain('"le"');
  });

  it("drops labels with empty values (Prometheus treats them as absent), so such duplicates are caught", () => {
    // For Prometheus `a{b=""}` IS `a`: served side by side they are one series with two values
    // (a duplicate-timestamp error and an arbitrary winner), which the duplicate check must see.
    expect(ok('a{b="",c="1"} 1\n').families[0]?.lines.toString()).toBe('a{c="1"} 1\n');
    expect(ok('a{c="1",d=""} 1\n').families[0]?.lines.toString()).toBe('a{c="1"} 1\n');
    expect(ok('a{b=""} 1\n').families[0]?.lines.toString()).toBe("a 1\n");
    expect(fail('a 1\na{b=""} 2\n')).toMatchObject({ reason: "duplicate_series", line: 2 });
    expect(fail('a{x="1"} 1\na{x="1",y=""} 2\n')).toMatchObject({ reason: "duplicate_series", line: 2 });
    expect(fail('# TYPE h histogram\nh_bucket{le=""} 1\n').message).toContain('"le"');
  });

  it("allows samples of one family anywhere in the file", () => {
    const r = ok('# TYPE g gauge\ng{a="1"} 1\nother 2\ng{a="2"} 3\n');
    expect(r.families.find((f) => f.name === "g")?.series).toBe(2);
  });

  it("rejects sample timestamps with their own reason and line", () => {
    expect(fail("a 1\nb 2 1700000000000\n")).toEqual({
      reason: "timestamp",
      line: 2,
      message: expect.stringContaining("timestamp"),
    });
  });

  it.each([
    ["invalid metric name", "1abc 1\n", "invalid metric name"],
    ["missing value", "abc\n", "missing value"],
    ["invalid value", "abc one\n", "invalid value"],
    ["bad escape in label value", 'a{x="\\t"} 1\n', "invalid escape"],
    ["unterminated label value", 'a{x="y} 1\n', "unterminated"],
    ["missing =", 'a{x "y"} 1\n', 'expected "="'],
    ["duplicate label", 'a{x="1",x="2"} 1\n', "duplicate label"],
    ["reserved __name__", 'a{__name__="b"} 1\n', "reserved"],
    ["unknown type", "# TYPE a gauges\n", "unknown metric type"],
    ["second TYPE", "# TYPE a gauge\n# TYPE a gauge\n", "second TYPE"],
    ["second HELP", "# HELP a x\n# HELP a y\n", "second HELP"],
    ["TYPE after samples", "a 1\n# TYPE a gauge\n", "after its samples"],
    ["histogram bucket without le", "# TYPE h histogram\nh_bucket 1\n", '"le"'],
    ["histogram bucket with bad le", '# TYPE h histogram\nh_bucket{le="x"} 1\n', "invalid"],
    ["histogram sample without suffix", "# TYPE h histogram\nh 1\n", "_bucket"],
    ["summary without quantile", "# TYPE s summary\ns 1\n", "quantile"],
    ["CRLF", "a 1\r\n", "carriage return"],
    ["garbage after value", "a 1 x\n", "unexpected text"],
    ["bad HELP escape", "# HELP a \\t\n", "escape"],
  ])("rejects %s", (_name, text, message) => {
    const e = fail(text);
    expect(e.reason).toBe("parse_error");
    expect(e.message).toContain(message);
    expect(e.line).toBeGreaterThan(0);
  });

  it("reports the line number of the first error", () => {
    expect(fail("# ok\na 1\nb 2\nc{ 3\n").line).toBe(4);
  });

  it("rejects duplicate series regardless of label order", () => {
    const e = fail('a{x="1",y="2"} 1\na{y="2",x="1"} 2\n');
    expect(e).toMatchObject({ reason: "duplicate_series", line: 2 });
    // Canonical and re-ordered spellings of a series with UTF-8 label values are the same series.
    expect(fail('a{x="☃",y="日本"} 1\na{y="日本", x="☃"} 2\n')).toMatchObject({
      reason: "duplicate_series",
      message: 'duplicate series a{x="☃",y="日本"}',
    });
    expect(ok('a{x="☃"} 1\na{x="☄"} 2\n').series).toBe(2);
  });

  it("rejects families whose names collide in either output format", () => {
    expect(fail('# TYPE h_count gauge\nh_count 1\n# TYPE h histogram\nh_bucket{le="1"} 1\n')).toMatchObject({
      reason: "name_collision",
      line: 3,
    });
    expect(fail("# TYPE x gauge\nx 1\n# TYPE x_total counter\nx_total 2\n")).toMatchObject({
      reason: "name_collision",
    });
    expect(fail('# TYPE h_sum gauge\nh_sum 1\n# TYPE h histogram\nh_bucket{le="1"} 1\n')).toMatchObject({
      reason: "name_collision",
    });
  });

  it("stops at the series cap with the configured reason", () => {
    const text = Array.from({ length: 50 }, (_, i) => `m{i="${i}"} ${i}`).join("\n");
    expect(parseText(text, { maxSeries: 10 })).toMatchObject({
      ok: false,
      error: { reason: "too_many_series", line: 11 },
    });
    expect(parseText(text, { maxSeries: 10, seriesLimitReason: "total_series_cap" })).toMatchObject({
      ok: false,
      error: { reason: "total_series_cap" },
    });
    expect(parseText(text, { maxSeries: 50 }).ok).toBe(true);
  });

  it("finds duplicate label names in any order, and sorts labels of any count (issue 15)", () => {
    expect(fail('m{b="1",a="2",b="3"} 1\n')).toMatchObject({
      reason: "parse_error",
      message: 'duplicate label name "b"',
    });
    expect(fail('m{a="1",a="2"} 1\n')).toMatchObject({ message: 'duplicate label name "a"' });
    const labels = Array.from({ length: 5000 }, (_, i) => `l${String(4999 - i).padStart(4, "0")}="${i}"`);
    const r = ok(`m{${labels.join(",")}} 1\n`);
    const line = r.families[0]?.lines.toString("utf8") ?? "";
    expect(line.startsWith('m{l0000="4999",l0001="4998",')).toBe(true);
    expect(line.endsWith(',l4999="0"} 1\n')).toBe(true);
  });

  it("rejects a series with more labels than maxLabels (too_many_labels)", () => {
    expect(parseText('m{a="1",b="2",c="3"} 1\n', { maxSeries: 10, maxLabels: 2 })).toMatchObject({
      ok: false,
      error: { reason: "too_many_labels", line: 1 },
    });
    expect(parseText('m{a="1",b="2"} 1\n', { maxSeries: 10, maxLabels: 2 }).ok).toBe(true);
  });

  it("rejects a file naming more families than maxFamilies, HELP/TYPE-only ones included (too_many_families)", () => {
    const typeOnly = Array.from({ length: 11 }, (_, i) => `# TYPE f${i} gauge`).join("\n");
    expect(parseText(typeOnly, { maxSeries: 10, maxFamilies: 10 })).toMatchObject({
      ok: false,
      error: { reason: "too_many_families", line: 11 },
    });
    const ten = Array.from({ length: 10 }, (_, i) => `f${i} ${i}`).join("\n");
    expect(parseText(ten, { maxSeries: 10, maxFamilies: 10 }).ok).toBe(true);
  });

  it("keeps each family's lines together when the file interleaves families", () => {
    const r = ok('# TYPE a gauge\n# TYPE b gauge\na{x="1"} 1\nb 2\na{x="2"} 3\nb{y="1"} 4\na{x="3"} 5\n');
    expect(r.families.map((f) => [f.name, f.series, f.lines.toString("utf8")])).toEqual([
      ["a", 3, 'a{x="1"} 1\na{x="2"} 3\na{x="3"} 5\n'],
      ["b", 2, 'b 2\nb{y="1"} 4\n'],
    ]);
  });

  it("parseTextAsync gives the event loop turns and returns what parseText returns", async () => {
    const text = Array.from({ length: 5000 }, (_, i) => `m{i="${i}",a="x"} ${i}`).join("\n");
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    const r = await parseTextAsync(text, { maxSeries: 100_000 }, 0);
    clearInterval(tick);
    expect(turns).toBeGreaterThan(0);
    const show = (x: typeof r) =>
      x.ok ? x.families.map((f) => [f.name, f.series, f.lines.toString("utf8")]) : x;
    expect(show(r)).toEqual(show(parseText(text, { maxSeries: 100_000 })));
    expect(r.ok && r.series).toBe(5000);
  });

  it("drops families announced without samples", () => {
    expect(ok("# HELP a x\n# TYPE a gauge\n").families).toEqual([]);
  });

  it("never throws on binary garbage", () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(Array.from({ length: 300 }, () => rand() & 0xff));
      const text = decodeUtf8(bytes) ?? bytes.toString("latin1");
      expect(() => parse(text)).not.toThrow();
    }
    expect(decodeUtf8(Buffer.from([0xff, 0xfe, 0x00]))).toBeUndefined();
    expect(decodeUtf8(Buffer.from("ok ☃", "utf8"))).toBe("ok ☃");
  });
});
