#!/usr/bin/env node
// Benchmark of apps/metrics-exporter beside Debian's prometheus-node-exporter (textfile collector
// only) on the same directory, in the same run: 10 files × 10k series (100k series).
//   - scrape latency p50/p99 and CPU per scrape, twice: as Prometheus 2.x scrapes (OpenMetrics
//     Accept + gzip) and as a plain client (text 0.0.4, identity);
//   - the cost of re-collecting after one file changed (node_exporter has no such thing: it
//     re-parses every file on every scrape, so its "re-collect" cost is its scrape cost);
//   - RSS (current and peak) of both processes; and the exporter's RSS once more with the memory
//     settings its image sets (IMAGE_ENV: small V8 young generation, fewer malloc arenas) and once
//     more with Node's defaults.
// Usage: pnpm build && node bench/metrics-exporter.mjs   (env: BENCH_FILES, BENCH_SERIES_PER_FILE,
// BENCH_SCRAPES, BENCH_CHANGES, NODE_EXPORTER, BENCH_NODE: the node binary that runs the exporter,
// e.g. the image's Node 24; default: the one running this script). Needs /usr/bin/prometheus-node-exporter.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const FILES = Number(process.env.BENCH_FILES ?? 10);
const SERIES_PER_FILE = Number(process.env.BENCH_SERIES_PER_FILE ?? 10_000);
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 30);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 8);
const NODE_EXPORTER = process.env.NODE_EXPORTER ?? "/usr/bin/prometheus-node-exporter";
const MAIN = resolve(import.meta.dirname, "../apps/metrics-exporter/dist/main.js");
const COLLECT_INTERVAL_MS = 1000;
const NODE = process.env.BENCH_NODE || process.execPath;
/** A Dockerfile target's instructions: its stage and the stages it is built FROM, joined lines. */
function targetText(dockerfile, target) {
  const stages = new Map();
  let current;
  for (const line of dockerfile.replaceAll("\\\n", " ").split("\n")) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      current = { base: from[1], lines: [] };
      if (from[2]) stages.set(from[2], current);
    } else current?.lines.push(line);
  }
  const chain = [];
  for (let s = stages.get(target); s; s = stages.get(s.base)) chain.unshift(...s.lines);
  if (chain.length === 0) throw new Error(`Dockerfile has no target ${target}`);
  return chain.join("\n");
}
// The exporter runs with the memory settings its image sets (ENV lines of the root Dockerfile's
// metrics-exporter target and the stages it is built on, and the node flags of its CMD), so the
// numbers are the image's; one more run with Node's defaults shows what those settings buy.
const IMAGE_TEXT = targetText(
  readFileSync(resolve(import.meta.dirname, "../Dockerfile"), "utf8"),
  "metrics-exporter",
);
const IMAGE_ENV = Object.fromEntries(
  [...IMAGE_TEXT.matchAll(/^ENV\s+(.+)$/gm)]
    .flatMap((m) => [...m[1].matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)])
    .map((m) => [m[1], m[2] ?? m[3]])
    .filter(([k]) => k === "NODE_OPTIONS" || k.startsWith("MALLOC_")),
);
const IMAGE_CMD = JSON.parse([...IMAGE_TEXT.matchAll(/^CMD\s+(.+)$/gm)].pop()?.[1] ?? "null");
if (IMAGE_CMD?.[0] !== "node" || IMAGE_CMD.at(-1) !== "dist/main.js")
  throw new Error(`the metrics-exporter target's CMD is not ["node", …, "dist/main.js"]: ${IMAGE_CMD}`);
const IMAGE_NODE_ARGS = IMAGE_CMD.slice(1, -1);
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

const PROMETHEUS_HEADERS = {
  accept:
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
  "accept-encoding": "gzip",
};
const PLAIN_HEADERS = {};

