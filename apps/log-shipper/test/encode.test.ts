// Encoders checked by decoding: protobuf+snappy and JSON (gzip or not) bodies are decoded with
// the fake Loki's independent decoders and must give back exactly the labels, timestamps and
// lines that went in — including escaped label values, unicode, empty and large lines.
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { MAX_ENCODABLE_SEC } from "../src/batcher.js";
import { formatLabels } from "../src/labels.js";
import { encodeMetadata } from "../src/processing/fields.js";
import { DryRunEncoder, isoNanos, parseDryRunLine } from "../src/sinks/dry-run/dry-run.js";
import { JsonEncoder, unixNanosString } from "../src/sinks/loki/encode-json.js";
import {
  appendEntry,
  type BatchStream,
  forEachEntry,
  GrowableBuffer,
  ProtobufEncoder,
  varintSize,
  writeVarint,
} from "../src/sinks/loki/encode-protobuf.js";
import {
  decodeJsonPush,
  decodeProtobufPush,
  decodePushRequest,
  type ReceivedEntry,
} from "./support/fake-loki.js";

interface Input {
  labels: Record<string, string>;
  entries: { sec: number; nanos: number; line: string }[];
}

function streamsOf(inputs: Input[]): BatchStream[] {
  return inputs.map((i) => {
    const g = new GrowableBuffer(16); // tiny on purpose: exercises growth
    for (const e of i.entries) {
      const b = Buffer.from(`xx${e.line}yy`);
      appendEntry(g, e.sec, e.nanos, b.subarray(2, b.length - 2));
    }
    return {
      labels: i.labels,
      labelBytes: Buffer.from(formatLabels(i.labels)),
      entries: g.view(),
      count: i.entries.length,
    };
  });
}

function expected(inputs: Input[]): ReceivedEntry[] {
  return inputs.flatMap((i) =>
    i.entries.map((e) => ({
      labels: i.labels,
      tsNs: BigInt(e.sec) * 1_000_000_000n + BigInt(e.nanos),
      line: e.line,
    })),
  );
}

const inputs: Input[] = [
  {
    labels: { job: "sample-app", filename: "/shared/logs/app.log", level: "info" },
    entries: [
      { sec: 1700000000, nanos: 123000000, line: '{"level":30,"time":1700000000123,"msg":"hello"}' },
      { sec: 1700000000, nanos: 0, line: "" },
      { sec: 1700000001, nanos: 999999999, line: "ünïcödé ✓ 日本語 🚀" },
      { sec: 2 ** 35, nanos: 1, line: "x".repeat(300_000) }, // 3-byte length varint, 6-byte seconds
    ],
  },
  {
    labels: { job: 'we"ird\\job', filename: "/logs/new\nline.log", pod: "tab\there" },
    entries: [{ sec: 0, nanos: 5, line: 'line with "quotes" and \\ and \t' }],
  },
];

describe("varints", () => {
  it.each([
    0,
    1,
    127,
    128,
    16383,
    16384,
    2 ** 21,
    2 ** 28 - 1,
    2 ** 28,
    2 ** 31,
    1_796_623_237,
    2 ** 32 + 5,
    2 ** 35 - 1,
    2 ** 35,
    2 ** 53 - 1,
  ])("%d round-trips with the size varintSize predicts", (v) => {
    const b = Buffer.alloc(16);
    const end = writeVarint(b, 0, v);
    expect(end).toBe(varintSize(v));
    let out = 0n;
    for (let i = 0; i < end; i++) out |= BigInt((b[i] as number) & 0x7f) << BigInt(7 * i);
    expect(out).toBe(BigInt(v));
  });
});

