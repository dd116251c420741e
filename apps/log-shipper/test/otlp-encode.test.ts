// The OTLP encoders checked by decoding: protobuf bodies with the official OpenTelemetry generated
// code (fake-otlp.ts), JSON bodies strictly per the OTLP JSON mapping, gzip or not. Every record
// must come back with exactly the resource, scope, times (to the nanosecond, also past 2^53 ns),
// severity, body (non-ASCII, empty, large) and attributes that the mapping promises.
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { MAX_ENCODABLE_SEC } from "../src/batcher.js";
import { formatLabels } from "../src/labels.js";
import { appendEntry, type BatchStream, GrowableBuffer } from "../src/sinks/loki/encode-protobuf.js";
import { OtlpJsonEncoder } from "../src/sinks/otlp/encode-json.js";
import { OtlpProtobufEncoder, writeFixed64Nanos } from "../src/sinks/otlp/encode-protobuf.js";
import { decodeJsonRequest, decodeProtobufRequest, type ReceivedRecord } from "./support/fake-otlp.js";

interface Input {
  labels: Record<string, string>;
  entries: { sec: number; nanos: number; line: string }[];
}

function streamsOf(inputs: Input[]): BatchStream[] {
  return inputs.map((i) => {
    const g = new GrowableBuffer(16);
    for (const e of i.entries) appendEntry(g, e.sec, e.nanos, Buffer.from(e.line, "utf8"));
    return {
      labels: i.labels,
      labelBytes: Buffer.from(formatLabels(i.labels)),
      entries: g.view(),
      count: i.entries.length,
    };
  });
}

const staticLabels = { job: "sample-app", env: "prod", team: "web" };
const podLabels = { namespace: "shop", pod: "sample-app-7d9f8b6c5-x2k4q", container: "app", node: "node-1" };
const base = { ...podLabels, ...staticLabels };
const NOW_MS = 1_765_000_000_123;
const OBSERVED = 1_765_000_000_123_000_000n;

const resource = {
  "k8s.namespace.name": "shop",
  "k8s.pod.name": "sample-app-7d9f8b6c5-x2k4q",
  "k8s.container.name": "app",
  "k8s.node.name": "node-1",
  "service.name": "sample-app",
  env: "prod",
  team: "web",
};

const big = "x".repeat(300_000);
const inputs: Input[] = [
  {
    labels: { ...base, filename: "/shared/logs/app.log", level: "info" },
    entries: [
      {
        sec: 1_700_000_000,
        nanos: 123_456_789,
        line: '{"level":30,"msg":"grüße 🌍 — ünïcödé \\"quoted\\""}',
      },
      { sec: 1_700_000_000, nanos: 123_456_790, line: "" },
      { sec: 1_700_000_001, nanos: 0, line: big },
    ],
  },
  {
    labels: { ...base, filename: "/shared/logs/sub/worker.log", level: "error" },
    entries: [
      { sec: MAX_ENCODABLE_SEC.json, nanos: 999_999_999, line: "the last second int64 nanoseconds hold" },
    ],
  },
  {
    labels: { ...base, filename: "/shared/logs/app.log" },
    entries: [{ sec: 0, nanos: 5, line: "no level\ttab" }],
  },
  {
    labels: { ...base, filename: "/shared/logs/app.log", level: "trace" },
    entries: [{ sec: 1, nanos: 1, line: "t" }],
  },
  {
    labels: { ...base, filename: "/shared/logs/app.log", level: "debug" },
    entries: [{ sec: 2, nanos: 2, line: "d" }],
  },
  {
    labels: { ...base, filename: "/shared/logs/app.log", level: "warn" },
    entries: [{ sec: 3, nanos: 3, line: "w" }],
  },
  {
    labels: { ...base, filename: "/shared/logs/app.log", level: "fatal" },
    entries: [{ sec: 4, nanos: 4, line: "f" }],
  },
];

const SEVERITY: Record<string, number> = { trace: 1, debug: 5, info: 9, warn: 13, error: 17, fatal: 21 };

function expected(ins: Input[]): ReceivedRecord[] {
  return ins.flatMap((i) =>
    i.entries.map((e) => {
      const filename = i.labels.filename as string;
      const level = i.labels.level;
      return {
        resource,
        scope: "sidecar-log-shipper",
        timeUnixNano: BigInt(e.sec) * 1_000_000_000n + BigInt(e.nanos),
        observedTimeUnixNano: OBSERVED,
        severityNumber: level === undefined ? 0 : (SEVERITY[level] as number),
        severityText: level ?? "",
        body: e.line,
        attributes: {
          "log.file.name": filename.slice(filename.lastIndexOf("/") + 1),
          "log.file.path": filename,
        },
      };
    }),
  );
}