if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run "pnpm build" first`);
if (!existsSync(NODE_EXPORTER))
  throw new Error(`${NODE_EXPORTER} missing: apt-get install prometheus-node-exporter`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** One file in the textfile format: a counter family and a histogram, ~10k series. */
function fileText(f, generation) {
  const out = [];
  const counters = SERIES_PER_FILE - Math.floor(SERIES_PER_FILE / 10);
  out.push(`# HELP bench_f${f}_requests_total Requests handled by producer ${f}.`);
  out.push(`# TYPE bench_f${f}_requests_total counter`);
  for (let i = 0; i < counters; i++) {
    out.push(
      `bench_f${f}_requests_total{route="/api/v1/items/${i % 500}",method="${["GET", "POST", "PUT", "DELETE"][i % 4]}",code="${200 + (i % 5)}",shard="${i}"} ${i * 7 + generation}`,
    );
  }
  const histSeries = SERIES_PER_FILE - counters; // 10 series per histogram: 8 buckets + sum + count
  out.push(`# HELP bench_f${f}_latency_seconds Latency seen by producer ${f}.`);
  out.push(`# TYPE bench_f${f}_latency_seconds histogram`);
  for (let h = 0; h < histSeries / 10; h++) {
    let cum = 0;
    for (const le of ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"]) {
      cum += h + 1;
      out.push(`bench_f${f}_latency_seconds_bucket{route="/r/${h}",le="${le}"} ${cum + generation}`);
    }
    out.push(`bench_f${f}_latency_seconds_sum{route="/r/${h}"} ${(cum * 0.042).toFixed(3)}`);
    out.push(`bench_f${f}_latency_seconds_count{route="/r/${h}"} ${cum + generation}`);
  }
  return `${out.join("\n")}\n`;
}

