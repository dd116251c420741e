// The built program under its own traffic, on real files: every log line lands exactly once across
// the rotated set, the set has the configured size, and the metrics file is only ever seen whole
// and passes the real `promtool check metrics`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PROMTOOL, requireBuilt, requirePromtool, spawnApp, stop, until } from "./process-helpers.js";

beforeAll(() => {
  requireBuilt();
  requirePromtool();
});

let dir: string;
let logDir: string;
let metricsDir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sample-app-proc-"));
  logDir = join(dir, "logs");
  metricsDir = join(dir, "metrics");
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The log set oldest first (app.log.N … app.log.1, app.log), asserting the names are contiguous. */
function logSet(): string[] {
  const names = readdirSync(logDir);
  const rotated = names
    .filter((n) => n.startsWith("app.log."))
    .map((n) => Number(n.slice("app.log.".length)))
    .sort((a, b) => a - b);
  expect(names.filter((n) => n !== "app.log" && !n.startsWith("app.log."))).toEqual([]);
  expect(rotated).toEqual(Array.from({ length: rotated.length }, (_, i) => i + 1));
  return [...rotated.reverse().map((i) => join(logDir, `app.log.${i}`)), join(logDir, "app.log")];
}

type Record = { level: number; time: number; msg: string; reqId?: string; [k: string]: unknown };

function readRecords(files: string[], maxBytes: number): Record[] {
  const out: Record[] = [];
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    expect(statSync(f).size, `${f} is larger than LOG_MAX_BYTES`).toBeLessThanOrEqual(maxBytes);
    if (text !== "") expect(text.endsWith("\n"), `${f} ends mid-line`).toBe(true);
    for (const line of text.split("\n").slice(0, -1)) {
      const r = JSON.parse(line) as Record; // throws on a split or corrupted line
      expect(typeof r.level).toBe("number");
      expect(typeof r.time).toBe("number");
      out.push(r);
    }
  }
  return out;
}

