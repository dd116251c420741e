// The assembled shipper in-process against the fake Loki: lines arrive with their labels,
// /healthz and /readyz (which must not depend on Loki), /metrics from both sides, positions
// committed only on acknowledgement, and the shutdown report with and without Loki.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { App } from "../src/app.js";
import { buildTestApp, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { waitFor } from "./support/source-harness.js";

describe("log shipper app", () => {
  let app: App | undefined;
  let loki: FakeLoki | undefined;
  afterEach(async () => {
    await app?.close(Date.now() + 2000);
    await loki?.close();
    app = undefined;
    loki = undefined;
  });

  it("ships lines with labels, serves probes and metrics, commits acknowledged offsets", async () => {
    const dirs = tempDirs();
    loki = await startFakeLoki();
    const p = join(dirs.logs, "app.log");
    writeFileSync(p, `{"level":30,"time":1700000000000,"msg":"a"}\n{"level":50,"msg":"b"}\nplain\n`);
    app = buildTestApp(dirs, { LOKI_ENDPOINT: loki.url, STATIC_LABELS: "job=test" });
    const before = await app.server.inject({ method: "GET", url: "/readyz" });
    expect(before.statusCode).toBe(503);
    await app.start();
    await loki.waitForEntries(3, 15_000);
    expect(loki.entries.map((e) => e.line)).toEqual([
      `{"level":30,"time":1700000000000,"msg":"a"}`,
      `{"level":50,"msg":"b"}`,
      "plain",
    ]);
    expect(loki.entries[0]?.labels).toMatchObject({ job: "test", filename: p, level: "info" });
    expect(loki.entries[0]?.tsNs).toBe(1700000000000n * 1000000n);

    expect((await app.server.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    expect((await app.server.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);

    const size = readFileSync(p).length;
    await waitFor(() => app?.positions.entriesSnapshot()[0]?.offset === size, "offset committed");
    await waitFor(() => {
      try {
        return JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0].offset === size;
      } catch {
        return false;
      }
    }, "positions file written");

    const m = (await app.server.inject({ method: "GET", url: "/metrics" })).body;
    expect(m).toMatch(/^log_shipper_lines_read_total 3$/m);
    expect(m).toMatch(/^log_shipper_sent_lines_total{destination="loki"} 3$/m);
    expect(m).toMatch(/^log_shipper_files_watched 1$/m);
    expect(m).toContain(`log_shipper_file_lag_bytes{path="${p}"} 0`);
    expect(m).toMatch(/^log_shipper_file_events_total\{event="found"\} 1$/m);
  });

  it("stays ready while Loki fails, and delivers everything once Loki is back", async () => {
    const dirs = tempDirs();
    loki = await startFakeLoki();
    loki.setFault({ kind: "status", status: 503 });
    const p = join(dirs.logs, "app.log");
    app = buildTestApp(dirs, { LOKI_ENDPOINT: loki.url });
    await app.start();
    for (let i = 0; i < 100; i++) appendFileSync(p, `line ${i}\n`);
    await waitFor(() => (loki?.requests.length ?? 0) >= 3, "a few failed pushes");
    expect((await app.server.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    expect(app.positions.entriesSnapshot()[0]?.offset ?? 0).toBe(0); // nothing acknowledged yet
    loki.setFault(undefined);
    await loki.waitForEntries(100, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(loki.entries.map((e) => e.line)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i}`));
  });

  it("shutdown: clean when everything was delivered, not clean (bytes remaining) past the deadline", async () => {
    const dirs = tempDirs();
    loki = await startFakeLoki();
    const p = join(dirs.logs, "app.log");
    app = buildTestApp(dirs, { LOKI_ENDPOINT: loki.url, BATCH_WAIT_MS: "5000" });
    await app.start();
    appendFileSync(p, "one\ntwo\n");
    await waitFor(() => app?.tailer.totals.lines === 2, "2 lines read");
    const report = await app.close(Date.now() + 5000);
    expect(report).toEqual({ clean: true, positionsSaved: true, remainingBytes: 0 });
    expect(loki.entries.map((e) => e.line)).toEqual(["one", "two"]);

    // Loki down: the deadline passes; what was acknowledged is saved, the rest remains.
    loki.setFault({ kind: "status", status: 503 });
    app = buildTestApp(dirs, { LOKI_ENDPOINT: loki.url });
    await app.start();
    appendFileSync(p, "three\n");
    await waitFor(() => app?.tailer.totals.lines === 1, "1 line read");
    const r2 = await app.close(Date.now() + 500);
    expect(r2.clean).toBe(false);
    expect(r2.remainingBytes).toBe(6);
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8"));
    expect(saved.files[0].offset).toBe(8);
    app = undefined;
  });
});
