// The metrics file writer: a first write on start, rewrites on the interval, a last write on
// close, and failures that are counted and logged once instead of crashing or spamming.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Counter, Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MetricsFileWriter } from "../src/metrics-file.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "metrics-file-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: pino({}, { write: (s: string) => void lines.push(JSON.parse(s)) }), lines };
}

async function until(cond: () => boolean, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("MetricsFileWriter", () => {
  it("writes on start, on every interval and a last time on close", async () => {
    const registry = new Registry();
    const c = new Counter({ name: "test_things_total", help: "things", registers: [registry] });
    const path = join(dir, "x.prom");
    const w = new MetricsFileWriter({ registry, path, intervalMs: 100, logger: memoryLogger().logger });
    await w.start();
    expect(readFileSync(path, "utf8")).toContain("test_things_total 0");
    c.inc(5);
    await until(() => readFileSync(path, "utf8").includes("test_things_total 5"), "the interval rewrite");
    c.inc(1);
    await w.close();
    const last = readFileSync(path, "utf8");
    expect(last).toContain("test_things_total 6");
    expect(last).toMatch(/sample_app_metrics_file_writes_total\{result="success"\} \d+/);
    c.inc(1);
    await w.close(); // idempotent: no further write
    expect(readFileSync(path, "utf8")).toBe(last);
  });

  it("counts failed writes and logs each distinct failure once", async () => {
    const registry = new Registry();
    const { logger, lines } = memoryLogger();
    let fail = true;
    const w = new MetricsFileWriter({
      registry,
      path: join(dir, "x.prom"),
      intervalMs: 60_000,
      logger,
      write: async () => {
        if (fail) throw new Error("ENOSPC: no space left on device");
      },
    });
    await w.start();
    await w.writeNow();
    await w.writeNow();
    expect(lines.filter((l) => l.msg === "cannot write metrics file")).toHaveLength(1);
    fail = false;
    await w.writeNow();
    expect(lines.filter((l) => l.msg === "metrics file writable again")).toHaveLength(1);
    const text = await registry.metrics();
    expect(text).toContain('sample_app_metrics_file_writes_total{result="error"} 3');
    expect(text).toContain('sample_app_metrics_file_writes_total{result="success"} 1');
    await w.close();
  });

  it("logs a real, repeating directory failure once although each attempt uses a new temp name", async () => {
    const registry = new Registry();
    const { logger, lines } = memoryLogger();
    // METRICS_DIR deleted under the running app: every attempt fails to create its temp file.
    const gone = join(dir, "metrics");
    const w = new MetricsFileWriter({ registry, path: join(gone, "x.prom"), intervalMs: 60_000, logger });
    for (let i = 0; i < 4; i++) await w.writeNow();
    const errors = lines.filter((l) => l.msg === "cannot write metrics file");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "ENOENT", syscall: "open" });
    expect(await registry.metrics()).toContain('sample_app_metrics_file_writes_total{result="error"} 4');
    await w.close();
  });

  it("removes temp files a crash left behind from its own atomic writes on start, and nothing else", async () => {
    writeFileSync(join(dir, ".x.prom.4242.deadbeef.tmp"), "# half a file");
    writeFileSync(join(dir, ".other.prom.4242.deadbeef.tmp"), "someone else's");
    writeFileSync(join(dir, "other.prom"), "kept");
    const w = new MetricsFileWriter({
      registry: new Registry(),
      path: join(dir, "x.prom"),
      intervalMs: 60_000,
      logger: memoryLogger().logger,
    });
    await w.start();
    await w.close();
    expect(readdirSync(dir).sort()).toEqual([".other.prom.4242.deadbeef.tmp", "other.prom", "x.prom"]);
  });
});
