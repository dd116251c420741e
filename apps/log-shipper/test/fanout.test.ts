// The fan-out (issue 9, items 5–8): one read, every destination its own pipeline and its own
// acknowledged offsets. Two real pipelines, each pushing to its own fake Loki (the second one
// under another destination name), so each receiver sees exactly what its destination got.
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SourceFile } from "../src/contracts.js";
import { FanOut, type WhenFull } from "../src/fanout.js";
import { Pipeline } from "../src/pipeline.js";
import { createSinkMetrics } from "../src/sink-metrics.js";
import type { SinkName } from "../src/sinks/sink.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { lines, lokiSinkNamed, metric, until } from "./support/loki-harness.js";

interface Setup {
  fanout: FanOut;
  registry: Registry;
  /** What the source side was told: (file, committed offset, ahead). */
  commits: { fileId: string; offset: number; ahead: Readonly<Record<string, number>> | undefined }[];
  logs: Record<string, unknown>[];
  write(file: SourceFile, ls: string[], readTimeMs?: number): number;
  committed(fileId: string): number;
}

function setup(
  dests: { loki: FakeLoki; name: SinkName; whenFull?: WhenFull }[],
  maxBufferBytes = 1 << 20,
  tracked = false,
): Setup {
  const registry = new Registry();
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: "debug" },
    new Writable({
      write(chunk, _e, cb) {
        for (const l of String(chunk).split("\n")) if (l) logs.push(JSON.parse(l));
        cb();
      },
    }),
  );
  const metrics = createSinkMetrics(registry);
  const commits: Setup["commits"] = [];
  const fanout = new FanOut({
    ack: { acknowledged: (fileId, offset, ahead) => commits.push({ fileId, offset, ahead }) },
    logger,
    metrics,
    tracked,
  });
  for (const d of dests) {
    fanout.add(
      new Pipeline({
        sink: lokiSinkNamed(d.loki, d.name),
        timeoutMs: 5000,
        retryMinMs: 20,
        retryMaxMs: 100,
        batchWaitMs: 20,
        batchMaxBytes: 16 * 1024,
        maxBufferBytes,
        staticLabels: { job: "test" },
        registry,
        metrics,
        logger,
        ack: fanout.listenerFor(d.name),
        random: () => 0.5,
      }),
      d.whenFull ?? "block",
    );
  }
  const offsets = new Map<string, number>();
  return {
    fanout,
    registry,
    commits,
    logs,
    write(file, ls, readTimeMs = Date.now()) {
      const chunk = Buffer.from(ls.map((l) => `${l}\n`).join(""));
      let pos = 0;
      let offset = offsets.get(file.id) ?? 0;
      for (const l of ls) {
        const len = Buffer.byteLength(l);
        offset += len + 1;
        fanout.writeLine(file, chunk, pos, pos + len, offset, false, readTimeMs);
        pos += len + 1;
      }
      offsets.set(file.id, offset);
      return offset;
    },
    committed(fileId) {
      let max = -1;
      for (const c of commits) if (c.fileId === fileId) max = Math.max(max, c.offset);
      return max;
    },
  };
}

const received = (loki: FakeLoki, path: string) =>
  loki.entries
    .filter((e) => e.labels.filename === path)
    .map((e) => e.line)
    .sort();

let a: FakeLoki;
let b: FakeLoki;
beforeEach(async () => {
  a = await startFakeLoki();
  b = await startFakeLoki();
});
afterEach(async () => {
  await a.close();
  await b.close();
});