/** Sum of a metric's samples in Prometheus text, optionally only those whose labels match. */
function sample(text: string, name: string, labelFilter = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (labelFilter && !line.includes(labelFilter)) continue;
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

const metricsText = () => {
  try {
    return readFileSync(join(metricsDir, "sample-app.prom"), "utf8");
  } catch {
    return "";
  }
};

describe("sample-app process: log rotation under real traffic", () => {
  it("keeps every line exactly once, in order, across app.log.N … app.log, each file within LOG_MAX_BYTES", async () => {
    const maxBytes = 4096;
    const app = await spawnApp({
      LOG_DIR: logDir,
      METRICS_DIR: metricsDir,
      LOG_MAX_BYTES: String(maxBytes),
      LOG_MAX_FILES: "1000", // keep everything, so every line can be accounted for
      TRAFFIC_RPS: "300",
      WORK_MAX_MS: "20",
      METRICS_INTERVAL_MS: "200",
    });
    await until(() => readdirSync(logDir).includes("app.log.8"), "eight rotations");
    const exit = await stop(app);
    expect(exit, app.stderr()).toEqual({ code: 0, signal: null });

    const files = logSet();
    expect(files.length).toBeGreaterThanOrEqual(9);
    const records = readRecords(files, maxBytes);
    // In order: pino stamps `time` when the line is made, and lines are written in that order.
    for (let i = 1; i < records.length; i++) {
      expect(records[i]?.time).toBeGreaterThanOrEqual(records[i - 1]?.time as number);
    }
    // Exactly once: one response line per request id, and the counts agree with the last metrics
    // file, written after the server drained — only the final "stopped" line comes after it.
    const done = records.filter((r) => r.msg === "request completed");
    expect(new Set(done.map((r) => r.reqId)).size).toBe(done.length);
    const finalMetrics = metricsText();
    expect(done.length).toBe(sample(finalMetrics, "http_requests_total"));
    expect(records.length).toBe(sample(finalMetrics, "sample_app_log_lines_total") + 1);
    expect(records.at(-1)?.msg).toBe("sample-app stopped");
    // The final "stopped" line comes after the last metrics write; when it was the one that
    // filled a file, its rotation is not in the metrics file yet.
    const current = readFileSync(join(logDir, "app.log"), "utf8").trim().split("\n");
    const rotatedByStopLine = current.length === 1 && current[0]?.includes('"sample-app stopped"') ? 1 : 0;
    expect(sample(finalMetrics, "sample_app_log_rotations_total")).toBe(files.length - 1 - rotatedByStopLine);
    expect(sample(finalMetrics, "sample_app_log_errors_total")).toBe(0);
    // The traffic mix reached the file: successes, client errors and server errors with stacks.
    const statuses = new Set(done.map((r) => r.statusCode));
    expect(statuses).toContain(200);
    expect(statuses).toContain(500);
    expect(
      records.some(
        (r) =>
          r.msg === "simulated error" && String((r.err as { stack?: string })?.stack).includes("\n    at "),
      ),
    ).toBe(true);
  });

  it("keeps exactly LOG_MAX_FILES rotated files", async () => {
    const app = await spawnApp({
      LOG_DIR: logDir,
      METRICS_DIR: metricsDir,
      LOG_MAX_BYTES: "2048",
      LOG_MAX_FILES: "2",
      TRAFFIC_RPS: "300",
      WORK_MAX_MS: "20",
      METRICS_INTERVAL_MS: "100",
    });
    await until(() => sample(metricsText(), "sample_app_log_rotations_total") >= 6, "six rotations");
    const exit = await stop(app);
    expect(exit, app.stderr()).toEqual({ code: 0, signal: null });
    expect(readdirSync(logDir).sort()).toEqual(["app.log", "app.log.1", "app.log.2"]);
    const records = readRecords(logSet(), 2048);
    expect(records.length).toBeGreaterThan(0);
    expect(records.at(-1)?.msg).toBe("sample-app stopped");
  });
});

describe("sample-app process: metrics file", () => {
  it("is replaced atomically — never seen empty or partial — and passes promtool check metrics", async () => {
    const app = await spawnApp({
      LOG_DIR: logDir,
      METRICS_DIR: metricsDir,
      TRAFFIC_RPS: "50",
      METRICS_INTERVAL_MS: "100",
    });
    const path = join(metricsDir, "sample-app.prom");
    const versions = new Set<string>();
    let reads = 0;
    // Read as fast as possible while the app rewrites the file every 100 ms.
    await until(() => {
      for (let i = 0; i < 50; i++) {
        const text = readFileSync(path, "utf8");
        reads++;
        expect(text.length, "empty metrics file seen").toBeGreaterThan(0);
        expect(text.startsWith("# HELP "), "metrics file does not start with a family").toBe(true);
        expect(text.endsWith("\n"), "metrics file cut short").toBe(true);
        // The last family registered: present only when the whole registry was written.
        expect(text).toContain("# TYPE sample_app_metrics_file_writes_total counter");
        versions.add(text);
      }
      return versions.size >= 10;
    }, "ten rewrites of the metrics file");
    const exit = await stop(app);
    expect(exit, app.stderr()).toEqual({ code: 0, signal: null });
    expect(reads).toBeGreaterThan(versions.size);
    // No temporary files left behind.
    expect(readdirSync(metricsDir)).toEqual(["sample-app.prom"]);

    const text = readFileSync(path, "utf8");
    for (const name of [
      "http_requests_total",
      "http_request_duration_seconds_bucket",
      "process_cpu_seconds_total",
    ]) {
      expect(text).toContain(name);
    }
    const check = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
    const output = `${check.stdout}${check.stderr}`;
    // Exit 1 with "parsing error" would mean Prometheus cannot read the file at all.
    expect(output).not.toMatch(/pars(e|ing) error/i);
    expect(check.status, output).not.toBe(1);
    // Exit 3 is lint only; the app avoids every lint finding, so promtool is fully satisfied.
    expect({ status: check.status, output }).toEqual({ status: 0, output: "" });
  });
});
