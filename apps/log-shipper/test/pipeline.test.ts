// The Pipeline as the source side uses it: back-pressure under an outage (pendingBytes,
// canAccept, onDrain; memory bounded), per-file order and monotonic acknowledgements across many
// batches and retries, drain(deadline) both ways, close(), dry run and stats().
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SourceFile } from "../src/contracts.js";
import { parseDryRunLine } from "../src/sinks/dry-run/dry-run.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { harness, lines, metric, until } from "./support/loki-harness.js";

let loki: FakeLoki;
beforeEach(async () => {
  loki = await startFakeLoki();
});
afterEach(async () => {
  await loki.close();
});

describe("Pipeline", () => {
  it("sends the next batch only once the last batch's acknowledgements are persisted", async () => {
    const acks: { fileId: string; offset: number }[] = [];
    let release: (() => void) | undefined;
    let persistCalls = 0;
    let failing = false;
    const h = harness(loki, {
      batchMaxBytes: 1024,
      ack: {
        acknowledged: (fileId, offset) => acks.push({ fileId, offset }),
        persisted: () => {
          persistCalls++;
          if (failing) return Promise.reject(new Error("ENOSPC: no space left on device"));
          return new Promise<void>((r) => {
            release = r;
          });
        },
      },
    });
    const p = h.pipeline;
    p.start();
    const file: SourceFile = { id: "f", path: "/shared/logs/app.log" };
    h.write(file, lines("gate", 100)); // several sealed batches of ~1 KiB
    await until(() => persistCalls === 1, "the first batch acknowledged");
    const sent = loki.requests.length;
    expect(sent).toBe(1);
    expect(acks.length).toBeGreaterThan(0);
    // Held: while the positions write is pending, nothing more goes out.
    await new Promise((r) => setTimeout(r, 200));
    expect(loki.requests.length).toBe(sent);
    release?.();
    await until(() => persistCalls === 2, "the second batch acknowledged");
    expect(loki.requests.length).toBe(2);
    // A positions write that fails is reported and does not wedge the pipeline.
    failing = true;
    release?.();
    expect(await p.drain(Date.now() + 20_000)).toBe(true);
    expect(h.logs.some((l) => l.msg === "acknowledgement listener failed to persist")).toBe(true);
    await p.close();
    expect(loki.entries.map((e) => e.line)).toEqual(lines("gate", 100));
  });

  it("a positions write that never finishes does not hold drain's deadline or close()", async () => {
    let persistCalls = 0;
    const h = harness(loki, {
      batchMaxBytes: 1024,
      ack: {
        acknowledged: () => {},
        persisted: () => {
          persistCalls++;
          return new Promise<void>(() => {}); // a hung state volume
        },
      },
    });
    const p = h.pipeline;
    p.start();
    h.write({ id: "f", path: "/shared/logs/app.log" }, lines("hung", 100));
    await until(() => persistCalls === 1, "the first batch acknowledged");
    const t0 = Date.now();
    expect(await p.drain(Date.now() + 300)).toBe(false);
    await p.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(loki.requests.length).toBe(1);
  });

  it("pauses readers at MAX_BUFFER_BYTES while Loki is down, then delivers everything once, in order", async () => {
    loki.setFault({ kind: "status", status: 503 });
    const h = harness(loki, { maxBufferBytes: 20_000, batchMaxBytes: 4096, retryMinMs: 10, retryMaxMs: 50 });
    const p = h.pipeline;
    p.start();
    const file: SourceFile = { id: "f", path: "/shared/logs/app.log" };
    let drains = 0;
    p.onDrain(() => drains++);

    // A reader: writes while canAccept(), one line at a time.
    const all = lines("bp", 2000);
    let next = 0;
    const pump = () => {
      while (next < all.length && p.canAccept()) h.write(file, [all[next++] as string]);
    };
    pump();
    expect(p.canAccept()).toBe(false);
    const stalledAt = next;
    expect(stalledAt).toBeLessThan(all.length);
    // The bound holds (one line of overshoot at most) and stays put during the outage.
    expect(p.pendingBytes).toBeGreaterThanOrEqual(20_000);
    expect(p.pendingBytes).toBeLessThan(20_000 + 100);
    await until(() => loki.requests.length >= 5, "some failed attempts");
    expect(await metric(h.registry, "log_shipper_pending_bytes")).toBe(p.pendingBytes);
    expect(p.stats().queuedBatches).toBeLessThanOrEqual(Math.ceil(20_100 / 3000));
    expect(h.acks).toEqual([]);
    expect(drains).toBe(0);

    // Loki is back: acknowledgements make room, the reader continues from onDrain.
    p.onDrain(pump);
    loki.setFault(undefined);
    await until(() => next === all.length, "the reader to finish");
    expect(await p.drain(Date.now() + 20_000)).toBe(true);
    await p.close();
    expect(drains).toBeGreaterThan(0);
    expect(loki.entries.map((e) => e.line)).toEqual(all);
    expect(p.pendingBytes).toBe(0);
    expect(h.acked("f")).toBe(all.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0));
    expect(p.stats()).toMatchObject({
      linesSent: all.length,
      pendingBytes: 0,
      queuedBatches: 0,
      consecutiveFailures: 0,
    });
    expect(p.stats().retries).toBeGreaterThanOrEqual(5);
  });

  it("past the bound, the rest of a reader's chunk still goes into full batches (not one per line)", async () => {
    // A reader checks canAccept() per chunk, so a chunk's remaining lines arrive above the bound.
    loki.setFault({ kind: "slow", delayMs: 200, times: 1 });
    const h = harness(loki, { maxBufferBytes: 20_000, batchMaxBytes: 4096, batchWaitMs: 50 });
    h.pipeline.start();
    const file: SourceFile = { id: "f", path: "/l/a.log" };
    h.write(file, lines("first", 10));
    h.pipeline.flush(); // in flight (slow) while the chunk below is written
    await until(() => loki.requests.length > 0 || h.pipeline.stats().queuedBatches > 0, "the first batch");
    const burst = lines("burst", 600); // ~36 KB, well past maxBufferBytes
    h.write(file, burst);
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries.map((e) => e.line)).toEqual([...lines("first", 10), ...burst]);
    const burstBytes = burst.reduce((n, l) => n + l.length + 20, 0);
    expect(loki.requests.length).toBeLessThanOrEqual(Math.ceil(burstBytes / 4096) + 3);
  });

  it("keeps per-file order and acknowledges in increasing offsets across batches, files and retries", async () => {
    const h = harness(loki, { batchMaxBytes: 2048, retryMinMs: 5, retryMaxMs: 20 });
    const p = h.pipeline;
    p.start();
    const files: SourceFile[] = [0, 1, 2].map((i) => ({ id: `id-${i}`, path: `/shared/logs/f${i}.log` }));
    const expected = new Map<string, string[]>();
    for (let round = 0; round < 30; round++) {
      if (round % 7 === 3) loki.setFault({ kind: "status", status: 503, times: 2 });
      if (round % 11 === 5) loki.setFault({ kind: "reset", times: 1 });
      for (const f of files) {
        const ls = Array.from(
          { length: 1 + ((round * 7 + f.id.length) % 13) },
          (_, i) => `${f.id} r${round} n${i}`,
        );
        h.write(f, ls);
        expected.set(f.id, [...(expected.get(f.id) ?? []), ...ls]);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await p.drain(Date.now() + 30_000)).toBe(true);
    await p.close();
    for (const f of files) {
      const got = loki.entries.filter((e) => e.labels.filename === f.path).map((e) => e.line);
      expect(got).toEqual(expected.get(f.id));
      const offs = h.acks.filter((a) => a.fileId === f.id).map((a) => a.offset);
      expect(offs).toEqual([...offs].sort((a, b) => a - b));
      expect(new Set(offs).size).toBe(offs.length);
    }
    expect(loki.requests.filter((r) => r.status === 204).length).toBeGreaterThan(3);
  });

  it("bodies whose memory is reused arrive intact across retries, resets and splits (issue 12)", async () => {
    // Lines snappy cannot shrink much, so every body is large enough to come from the encoder's
    // spares (≥ 16 KiB); written at once, so batches queue behind the one in flight. A body given
    // back too early (before its batch is done) would be overwritten by a later batch's bytes.
    const h = harness(loki, { batchMaxBytes: 32 * 1024, retryMinMs: 5, retryMaxMs: 20 });
    const p = h.pipeline;
    p.start();
    let x = 12345;
    const word = () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return x.toString(36);
    };
    const file: SourceFile = { id: "big", path: "/shared/logs/big.log" };
    const all: string[] = [];
    for (let round = 0; round < 12; round++) {
      if (round === 2) loki.setFault({ kind: "status", status: 503, times: 3 });
      if (round === 5) loki.setFault({ kind: "reset", times: 2 });
      if (round === 8) loki.setPoison(`poison-${round}`);
      const ls = Array.from({ length: 400 }, (_, i) =>
        [
          round === 8 && i === 123 ? `poison-${round}` : `r${round} n${i}`,
          ...Array.from({ length: 12 }, word),
        ].join(" "),
      );
      h.write(file, ls);
      all.push(...ls);
      await new Promise((r) => setTimeout(r, round % 3 === 0 ? 30 : 0));
    }
    expect(await p.drain(Date.now() + 30_000)).toBe(true);
    await p.close();
    const got = loki.entries.map((e) => e.line);
    expect(got).toEqual(all.filter((l) => !l.startsWith("poison-")));
    expect(loki.requests.some((r) => r.status === 400)).toBe(true); // the split path ran
    expect(loki.requests.filter((r) => r.status === 204).length).toBeGreaterThan(20);
  });

  it("repeated lines without a time of their own all survive Loki's duplicate drop (JSON and protobuf)", async () => {
    for (const encoding of ["protobuf", "json"] as const) {
      const h = harness(loki, { encoding, batchMaxBytes: 1024 });
      const f: SourceFile = { id: `rep-${encoding}`, path: `/shared/logs/rep-${encoding}.log` };
      // A 1 MiB chunk's lines all carry its read time: blank lines and a repeated message, plus
      // a pino line the app wrote twice in the same millisecond.
      const readTime = 1_700_000_000_000;
      const ls: string[] = Array.from({ length: 300 }, (_, i) =>
        i % 3 === 0 ? "" : "connection refused, retrying",
      );
      ls.push(
        '{"level":30,"time":1700000000000,"msg":"twice"}',
        '{"level":30,"time":1700000000000,"msg":"twice"}',
      );
      h.write(f, ls, readTime);
      h.write(f, ["", "connection refused, retrying"], readTime); // the next chunk, same millisecond
      h.pipeline.start();
      expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
      await h.pipeline.close();
      const got = loki.entries.filter((e) => e.labels.filename === f.path).map((e) => e.line);
      expect(loki.deduplicated, encoding).toBe(0);
      expect(got.sort()).toEqual([...ls, "", "connection refused, retrying"].sort());
    }
  });

  it("drain(deadline) gives up at the deadline while Loki is down: false, nothing acknowledged, no more requests", async () => {
    loki.setFault({ kind: "status", status: 503 });
    const h = harness(loki, { retryMinMs: 20, retryMaxMs: 40 });
    const p = h.pipeline;
    p.start();
    h.write({ id: "f", path: "/l/a.log" }, lines("d", 10));
    const t0 = Date.now();
    expect(await p.drain(t0 + 400)).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect(h.acks).toEqual([]);
    expect(p.pendingBytes).toBeGreaterThan(0);
    // The request in flight at the deadline is aborted, but its bytes may already be on the
    // socket: with both cores busy the receiver can record it after drain() returned. Retrying
    // every 20–40 ms for 500 ms would add many more than that one.
    const seen = loki.requests.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(loki.requests.length).toBeLessThanOrEqual(seen + 1); // retrying stopped
    await p.close();
    await p.close(); // idempotent
  });

  it("drain aborts a request stuck past the deadline", async () => {
    loki.setFault({ kind: "slow", delayMs: 10_000 });
    const h = harness(loki, { timeoutMs: 30_000 });
    h.pipeline.start();
    h.write({ id: "f", path: "/l/a.log" }, lines("s", 3));
    const t0 = Date.now();
    expect(await h.pipeline.drain(t0 + 300)).toBe(false);
    await h.pipeline.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(h.acks).toEqual([]);
  });

  it("sends nothing before start() and everything after it; drain with nothing pending is immediate", async () => {
    const h = harness(loki);
    expect(await h.pipeline.drain(Date.now() + 1000)).toBe(true);
    h.write({ id: "f", path: "/l/a.log" }, lines("s", 3));
    await new Promise((r) => setTimeout(r, 150)); // past batchWaitMs: sealed but not sent
    expect(loki.requests).toHaveLength(0);
    expect(h.pipeline.stats().queuedBatches).toBe(1);
    h.pipeline.start();
    await loki.waitForEntries(3, 10_000);
    expect(await h.pipeline.drain(Date.now() + 5000)).toBe(true);
    await h.pipeline.close();
    expect(h.acks).toHaveLength(1);
  });

  it("close() during a retry wait returns promptly and later writes are ignored", async () => {
    loki.setFault({ kind: "status", status: 503 });
    const h = harness(loki, { retryMinMs: 60_000, retryMaxMs: 60_000 });
    h.pipeline.start();
    h.write({ id: "f", path: "/l/a.log" }, lines("c", 2));
    h.pipeline.flush();
    await until(() => loki.requests.length === 1, "the first attempt");
    const t0 = Date.now();
    await h.pipeline.close();
    expect(Date.now() - t0).toBeLessThan(10_000); // promptly: the retry wait it must not sit out is 60 s
    const pending = h.pipeline.pendingBytes;
    h.write({ id: "f", path: "/l/a.log" }, lines("late", 2));
    expect(h.pipeline.pendingBytes).toBe(pending);
    expect(await h.pipeline.drain(Date.now() + 100)).toBe(false);
  });

  it("close() while a drain waits makes the drain resolve false at once", async () => {
    loki.setFault({ kind: "status", status: 503 });
    const h = harness(loki, { retryMinMs: 60_000, retryMaxMs: 60_000 });
    h.pipeline.start();
    h.write({ id: "f", path: "/l/a.log" }, lines("w", 2));
    const t0 = Date.now();
    const drained = h.pipeline.drain(t0 + 30_000);
    await until(() => loki.requests.length === 1, "the first attempt");
    await h.pipeline.close();
    expect(await drained).toBe(false);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("dry run prints readable batches to the given stream and acknowledges them", async () => {
    const out = new PassThrough();
    let printed = "";
    out.on("data", (d) => {
      printed += d;
    });
    const h = harness(undefined, { dryRunOut: out, podLabels: { pod: "p-1", namespace: "ns" } });
    expect(h.pipeline.dryRun).toBe(true);
    h.pipeline.start();
    const end = h.write({ id: "f", path: "/shared/logs/app.log.1" }, [
      '{"level":50,"time":1700000000000,"msg":"boom"}',
      "plain",
    ]);
    expect(await h.pipeline.drain(Date.now() + 5000)).toBe(true);
    await h.pipeline.close();
    expect(h.acks).toEqual([{ fileId: "f", offset: end }]);
    const entries = printed
      .trim()
      .split("\n")
      .map((l) => parseDryRunLine(l));
    expect(entries).toHaveLength(2);
    expect(entries).toContainEqual({
      ts: "2023-11-14T22:13:20.000000000Z",
      labels: { pod: "p-1", namespace: "ns", job: "test", filename: "/shared/logs/app.log", level: "error" },
      line: '{"level":50,"time":1700000000000,"msg":"boom"}',
    });
    expect(entries.map((e) => e?.line)).toContain("plain");
    expect(await metric(h.registry, "log_shipper_sent_lines_total")).toBe(2);
  });

  it("reports stats and last-success time", async () => {
    const h = harness(loki);
    h.pipeline.start();
    const before = Date.now();
    h.write({ id: "f", path: "/l/a.log" }, ["abc", "de"]);
    expect(h.pipeline.pendingBytes).toBe(7);
    expect(await h.pipeline.drain(Date.now() + 5000)).toBe(true);
    await h.pipeline.close();
    const s = h.pipeline.stats();
    expect(s).toMatchObject({
      linesSent: 2,
      bytesSent: 5,
      batchesSent: 1,
      retries: 0,
      batchesDropped: 0,
      pendingBytes: 0,
    });
    expect(s.lastSuccessMs).toBeGreaterThanOrEqual(before);
    expect(await metric(h.registry, "log_shipper_last_success_timestamp_seconds")).toBeCloseTo(
      s.lastSuccessMs / 1000,
      2,
    );
    expect(await metric(h.registry, "log_shipper_sent_bytes_total")).toBe(5);
  });

  it("refuses an unreadable LOKI_CA_FILE at construction with a clear message", () => {
    expect(() => harness(loki, { caFile: "/nonexistent/ca.pem" })).toThrow(
      /LOKI_CA_FILE=\/nonexistent\/ca.pem/,
    );
  });
});