const opts = (compression: "gzip" | "none") => ({ staticLabels, podLabels, compression, now: () => NOW_MS });

describe("OTLP protobuf encoder", () => {
  for (const compression of ["gzip", "none"] as const) {
    it(`round-trips through the official decoder (${compression})`, () => {
      const enc = new OtlpProtobufEncoder(opts(compression));
      const body = enc.encode(streamsOf(inputs));
      expect(body.contentType).toBe("application/x-protobuf");
      expect(body.contentEncoding).toBe(compression === "gzip" ? "gzip" : undefined);
      const raw = compression === "gzip" ? gunzipSync(body.body) : body.body;
      expect(decodeProtobufRequest(raw)).toEqual(expected(inputs));
    });
  }

  it("keeps each body intact across later batches (the scratch buffer is reused)", () => {
    const enc = new OtlpProtobufEncoder(opts("none"));
    const first = enc.encode(streamsOf(inputs.slice(0, 1)));
    const second = enc.encode(streamsOf(inputs.slice(1, 3)));
    expect(decodeProtobufRequest(first.body)).toEqual(expected(inputs.slice(0, 1)));
    expect(decodeProtobufRequest(second.body)).toEqual(expected(inputs.slice(1, 3)));
  });

  it("sends the pod and static labels it is given, and no k8s attribute for an unset one", () => {
    const enc = new OtlpProtobufEncoder({ staticLabels: { app: "x" }, podLabels: {}, compression: "none" });
    const [r] = decodeProtobufRequest(enc.encode(streamsOf(inputs.slice(3, 4))).body);
    expect(r?.resource).toEqual({ app: "x" });
  });

  it("a small gzip body holds only its own bytes, not zlib's 16 KiB output chunk (queued bodies)", () => {
    for (const enc of [new OtlpProtobufEncoder(opts("gzip")), new OtlpJsonEncoder(opts("gzip"))]) {
      const body = enc.encode(streamsOf(inputs.slice(3, 4))).body;
      expect(body.length).toBeLessThan(1024);
      expect(body.buffer.byteLength).toBe(body.length);
    }
  });

  it("writes fixed64 nanoseconds exactly beyond 2^53", () => {
    const cases: [number, number][] = [
      [0, 0],
      [0, 999_999_999],
      [1, 0],
      [4_294_967_295, 999_999_999],
      [1_700_000_000, 123_456_789],
      [9_007_199, 254_740_993],
      [MAX_ENCODABLE_SEC.json, 999_999_999],
      [17_179_869_183, 999_999_999], // 2^34 − 1: the encoder's stated limit
    ];
    for (const [sec, nanos] of cases) {
      const got = Buffer.alloc(8);
      writeFixed64Nanos(got, 0, sec, nanos);
      const want = Buffer.alloc(8);
      want.writeBigUInt64LE(BigInt(sec) * 1_000_000_000n + BigInt(nanos));
      expect(got.toString("hex"), `${sec}.${nanos}`).toBe(want.toString("hex"));
    }
  });
});

describe("OTLP JSON encoder", () => {
  for (const compression of ["gzip", "none"] as const) {
    it(`follows the OTLP JSON mapping (${compression})`, () => {
      const enc = new OtlpJsonEncoder(opts(compression));
      const body = enc.encode(streamsOf(inputs));
      expect(body.contentType).toBe("application/json");
      const raw = compression === "gzip" ? gunzipSync(body.body) : body.body;
      expect(decodeJsonRequest(raw)).toEqual(expected(inputs));
      // Field names and value forms as the mapping says (not only what a lenient reader accepts).
      const doc = JSON.parse(raw.toString("utf8"));
      const rec = doc.resourceLogs[0].scopeLogs[0].logRecords[0];
      expect(typeof rec.timeUnixNano).toBe("string");
      expect(typeof rec.observedTimeUnixNano).toBe("string");
      expect(rec.severityNumber).toBe(9);
      expect(Object.keys(rec)).toEqual([
        "timeUnixNano",
        "observedTimeUnixNano",
        "severityNumber",
        "severityText",
        "body",
        "attributes",
      ]);
    });
  }

  it("encodes the same records as the protobuf encoder", () => {
    const streams = streamsOf(inputs);
    const pb = decodeProtobufRequest(new OtlpProtobufEncoder(opts("none")).encode(streams).body);
    const json = decodeJsonRequest(new OtlpJsonEncoder(opts("none")).encode(streams).body);
    expect(json).toEqual(pb);
  });
});