async function writeAtomic(dir, name, text) {
  const tmp = join(dir, `.${name}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, join(dir, name));
}

function scrape(port, headers, path = "/metrics") {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const req = request({ host: "127.0.0.1", port, path, headers, agent: false }, (r) => {
      let bytes = 0;
      const chunks = [];
      r.on("data", (d) => {
        bytes += d.length;
        if (path !== "/metrics") chunks.push(d);
      });
      r.on("end", () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.statusCode !== 200) return rej(new Error(`${port}${path}: HTTP ${r.statusCode}`));
        res({ ms, bytes, type: r.headers["content-type"], body: Buffer.concat(chunks).toString() });
      });
      r.on("error", rej);
    });
    req.on("error", rej);
    req.end();
  });
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? Number.NaN);
  return {
    rssMiB: kb("VmRSS") / 1024,
    peakMiB: kb("VmHWM") / 1024,
    anonMiB: kb("RssAnon") / 1024,
    fileMiB: kb("RssFile") / 1024,
  };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function measure(name, pid, port, headers) {
  for (let i = 0; i < 5; i++) await scrape(port, headers); // warm-up
  const times = [];
  let bytes = 0;
  let type = "";
  const c0 = cpuTicks(pid);
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < SCRAPES; i++) {
    const r = await scrape(port, headers);
    times.push(r.ms);
    bytes = r.bytes;
    type = r.type;
  }
  const wallS = Number(process.hrtime.bigint() - w0) / 1e9;
  const cpuMs = ((cpuTicks(pid) - c0) / CLK_TCK) * 1000;
  times.sort((a, b) => a - b);
  return {
    name,
    p50: pct(times, 50),
    p99: pct(times, 99),
    cpuPerScrapeMs: cpuMs / SCRAPES,
    scrapesPerS: SCRAPES / wallS,
    bytes,
    type,
  };
}

async function waitUp(port, path, proc, label) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${label} exited with ${proc.exitCode}`);
    try {
      await scrape(port, {}, path);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${label} did not come up`);
      await sleep(100);
    }
  }
}

function selfMetric(body, name) {
  const m = body.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : Number.NaN;
}

const dir = await mkdtemp(join(tmpdir(), "bench-mx-"));
const procs = [];
try {
  for (let f = 0; f < FILES; f++)
    await writeAtomic(dir, `producer-${String(f).padStart(2, "0")}.prom`, fileText(f, 0));
  const startExporter = (port, extraEnv = {}, nodeArgs = []) => {
    const p = spawn(NODE, [...nodeArgs, MAIN], {
      env: {
        PATH: process.env.PATH,
        METRICS_DIR: dir,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: String(port),
        COLLECT_INTERVAL_MS: String(COLLECT_INTERVAL_MS),
        LOG_LEVEL: "warn",
        NODE_NO_WARNINGS: "1",
        MAX_TOTAL_SERIES: String(Math.max(100_000, FILES * SERIES_PER_FILE)),
        MAX_SERIES_PER_FILE: String(Math.max(50_000, SERIES_PER_FILE)),
        ...extraEnv,
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    procs.push(p);
    return p;
  };
  const exPort = await freePort();
  const nePort = await freePort();
  const exporter = startExporter(exPort, IMAGE_ENV, IMAGE_NODE_ARGS);
  const nodeExporter = spawn(
    NODE_EXPORTER,
    [
      "--collector.disable-defaults",
      "--collector.textfile",
      `--collector.textfile.directory=${dir}`,
      `--web.listen-address=127.0.0.1:${nePort}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  procs.push(nodeExporter);
  await waitUp(exPort, "/readyz", exporter, "metrics-exporter");
  await waitUp(nePort, "/", nodeExporter, "node_exporter");

  // Both see the same series?
  const exText = (await scrape(exPort, {}, "/metrics?x")).body;
  const neText = (await scrape(nePort, {}, "/metrics?x")).body;
  const count = (t) => t.split("\n").filter((l) => l.startsWith("bench_")).length;
  console.log(
    `series: metrics-exporter ${count(exText)}, node_exporter ${count(neText)} (files: ${FILES} × ${SERIES_PER_FILE})`,
  );

  const results = [];
  for (const [mode, headers] of [
    ["prometheus (OpenMetrics accept, gzip)", PROMETHEUS_HEADERS],
    ["plain (text 0.0.4, identity)", PLAIN_HEADERS],
  ]) {
    results.push({ mode, ...(await measure("metrics-exporter", exporter.pid, exPort, headers)) });
    results.push({ mode, ...(await measure("node_exporter", nodeExporter.pid, nePort, headers)) });
  }

  // Re-collecting after one changed file: collection wall time from the exporter's own histogram,
  // CPU as the exporter's CPU over the window minus the same window idle.
  const selfBody = async () => (await scrape(exPort, {}, "/metrics?self")).body;
  const windowMs = COLLECT_INTERVAL_MS * 2 + 200;
  let c0 = cpuTicks(exporter.pid);
  await sleep(windowMs);
  const idleCpuMs = ((cpuTicks(exporter.pid) - c0) / CLK_TCK) * 1000;
  const changes = [];
  const firstScrapes = [];
  for (let k = 1; k <= CHANGES; k++) {
    const before = await selfBody();
    const parses0 = selfMetric(before, "metrics_exporter_file_parses_total");
    const sum0 = selfMetric(before, "metrics_exporter_collection_duration_seconds_sum");
    const n0 = selfMetric(before, "metrics_exporter_collection_duration_seconds_count");
    c0 = cpuTicks(exporter.pid);
    await writeAtomic(dir, `producer-${String(k % FILES).padStart(2, "0")}.prom`, fileText(k % FILES, k));
    await sleep(windowMs);
    const cpuMs = ((cpuTicks(exporter.pid) - c0) / CLK_TCK) * 1000;
    const after = await selfBody();
    const parses = selfMetric(after, "metrics_exporter_file_parses_total") - parses0;
    const sum = selfMetric(after, "metrics_exporter_collection_duration_seconds_sum") - sum0;
    const n = selfMetric(after, "metrics_exporter_collection_duration_seconds_count") - n0;
    if (parses !== 1) throw new Error(`expected exactly one re-parse, saw ${parses}`);
    // Collections in the window: one re-parsed the file, the others only stat'ed unchanged files.
    changes.push({ collectionMs: sum * 1000, collections: n, cpuMs: cpuMs - idleCpuMs });
    firstScrapes.push((await scrape(exPort, PROMETHEUS_HEADERS)).ms);
  }

  const exMem = memory(exporter.pid);
  const neMem = memory(nodeExporter.pid);
  exporter.kill("SIGTERM");

  // The same routine (start, Prometheus-style scrapes, changes) with Node's default memory settings.
  const tunedPort = await freePort();
  const tuned = startExporter(tunedPort);
  await waitUp(tunedPort, "/readyz", tuned, "metrics-exporter (Node defaults)");
  for (let i = 0; i < SCRAPES; i++) await scrape(tunedPort, PROMETHEUS_HEADERS);
  for (let k = 1; k <= CHANGES; k++) {
    await writeAtomic(
      dir,
      `producer-${String(k % FILES).padStart(2, "0")}.prom`,
      fileText(k % FILES, k + 100),
    );
    await sleep(COLLECT_INTERVAL_MS + 300);
    await scrape(tunedPort, PROMETHEUS_HEADERS);
  }
  const tunedMem = memory(tuned.pid);

  console.log(`\nscrape latency, ${SCRAPES} sequential scrapes per row (after 5 warm-up scrapes):`);
  console.log("mode | exporter | p50 ms | p99 ms | CPU ms/scrape | body bytes | content-type");
  for (const r of results) {
    console.log(
      `${r.mode} | ${r.name} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpuPerScrapeMs.toFixed(2)} | ${r.bytes} | ${r.type}`,
    );
  }
  for (const mode of new Set(results.map((r) => r.mode))) {
    const ex = results.find((r) => r.mode === mode && r.name === "metrics-exporter");
    const ne = results.find((r) => r.mode === mode && r.name === "node_exporter");
    console.log(
      `ratio (${mode}): p50 ${(ex.p50 / ne.p50).toFixed(3)}×, p99 ${(ex.p99 / ne.p99).toFixed(3)}×, CPU ${(ex.cpuPerScrapeMs / ne.cpuPerScrapeMs).toFixed(3)}× of node_exporter`,
    );
  }
  const avg = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  const collMs = changes.map((c) => c.collectionMs);
  console.log(
    `\nre-collect after one changed file (${CHANGES} changes, ${SERIES_PER_FILE} series in the file, ${FILES * SERIES_PER_FILE} total):`,
  );
  console.log(
    `  collection wall time (sum over the window's collections, one re-parse each): mean ${avg(collMs).toFixed(1)} ms, max ${Math.max(...collMs).toFixed(1)} ms`,
  );
  console.log(
    `  exporter CPU per change (window minus idle window of ${windowMs} ms; idle = ${idleCpuMs.toFixed(0)} ms): mean ${avg(changes.map((c) => c.cpuMs)).toFixed(1)} ms`,
  );
  console.log(
    `  first Prometheus-style scrape after a change: mean ${avg(firstScrapes).toFixed(2)} ms, max ${Math.max(...firstScrapes).toFixed(2)} ms`,
  );
  console.log(
    `  node_exporter re-parses all files on every scrape: its cost per change = its scrape cost above`,
  );
  const mem = (m) =>
    `RSS ${m.rssMiB.toFixed(1)} MiB (peak ${m.peakMiB.toFixed(1)} MiB; now ${m.anonMiB.toFixed(1)} MiB anonymous + ${m.fileMiB.toFixed(1)} MiB file-backed)`;
  const imageEnv = Object.entries(IMAGE_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  console.log(`\nnode: ${NODE} ${execFileSync(NODE, ["--version"], { encoding: "utf8" }).trim()}`);
  console.log(
    `memory: metrics-exporter with the image's ${imageEnv} node ${IMAGE_NODE_ARGS.join(" ")}: ${mem(exMem)}`,
  );
  console.log(`memory: node_exporter ${mem(neMem)}`);
  console.log(`memory: metrics-exporter with Node's defaults: ${mem(tunedMem)}`);
} finally {
  for (const p of procs) {
    if (p.exitCode === null) {
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await exited;
    }
  }
  await rm(dir, { recursive: true, force: true });
}
