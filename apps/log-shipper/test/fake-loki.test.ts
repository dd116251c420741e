// The fake Loki itself: it must reject what real Loki rejects (or tests of the encoders would
// prove nothing), apply faults for exactly `times` requests, and fail waits with a clear message.
import { gzipSync } from "node:zlib";
import snappy from "snappy";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodePushRequest, type FakeLoki, parseLabels, startFakeLoki } from "./support/fake-loki.js";

let loki: FakeLoki;
beforeEach(async () => {
  loki = await startFakeLoki();
});
afterEach(async () => {
  await loki.close();
});

function post(body: Buffer, headers: Record<string, string>) {
  return fetch(loki.pushUrl, { method: "POST", body, headers });
}

const jsonBody = (line: string) =>
  Buffer.from(
    JSON.stringify({ streams: [{ stream: { job: "x" }, values: [["1700000000000000001", line]] }] }),
  );

describe("fake Loki", () => {
  it("accepts JSON (plain and gzip) with 204 and records entries and requests", async () => {
    expect((await post(jsonBody("a"), { "content-type": "application/json" })).status).toBe(204);
    const gz = await post(gzipSync(jsonBody("b")), {
      "content-type": "application/json",
      "content-encoding": "gzip",
    });
    expect(gz.status).toBe(204);
    expect(loki.entries).toEqual([
      { labels: { job: "x" }, tsNs: 1700000000000000001n, line: "a" },
      { labels: { job: "x" }, tsNs: 1700000000000000001n, line: "b" },
    ]);
    expect(loki.requests.map((r) => [r.encoding, r.contentEncoding, r.status])).toEqual([
      ["json", undefined, 204],
      ["json", "gzip", 204],
    ]);
    expect(loki.entryCount).toBe(2);
  });

  it("answers 400 with a message to undecodable bodies", async () => {
    const bad = await post(Buffer.from("not snappy at all"), { "content-type": "application/x-protobuf" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/error parsing push request/);
    // Valid snappy, but the labels string is not a selector.
    const pb = Buffer.from([0x0a, 0x07, 0x0a, 0x03, ...Buffer.from("job"), 0x12, 0x00]);
    expect((await post(snappy.compressSync(pb), { "content-type": "application/x-protobuf" })).status).toBe(
      400,
    );
    expect((await post(Buffer.from("{}"), { "content-type": "application/json" })).status).toBe(400);
    expect(loki.entries).toEqual([]);
  });

  it("fails the whole push on a timestamp Loki cannot decode: JSON past int64, protobuf past year 9999", async () => {
    const now = `${Date.now()}000000`;
    const json = (ts: string) =>
      Buffer.from(
        JSON.stringify({
          streams: [
            {
              stream: { job: "x" },
              values: [
                [now, "good"],
                [ts, "bad"],
              ],
            },
          ],
        }),
      );
    const r1 = await post(json("10413792000000000000"), { "content-type": "application/json" }); // 2300
    expect(r1.status).toBe(400);
    expect(await r1.text()).toMatch(/value out of range/);
    // One stream, two entries: now, and 10000-01-01T00:30:00Z (seconds 253402302600).
    const entry = (sec: number, line: string) => {
      const ts = [0x08, ...varint(sec)];
      const body = [0x0a, ts.length, ...ts, 0x12, line.length, ...Buffer.from(line)];
      return [0x12, body.length, ...body];
    };
    const labels = Buffer.from('{job="x"}');
    const stream = [
      0x0a,
      labels.length,
      ...labels,
      ...entry(Math.floor(Date.now() / 1000), "good"),
      ...entry(253402302600, "bad"),
    ];
    const pb = Buffer.from([0x0a, stream.length, ...stream]);
    const r2 = await post(snappy.compressSync(pb), { "content-type": "application/x-protobuf" });
    expect(r2.status).toBe(400);
    expect(await r2.text()).toMatch(/after 10000-01-01/);
    expect(loki.entries).toEqual([]); // nothing of either push stored
  });

  it("refuses entries outside its window one by one, stores the rest, answers 400 as Loki does", async () => {
    await loki.close();
    loki = await startFakeLoki({ rejectOldSamplesMaxAgeMs: 7 * 24 * 3600 * 1000 });
    const nowMs = Date.now();
    const ns = (ms: number) => `${ms}000000`;
    const body = Buffer.from(
      JSON.stringify({
        streams: [
          {
            stream: { job: "x" },
            values: [
              [ns(nowMs), "now"],
              [ns(nowMs + 11 * 60 * 1000), "too new"],
              [ns(nowMs + 9 * 60 * 1000), "within the grace period"],
              [ns(1700000000000), "too old 1"],
              [ns(1700000000000), "too old 2"],
            ],
          },
        ],
      }),
    );
    const res = await post(body, { "content-type": "application/json" });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toMatch(/1 errors like: entry for stream '\{job="x"\}' has timestamp too new: /);
    expect(text).toMatch(
      /2 errors like: entry for stream '\{job="x"\}' has timestamp too old: 2023-11-14 22:13:20 \+0000 UTC/,
    );
    expect(loki.entries.map((e) => e.line)).toEqual(["now", "within the grace period"]);
    expect(loki.refused.map((e) => e.line)).toEqual(["too new", "too old 1", "too old 2"]);
  });

  it("parses label strings like Loki and rejects malformed ones", () => {
    expect(parseLabels('{a="1", b_2="x\\"y\\\\z\\n"}')).toEqual({ a: "1", b_2: 'x"y\\z\n' });
    for (const bad of ["{}", "a=1", '{a="1"', '{1a="x"}', '{a="x\ny"}', '{a="1", a="2"}', '{a="\\q"}']) {
      expect(() => parseLabels(bad), bad).toThrow();
    }
  });

  it("rejects invalid UTF-8 in protobuf strings, as Go's protobuf does", () => {
    const labels = Buffer.from('{a="b"}');
    const line = Buffer.from([0xff]);
    const entry = Buffer.from([0x0a, 0x00, 0x12, line.length, ...line]);
    const stream = Buffer.from([0x0a, labels.length, ...labels, 0x12, entry.length, ...entry]);
    expect(() => decodePushRequest(Buffer.from([0x0a, stream.length, ...stream]))).toThrow(/UTF-8/);
  });

  it("applies a status fault for exactly `times` requests, with Retry-After", async () => {
    loki.setFault({ kind: "status", status: 429, retryAfter: "7", times: 2 });
    const r1 = await post(jsonBody("1"), { "content-type": "application/json" });
    expect([r1.status, r1.headers.get("retry-after")]).toEqual([429, "7"]);
    expect((await post(jsonBody("2"), { "content-type": "application/json" })).status).toBe(429);
    expect((await post(jsonBody("3"), { "content-type": "application/json" })).status).toBe(204);
    expect(loki.entries.map((e) => e.line)).toEqual(["3"]);
  });

  it("resets connections without answering until the fault is cleared", async () => {
    loki.setFault({ kind: "reset" });
    await expect(post(jsonBody("1"), { "content-type": "application/json" })).rejects.toThrow();
    await expect(post(jsonBody("2"), { "content-type": "application/json" })).rejects.toThrow();
    loki.setFault(undefined);
    expect((await post(jsonBody("3"), { "content-type": "application/json" })).status).toBe(204);
    expect(loki.requests.map((r) => r.status)).toEqual([0, 0, 204]);
  });

  it("waitForEntries resolves on arrival and rejects with counts on timeout", async () => {
    const w = loki.waitForEntries(1, 5000);
    await post(jsonBody("1"), { "content-type": "application/json" });
    await w;
    await expect(loki.waitForEntries(5, 50)).rejects.toThrow(
      /waited 50 ms for 5 entries, got 1 \(1 requests, last status 204\)/,
    );
  });

  it("drops an entry equal in stream, timestamp and line to one it holds, silently, as Loki does", async () => {
    const body = (values: [string, string][], job = "x") =>
      Buffer.from(JSON.stringify({ streams: [{ stream: { job }, values }] }));
    const json = { "content-type": "application/json" };
    const ts = "1700000000000000001";
    // Same timestamp: distinct lines are kept, a repeated line (even not adjacent) is dropped.
    expect(
      (
        await post(
          body([
            [ts, "a"],
            [ts, "b"],
            [ts, "a"],
          ]),
          json,
        )
      ).status,
    ).toBe(204);
    // Across requests too; another timestamp or another stream is not a duplicate.
    expect((await post(body([[ts, "b"]]), json)).status).toBe(204);
    expect((await post(body([["1700000000000000002", "a"]]), json)).status).toBe(204);
    expect((await post(body([[ts, "a"]], "y"), json)).status).toBe(204);
    expect(loki.entries.map((e) => [e.labels.job, String(e.tsNs).slice(-1), e.line])).toEqual([
      ["x", "1", "a"],
      ["x", "1", "b"],
      ["x", "2", "a"],
      ["y", "1", "a"],
    ]);
    expect(loki.deduplicated).toBe(2);
    expect(loki.entryCount).toBe(4);

    const keepAll = await startFakeLoki({ dedup: false });
    try {
      for (let i = 0; i < 2; i++) {
        await fetch(keepAll.pushUrl, { method: "POST", body: body([[ts, "a"]]), headers: json });
      }
      expect(keepAll.entryCount).toBe(2);
      expect(keepAll.deduplicated).toBe(0);
    } finally {
      await keepAll.close();
    }
  });

  it("store: count keeps no entries but counts and reports them", async () => {
    const seen: string[] = [];
    const small = await startFakeLoki({ store: "count", onEntry: (e) => seen.push(e.line) });
    try {
      await fetch(small.pushUrl, {
        method: "POST",
        body: jsonBody("z"),
        headers: { "content-type": "application/json" },
      });
      expect(small.entries).toEqual([]);
      expect(small.entryCount).toBe(1);
      expect(seen).toEqual(["z"]);
    } finally {
      await small.close();
    }
  });
});

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
