// Unit tests of the renderers (text 0.0.4 and OpenMetrics 1.0), content negotiation, the two-part
// gzip and the conversion of the exporter's own registry.
import { gunzipSync } from "node:zlib";
import { Counter, Gauge, Histogram, Registry, Summary } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Family } from "../src/families.js";
import { gzipPrefix, gzipWithPrefix } from "../src/gzip.js";
import { acceptsGzip, negotiateFormat } from "../src/negotiate.js";
import { parseText } from "../src/parse.js";
import {
  escapeHelp,
  type Format,
  OPENMETRICS_EOF,
  renderFamilies as renderBuffer,
  renderFamily,
} from "../src/render.js";

const renderFamilies = (families: Family[], format: Format) =>
  renderBuffer(families, format).toString("utf8");

import { ownFamilies } from "../src/self-metrics.js";

const SOURCE = [
  "# HELP req_total Requests with \\\\ and \\n in help.",
  "# TYPE req_total counter",
  'req_total{code="200",path="/a\\"b\\\\c\\nd ☃"} 10',
  "# TYPE hits counter",
  'hits{x="1"} 2',
  "hits 3",
  "# HELP temp Temperature.",
  "# TYPE temp gauge",
  "temp NaN",
  "# TYPE lat histogram",
  'lat_bucket{le="1"} 1',
  'lat_bucket{le="+Inf"} 2',
  "lat_sum +Inf",
  "lat_count 2",
  "# TYPE q summary",
  'q{quantile="0.5"} -Inf',
  "q_sum 1",
  "q_count 1",
  "raw 1",
  "",
].join("\n");

function families(text: string): Family[] {
  const r = parseText(text, { maxSeries: 1000 });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.families;
}

describe("text format 0.0.4", () => {
  it("round-trips: parse → render → parse gives the same families", () => {
    const first = families(SOURCE);
    const rendered = renderFamilies(first, "text");
    expect(families(rendered)).toEqual(first);
    // And rendering is a fixed point.
    expect(renderFamilies(families(rendered), "text")).toBe(rendered);
  });

  it("renders HELP only when there was one and TYPE always", () => {
    const out = renderFamilies(families(SOURCE), "text");
    expect(out).toContain("# HELP req_total Requests with \\\\ and \\n in help.\n# TYPE req_total counter\n");
    expect(out).toContain("# TYPE raw untyped\nraw 1\n");
    expect(out).not.toContain("# HELP raw");
    expect(out).toContain("# TYPE hits counter\n");
  });
});

