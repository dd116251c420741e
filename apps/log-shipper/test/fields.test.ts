// LABEL_FIELDS / METADATA_FIELDS (issue 13 item 4): fields of JSON lines as bounded Loki labels
// and as structured metadata — Loki 3 structured metadata (protobuf and JSON pushes), OTLP record
// attributes and the record's own trace_id / span_id, Elasticsearch ECS fields. The line itself
// is never changed. Table-driven unit tests of the field reader and the settings, then the BUILT
// program (dist/main.js) on real files against the fake receivers.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@sidecar/shared";
import { Registry } from "prom-client";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { FieldExtractor, TopLevelScanner } from "../src/processing/fields.js";
import { appendEntry, forEachEntry, GrowableBuffer } from "../src/sinks/loki/encode-protobuf.js";
import { LokiSink } from "../src/sinks/loki/loki-sink.js";
import { tempDirs } from "./support/app-harness.js";
import { type FakeElasticsearch, startFakeElasticsearch } from "./support/fake-elasticsearch.js";
import { decodeJsonPush, decodeProtobufPush, type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { type FakeOtlp, startFakeOtlp } from "./support/fake-otlp.js";
import { silentLogger } from "./support/logger.js";
import { assertBuilt, type Shipper, shipperEnv, shipperTracker } from "./support/process.js";

describe("reading top-level fields of a JSON line", () => {
  const cases: { name: string; line: string; want: (string | undefined)[] }[] = [
    { name: "strings", line: '{"route":"/a","trace_id":"t1"}', want: ["/a", "t1"] },
    { name: "number and boolean as written", line: '{"route":200,"trace_id":true}', want: ["200", "true"] },
    { name: "negative and exponent numbers", line: '{"route":-1.5e3}', want: ["-1.5e3", undefined] },
    {
      name: "null, object and array are not taken",
      line: '{"route":null,"trace_id":{"a":1}}',
      want: [undefined, undefined],
    },
    { name: "array value", line: '{"route":["x"],"trace_id":"t"}', want: [undefined, "t"] },
    {
      name: "nested keys do not count",
      line: '{"req":{"route":"/in","trace_id":"n"},"msg":"x"}',
      want: [undefined, undefined],
    },
    {
      name: "after a nested object",
      line: '{"req":{"route":"/in"},"route":"/top"}',
      want: ["/top", undefined],
    },
    {
      name: "key inside a string does not count",
      line: '{"msg":"\\"route\\":\\"/fake\\"","route":"/r"}',
      want: ["/r", undefined],
    },
    { name: "escaped value is unescaped", line: '{"route":"a\\"b\\u00e9"}', want: ['a"bé', undefined] },
    { name: "spaces around tokens", line: ' { "route" : "/s" , "trace_id" : "t" } ', want: ["/s", "t"] },
    { name: "first occurrence wins", line: '{"route":"1","route":"2"}', want: ["1", undefined] },
    { name: "UTF-8 value", line: '{"route":"/ü/日本"}', want: ["/ü/日本", undefined] },
    { name: "not JSON", line: "route=/a trace_id=t", want: [undefined, undefined] },
    { name: "JSON array line", line: '[{"route":"/a"}]', want: [undefined, undefined] },
    { name: "cut short", line: '{"trace_id":"t","route":"/a', want: [undefined, "t"] },
    { name: "empty object", line: "{}", want: [undefined, undefined] },
    { name: "dotted key matched whole", line: '{"trace.id":"x","route":"/d"}', want: ["/d", undefined] },
  ];
  const scanner = new TopLevelScanner(["route", "trace_id"]);
  for (const c of cases) {
    it(c.name, () => {
      const buf = Buffer.from(`xx${c.line}yy`);
      scanner.scan(buf, 2, buf.length - 2);
      expect([scanner.value(0), scanner.value(1)]).toEqual(c.want);
    });
  }

  it("agrees with JSON.parse on every object built from tricky members (first occurrence wins)", () => {
    const values = [
      '"a"',
      '"a\\"b"',
      '"\\u00e9\\\\"',
      '""',
      "1",
      "-2.5e3",
      "true",
      "false",
      "null",
      '{"route":"x"}',
      '["route",{"a":"}"}]',
      '"}"',
      '"{\\"route\\":1"',
      '"\\\\"',
    ];
    const keys = ["route", "other", "rout", "routes"];
    const members: [string, string][] = [];
    for (const k of keys) for (const v of values) members.push([k, v]);
    const scanner = new TopLevelScanner(["route"]);
    let checked = 0;
    for (const a of members) {
      for (const b of members) {
        for (const space of ["", " \n\t"]) {
          const line = `{${space}"${a[0]}":${space}${a[1]}${space},"${b[0]}":${b[1]}${space}}`;
          JSON.parse(line); // every line is valid JSON
          const first = [a, b].find(([k]) => k === "route");
          const v = first === undefined ? undefined : (JSON.parse(first[1]) as unknown);
          const want =
            typeof v === "string"
              ? v
              : typeof v === "number" || typeof v === "boolean"
                ? first?.[1]
                : undefined;
          const buf = Buffer.from(line);
          scanner.scan(buf, 0, buf.length);
          expect(scanner.value(0), line).toBe(want);
          checked++;
        }
      }
    }
    expect(checked).toBe(members.length * members.length * 2);
  });

  it("a key with dots is a key of its own", () => {
    const s = new TopLevelScanner(["trace.id"]);
    const buf = Buffer.from('{"trace":{"id":"nested"},"trace.id":"whole"}');
    s.scan(buf, 0, buf.length);
    expect(s.value(0)).toBe("whole");
  });
});

describe("labels and metadata of a line", () => {
  const extractor = (maxValues = 2, maxCombinations = 200) => {
    const registry = new Registry();
    return {
      registry,
      fx: new FieldExtractor({
        labelFields: ["route", "http.method"],
        metadataFields: ["trace_id", "user"],
        maxValues,
        maxCombinations,
        registry,
        logger: silentLogger(),
      }),
    };
  };
  const metadataOf = (wire: Uint8Array | undefined) => {
    if (wire === undefined) return undefined;
    // Wrapped as one entry (timestamp + line + metadata) and read back as the encoders do.
    const entry = Buffer.concat([Buffer.from([0x0a, 0x00, 0x12, 0x00]), wire]);
    let out: [string, string][] | undefined;
    forEachEntry(Buffer.concat([Buffer.from([0x12, entry.length]), entry]), (_s, _n, _l, m) => {
      out = m;
    });
    return out;
  };

  it("promotes label fields (sanitized names), gathers metadata, caps distinct values per field", async () => {
    const { fx, registry } = extractor(2);
    const rows: { line: string; labels: [string, string][]; metadata?: [string, string][] }[] = [
      {
        line: '{"route":"/a","http.method":"GET","trace_id":"t1"}',
        labels: [
          ["route", "/a"],
          ["http_method", "GET"],
        ],
        metadata: [["trace_id", "t1"]],
      },
      { line: '{"route":"/b","user":"u"}', labels: [["route", "/b"]], metadata: [["user", "u"]] },
      // A third route: over the cap of 2, not a label; the other field still is.
      { line: '{"route":"/c","http.method":"PUT"}', labels: [["http_method", "PUT"]] },
      // A value already seen stays a label.
      { line: '{"route":"/a"}', labels: [["route", "/a"]] },
      { line: '{"route":""}', labels: [] },
    ];
    for (const r of rows) {
      const buf = Buffer.from(r.line);
      const f = fx.extract(buf, 0, buf.length);
      if (r.labels.length === 0 && r.metadata === undefined) {
        expect(f, r.line).toBeUndefined();
        continue;
      }
      expect(f?.labels, r.line).toEqual(r.labels);
      expect(metadataOf(f?.metadataWire), r.line).toEqual(r.metadata);
    }
    const text = await registry.metrics();
    expect(text).toContain('log_shipper_label_values_over_limit_total{field="route",limit="values"} 1');
    expect(text).toContain('log_shipper_label_values{field="route"} 2');
    expect(text).toContain('log_shipper_label_values{field="http.method"} 2');
    // Distinct lines with the same label values share a stream key; different values do not.
    const k = (line: string) => fx.extract(Buffer.from(line), 0, line.length)?.labelKey;
    expect(k('{"route":"/a","x":1}')).toBe(k('{"route":"/a","x":2}'));
    expect(k('{"route":"/a"}')).not.toBe(k('{"route":"/b"}'));
    expect(k('{"route":"/a"}')).not.toBe(k('{"http.method":"/a"}'));
  });

  it("a new combination of values past LABEL_FIELDS_MAX_COMBINATIONS gets none of its labels (counted per field), known ones keep theirs", async () => {
    const { fx, registry } = extractor(50, 2);
    const labelsOf = (line: string) => fx.extract(Buffer.from(line), 0, line.length)?.labels;
    expect(labelsOf('{"route":"/a","http.method":"GET"}')).toEqual([
      ["route", "/a"],
      ["http_method", "GET"],
    ]);
    expect(labelsOf('{"route":"/b","http.method":"GET"}')).toEqual([
      ["route", "/b"],
      ["http_method", "GET"],
    ]);
    // Each value is known, but together they would be a third stream.
    expect(labelsOf('{"route":"/a","http.method":"POST","trace_id":"t"}')).toEqual([]);
    const refused = '{"route":"/b","http.method":"PUT"}';
    expect(fx.extract(Buffer.from(refused), 0, refused.length)).toBeUndefined();
    // One field alone is a combination of its own.
    expect(labelsOf('{"route":"/c"}')).toBeUndefined();
    expect(labelsOf('{"http.method":"GET","route":"/a"}')).toEqual([
      ["route", "/a"],
      ["http_method", "GET"],
    ]);
    const text = await registry.metrics();
    expect(text).toContain('log_shipper_label_values_over_limit_total{field="route",limit="combinations"} 3');
    expect(text).toContain(
      'log_shipper_label_values_over_limit_total{field="http.method",limit="combinations"} 2',
    );
  });

  it("metadata values are copied as valid UTF-8: escapes decoded, invalid bytes replaced", () => {
    const { fx } = extractor();
    const buf = Buffer.concat([
      Buffer.from('{"trace_id":"a\\u00e9\\"b","user":"'),
      Buffer.from([0x75, 0xff, 0x76]),
      Buffer.from('"}'),
    ]);
    const f = fx.extract(buf, 0, buf.length);
    expect(metadataOf(f?.metadataWire)).toEqual([
      ["trace_id", 'aé"b'],
      ["user", "u\ufffdv"],
    ]);
  });

  it("a value too long for a label is not promoted (counted), and the line still gets its metadata", async () => {
    const { fx, registry } = extractor(50);
    const line = `{"route":"${"r".repeat(2000)}","trace_id":"t"}`;
    const f = fx.extract(Buffer.from(line), 0, line.length);
    expect(f?.labels).toEqual([]);
    expect(f?.labelKey).toBe("");
    expect(metadataOf(f?.metadataWire)).toEqual([["trace_id", "t"]]);
    expect(await registry.metrics()).toContain(
      'log_shipper_label_values_over_limit_total{field="route",limit="length"} 1',
    );
  });
});

describe("a rejected Loki batch split in halves keeps each entry's structured metadata", () => {
  for (const encoding of ["protobuf", "json"] as const) {
    it(encoding, () => {
      const registry = new Registry();
      const fx = new FieldExtractor({
        labelFields: [],
        metadataFields: ["trace_id"],
        maxValues: 50,
        maxCombinations: 200,
        registry,
        logger: silentLogger(),
      });
      const entries = new GrowableBuffer(256);
      const lines = ['{"trace_id":"t1","n":1}', '{"n":2}', '{"trace_id":"t3","n":3}'];
      for (const [i, l] of lines.entries()) {
        const b = Buffer.from(l);
        appendEntry(entries, 1_700_000_000 + i, 0, b, fx.extract(b, 0, b.length)?.metadataWire);
      }
      const sink = new LokiSink(
        { send: async () => ({ kind: "success", status: 204 }), close: async () => {} },
        encoding,
        "gzip",
      );
      const body = sink.encode([
        { labels: { job: "x" }, labelBytes: Buffer.from('{job="x"}'), entries: entries.view(), count: 3 },
      ]);
      const halves = sink.split(body);
      expect(halves).toBeDefined();
      const decode = (b: { body: Buffer; contentEncoding?: string }) =>
        encoding === "json" ? decodeJsonPush(b.body, b.contentEncoding) : decodeProtobufPush(b.body);
      const got = (halves ?? []).flatMap((h) => decode(h.body)).map((e) => [e.line, e.metadata]);
      expect(got).toEqual([
        [lines[0], { trace_id: "t1" }],
        [lines[1], undefined],
        [lines[2], { trace_id: "t3" }],
      ]);
    });
  }
});

describe("LABEL_FIELDS / METADATA_FIELDS settings", () => {
  const base = { LOG_PATHS: "/tmp/x/*.log" };
  const bad: { env: Record<string, string>; name: string; says: string }[] = [
    { env: { LABEL_FIELDS: "route,level" }, name: "LABEL_FIELDS", says: "level" },
    { env: { LABEL_FIELDS: "filename" }, name: "LABEL_FIELDS", says: "filename" },
    { env: { LABEL_FIELDS: "job" }, name: "LABEL_FIELDS", says: "job" }, // STATIC_LABELS' default
    { env: { LABEL_FIELDS: "pod" }, name: "LABEL_FIELDS", says: "pod" },
    { env: { LABEL_FIELDS: "a.b,a_b" }, name: "LABEL_FIELDS", says: "twice" },
    { env: { LABEL_FIELDS: "__name__" }, name: "LABEL_FIELDS", says: "reserved" },
    { env: { LABEL_FIELDS: "a,b,c,d,e,f,g,h,i" }, name: "LABEL_FIELDS", says: "at most 8" },
    { env: { METADATA_FIELDS: "trace_id,node" }, name: "METADATA_FIELDS", says: "node" },
    { env: { LABEL_FIELDS: "route", METADATA_FIELDS: "route" }, name: "METADATA_FIELDS", says: "both" },
    {
      env: { LABEL_FIELDS_MAX_VALUES: "0" },
      name: "LABEL_FIELDS_MAX_VALUES",
      says: "LABEL_FIELDS_MAX_VALUES",
    },
    {
      env: { LABEL_FIELDS_MAX_COMBINATIONS: "0" },
      name: "LABEL_FIELDS_MAX_COMBINATIONS",
      says: "LABEL_FIELDS_MAX_COMBINATIONS",
    },
  ];
  for (const c of bad) {
    it(`refuses ${JSON.stringify(c.env)} naming ${c.name}`, () => {
      let err: unknown;
      try {
        loadConfig({ ...base, ...c.env });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(`${c.name}=`);
      expect((err as Error).message).toContain(c.says);
    });
  }

  it("accepts the usual settings", () => {
    const cfg = loadConfig({
      ...base,
      LABEL_FIELDS: " route , http.method",
      METADATA_FIELDS: "trace_id,span_id",
      STATIC_LABELS: "app=x",
    });
    expect(cfg.labelFields).toEqual(["route", "http.method"]);
    expect(cfg.metadataFields).toEqual(["trace_id", "span_id"]);
    expect(cfg.labelFieldsMaxValues).toBe(50);
    expect(cfg.labelFieldsMaxCombinations).toBe(200);
  });
});

// --- the built program -----------------------------------------------------------------------------

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
/** Fixed lines: routes /a, /b, /c (cap 2: /c is not a label), ids valid and not, a plain line. */
const LINES = [
  `{"level":30,"time":1700000000001,"route":"/a","trace_id":"${TRACE}","span_id":"${SPAN}","msg":"one"}`,
  `{"level":30,"time":1700000000002,"route":"/b","trace_id":"not-hex","msg":"two"}`,
  `{"level":40,"time":1700000000003,"route":"/c","span_id":"${SPAN}","msg":"three"}`,
  "plain text line",
  `{"level":30,"time":1700000000004,"route":"/a","msg":"four"}`,
];
const FIELDS_ENV = {
  LABEL_FIELDS: "route",
  LABEL_FIELDS_MAX_VALUES: "2",
  METADATA_FIELDS: "trace_id,span_id",
};
const started = (l: Record<string, unknown>) => l.msg === "log shipper started";

/** Items sorted by the position of their line in LINES (each line is distinct). */
function inFileOrder<T>(items: readonly T[], line: (t: T) => string): T[] {
  return [...items].sort((a, b) => LINES.indexOf(line(a)) - LINES.indexOf(line(b)));
}

async function metricsOf(s: Shipper): Promise<string> {
  await s.waitForLog(started, "start");
  const address = String(s.logs.find(started)?.address ?? "");
  const res = await fetch(`http://127.0.0.1:${address.split(":").pop()}/metrics`);
  return res.text();
}

describe("dist/main.js with LABEL_FIELDS and METADATA_FIELDS", () => {
  const shippers = shipperTracker();
  let loki: FakeLoki | undefined;
  let otlp: FakeOtlp | undefined;
  let es: FakeElasticsearch | undefined;
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    shippers.killAll();
    await loki?.close();
    await otlp?.close();
    await es?.close();
    loki = otlp = es = undefined;
  });

  for (const encoding of ["protobuf", "json"] as const) {
    it(`Loki (${encoding}): a label per route up to the cap, structured metadata per entry, lines unchanged`, async () => {
      const dirs = tempDirs("fields-loki-");
      loki = await startFakeLoki();
      writeFileSync(join(dirs.logs, "app.log"), `${LINES.join("\n")}\n`);
      const s = shippers.spawn({ ...shipperEnv(dirs, loki.url), ...FIELDS_ENV, LOKI_ENCODING: encoding });
      await loki.waitForEntries(LINES.length, 30_000);
      // Entries arrive stream by stream: compared in the file's order.
      const ordered = inFileOrder(loki.entries, (e) => e.line);
      const got = ordered.map((e) => ({
        route: e.labels.route,
        metadata: e.metadata,
        line: e.line,
      }));
      expect(got).toEqual([
        { route: "/a", metadata: { trace_id: TRACE, span_id: SPAN }, line: LINES[0] },
        { route: "/b", metadata: { trace_id: "not-hex" }, line: LINES[1] },
        { route: undefined, metadata: { span_id: SPAN }, line: LINES[2] },
        { route: undefined, metadata: undefined, line: LINES[3] },
        { route: "/a", metadata: undefined, line: LINES[4] },
      ]);
      // The shipper's own labels are all there beside the promoted one.
      expect(ordered[0]?.labels).toMatchObject({ job: "sample-app", level: "info", route: "/a" });
      expect(ordered[2]?.labels.level).toBe("warn");
      const metrics = await metricsOf(s);
      expect(metrics).toContain('log_shipper_label_values_over_limit_total{field="route",limit="values"} 1');
      await s.waitForLog((l) => l.event === "label_values_over_limit" && l.field === "route", "cap warning");
      s.child.kill("SIGTERM");
      expect((await s.exited).code).toBe(0);
    });
  }

  for (const encoding of ["protobuf", "json"] as const) {
    it(`OTLP (${encoding}): valid ids as the record's trace_id / span_id, the rest and the promoted label as attributes`, async () => {
      const dirs = tempDirs("fields-otlp-");
      otlp = await startFakeOtlp();
      writeFileSync(join(dirs.logs, "app.log"), `${LINES.join("\n")}\n`);
      const s = shippers.spawn({
        ...shipperEnv(dirs),
        ...FIELDS_ENV,
        OTLP_ENDPOINT: otlp.url,
        OTLP_ENCODING: encoding,
      });
      await otlp.waitForRecords(LINES.length, 30_000);
      const got = inFileOrder(otlp.records, (r) => r.body).map((r) => ({
        body: r.body,
        traceId: r.traceId,
        spanId: r.spanId,
        route: r.attributes.route,
        traceAttr: r.attributes.trace_id,
      }));
      expect(got).toEqual([
        { body: LINES[0], traceId: TRACE, spanId: SPAN, route: "/a", traceAttr: undefined },
        { body: LINES[1], traceId: undefined, spanId: undefined, route: "/b", traceAttr: "not-hex" },
        { body: LINES[2], traceId: undefined, spanId: SPAN, route: undefined, traceAttr: undefined },
        { body: LINES[3], traceId: undefined, spanId: undefined, route: undefined, traceAttr: undefined },
        { body: LINES[4], traceId: undefined, spanId: undefined, route: "/a", traceAttr: undefined },
      ]);
      expect(otlp.records[0]?.attributes["log.file.name"]).toBe("app.log");
      s.child.kill("SIGTERM");
      expect((await s.exited).code).toBe(0);
    });
  }

  it("Elasticsearch: trace.id / span.id (ECS), the promoted label under labels", async () => {
    const dirs = tempDirs("fields-es-");
    es = await startFakeElasticsearch();
    writeFileSync(join(dirs.logs, "app.log"), `${LINES.join("\n")}\n`);
    const s = shippers.spawn({ ...shipperEnv(dirs), ...FIELDS_ENV, ES_ENDPOINT: es.url });
    await es.waitForDocs(LINES.length, 30_000);
    const byMessage = new Map(es.docs.map((d) => [String(d.source.message), d.source]));
    expect(byMessage.get(LINES[0] as string)).toMatchObject({
      trace: { id: TRACE },
      span: { id: SPAN },
      labels: { job: "sample-app", route: "/a" },
      log: { level: "info" },
    });
    // Any trace_id value is ECS trace.id (Elasticsearch has no binary id to validate against).
    expect(byMessage.get(LINES[1] as string)).toMatchObject({
      trace: { id: "not-hex" },
      labels: { route: "/b" },
    });
    const third = byMessage.get(LINES[2] as string);
    expect(third).toMatchObject({ span: { id: SPAN }, labels: { job: "sample-app" } });
    expect((third as Record<string, unknown>).labels).not.toHaveProperty("route");
    const plain = byMessage.get(LINES[3] as string) as Record<string, unknown>;
    expect(plain.trace).toBeUndefined();
    expect(plain.span).toBeUndefined();
    expect(plain.labels).toEqual({ job: "sample-app" });
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  it("Loki + OTLP + Elasticsearch at once: each gets every line's labels and metadata", async () => {
    const dirs = tempDirs("fields-fanout-");
    loki = await startFakeLoki();
    otlp = await startFakeOtlp();
    es = await startFakeElasticsearch();
    // Many lines, several routes and ids: the fields of one line must never leak into another's.
    const lines: string[] = [];
    for (let i = 0; i < 600; i++) {
      const id = (i + 1).toString(16).padStart(32, "0");
      lines.push(`{"level":30,"time":${1700000000000 + i},"route":"/r${i % 3}","trace_id":"${id}","n":${i}}`);
    }
    writeFileSync(join(dirs.logs, "app.log"), `${lines.join("\n")}\n`);
    const s = shippers.spawn({
      ...shipperEnv(dirs, loki.url),
      ...FIELDS_ENV,
      LABEL_FIELDS_MAX_VALUES: "50",
      OTLP_ENDPOINT: otlp.url,
      ES_ENDPOINT: es.url,
    });
    await loki.waitForEntries(lines.length, 30_000);
    await otlp.waitForRecords(lines.length, 30_000);
    await es.waitForDocs(lines.length, 30_000);
    const want = (line: string) => {
      const o = JSON.parse(line) as { route: string; trace_id: string };
      return { route: o.route, trace: o.trace_id };
    };
    for (const e of loki.entries)
      expect({ route: e.labels.route, trace: e.metadata?.trace_id }, e.line).toEqual(want(e.line));
    for (const r of otlp.records)
      expect({ route: r.attributes.route, trace: r.traceId }, r.body).toEqual(want(r.body));
    for (const d of es.docs) {
      const doc = d.source as { message: string; labels: { route?: string }; trace?: { id: string } };
      expect({ route: doc.labels.route, trace: doc.trace?.id }, doc.message).toEqual(want(doc.message));
    }
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  it("a multiline record takes its fields from the JSON of its first line; REDACT applies first", async () => {
    const dirs = tempDirs("fields-ml-");
    loki = await startFakeLoki();
    const record = [
      `{"level":50,"time":1700000000001,"route":"/a","trace_id":"${TRACE}","user":"secret-token","msg":"boom"}`,
      "\tat app.Main.run(Main.java:10)",
      "\tat app.Main.main(Main.java:3)",
    ].join("\n");
    writeFileSync(join(dirs.logs, "app.log"), `${record}\n{"level":30,"time":1700000000002,"msg":"next"}\n`);
    const s = shippers.spawn({
      ...shipperEnv(dirs, loki.url),
      LABEL_FIELDS: "route",
      METADATA_FIELDS: "trace_id,user",
      MULTILINE_PRESET: "indented",
      REDACT: "secret-\\w+",
    });
    await loki.waitForEntries(2, 30_000);
    const first = loki.entries.find((e) => e.line.includes("boom"));
    expect(first?.line).toBe(record.replace("secret-token", "[REDACTED]"));
    expect(first?.labels).toMatchObject({ route: "/a", level: "error" });
    // The redacted value is what leaves as metadata too.
    expect(first?.metadata).toEqual({ trace_id: TRACE, user: "[REDACTED]" });
    const next = loki.entries.find((e) => e.line.includes("next"));
    expect(next?.labels.route).toBeUndefined();
    expect(next?.metadata).toBeUndefined();
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  it("LABEL_FIELDS=level: exit 2 naming LABEL_FIELDS", async () => {
    const dirs = tempDirs("fields-bad-");
    const s = shippers.spawn({ ...shipperEnv(dirs), LABEL_FIELDS: "level" });
    const { code } = await s.exited;
    expect(code).toBe(2);
    expect(s.stdout() + s.stderr()).toContain("LABEL_FIELDS");
  });
});