describe("protobuf + snappy", () => {
  it("decodes (as Loki would) to exactly what went in", () => {
    const enc = new ProtobufEncoder().encode(streamsOf(inputs));
    expect(enc.contentType).toBe("application/x-protobuf");
    expect(enc.contentEncoding).toBeUndefined();
    expect(decodeProtobufPush(enc.body)).toEqual(expected(inputs));
  });

  it("writes every varint size class of seconds, nanoseconds, line and entry lengths (appendEntry)", () => {
    // appendEntry sizes and writes its varints itself (not through varintSize/writeVarint): each
    // size class boundary, decoded by the fake Loki's own protobuf reader.
    const secs = [1, 127, 128, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 - 1, 2 ** 35];
    secs.push(MAX_ENCODABLE_SEC.protobuf);
    const nanos = [0, 1, 127, 128, 16_383, 16_384, 2 ** 21 - 1, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 999_999_999];
    const lengths = [0, 1, 127, 128, 16_383, 16_384, 70_000];
    const metadata = encodeMetadata([["trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"]]);
    const g = new GrowableBuffer(16);
    const want: ReceivedEntry[] = [];
    const labels = { job: "varints" };
    let appended = 0;
    let i = 0;
    for (const sec of [0, ...secs]) {
      for (const ns of nanos) {
        // Line lengths in turn; each length also with metadata once in a while.
        const len = lengths[i % lengths.length] as number;
        const line = String.fromCharCode(97 + (i % 26)).repeat(len);
        const withMeta = i % 3 === 0;
        appended += appendEntry(g, sec, ns, Buffer.from(line), withMeta ? metadata : undefined);
        want.push({
          labels,
          tsNs: BigInt(sec) * 1_000_000_000n + BigInt(ns),
          line,
          ...(withMeta ? { metadata: { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736" } } : {}),
        });
        i++;
      }
    }
    expect(appended).toBe(g.len);
    const stream = { labels, labelBytes: Buffer.from(formatLabels(labels)), entries: g.view(), count: i };
    expect(decodeProtobufPush(new ProtobufEncoder().encode([stream]).body)).toEqual(want);
  });

  it("reuses its scratch buffer without mixing batches", () => {
    const e = new ProtobufEncoder();
    const a = e.encode(streamsOf(inputs));
    const small: Input[] = [{ labels: { job: "j" }, entries: [{ sec: 1, nanos: 2, line: "only" }] }];
    const b = e.encode(streamsOf(small));
    expect(decodeProtobufPush(a.body)).toEqual(expected(inputs));
    expect(decodeProtobufPush(b.body)).toEqual(expected(small));
  });

  describe("body memory given back (release)", () => {
    /** A batch whose body is `lines` × ~100 bytes that snappy cannot shrink much (seeded). */
    function bigBatch(seed: number, lines: number): Input[] {
      let x = seed >>> 0;
      const hex = () => {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        return x.toString(16).padStart(8, "0");
      };
      const entries = Array.from({ length: lines }, (_, i) => ({
        sec: 1_700_000_000 + i,
        nanos: seed,
        line: Array.from({ length: 12 }, hex).join(" "),
      }));
      return [{ labels: { job: "j", batch: String(seed) }, entries }];
    }

    it("a released body's memory serves the next body; bodies still held never share memory", () => {
      const e = new ProtobufEncoder();
      const one = bigBatch(1, 400);
      const two = bigBatch(2, 400);
      const three = bigBatch(3, 400);
      const a = e.encode(streamsOf(one));
      const b = e.encode(streamsOf(two));
      expect(a.body.length).toBeGreaterThan(16 * 1024); // pooled sizes
      expect(b.body.buffer).not.toBe(a.body.buffer); // a is still held
      e.release(a);
      const c = e.encode(streamsOf(three));
      expect(c.body.buffer).toBe(a.body.buffer); // a's memory, reused
      // b was never given back: untouched by c's encoding, and both decode to their own batch.
      expect(decodeProtobufPush(b.body)).toEqual(expected(two));
      expect(decodeProtobufPush(c.body)).toEqual(expected(three));
      // Given back twice, kept once: two later bodies still get memory of their own.
      e.release(b);
      e.release(b);
      const d = e.encode(streamsOf(one));
      const f = e.encode(streamsOf(two));
      expect(d.body.buffer).toBe(b.body.buffer);
      expect(f.body.buffer).not.toBe(d.body.buffer);
      expect(decodeProtobufPush(d.body)).toEqual(expected(one));
      expect(decodeProtobufPush(f.body)).toEqual(expected(two));
    });

    it("takes back only its own bodies, and a spare only for a body it fits closely", () => {
      const e = new ProtobufEncoder();
      // A foreign buffer handed in is ignored, never given out as a body.
      const foreign = Buffer.alloc(256 * 1024);
      e.release({ body: foreign, contentType: "application/x-protobuf" });
      const a = e.encode(streamsOf(bigBatch(4, 400)));
      expect(a.body.buffer).not.toBe(foreign.buffer);
      // A spare more than twice the size a body needs stays spare (no large buffer kept busy by a
      // small body); small bodies are not pooled at all.
      const big = e.encode(streamsOf(bigBatch(5, 1600)));
      e.release(big);
      const mid = e.encode(streamsOf(bigBatch(6, 400)));
      expect(mid.body.buffer).not.toBe(big.body.buffer);
      const again = e.encode(streamsOf(bigBatch(7, 1500)));
      expect(again.body.buffer).toBe(big.body.buffer);
      const small = e.encode(streamsOf(bigBatch(8, 3)));
      e.release(small);
      const next = e.encode(streamsOf(bigBatch(9, 3))).body;
      // (small bodies come from Node's shared pool slab: same ArrayBuffer, other bytes)
      expect(next.buffer === small.body.buffer && next.byteOffset === small.body.byteOffset).toBe(false);
      expect(decodeProtobufPush(again.body)).toEqual(expected(bigBatch(7, 1500)));
    });
  });

  it("stream headers of every snappy literal size (labels up to 70 kB), several streams", () => {
    // The header of each stream is written as a snappy literal element: tag sizes change at 60,
    // 256 and 65536 bytes. Each label set's length lands on one side of those bounds.
    const sized: Input[] = [10, 59, 61, 300, 65_600].map((n, i) => ({
      labels: { job: "j", pad: "p".repeat(n) },
      entries: [{ sec: 1700000000 + i, nanos: i, line: `line ${i} ${"z".repeat(n)}` }],
    }));
    const enc = new ProtobufEncoder().encode(streamsOf(sized));
    expect(decodeProtobufPush(enc.body)).toEqual(expected(sized));
  });

  it("rejects a corrupted body", () => {
    const enc = new ProtobufEncoder().encode(streamsOf(inputs));
    expect(() => decodeProtobufPush(enc.body.subarray(0, 20))).toThrow();
    expect(() => decodePushRequest(Buffer.from([0x0a, 0x05, 0x0a]))).toThrow();
  });

  it("forEachEntry reads entries back", () => {
    const [s] = streamsOf(inputs);
    const seen: [number, number, string][] = [];
    forEachEntry((s as BatchStream).entries, (sec, nanos, line) => seen.push([sec, nanos, line.toString()]));
    expect(seen).toEqual(inputs[0]?.entries.map((e) => [e.sec, e.nanos, e.line]));
  });
});

describe("JSON", () => {
  it.each(["gzip", "none"] as const)("%s: decodes to exactly what went in", (compression) => {
    // JSON carries int64 nanoseconds: the latest second it can hold instead of 2^35 (the batcher
    // never hands it a later time, and Loki cannot decode one).
    const jsonInputs = inputs.map((s) => ({
      ...s,
      entries: s.entries.map((e) => (e.sec === 2 ** 35 ? { ...e, sec: MAX_ENCODABLE_SEC.json } : e)),
    }));
    const enc = new JsonEncoder(compression).encode(streamsOf(jsonInputs));
    expect(enc.contentType).toBe("application/json");
    expect(enc.contentEncoding).toBe(compression === "gzip" ? "gzip" : undefined);
    expect(decodeJsonPush(enc.body, enc.contentEncoding)).toEqual(expected(jsonInputs));
    const doc = JSON.parse((compression === "gzip" ? gunzipSync(enc.body) : enc.body).toString());
    expect(doc.streams[1].stream).toEqual(inputs[1]?.labels);
    expect(doc.streams[0].values[0][0]).toBe("1700000000123000000");
  });

  it("gzip: a small body owns its memory (not a view of zlib's 16 KiB chunk, kept while queued)", () => {
    const enc = new JsonEncoder("gzip").encode(streamsOf(inputs.slice(0, 1)));
    expect(enc.body.buffer.byteLength - enc.body.length).toBeLessThanOrEqual(1024);
  });

  it("formats nanosecond timestamps", () => {
    expect(unixNanosString(1700000000, 5)).toBe("1700000000000000005");
    expect(unixNanosString(0, 5)).toBe("5");
  });
});

describe("dry run", () => {
  it("renders one readable line per entry: time, labels, line", () => {
    const enc = new DryRunEncoder().encode(streamsOf(inputs));
    const text = enc.body.toString();
    const lines = text.split("\n");
    expect(lines.pop()).toBe("");
    const total = inputs.reduce((n, s) => n + s.entries.length, 0);
    expect(lines).toHaveLength(total);
    const first = parseDryRunLine(lines[0] as string);
    expect(first).toEqual({
      ts: "2023-11-14T22:13:20.123000000Z",
      labels: inputs[0]?.labels,
      line: inputs[0]?.entries[0]?.line,
    });
    expect(lines[0]).toMatch(/^2023-11-14T22:13:20\.123000000Z \{\w+="/);
    expect(isoNanos(0, 1)).toBe("1970-01-01T00:00:00.000000001Z");
  });

  it("label values with quotes, backslashes and newlines survive the round trip", () => {
    const labels = { filename: 'a "b"\\c\nd}', job: "j" };
    const enc = new DryRunEncoder().encode(
      streamsOf([{ labels, entries: [{ sec: 1_700_000_000, nanos: 0, line: "x {y} z" }] }]),
    );
    expect(parseDryRunLine(enc.body.toString().trimEnd())).toMatchObject({ labels, line: "x {y} z" });
  });

  it("prints an entry's structured metadata after its labels, in its own order", () => {
    const g = new GrowableBuffer(16);
    const line = '{"msg":"hi","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}';
    const metadata = encodeMetadata([
      ["trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"],
      ["user", 'a "quoted"\nname'],
    ]);
    appendEntry(g, 1_700_000_000, 0, Buffer.from(line), metadata);
    appendEntry(g, 1_700_000_001, 0, Buffer.from(line));
    const labels = { filename: "/var/log/app.log", job: "app" };
    const text = new DryRunEncoder()
      .encode([{ labels, labelBytes: Buffer.from(formatLabels(labels)), entries: g.view(), count: 2 }])
      .body.toString();
    const [withMeta, without] = text.trimEnd().split("\n") as [string, string];
    expect(withMeta).toContain(
      '{filename="/var/log/app.log", job="app"} {trace_id="4bf92f3577b34da6a3ce929d0e0e4736", user="a \\"quoted\\"\\nname"} {"msg"',
    );
    expect(parseDryRunLine(withMeta)).toEqual({
      ts: "2023-11-14T22:13:20.000000000Z",
      labels,
      metadata: { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", user: 'a "quoted"\nname' },
      line,
    });
    // A JSON line right after the labels is the line, not metadata.
    expect(parseDryRunLine(without)).toEqual({ ts: "2023-11-14T22:13:21.000000000Z", labels, line });
  });
});
