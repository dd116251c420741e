// The fan-out (issue 9, items 5–8): one read, every destination its own pipeline and its own
// acknowledged offsets. Two real pipelines, each pushing to its own fake Loki (the second one
// under another destination name), so each receiver sees exactly what its destination got.
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
  write(file: SourceFile, ls: string[]): number;
  committed(fileId: string): number;
}

function setup(
  dests: { loki: FakeLoki; name: SinkName; whenFull?: WhenFull }[],
  maxBufferBytes = 1 << 20,
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
    write(file, ls) {
      const chunk = Buffer.from(ls.map((l) => `${l}\n`).join(""));
      let pos = 0;
      let offset = offsets.get(file.id) ?? 0;
      for (const l of ls) {
        const len = Buffer.byteLength(l);
        offset += len + 1;
        fanout.writeLine(file, chunk, pos, pos + len, offset, false, Date.now());
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
});
