// The Elasticsearch bulk encoder checked by parsing its NDJSON back: action lines, ECS documents,
// index names from patterns, data stream fields, escaping and non-ASCII lines, and the `_id`
// scheme (stable across encodes, different for a different line, offset or file identity, the
// same across reader generations).
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { formatLabels } from "../src/labels.js";
import {
  type BulkBody,
  BulkEncoder,
  documentId,
  lineHash,
  selectItems,
} from "../src/sinks/elasticsearch/encode-bulk.js";
import { IndexName } from "../src/sinks/elasticsearch/index-name.js";
import { appendEntry, type BatchStream, GrowableBuffer } from "../src/sinks/loki/encode-protobuf.js";

interface In {
  labels: Record<string, string>;
  entries: { sec: number; nanos: number; line: string; fileId: string; offset: number }[];
}

function streamsOf(inputs: In[]): BatchStream[] {
  return inputs.map((i) => {
    const g = new GrowableBuffer(16);
    for (const e of i.entries) appendEntry(g, e.sec, e.nanos, Buffer.from(e.line, "utf8"));
    return {
      labels: i.labels,
      labelBytes: Buffer.from(formatLabels(i.labels)),
      entries: g.view(),
      count: i.entries.length,
      fileIds: i.entries.map((e) => e.fileId),
      offsets: i.entries.map((e) => e.offset),
    };
  });
}

/** The body's items as [action, document] pairs, parsed the way Elasticsearch reads NDJSON. */
export function parseBulkBody(
  b: BulkBody,
): [Record<string, Record<string, string>>, Record<string, unknown>][] {
  const text = (b.contentEncoding === "gzip" ? gunzipSync(b.body) : b.body).toString("utf8");
  expect(text.endsWith("\n")).toBe(true);
  const lines = text.slice(0, -1).split("\n");
  expect(lines.length % 2).toBe(0);
  const out: [Record<string, Record<string, string>>, Record<string, unknown>][] = [];
  for (let i = 0; i < lines.length; i += 2)
    out.push([JSON.parse(lines[i] as string), JSON.parse(lines[i + 1] as string)]);
  return out;
}

const labels = {
  job: "sample-app",
  namespace: "shop",
  pod: "web-1",
  container: "app",
  node: "n1",
  filename: "/shared/logs/app.log",
  level: "info",
};
const pod = { namespace: "shop", pod: "web-1", container: "app", node: "n1" };
const FILE = "64769:1234:00aa11bb22cc33dd/1";
// 2024-01-31T12:00:00Z
const T = 1_706_702_400;

function encoder(index = "logs-sidecar-default", compression: "gzip" | "none" = "none") {
  return new BulkEncoder({
    index: new IndexName(index),
    compression,
    staticLabels: { job: "sample-app" },
    podLabels: pod,
  });
}

