// Benchmark: how fast the sample app can write its request log lines through its rotating file
// destination, against pino's own destination (sonic-boom) writing a plain, never-rotated file.
//
// Run (from the repository root; tsx loads the TypeScript source directly):
//   node --import tsx bench/sample-app-log-write.mjs [--lines 500000] [--dir /dev/shm] [--runs 3]
//
// --dir picks the file system: /dev/shm (tmpfs) matches the pod's memory-backed emptyDir;
// a directory on disk (e.g. /tmp) shows the page-cache case. Each scenario logs the same
// ~200-byte pino "request completed" records in batches of 100 per event-loop turn (as a busy
// server would), then flushes; time and process CPU include the final flush.
//   rotating     — RotatingFile, LOG_MAX_BYTES 10 MiB, LOG_MAX_FILES 5 (rotation active)
//   pino-sync    — pino.destination({ sync: true }): pino's default destination, one write per line
//   pino-async   — pino.destination({ sync: false, minLength: 4096 }): sonic-boom buffered, async
// plus the destinations alone (pre-serialised lines, no pino) to separate writing from logging.
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RotatingFile } from "../apps/sample-app/src/rotating-file.ts";

const require = createRequire(new URL("../apps/sample-app/package.json", import.meta.url));
const { pino } = require("pino");

const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "500000" },
    dir: { type: "string", default: "/dev/shm" },
    runs: { type: "string", default: "3" },
  },
});
const LINES = Number(values.lines);
const RUNS = Number(values.runs);
const BATCH = 100;
const MAX_BYTES = 10 * 1024 * 1024;
const MAX_FILES = 5;

const HOSTNAME = "sample-app-7d9c5-x2x8k";
const turn = () => new Promise((r) => setImmediate(r));

/** A request log record like the app's, ~200 bytes once pino adds level, time, pid, hostname. */
function record(i) {
  return {
    reqId: `req-${i.toString(36)}`,
    method: "GET",
    url: `/work?ms=${i % 250}`,
    statusCode: 200,
    responseTime: 12.3,
  };
}

const scenarios = {
  rotating: (dir) => {
    const dest = new RotatingFile({ path: join(dir, "app.log"), maxBytes: MAX_BYTES, maxFiles: MAX_FILES });
    return { dest, finish: async () => dest.close() };
  },
  "pino-sync": (dir) => {
    const dest = pino.destination({ dest: join(dir, "app.log"), sync: true });
    return { dest, finish: async () => dest.flushSync() };
  },
  "pino-async": (dir) => {
    const dest = pino.destination({ dest: join(dir, "app.log"), sync: false, minLength: 4096 });
    return {
      dest,
      finish: () =>
        new Promise((resolve, reject) => {
          dest.once("close", resolve);
          dest.once("error", reject);
          dest.end();
        }),
    };
  },
};

async function run(name, withPino) {
  const dir = mkdtempSync(join(values.dir, "sample-app-bench-"));
  try {
    const { dest, finish } = scenarios[name](dir);
    if (name === "pino-async") await new Promise((r) => dest.once("ready", r));
    const logger = pino({ base: { pid: process.pid, hostname: HOSTNAME, service: "sample-app" } }, dest);
    // Pre-serialised lines for the destination-only variant (same shape as pino's output).
    const sample = withPino
      ? undefined
      : `${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, hostname: HOSTNAME, service: "sample-app", ...record(123456), msg: "request completed" })}\n`;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < LINES; i += BATCH) {
      const end = Math.min(LINES, i + BATCH);
      if (withPino) for (let j = i; j < end; j++) logger.info(record(j), "request completed");
      else for (let j = i; j < end; j++) dest.write(sample);
      await turn();
    }
    await finish();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const files = readdirSync(dir);
    const bytes = files.reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000, files: files.length, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [];
for (const withPino of [true, false]) {
  for (const name of Object.keys(scenarios)) {
    const runs = [];
    for (let r = 0; r < RUNS; r++) runs.push(await run(name, withPino));
    runs.sort((a, b) => a.ms - b.ms);
    const med = runs[Math.floor(runs.length / 2)];
    // Bytes written = what was produced (rotation may have dropped the oldest files from disk).
    results.push({
      scenario: `${withPino ? "pino → " : "write() "}${name}`,
      "lines/s": Math.round(LINES / (med.ms / 1000)),
      "MB/s": 0,
      "CPU µs/line": Math.round(((med.cpuMs * 1000) / LINES) * 100) / 100,
      "wall ms": Math.round(med.ms),
      "files left": med.files,
      _bytes: med.bytes,
    });
  }
}
// Average line size from a plain (unrotated) run, which kept every byte.
const plain = results.find((r) => r.scenario === "pino → pino-sync");
const lineBytes = plain._bytes / LINES;
for (const r of results) {
  r["MB/s"] = Math.round(((r["lines/s"] * lineBytes) / 1e6) * 10) / 10;
  delete r._bytes;
}
console.log(
  `node ${process.version}, ${LINES} lines of ~${Math.round(lineBytes)} bytes, dir ${values.dir}, median of ${RUNS} runs`,
);
console.table(results);
