// Fan-out through the assembled shipper (tailer, positions, restarts): two destinations, each a
// fake Loki under its own destination name. One is down across a restart: the other gets
// nothing twice (its offsets were saved as `ahead`), the one that was down gets everything once.
// A rotated file closed and found again while a destination still has its lines in flight: read on
// where it stood, so that destination gets them once.
import { appendFileSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { App } from "../src/app.js";
import type { BatchStream, EncodedBody, Sink, SinkName, SinkResult } from "../src/sinks/sink.js";
import { buildTestApp, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { lines, lokiSinkNamed, metric, until } from "./support/loki-harness.js";

/**
 * Destinations that answer together: each request waits until every destination has one waiting
 * (or 10 s passed), then all are answered in one go — their acknowledgements arrive in one turn.
 * Before answering, each checks that the positions file on disk already holds what its previous
 * request acknowledged (the next batch goes out only once that is durable).
 */
function answeringTogether(names: SinkName[], positionsFile: string) {
  const waiting: (() => void)[] = [];
  const state = { rounds: 0, early: [] as string[] };
  const release = () => {
    state.rounds++;
    for (const w of waiting.splice(0)) w();
  };
  let fallback: NodeJS.Timeout | undefined;
  const onDisk = (name: string): number => {
    const f = JSON.parse(readFileSync(positionsFile, "utf8")).files[0];
    return Math.max(f?.offset ?? -1, f?.ahead?.[name] ?? -1);
  };
  const sinks = names.map((name): Sink => {
    const ends = new WeakMap<EncodedBody, number>();
    let acked = -1;
    return {
      name,
      title: name,
      maxOwnSec: Number.MAX_SAFE_INTEGER,
      entryRefs: true,
      encode(streams: readonly BatchStream[]): EncodedBody {
        const body = { body: Buffer.alloc(0), contentType: "application/x-test" };
        let end = -1;
        for (const st of streams) for (const o of st.offsets ?? []) end = Math.max(end, o);
        ends.set(body, end);
        return body;
      },
      async send(body: EncodedBody): Promise<SinkResult> {
        if (acked >= 0 && onDisk(name) < acked) state.early.push(`${name} sent before ${acked} was written`);
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === names.length) {
            clearTimeout(fallback);
            release();
          } else if (waiting.length === 1) {
            fallback = setTimeout(release, 10_000);
          }
        });
        acked = ends.get(body) ?? -1;
        return { kind: "success", status: 204 };
      },
      async close() {},
    };
  });
  return { sinks, state };
}