describe("BulkEncoder", () => {
  it("writes a create action and an ECS document per line, with data stream fields", () => {
    const body = encoder().encode(
      streamsOf([
        {
          labels,
          entries: [
            {
              sec: T,
              nanos: 123_456_789,
              line: '{"level":30,"msg":"hi \\"there\\""}',
              fileId: FILE,
              offset: 40,
            },
            {
              sec: T + 1,
              nanos: 0,
              line: "plain\ttext with \u0001 control, \\ and \r",
              fileId: FILE,
              offset: 70,
            },
          ],
        },
        {
          labels: { ...labels, level: "error" },
          entries: [{ sec: T, nanos: 5, line: "", fileId: FILE, offset: 71 }],
        },
      ]),
    );
    expect(body.contentType).toBe("application/x-ndjson");
    expect(body.contentEncoding).toBeUndefined();
    expect(body.itemEnds.length).toBe(3);
    expect(body.itemEnds[2]).toBe(body.body.length);
    const items = parseBulkBody(body);
    expect(items.map(([a]) => Object.keys(a))).toEqual([["create"], ["create"], ["create"]]);
    expect(items[0]?.[0].create).toEqual({
      _index: "logs-sidecar-default",
      _id: documentId(FILE, 40, Buffer.from('{"level":30,"msg":"hi \\"there\\""}')),
    });
    expect(items[0]?.[1]).toEqual({
      "@timestamp": "2024-01-31T12:00:00.123456789Z",
      message: '{"level":30,"msg":"hi \\"there\\""}',
      log: { level: "info", file: { path: "/shared/logs/app.log" } },
      kubernetes: {
        namespace: "shop",
        pod: { name: "web-1" },
        container: { name: "app" },
        node: { name: "n1" },
      },
      labels: { job: "sample-app" },
      data_stream: { type: "logs", dataset: "sidecar", namespace: "default" },
    });
    expect(items[1]?.[1]["@timestamp"]).toBe("2024-01-31T12:00:01.000000000Z");
    expect(items[1]?.[1].message).toBe("plain\ttext with \u0001 control, \\ and \r");
    expect(items[2]?.[1]).toMatchObject({
      "@timestamp": "2024-01-31T12:00:00.000000005Z",
      message: "",
      log: { level: "error" },
    });
  });

  it("carries non-ASCII lines and label values unchanged", () => {
    const line = "größe 🚀 日本語 \u2028 end";
    const items = parseBulkBody(
      encoder().encode(
        streamsOf([
          {
            labels: { ...labels, filename: "/logs/ünï.log" },
            entries: [{ sec: T, nanos: 0, line, fileId: FILE, offset: 9 }],
          },
        ]),
      ),
    );
    expect(items[0]?.[1].message).toBe(line);
    expect(items[0]?.[1].log).toEqual({ level: "info", file: { path: "/logs/ünï.log" } });
  });

  it("escapes every ASCII byte that JSON needs escaped, and only those", () => {
    // One line with every byte 0x00–0x7f, and one per byte: each parses back to itself.
    const all = Array.from({ length: 0x80 }, (_, c) => String.fromCharCode(c)).join("");
    const entries = [all, ...all].map((line, i) => ({ sec: T, nanos: 0, line, fileId: FILE, offset: i + 1 }));
    const body = encoder().encode(streamsOf([{ labels, entries }]));
    const items = parseBulkBody(body);
    expect(items.map(([, doc]) => doc.message)).toEqual(entries.map((e) => e.line));
    // The `_id`'s line hash, computed while escaping, is lineHash's (even and odd lengths).
    expect(items.map(([a]) => a.create?._id)).toEqual(
      entries.map((e) => documentId(FILE, e.offset, Buffer.from(e.line))),
    );
    // Escaped: control bytes, `"` and `\`; everything else as itself (space and `!` included).
    const ndjson = body.body.toString("latin1");
    for (let c = 0x20; c < 0x80; c++) {
      const ch = String.fromCharCode(c);
      const want = c === 0x22 || c === 0x5c ? `"message":"\\${ch}"` : `"message":"${ch}"`;
      expect(ndjson.includes(want), `byte 0x${c.toString(16)}`).toBe(true);
    }
  });

  it("escapes a byte wherever it falls in the 4-byte words the encoder reads, and hashes in order", () => {
    // Each ASCII byte at each offset 0–7 of lines 9–12 bytes long (words of clean bytes around
    // it, a tail of 1–3), and non-ASCII sequences split across words at each offset.
    const lines: string[] = [];
    for (let c = 0; c < 0x80; c++)
      for (let at = 0; at < 8; at++)
        lines.push(`${"a".repeat(at)}${String.fromCharCode(c)}${"z".repeat(8 - at + (c % 4))}`);
    for (let at = 0; at < 4; at++) lines.push(`${"x".repeat(at)}é✓🚀"\\${"y".repeat(at)}`);
    const entries = lines.map((line, i) => ({ sec: T, nanos: 0, line, fileId: FILE, offset: i + 1 }));
    const items = parseBulkBody(encoder().encode(streamsOf([{ labels, entries }])));
    expect(items.map(([, doc]) => doc.message)).toEqual(lines);
    expect(items.map(([a]) => a.create?._id)).toEqual(
      entries.map((e) => documentId(FILE, e.offset, Buffer.from(e.line))),
    );
  });

  it("tells apart lines of one length that differ in a single byte, wherever it falls", () => {
    // What the line hash is for: lines sharing a file identity and an end offset (a file
    // truncated and rewritten in place). Each byte of each 4-byte word, and the tail, matters.
    const base = Buffer.from('{"level":30,"time":1700000000000,"msg":"request completed","n":1}');
    const hashes = new Set([lineHash(base)]);
    let variants = 1;
    for (let at = 0; at < base.length; at++)
      for (const c of [0x20, 0x22, 0x30, 0x41, 0x7a, 0x7f, 0xc3]) {
        if (base[at] === c) continue;
        const line = Buffer.from(base);
        line[at] = c;
        hashes.add(lineHash(line));
        variants++;
      }
    expect(hashes.size).toBe(variants);
  });

  it("indexInPath: actions leave _index out, the documents and _ids are the same", () => {
    const input = () =>
      streamsOf([
        {
          labels,
          entries: [
            { sec: T, nanos: 1, line: '{"msg":"a"}', fileId: FILE, offset: 12 },
            { sec: T, nanos: 2, line: "b", fileId: FILE, offset: 14 },
          ],
        },
      ]);
    const named = encoder().encode(input());
    const inPath = new BulkEncoder({
      index: new IndexName("logs-sidecar-default"),
      compression: "none",
      staticLabels: { job: "sample-app" },
      podLabels: pod,
      indexInPath: true,
    }).encode(input());
    const a = parseBulkBody(named);
    const b = parseBulkBody(inPath);
    expect(b.map(([action]) => action)).toEqual([
      { create: { _id: documentId(FILE, 12, Buffer.from('{"msg":"a"}')) } },
      { create: { _id: documentId(FILE, 14, Buffer.from("b")) } },
    ]);
    expect(a.map(([action]) => action.create?._id)).toEqual(b.map(([action]) => action.create?._id));
    expect(b.map(([, doc]) => doc)).toEqual(a.map(([, doc]) => doc));
    // '"_index":"logs-sidecar-default",' per item
    expect(named.body.length - inPath.body.length).toBe(2 * 32);
    expect(inPath.itemEnds[1]).toBe(inPath.body.length);
    expect(
      () =>
        new BulkEncoder({
          index: new IndexName("logs-%Y.%m.%d"),
          compression: "none",
          staticLabels: {},
          podLabels: {},
          indexInPath: true,
        }),
    ).toThrow(/fixed index/);
  });

  it("names classic indices from the line's own time in UTC, without data stream fields", () => {
    const e = encoder("logs-%Y.%m.%d");
    const items = parseBulkBody(
      e.encode(
        streamsOf([
          {
            labels,
            entries: [
              { sec: T - 12 * 3600 - 1, nanos: 0, line: "a", fileId: FILE, offset: 2 }, // 2024-01-30T23:59:59Z
              { sec: T, nanos: 0, line: "b", fileId: FILE, offset: 4 },
              { sec: 1_709_251_200, nanos: 0, line: "c", fileId: FILE, offset: 6 }, // 2024-03-01 (leap year)
            ],
          },
        ]),
      ),
    );
    expect(items.map(([a]) => a.create?._index)).toEqual([
      "logs-2024.01.30",
      "logs-2024.01.31",
      "logs-2024.03.01",
    ]);
    expect(items[0]?.[1].data_stream).toBeUndefined();
    expect(new IndexName("app-%Y-%m-%d-%H").format(T + 3 * 3600)).toBe("app-2024-01-31-15");
    expect(new IndexName("x%%-%Y").format(T)).toBe("x%-2024");
  });

  it("gives a line the same _id in every encode, and a different one for another line, offset or file", () => {
    const one = (line: string, offset: number, fileId: string) =>
      parseBulkBody(
        encoder().encode(streamsOf([{ labels, entries: [{ sec: T, nanos: 0, line, fileId, offset }] }])),
      )[0]?.[0].create?._id;
    const id = one("hello", 6, FILE);
    expect(id).toBe(one("hello", 6, FILE));
    // The reader generation changes on every restart: the _id must not.
    expect(one("hello", 6, "64769:1234:00aa11bb22cc33dd/7")).toBe(id);
    expect(one("hellp", 6, FILE)).not.toBe(id); // truncated and rewritten: same place, other line
    expect(one("hello", 12, FILE)).not.toBe(id);
    expect(one("hello", 6, "64769:1235:00aa11bb22cc33dd/1")).not.toBe(id);
    expect(one("hello", 6, "64769:1234:ffaa11bb22cc33dd/1")).not.toBe(id);
    // A different time (e.g. a read-time line re-read after a restart) keeps the _id.
    const again = parseBulkBody(
      encoder().encode(
        streamsOf([{ labels, entries: [{ sec: T + 99, nanos: 1, line: "hello", fileId: FILE, offset: 6 }] }]),
      ),
    )[0]?.[0].create?._id;
    expect(again).toBe(id);
    const big = 2 ** 40 + 123_456_789;
    expect(one("x", big, FILE)).toBe(documentId(FILE, big, Buffer.from("x")));
    expect(one("x", big, FILE)).toContain(`.${big.toString(36)}.`);
    expect(id).toMatch(/^[0-9a-f]{16}\.6\.[0-9a-f]{13}$/);
  });

  it("gzips when asked, and selectItems rebuilds a body of only some items (both encodings)", () => {
    for (const compression of ["gzip", "none"] as const) {
      const body = encoder("logs-sidecar-default", compression).encode(
        streamsOf([
          {
            labels,
            entries: ["a", "bb", "ccc", "dddd"].map((line, i) => ({
              sec: T,
              nanos: i,
              line,
              fileId: FILE,
              offset: (i + 1) * 10,
            })),
          },
        ]),
      );
      expect(body.contentEncoding).toBe(compression === "gzip" ? "gzip" : undefined);
      const all = parseBulkBody(body);
      const some = selectItems(body, [1, 3]);
      expect(some.contentEncoding).toBe(body.contentEncoding);
      expect(parseBulkBody(some)).toEqual([all[1], all[3]]);
      expect(parseBulkBody(selectItems(some, [1]))).toEqual([all[3]]);
    }
  });

  it("refuses a batch without entry refs (a wiring bug, not a data problem)", () => {
    const [s] = streamsOf([{ labels, entries: [{ sec: T, nanos: 0, line: "x", fileId: FILE, offset: 2 }] }]);
    const { fileIds: _f, offsets: _o, ...bare } = s as BatchStream;
    expect(() => encoder().encode([bare])).toThrow(/entry refs/);
  });
});

describe("IndexName", () => {
  it.each([
    ["logs-sidecar-default", { type: "logs", dataset: "sidecar", namespace: "default" }],
    ["logs-nginx.access-prod", { type: "logs", dataset: "nginx.access", namespace: "prod" }],
    ["app-logs", undefined],
    ["logs-%Y.%m.%d", undefined],
  ])("%s → data stream %j", (pattern, ds) => {
    expect(new IndexName(pattern).dataStream).toEqual(ds);
  });

  it.each([
    ["Logs", /lowercase/],
    ["logs-%j", /unsupported placeholder "%j"/],
    ["logs-%", /unsupported placeholder/],
    ["_logs", /must not start/],
    ["logs app", /must not contain " "/],
    ["logs:x", /must not contain ":"/],
    ["a".repeat(256), /longer than 255/],
    ["..", /not an index name/],
  ])("%s is refused", (pattern, reason) => {
    expect(() => new IndexName(pattern)).toThrow(reason);
  });
});