describe("FanOut", () => {
  it("gives every destination every line exactly once, and commits what both have", async () => {
    const s = setup([
      { loki: a, name: "loki" },
      { loki: b, name: "otlp" },
    ]);
    s.fanout.start();
    const f = { id: "f/1", path: "/l/a.log" };
    const g = { id: "g/1", path: "/l/b.log" };
    const want = lines("x", 300);
    s.write(f, want.slice(0, 150));
    const endG = s.write(g, lines("g", 40));
    const end = s.write(f, want.slice(150));
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    expect(received(a, f.path)).toEqual([...want].sort());
    expect(received(b, f.path)).toEqual([...want].sort());
    expect(received(b, g.path)).toHaveLength(40);
    expect(s.committed(f.id)).toBe(end);
    expect(s.committed(g.id)).toBe(endG);
    // Commits only move forward per file.
    const perFile = s.commits.filter((c) => c.fileId === f.id).map((c) => c.offset);
    expect(perFile).toEqual([...perFile].sort((x, y) => x - y));
    expect(await metric(s.registry, "log_shipper_sent_lines_total", { destination: "loki" })).toBe(340);
    expect(await metric(s.registry, "log_shipper_sent_lines_total", { destination: "otlp" })).toBe(340);
    await s.fanout.close();
  });

  it("a destination that is down holds its own backlog: the other ships everything, commits wait for the slow one", async () => {
    b.setFault({ kind: "status", status: 503 });
    const s = setup([
      { loki: a, name: "loki" },
      { loki: b, name: "otlp" },
    ]);
    s.fanout.start();
    const f = { id: "f/1", path: "/l/a.log" };
    const want = lines("d", 200);
    const end = s.write(f, want);
    s.fanout.flush();
    await until(() => a.entries.length === 200, "loki to get every line while otlp is down");
    await until(() => b.requests.length >= 3, "otlp to be retried");
    // Nothing is committed: otlp has none of it. The offsets loki has travel as `ahead`.
    expect(s.committed(f.id)).toBe(-1);
    expect(s.fanout.canAccept()).toBe(true); // its backlog is far below MAX_BUFFER_BYTES
    b.setFault(undefined);
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    expect(received(a, f.path)).toEqual([...want].sort());
    expect(received(b, f.path)).toEqual([...want].sort());
    expect(s.committed(f.id)).toBe(end);
    await s.fanout.close();
  });

  it("reports the offsets of a destination further on as `ahead` until the other catches up", async () => {
    b.setFault({ kind: "status", status: 503 });
    const s = setup([
      { loki: a, name: "loki" },
      { loki: b, name: "otlp" },
    ]);
    s.fanout.start();
    const f = { id: "f/1", path: "/l/a.log" };
    const mid = s.write(f, lines("p", 20));
    s.fanout.flush();
    await until(() => a.entries.length === 20, "loki to take the first part");
    b.setFault(undefined);
    await until(() => s.committed(f.id) === mid, "otlp to catch up");
    b.setFault({ kind: "status", status: 503 });
    const end = s.write(f, lines("q", 20));
    s.fanout.flush();
    await until(() => a.entries.length === 40, "loki to take the second part");
    await until(
      () => s.commits.some((c) => c.fileId === f.id && c.offset === mid && c.ahead?.loki === end),
      "a commit at otlp's offset carrying loki's",
    );
    b.setFault(undefined);
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    const last = s.commits.filter((c) => c.fileId === f.id).at(-1);
    expect(last).toEqual({ fileId: f.id, offset: end, ahead: {} });
    await s.fanout.close();
  });

  it("back-pressures on a lossless destination at MAX_BUFFER_BYTES", async () => {
    b.setFault({ kind: "status", status: 503 });
    const s = setup(
      [
        { loki: a, name: "loki" },
        { loki: b, name: "otlp" },
      ],
      64 * 1024,
    );
    s.fanout.start();
    const f = { id: "f/1", path: "/l/a.log" };
    let written = 0;
    while (s.fanout.canAccept() && written < 10_000) {
      s.write(f, lines(`w${written}`, 10));
      written += 10;
    }
    expect(s.fanout.canAccept()).toBe(false);
    expect(s.fanout.pendingBytes).toBeGreaterThanOrEqual(64 * 1024);
    let drained = false;
    s.fanout.onDrain(() => {
      drained = true;
    });
    b.setFault(undefined);
    await until(() => drained, "room again once otlp is back");
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    expect(a.entries.length).toBe(written);
    expect(b.entries.length).toBe(written);
    await s.fanout.close();
  });

  it("WHEN_FULL=drop: a full best-effort destination loses lines alone, counted and logged; reading never waits for it", async () => {
    b.setFault({ kind: "status", status: 503 });
    const s = setup(
      [
        { loki: a, name: "loki" },
        { loki: b, name: "otlp", whenFull: "drop" },
      ],
      64 * 1024,
    );
    s.fanout.start();
    const f = { id: "f/1", path: "/l/a.log" };
    let written = 0;
    for (let i = 0; i < 200; i++) {
      expect(s.fanout.canAccept()).toBe(true);
      s.write(f, lines(`w${i}`, 10));
      written += 10;
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => a.entries.length === written, "loki to get every line");
    const dropped = await metric(s.registry, "log_shipper_dropped_lines_total", {
      destination: "otlp",
      reason: "buffer_full",
    });
    expect(dropped).toBeGreaterThan(0);
    expect(s.logs.some((l) => String(l.msg).includes("best-effort"))).toBe(true);
    b.setFault(undefined);
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    // otlp got every line it did not drop, once each.
    expect(b.entries.length).toBe(written - dropped);
    expect(new Set(b.entries.map((e) => e.line)).size).toBe(b.entries.length);
    // Once otlp has nothing in flight, the commit reaches the end.
    expect(s.committed(f.id)).toBe(s.write(f, []));
    await s.fanout.close();
  });

  it("begin with ahead offsets: a destination that was ahead is not sent those lines again", async () => {
    const s = setup([
      { loki: a, name: "loki" },
      { loki: b, name: "otlp" },
    ]);
    s.fanout.start();
    const f = { id: "f/2", path: "/l/a.log" };
    const first = lines("r", 10);
    const firstEnd = first.reduce((n, l) => n + l.length + 1, 0);
    s.fanout.begin(f, 0, { loki: firstEnd });
    s.write(f, first);
    const end = s.write(f, lines("s", 10));
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    expect(a.entries.map((e) => e.line).sort()).toEqual(lines("s", 10).sort());
    expect(b.entries).toHaveLength(20);
    expect(s.committed(f.id)).toBe(end);
    await s.fanout.close();
  });

  it("begin with ahead offsets: that destination's saved offset is reported as `ahead`, once, not each line read", async () => {
    const s = setup([
      { loki: a, name: "loki" },
      { loki: b, name: "otlp" },
    ]);
    const f = { id: "f/3", path: "/l/a.log" };
    const first = lines("t", 50);
    const firstEnd = first.reduce((n, l) => n + l.length + 1, 0);
    s.fanout.begin(f, 0, { loki: firstEnd });
    s.write(f, first.slice(0, 30)); // skipped for loki, in flight to otlp
    // Loki has its saved offset all along (not the 30 lines read since): one report, not 30.
    expect(s.commits.filter((c) => c.fileId === f.id)).toEqual([
      { fileId: f.id, offset: 0, ahead: { loki: firstEnd } },
    ]);
    await s.fanout.close();
  });

  it("begin with ahead offsets: once the other destination catches up, the commit moves past the saved offset", async () => {
    const s = setup([
      { loki: a, name: "loki" },
      { loki: b, name: "otlp" },
    ]);
    s.fanout.start();
    const f = { id: "f/4", path: "/l/a.log" };
    const first = lines("v", 50);
    const firstEnd = first.reduce((n, l) => n + l.length + 1, 0);
    s.fanout.begin(f, 0, { loki: firstEnd });
    s.write(f, first);
    const end = s.write(f, lines("w", 10));
    expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
    expect(a.entries.map((e) => e.line).sort()).toEqual(lines("w", 10).sort());
    expect(b.entries).toHaveLength(60);
    const mine = s.commits.filter((c) => c.fileId === f.id);
    // Loki is never reported as having less than its saved offset.
    for (const c of mine) expect(Math.max(c.offset, c.ahead?.loki ?? -1)).toBeGreaterThanOrEqual(firstEnd);
    expect(mine.at(-1)).toEqual({ fileId: f.id, offset: end, ahead: {} });
    await s.fanout.close();
  });

  describe("shared batching: lines batched once, each sealed batch handed to every destination", () => {
    /** What each destination's pipeline is given: lines (its own batcher) or sealed batches. */
    function spy(s: Setup) {
      const given = s.fanout.destinations.map(() => ({ lines: 0, batches: [] as number[] }));
      // biome-ignore lint/suspicious/noExplicitAny: reaching the pipelines the fan-out holds
      const dests = (s.fanout as any).dests as { pipeline: Pipeline }[];
      dests.forEach((d, i) => {
        const g = given[i] as (typeof given)[number];
        const writeLine = d.pipeline.writeLine.bind(d.pipeline);
        vi.spyOn(d.pipeline, "writeLine").mockImplementation((...args) => {
          g.lines++;
          writeLine(...args);
        });
        const enqueue = d.pipeline.enqueue.bind(d.pipeline);
        vi.spyOn(d.pipeline, "enqueue").mockImplementation((batch) => {
          g.batches.push(batch.lines);
          enqueue(batch);
        });
      });
      return given;
    }

    it("every destination gets every sealed batch once, none of them line by line", async () => {
      const c = await startFakeLoki();
      try {
        const s = setup([
          { loki: a, name: "loki" },
          { loki: b, name: "otlp" },
          { loki: c, name: "elasticsearch" },
        ]);
        const given = spy(s);
        s.fanout.start();
        const f = { id: "f/1", path: "/l/a.log" };
        const g = { id: "g/1", path: "/l/b.log" };
        const want = lines("x", 500);
        s.write(f, want.slice(0, 250));
        const endG = s.write(g, lines("g", 60));
        const end = s.write(f, want.slice(250));
        expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
        for (const loki of [a, b, c]) {
          expect(received(loki, f.path)).toEqual([...want].sort());
          expect(received(loki, g.path)).toHaveLength(60);
        }
        expect(given.map((x) => x.lines)).toEqual([0, 0, 0]);
        const batches = (given[0] as (typeof given)[number]).batches;
        expect(batches.length).toBeGreaterThan(1); // 16 KiB batches
        expect(batches.reduce((n, x) => n + x, 0)).toBe(560);
        expect(given.map((x) => x.batches)).toEqual([batches, batches, batches]);
        expect(s.committed(f.id)).toBe(end);
        expect(s.committed(g.id)).toBe(endG);
        for (const name of ["loki", "otlp", "elasticsearch"]) {
          expect(await metric(s.registry, "log_shipper_sent_lines_total", { destination: name })).toBe(560);
        }
        await s.fanout.close();
      } finally {
        await c.close();
      }
    });

    it("the open shared batch counts in every destination's pending bytes (back-pressure, gauges)", async () => {
      const s = setup([
        { loki: a, name: "loki" },
        { loki: b, name: "otlp" },
      ]);
      const f = { id: "f/1", path: "/l/a.log" };
      const end = s.write(f, lines("o", 20)); // far below a 16 KiB batch: still open
      expect(s.fanout.pendingBytes).toBe(end);
      for (const d of s.fanout.destinationStats()) expect(d.pendingBytes).toBe(end);
      expect(await metric(s.registry, "log_shipper_pending_bytes", { destination: "otlp" })).toBe(end);
      expect(
        await metric(s.registry, "log_shipper_open_batch_bytes", { destination: "otlp" }),
      ).toBeGreaterThan(end);
      await s.fanout.close();
    });

    it("WHEN_FULL=drop: a full best-effort destination takes none of a sealed batch, counted by its lines", async () => {
      b.setFault({ kind: "status", status: 503 });
      const s = setup(
        [
          { loki: a, name: "loki" },
          { loki: b, name: "otlp", whenFull: "drop" },
        ],
        32 * 1024,
      );
      s.fanout.start();
      const f = { id: "f/1", path: "/l/a.log" };
      // Groups of 10 lines, each sealed as one batch (about 500 bytes: far below BATCH_MAX_BYTES).
      const groups = 120;
      for (let i = 0; i < groups; i++) {
        expect(s.fanout.canAccept()).toBe(true);
        s.write(f, lines(`w${i}`, 10));
        s.fanout.flush();
        if (i % 10 === 9) await until(() => a.entries.length === (i + 1) * 10, "loki to catch up");
      }
      await until(() => a.entries.length === groups * 10, "loki to get every line");
      const dropped = await metric(s.registry, "log_shipper_dropped_lines_total", {
        destination: "otlp",
        reason: "buffer_full",
      });
      expect(dropped).toBeGreaterThan(0);
      expect(dropped % 10).toBe(0);
      const otlpStats = s.fanout.destinationStats().find((d) => d.destination === "otlp");
      expect(otlpStats?.linesDroppedFull).toBe(dropped);
      expect(s.logs.filter((l) => String(l.msg).includes("best-effort")).length).toBe(1); // rate-limited
      b.setFault(undefined);
      expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
      // otlp has whole groups only (each batch all or nothing), once each.
      const got = new Map<string, number>();
      for (const e of b.entries) {
        const group = (JSON.parse(e.line) as { msg: string }).msg.split("-")[0] as string;
        got.set(group, (got.get(group) ?? 0) + 1);
      }
      for (const [group, n] of got) expect(n, group).toBe(10);
      expect(b.entries.length).toBe(groups * 10 - dropped);
      expect(s.committed(f.id)).toBe(s.write(f, []));
      await s.fanout.close();
    });

    it("after a restart with a destination ahead: lines go through each destination's batcher until it caught up, then shared; none twice, none lost, in order", async () => {
      const s = setup([
        { loki: a, name: "loki" },
        { loki: b, name: "otlp" },
      ]);
      const given = spy(s);
      s.fanout.start();
      const f = { id: "f/5", path: "/l/a.log" };
      const g = { id: "g/5", path: "/l/b.log" };
      const first = lines("r", 30);
      const firstEnd = first.reduce((n, l) => n + l.length + 1, 0);
      s.fanout.begin(f, 0, { loki: firstEnd });
      s.fanout.begin(g, 0);
      s.write(g, lines("g1", 5));
      s.write(f, first.slice(0, 20));
      s.write(g, lines("g2", 5));
      s.write(f, first.slice(20)); // the last line loki has: every file caught up
      const perDest = given.map((x) => x.lines);
      expect(perDest).toEqual([10, 40]); // loki skipped f's 30 lines
      s.write(g, lines("g3", 5));
      const end = s.write(f, lines("s", 10));
      expect(given.map((x) => x.lines)).toEqual(perDest); // shared from here on
      expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
      const inOrder = (loki: FakeLoki, path: string) =>
        loki.entries.filter((e) => e.labels.filename === path).map((e) => e.line);
      expect(inOrder(a, f.path)).toEqual(lines("s", 10));
      expect(inOrder(b, f.path)).toEqual([...first, ...lines("s", 10)]);
      const gAll = [...lines("g1", 5), ...lines("g2", 5), ...lines("g3", 5)];
      expect(inOrder(a, g.path)).toEqual(gAll);
      expect(inOrder(b, g.path)).toEqual(gAll);
      expect(s.committed(f.id)).toBe(end);
      const mine = s.commits.filter((c) => c.fileId === f.id);
      for (const c of mine) expect(Math.max(c.offset, c.ahead?.loki ?? -1)).toBeGreaterThanOrEqual(firstEnd);
      await s.fanout.close();
    });

    it("a reader that was skipping and ends before it caught up (truncated, replaced) lets batching be shared again", async () => {
      const s = setup([
        { loki: a, name: "loki" },
        { loki: b, name: "otlp" },
      ]);
      const given = spy(s);
      s.fanout.start();
      const f = { id: "f/8", path: "/l/a.log" };
      s.fanout.begin(f, 0, { loki: 100_000 }); // loki had far more of the file before the restart
      s.write(f, lines("x", 5)); // …but the file is truncated before this reader gets there
      expect(given.map((x) => x.lines)).toEqual([0, 5]);
      s.fanout.end(f); // the tailer retires the reader
      const f2 = { id: "f/9", path: "/l/a.log" }; // the file's next reader
      s.fanout.begin(f2, 0);
      s.write(f2, lines("y", 20));
      const g = { id: "g/8", path: "/l/b.log" };
      s.fanout.begin(g, 0);
      s.write(g, lines("g", 20));
      expect(given.map((x) => x.lines)).toEqual([0, 5]); // batched once from the end on
      expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
      expect(received(a, f.path)).toEqual(lines("y", 20).sort());
      expect(received(b, f.path)).toEqual([...lines("x", 5), ...lines("y", 20)].sort());
      expect(received(a, g.path)).toEqual(lines("g", 20).sort());
      expect(given.map((x) => x.batches.reduce((n, k) => n + k, 0))).toEqual([40, 40]);
      await s.fanout.close();
    });

    it("switching modes seals the other mode's open batch first: per-file order holds in every destination", async () => {
      const s = setup([
        { loki: a, name: "loki" },
        { loki: b, name: "otlp" },
      ]);
      const g = { id: "g/6", path: "/l/b.log" };
      const f = { id: "f/6", path: "/l/a.log" };
      // Nothing is sent before start(): the order below is the order of the queues.
      s.write(g, lines("g1", 5)); // shared open batch
      const skipTo = lines("r", 3).reduce((n, l) => n + l.length + 1, 0);
      s.fanout.begin(f, 0, { otlp: skipTo }); // a reader resumes with otlp ahead: per destination
      s.write(g, lines("g2", 5)); // each destination's own open batch
      s.write(f, lines("r", 3)); // otlp caught up: shared again
      s.write(g, lines("g3", 5)); // shared open batch
      s.fanout.begin(f, skipTo, { loki: skipTo + 50 }); // and per destination again
      s.write(g, lines("g4", 5));
      s.fanout.start();
      expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
      const gAll = [...lines("g1", 5), ...lines("g2", 5), ...lines("g3", 5), ...lines("g4", 5)];
      for (const loki of [a, b]) {
        expect(loki.entries.filter((e) => e.labels.filename === g.path).map((e) => e.line)).toEqual(gAll);
      }
      expect(b.entries.filter((e) => e.labels.filename === f.path)).toHaveLength(0);
      expect(a.entries.filter((e) => e.labels.filename === f.path)).toHaveLength(3);
      await s.fanout.close();
    });

    it("identical lines with the same time on both sides of a mode switch all arrive (timestamps stay distinct per stream)", async () => {
      const s = setup([
        { loki: a, name: "loki" },
        { loki: b, name: "otlp" },
      ]);
      s.fanout.start();
      const g = { id: "g/9", path: "/l/b.log" };
      const f = { id: "f/9", path: "/l/a.log" };
      const same = ['{"level":30,"time":1700000000000,"msg":"same"}'];
      const plain = ["same, without a time"];
      // One read time for all: what keeps read-time entries apart is the spread alone.
      const readTime = Date.now();
      const both = () => {
        s.write(g, same, readTime);
        s.write(g, plain, readTime);
      };
      both(); // shared
      const skipTo = lines("r", 2).reduce((n, l) => n + l.length + 1, 0);
      s.fanout.begin(f, 0, { otlp: skipTo });
      both(); // each destination's own batcher
      s.write(f, lines("r", 2), readTime); // shared again
      both();
      s.fanout.begin(f, skipTo, { loki: skipTo + 10 });
      both(); // each destination's own again
      expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
      for (const loki of [a, b]) {
        const got = loki.entries.filter((e) => e.labels.filename === g.path).map((e) => e.line);
        expect(got).toEqual([...same, ...plain, ...same, ...plain, ...same, ...plain, ...same, ...plain]);
        expect(loki.deduplicated).toBe(0);
      }
      await s.fanout.close();
    });

    it("a line skipped (processing stage) after lines still in the open shared batch does not commit past them", async () => {
      const s = setup(
        [
          { loki: a, name: "loki" },
          { loki: b, name: "otlp" },
        ],
        1 << 20,
        true,
      );
      const f = { id: "f/8", path: "/l/a.log" };
      s.fanout.begin(f, 0);
      const end = s.write(f, lines("n", 5)); // in the open batch, handed to no destination yet
      s.fanout.skipLine(f, end + 100);
      expect(s.committed(f.id)).toBeLessThan(end);
      s.fanout.start();
      await until(
        () => s.committed(f.id) === end + 100,
        "the skipped line's offset committed once the rest is acknowledged",
      );
      for (const c of s.commits) if (c.fileId === f.id) expect([0, end + 100]).toContain(c.offset);
      expect(a.entries).toHaveLength(5);
      expect(b.entries).toHaveLength(5);
      await s.fanout.close();
    });

    it("one best-effort destination (no passthrough) and a tracked one batch through the shared batcher too", async () => {
      const s = setup([{ loki: a, name: "loki", whenFull: "drop" }], 1 << 20, true);
      const given = spy(s);
      s.fanout.start();
      const f = { id: "f/7", path: "/l/a.log" };
      s.write(f, lines("t", 10));
      s.fanout.skipLine(f, s.write(f, lines("u", 1)) + 100);
      expect(await s.fanout.drain(Date.now() + 30_000)).toBe(true);
      expect(a.entries).toHaveLength(11);
      expect(given[0]?.lines).toBe(0);
      await until(() => s.committed(f.id) === s.write(f, []) + 100, "the skipped line's offset committed");
      await s.fanout.close();
    });
  });
});