describe("OpenMetrics 1.0", () => {
  const out = renderFamilies(families(SOURCE), "openmetrics") + OPENMETRICS_EOF;

  it("names counter families without _total and their samples with it", () => {
    expect(out).toContain("# HELP req Requests with \\\\ and \\n in help.\n# TYPE req counter\nreq_total{");
    expect(out).toContain('# TYPE hits counter\nhits_total{x="1"} 2\nhits_total 3\n');
    expect(out).not.toMatch(/^# TYPE \w+_total /m);
  });

  it("maps untyped to unknown, keeps histograms and summaries, ends with # EOF", () => {
    expect(out).toContain("# TYPE raw unknown\nraw 1\n");
    expect(out).toContain('# TYPE lat histogram\nlat_bucket{le="1"} 1\n');
    expect(out).toContain('# TYPE q summary\nq{quantile="0.5"} -Inf\n');
    expect(out).toContain("temp NaN\n");
    expect(out.endsWith("\n# EOF\n")).toBe(true);
    expect(out.match(/# EOF/g)).toHaveLength(1);
  });

  it("escapes double quotes in HELP (text format does not)", () => {
    expect(escapeHelp('say "hi"\\', "openmetrics")).toBe('say \\"hi\\"\\\\');
    expect(escapeHelp('say "hi"\\', "text")).toBe('say "hi"\\\\');
    const f: Family = { name: "x", type: "gauge", help: 'a "b"', lines: Buffer.from("x 1\n"), series: 1 };
    expect(renderFamily(f, "openmetrics").toString()).toBe('# HELP x a \\"b\\"\n# TYPE x gauge\nx 1\n');
  });

  it("keeps label values byte for byte", () => {
    expect(out).toContain('req_total{code="200",path="/a\\"b\\\\c\\nd ☃"} 10\n');
  });
});

describe("negotiation", () => {
  it("serves text unless OpenMetrics is asked for at least as strongly", () => {
    expect(negotiateFormat(undefined)).toBe("text");
    expect(negotiateFormat("*/*")).toBe("text");
    expect(negotiateFormat("text/plain;version=0.0.4")).toBe("text");
    expect(
      negotiateFormat(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      ),
    ).toBe("openmetrics");
    expect(negotiateFormat("application/openmetrics-text; version=1.0.0; charset=utf-8")).toBe("openmetrics");
    // Prometheus 3's default scrape_protocols.
    expect(
      negotiateFormat(
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
      ),
    ).toBe("openmetrics");
    expect(negotiateFormat("text/plain;version=0.0.4;q=0.3,*/*;q=0.2")).toBe("text");
    expect(negotiateFormat("application/openmetrics-text;version=1.0.0;q=0.2,text/plain;q=0.9")).toBe("text");
    expect(negotiateFormat("application/openmetrics-text;version=2.0.0")).toBe("text");
    expect(negotiateFormat("application/openmetrics-text;version=1.0.0;q=0")).toBe("text");
  });

  it("detects gzip in Accept-Encoding", () => {
    expect(acceptsGzip(undefined)).toBe(false);
    expect(acceptsGzip("gzip")).toBe(true);
    expect(acceptsGzip("br, gzip;q=0.5")).toBe(true);
    expect(acceptsGzip("gzip;q=0")).toBe(false);
    expect(acceptsGzip("identity")).toBe(false);
    expect(acceptsGzip("*")).toBe(true);
  });
});

describe("two-part gzip", () => {
  it("produces one gzip member that decodes to prefix + tail", () => {
    const prefix = Buffer.from(renderFamilies(families(SOURCE), "text").repeat(200));
    const cached = gzipPrefix(prefix);
    for (const tail of [Buffer.alloc(0), Buffer.from("own 1\n"), Buffer.from("x".repeat(100_000))]) {
      const gz = gzipWithPrefix(cached, tail);
      expect(gunzipSync(gz).equals(Buffer.concat([prefix, tail]))).toBe(true);
      expect(gz.length).toBeLessThan(prefix.length + tail.length);
    }
    expect(gunzipSync(gzipWithPrefix(gzipPrefix(Buffer.alloc(0)), Buffer.from("a"))).toString()).toBe("a");
  });

  it("compresses a list of pieces (small and larger than a batch) as if concatenated", () => {
    const pieces = [
      Buffer.from("# TYPE a gauge\n"),
      Buffer.from("a 1\n".repeat(200_000)),
      Buffer.alloc(0),
      ...Array.from({ length: 300 }, (_, i) => Buffer.from(`b{i="${i}"} ${i}\n`.repeat(100))),
    ];
    const gz = gzipWithPrefix(gzipPrefix(pieces), Buffer.from("# EOF\n"));
    expect(gunzipSync(gz).equals(Buffer.concat([...pieces, Buffer.from("# EOF\n")]))).toBe(true);
  });
});

describe("own registry → families", () => {
  it("renders prom-client metrics of every type through the same renderer", async () => {
    const registry = new Registry();
    const registers = [registry];
    new Counter({ name: "c_total", help: "C.", labelNames: ["v"], registers }).inc({ v: 'a"b\\c\nd' }, 2);
    new Gauge({ name: "g", help: "G.", registers }).set(Number.NaN);
    new Histogram({ name: "h_seconds", help: "H.", buckets: [1], registers }).observe(0.5);
    new Summary({ name: "s", help: "S.", percentiles: [0.5], registers }).observe(1);
    const fams = await ownFamilies(registry);
    const text = renderFamilies(fams, "text");
    expect(text).toContain('# TYPE c_total counter\nc_total{v="a\\"b\\\\c\\nd"} 2\n');
    expect(text).toContain("g NaN\n");
    expect(text).toContain(
      'h_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 1\nh_seconds_sum 0.5\nh_seconds_count 1\n',
    );
    expect(text).toContain('s{quantile="0.5"} 1\n');
    // What we render for ourselves must pass our own validator.
    expect(
      families(text)
        .map((f) => f.name)
        .sort(),
    ).toEqual(["c_total", "g", "h_seconds", "s"]);
    expect(renderFamilies(fams, "openmetrics")).toContain("# TYPE c counter\nc_total{");
  });
});