describe("fan-out in the assembled shipper", () => {
  const open: { app?: App; lokis: FakeLoki[] } = { lokis: [] };
  afterEach(async () => {
    await open.app?.close(Date.now() + 2000);
    for (const l of open.lokis) await l.close();
    open.lokis = [];
    open.app = undefined;
  });

  it("group commit: acknowledgements of several destinations that arrive together cost one positions write, and each is written before that destination sends again", async () => {
    const dirs = tempDirs();
    const file = join(dirs.logs, "app.log");
    const all = lines("together", 300); // ~60 bytes each: about 18 batches of 1 KiB
    writeFileSync(file, all.map((l) => `${l}\n`).join(""));
    const end = all.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    const { sinks, state } = answeringTogether(["loki", "otlp", "elasticsearch"], dirs.positionsFile);
    const app = buildTestApp(
      dirs,
      // Periodic saves out of the way: only acknowledgements make writes here.
      { STATIC_LABELS: "job=test", BATCH_MAX_BYTES: "1024", POSITIONS_SYNC_MS: "600000" },
      undefined,
      { destinations: sinks.map((sink) => ({ sink, whenFull: "block" as const })) },
    );
    open.app = app;
    await app.start();
    const writes = () => metric(app.registry, "log_shipper_positions_saves_total", { result: "ok" });
    await until(() => app.positions.entriesSnapshot()[0]?.offset === end, "every line acknowledged", 30_000);
    let written = -1;
    const deadline = Date.now() + 30_000;
    while (written !== end && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      written = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0]?.offset ?? -1;
    }
    expect(written).toBe(end);
    expect(state.early).toEqual([]);
    expect(state.rounds).toBeGreaterThanOrEqual(10);
    // One write per round of answers (three before: one per destination), plus the file's first
    // sighting and the last acknowledgement's own.
    expect(await writes()).toBeLessThanOrEqual(state.rounds + 2);
  });

  it("a destination down across a restart: the other gets nothing twice, it gets everything once", async () => {
    const dirs = tempDirs();
    const a = await startFakeLoki();
    const b = await startFakeLoki();
    open.lokis.push(a, b);
    const build = () =>
      buildTestApp(dirs, { STATIC_LABELS: "job=test" }, undefined, {
        destinations: [
          { sink: lokiSinkNamed(a, "loki"), whenFull: "block" },
          { sink: lokiSinkNamed(b, "otlp"), whenFull: "block" },
        ],
      });
    const file = join(dirs.logs, "app.log");
    const first = lines("one", 100);
    appendFileSync(file, first.map((l) => `${l}\n`).join(""));
    b.setFault({ kind: "status", status: 503 });
    open.app = build();
    await open.app.start();
    await until(() => a.entries.length === 100, "loki to take the first lines while otlp is down", 30_000);
    const report = await open.app.close(Date.now() + 1500);
    open.app = undefined;
    expect(report.clean).toBe(false);
    expect(report.positionsSaved).toBe(true);
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files;
    expect(saved).toHaveLength(1);
    const end = first.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(saved[0].offset).toBe(0);
    expect(saved[0].ahead).toEqual({ loki: end });

    // Restart with otlp back, and more lines.
    b.setFault(undefined);
    const second = lines("two", 50);
    appendFileSync(file, second.map((l) => `${l}\n`).join(""));
    open.app = build();
    await open.app.start();
    await until(() => b.entries.length >= 150 && a.entries.length >= 150, "both to have every line", 30_000);
    const r2 = await open.app.close(Date.now() + 10_000);
    open.app = undefined;
    expect(r2.clean).toBe(true);
    const all = [...first, ...second].sort();
    expect(a.entries.map((e) => e.line).sort()).toEqual(all);
    expect(b.entries.map((e) => e.line).sort()).toEqual(all);
    const after = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files;
    expect(after[0].offset).toBe(end + second.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0));
    expect(after[0].ahead).toBeUndefined();
  });

  it("a rotated file closed and found again while a destination retries its lines: each gets every line once", async () => {
    const dirs = tempDirs();
    const a = await startFakeLoki();
    const b = await startFakeLoki();
    open.lokis.push(a, b);
    const file = join(dirs.logs, "app.log");
    const first = lines("one", 100);
    appendFileSync(file, first.map((l) => `${l}\n`).join(""));
    b.setFault({ kind: "status", status: 503 }); // holds its lines in flight (retried) until cleared
    const app = buildTestApp(dirs, { STATIC_LABELS: "job=test" }, undefined, {
      destinations: [
        { sink: lokiSinkNamed(a, "loki"), whenFull: "block" },
        { sink: lokiSinkNamed(b, "otlp"), whenFull: "block" },
      ],
    });
    open.app = app;
    await app.start();
    await until(() => a.entries.length === 100, "loki to take the lines while otlp retries", 30_000);
    // Rotated to a name no pattern matches: closed once idle; then renamed to a watched name.
    renameSync(file, join(dirs.logs, "app.old"));
    await until(() => app.tailer.files().every((f) => !f.open), "the rotated file to be closed", 30_000);
    renameSync(join(dirs.logs, "app.old"), `${file}.1`);
    await until(
      () =>
        app.tailer.files().some((f) => f.path === `${file}.1` && f.readPos === statSync(`${file}.1`).size),
      "the file found again and read to its end",
      30_000,
    );
    b.setFault(undefined);
    const second = lines("two", 10);
    appendFileSync(`${file}.1`, second.map((l) => `${l}\n`).join(""));
    await until(() => a.entries.length >= 110 && b.entries.length >= 110, "both to have every line", 30_000);
    const report = await app.close(Date.now() + 10_000);
    open.app = undefined;
    expect(report.clean).toBe(true);
    const all = [...first, ...second].sort();
    expect(a.entries.map((e) => e.line).sort()).toEqual(all);
    expect(b.entries.map((e) => e.line).sort()).toEqual(all);
    expect(a.deduplicated + b.deduplicated).toBe(0);
  });
});
