// End-to-end benchmark of the BUILT log shipper (apps/log-shipper/dist/main.js): a writer thread
// appends ~200-byte pino-style JSON lines at a steady rate with rename rotation (10 MiB, 5 files
// kept, like the sample app), the shipper tails them and pushes to the fake Loki receiver
// (apps/log-shipper/test/support/fake-loki.ts, counting only), which checks every line.
//
// Reported: CPU seconds per million lines (utime+stime of the shipper from /proc/<pid>/stat, from
// the first write until the last line is acknowledged), peak RSS (VmHWM), p50/p99/max
// write→acknowledge latency (the write time is embedded in each line and compared with its arrival
// at the receiver), lost and duplicated lines, and how long the backlog took to drain after the
// writer stopped. BATCH_WAIT_MS=500 by default, for comparability with Fluent Bit and Promtail.
//
// Usage (build first: `pnpm build`):
//   node bench/log-shipper.mjs                          # 50k lines/s for 20 s, no limits
//   node bench/log-shipper.mjs --rate=25000 --seconds=15 --cgroup
//                                                       # inside a 200m CPU / 128Mi memory cgroup
//   node bench/log-shipper.mjs --cgroup --find-max      # highest rate that keeps up in the box
//   node bench/log-shipper.mjs --cpu-prof               # also write a .cpuprofile of the shipper
//   node bench/log-shipper.mjs --destinations=loki,otlp,elasticsearch
//                                                       # fan-out: every line to each (counted per destination)
//   node bench/log-shipper.mjs --compare-fanout         # Loki alone, then Loki + OTLP + Elasticsearch: CPU ratio
//   node bench/log-shipper.mjs --compare-fanout --repeat=3   # three such pairs, and the ratio's range
// Options: --rate=N --seconds=N --line-bytes=N --batch-wait-ms=N --cpu-millis=200 --memory-mib=128
//          --node-options="..." (NODE_OPTIONS for the shipper) --env=K=V,K=V (the shipper's settings) --node-args="..." (node flags before
//          main.js, as a Dockerfile CMD gives them) --main=PATH --json (print only the JSON result)
//          --receivers=separate|inline (default separate: the OTLP and Elasticsearch receivers, which
//          decode every record, run in a process of their own instead of this one)
//          --timeline (the anonymous memory every 50 ms, and the median and worst latency of the lines
//          written in each second: where a p99 comes from)
//          --steady-from=S (also the CPU per million lines from S seconds after the first write to
//          the writer's end: the steady state, without start-up's compiling; needs --seconds > S)
//          --state-dir=memory|disk (default memory when /dev/shm exists: the positions file on tmpfs,
//          as the pod keeps it on its memory-backed emptyDir; disk: in the temp directory)
//          --logs-dir=disk|memory (default disk: the log files in the temp directory, as every
//          figure before it was measured; memory: on tmpfs in /dev/shm, where the pod's app writes them)
// "Keeps up" = the backlog is delivered within 2 s of the writer stopping and p99 latency ≤ 2 s
// (a shipper that falls behind shows latencies growing with the run's length).
import { fork, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { build } from "esbuild";
import { benchArgs } from "./lib/args.mjs";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const args = benchArgs();
// --main=PATH: another build of the shipper, for before/after runs side by side (say, a copy of
// main's dist/main.js in apps/log-shipper/node_modules/.bench-builds/base/, where its external
// packages resolve).
const MAIN_JS = args.main ? resolve(args.main) : join(root, "apps/log-shipper/dist/main.js");
const opt = {
  rate: Number(args.rate ?? 50_000),
  seconds: Number(args.seconds ?? (args.cgroup ? 15 : 20)),
  lineBytes: Number(args["line-bytes"] ?? 200),
  batchWaitMs: Number(args["batch-wait-ms"] ?? 500),
  cgroup: args.cgroup === "true",
  findMax: args["find-max"] === "true",
  cpuProf: args["cpu-prof"] === "true",
  cpuMillis: Number(args["cpu-millis"] ?? 200),
  memoryMiB: Number(args["memory-mib"] ?? 128),
  json: args.json === "true",
  destinations: (args.destinations ?? "loki").split(","),
  compareFanout: args["compare-fanout"] === "true",
  repeat: Number(args.repeat ?? 1),
  // Where the OTLP/Elasticsearch receivers run: "separate" (a process of their own) or "inline".
  receivers: args.receivers ?? "separate",
  // Where the positions file lives: "memory" (/dev/shm, tmpfs — as the pod keeps it, on its
  // emptyDir with medium: Memory; the shipper then writes it synchronously) or "disk" (beside the
  // logs in the system's temp directory; written through the thread pool).
  steadyFrom: Number(args["steady-from"] ?? 0),
  stateDir: args["state-dir"] ?? (existsSync("/dev/shm") ? "memory" : "disk"),
  // Where the log files are written: "disk" (the system's temp directory) or "memory" (/dev/shm).
  logsDir: args["logs-dir"] ?? "disk",
};
const say = (...a) => {
  if (!opt.json) console.log(...a);
};

if (!existsSync(MAIN_JS)) {
  console.error(`${MAIN_JS} is missing: run \`pnpm build\` first`);
  process.exit(1);
}

// The receiver is TypeScript shared with the tests; bundle it next to the app's node_modules so
// its `snappy` import resolves.
const bundleDir = mkdtempSync(join(root, "apps/log-shipper/node_modules/.bench-e2e-"));
const fakeLokiJs = join(bundleDir, "fake-loki.mjs");
await build({
  entryPoints: [join(root, "apps/log-shipper/test/support/fake-loki.ts")],
  outfile: fakeLokiJs,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  external: ["snappy"],
  logLevel: "warning",
});
const { startFakeLoki } = await import(pathToFileURL(fakeLokiJs).href);
// The other destinations' receivers (fan-out runs): counted, each line checked once at Loki.
const bundled = {};
for (const name of ["fake-otlp", "fake-elasticsearch"]) {
  const out = join(bundleDir, `${name}.mjs`);
  await build({
    entryPoints: [join(root, `apps/log-shipper/test/support/${name}.ts`)],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20.19",
    packages: "external",
    logLevel: "warning",
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
}
// Receivers-only mode: this script, forked by a fan-out run, serves the OTLP and Elasticsearch
// receivers in a process of its own and reports their counts over IPC every 20 ms.
const SERVE_RECEIVERS = process.argv.includes("--serve-receivers");
if (SERVE_RECEIVERS) {
  const otlp = await (await import(pathToFileURL(join(bundleDir, "fake-otlp.mjs")).href)).startFakeOtlp({
    store: "count",
  });
  const es = await (
    await import(pathToFileURL(join(bundleDir, "fake-elasticsearch.mjs")).href)
  ).startFakeElasticsearch({ store: "count" });
  const report = () => {
    if (process.connected) process.send({ counts: { otlp: otlp.recordCount, elasticsearch: es.docCount } });
  };
  // The parent gone (it failed): so are we.
  process.once("disconnect", () => {
    rmSync(bundleDir, { recursive: true, force: true });
    process.exit(0);
  });
  const timer = setInterval(report, 20);
  process.send({ urls: { otlp: otlp.url, elasticsearch: es.url } });
  process.on("message", async (m) => {
    if (m === "close") {
      clearInterval(timer);
      report();
      await otlp.close();
      await es.close();
      process.disconnect();
    }
  });
} else {
  for (const name of ["fake-otlp", "fake-elasticsearch"])
    bundled[name] = await import(pathToFileURL(join(bundleDir, `${name}.mjs`)).href);
}

// ---- the writer (its own thread, so the receiver's decoding does not delay writes) -------------
const WRITER = `
const { parentPort, workerData } = require("node:worker_threads");
const { openSync, writeSync, closeSync, renameSync, existsSync, unlinkSync, fstatSync } = require("node:fs");
const { join } = require("node:path");
const { dir, rate, seconds, lineBytes, maxBytes, maxFiles } = workerData;
const path = join(dir, "app.log");
let fd = openSync(path, "a");
let size = 0;
let seq = 0;
const total = Math.round(rate * seconds);
const head = '{"level":30,"time":';
const mid = ',"pid":4242,"hostname":"sample-app-7d9f","req":{"method":"GET","url":"/work"},"msg":"request completed","seq":';
function lineOf(now, s) {
  const base = head + now + mid + s + ',"pad":"';
  const pad = Math.max(0, lineBytes - base.length - 3);
  return base + "x".repeat(pad) + '"}\\n';
}
function rotate() {
  closeSync(fd);
  const oldest = path + "." + maxFiles;
  if (existsSync(oldest)) unlinkSync(oldest);
  for (let i = maxFiles - 1; i >= 1; i--) if (existsSync(path + "." + i)) renameSync(path + "." + i, path + "." + (i + 1));
  renameSync(path, path + ".1");
  fd = openSync(path, "a");
  size = 0;
}
const t0 = Date.now();
function tick() {
  const now = Date.now();
  const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate));
  let chunk = "";
  while (seq < due) {
    chunk += lineOf(now, seq++);
    if (chunk.length > 256 * 1024) { size += writeSync(fd, chunk); chunk = ""; if (size >= maxBytes) rotate(); }
  }
  if (chunk) { size += writeSync(fd, chunk); if (size >= maxBytes) rotate(); }
  if (seq >= total) { closeSync(fd); parentPort.postMessage({ done: true, lines: seq, ms: Date.now() - t0 }); return; }
  setTimeout(tick, 5);
}
tick();
`;

function runWriter(dir, rate, seconds) {
  return new Promise((resolvePromise, reject) => {
    const w = new Worker(WRITER, {
      eval: true,
      workerData: { dir, rate, seconds, lineBytes: opt.lineBytes, maxBytes: 10 * 1024 * 1024, maxFiles: 5 },
    });
    w.once("message", (m) => resolvePromise(m));
    w.once("error", reject);
  });
}

// ---- process helpers ---------------------------------------------------------------------------
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}
function memField(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function makeCgroup(name) {
  const cpu = `/sys/fs/cgroup/cpu/${name}`;
  const mem = `/sys/fs/cgroup/memory/${name}`;
  if (existsSync("/sys/fs/cgroup/cpu") && existsSync("/sys/fs/cgroup/memory")) {
    mkdirSync(cpu, { recursive: true });
    mkdirSync(mem, { recursive: true });
    writeFileSync(join(cpu, "cpu.cfs_period_us"), "100000");
    writeFileSync(join(cpu, "cpu.cfs_quota_us"), String(opt.cpuMillis * 100));
    writeFileSync(join(mem, "memory.limit_in_bytes"), String(opt.memoryMiB * 1024 * 1024));
    return {
      procs: [join(cpu, "cgroup.procs"), join(mem, "cgroup.procs")],
      stats: () => ({
        memoryMaxUsageBytes: Number(readFileSync(join(mem, "memory.max_usage_in_bytes"), "utf8")),
        oomKills: Number(
          /oom_kill (\d+)/.exec(readFileSync(join(mem, "memory.oom_control"), "utf8"))?.[1] ?? 0,
        ),
        throttledSeconds:
          Number(/throttled_time (\d+)/.exec(readFileSync(join(cpu, "cpu.stat"), "utf8"))?.[1] ?? 0) / 1e9,
      }),
      remove: () => {
        for (const d of [cpu, mem]) {
          try {
            // A cgroup directory goes with rmdir (rmSync refuses a directory without `recursive`,
            // and cgroupfs refuses deleting its files): every run used to leave its two behind.
            rmdirSync(d);
          } catch {
            /* still busy; the kernel frees it when empty */
          }
        }
      },
    };
  }
  // cgroup v2
  const v2 = `/sys/fs/cgroup/${name}`;
  mkdirSync(v2, { recursive: true });
  writeFileSync(join(v2, "cpu.max"), `${opt.cpuMillis * 100} 100000`);
  writeFileSync(join(v2, "memory.max"), String(opt.memoryMiB * 1024 * 1024));
  return {
    procs: [join(v2, "cgroup.procs")],
    stats: () => ({ memoryPeakBytes: Number(readFileSync(join(v2, "memory.peak"), "utf8")) }),
    remove: () => {
      try {
        rmdirSync(v2);
      } catch {
        /* still busy; the kernel frees it when empty */
      }
    },
  };
}

// ---- one run -----------------------------------------------------------------------------------
/** Directories a run made, removed at exit too: a run that throws (a shipper that would not start)
 * must not leave its log files behind in /dev/shm, where they hold memory. */
const madeDirs = new Set();
process.on("exit", () => {
  for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
});
function madeDir(prefix) {
  const d = mkdtempSync(prefix);
  madeDirs.add(d);
  return d;
}

async function run(rate, seconds, destinations = opt.destinations) {
  const tmp = madeDir(join(tmpdir(), "ls-bench-"));
  const stateDir = opt.stateDir === "memory" ? madeDir("/dev/shm/ls-bench-state-") : join(tmp, "state");
  const logsBase = opt.logsDir === "memory" ? madeDir("/dev/shm/ls-bench-logs-") : tmp;
  const logs = join(logsBase, "logs");
  mkdirSync(logs);
  const total = Math.round(rate * seconds);
  const counts = new Uint8Array(total);
  const latencies = new Float64Array(total);
  let arrived = 0;
  let unknown = 0;
  const onEntry = (e) => {
    const line = e.line;
    const now = Date.now();
    const ti = line.indexOf('"time":');
    const si = line.indexOf('"seq":');
    if (ti < 0 || si < 0) {
      unknown++;
      return;
    }
    const seq = Number.parseInt(line.slice(si + 6, si + 20), 10);
    const t = Number.parseInt(line.slice(ti + 7, ti + 20), 10);
    if (!(seq >= 0 && seq < total)) {
      unknown++;
      return;
    }
    if (counts[seq]++ === 0) {
      latencies[seq] = now - t;
      arrived++;
    }
  };
  const loki = await startFakeLoki({ store: "count", onEntry });
  const wantOtlp = destinations.includes("otlp");
  const wantEs = destinations.includes("elasticsearch");
  let otlp = null;
  let es = null;
  const received = { otlp: 0, elasticsearch: 0 };
  if ((wantOtlp || wantEs) && opt.receivers === "separate") {
    // The OTLP and Elasticsearch receivers decode and check every record (protobufjs, JSON.parse):
    // in a process of their own they do not stall this one's Loki receiver (whose arrival times
    // are the latency figures) nor the writer thread.
    const child = fork(fileURLToPath(import.meta.url), ["--serve-receivers"], { stdio: "inherit" });
    const urls = await new Promise((r, reject) => {
      child.on("message", (m) => {
        if (m.urls) r(m.urls);
        if (m.counts) Object.assign(received, m.counts);
      });
      child.once("exit", () => reject(new Error("receivers process exited during start")));
    });
    const close = async () => {
      const gone = new Promise((r) => child.once("exit", r));
      child.send("close");
      await gone;
    };
    if (wantOtlp) otlp = { url: urls.otlp, count: () => received.otlp, close };
    if (wantEs)
      es = {
        url: urls.elasticsearch,
        count: () => received.elasticsearch,
        close: wantOtlp ? async () => {} : close,
      };
  } else {
    if (wantOtlp) {
      const r = await bundled["fake-otlp"].startFakeOtlp({ store: "count" });
      otlp = { url: r.url, count: () => r.recordCount, close: () => r.close() };
    }
    if (wantEs) {
      const r = await bundled["fake-elasticsearch"].startFakeElasticsearch({ store: "count" });
      es = { url: r.url, count: () => r.docCount, close: () => r.close() };
    }
  }
  const others = () => ({
    ...(otlp ? { otlp: otlp.count() } : {}),
    ...(es ? { elasticsearch: es.count() } : {}),
  });
  const env = {
    PATH: process.env.PATH ?? "",
    LOG_PATHS: `${logs}/*.log,${logs}/*.log.*`,
    POSITIONS_FILE: join(stateDir, "positions.json"),
    LOKI_ENDPOINT: loki.url,
    ...(otlp ? { OTLP_ENDPOINT: otlp.url } : {}),
    ...(es ? { ES_ENDPOINT: es.url } : {}),
    BATCH_WAIT_MS: String(opt.batchWaitMs),
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: "0",
    SUMMARY_INTERVAL_MS: "5000",
    ...(args["node-options"] ? { NODE_OPTIONS: args["node-options"] } : {}),
    // --env=K=V,K=V: the shipper's own settings for an experiment (BATCH_MAX_BYTES=2097152, …).
    ...Object.fromEntries(
      (args.env ?? "")
        .split(",")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    ),
    // glibc malloc tuning experiments pass through (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, …).
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("MALLOC_"))),
  };
  const nodeArgs = [
    // --node-args="...": node command-line flags (those NODE_OPTIONS refuses, like --max-opt).
    ...(args["node-args"] ? args["node-args"].split(" ").filter(Boolean) : []),
    ...(opt.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(root, "bench/results")}`] : []),
  ];
  let cg = null;
  let child;
  if (opt.cgroup) {
    cg = makeCgroup(`log-shipper-bench-${process.pid}`);
    const enter = cg.procs.map((p) => `echo $$ > ${p}`).join(" && ");
    child = spawn("sh", ["-c", `${enter} && exec "$0" "$@"`, process.execPath, ...nodeArgs, MAIN_JS], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
  } else {
    child = spawn(process.execPath, [...nodeArgs, MAIN_JS], { env, stdio: ["ignore", "pipe", "inherit"] });
  }
  let out = "";
  let address = null;
  const summaries = [];
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    out += d;
    let nl = out.indexOf("\n");
    while (nl !== -1) {
      const l = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (l.includes('"summary"') || l.includes('"level":"error"') || l.includes('"level":"warn"'))
        summaries.push(l);
      if (l.includes("log shipper started")) {
        address = /"address":"([^"]+)"/.exec(l)?.[1] ?? null;
        child.emit("started");
      }
      nl = out.indexOf("\n");
    }
  });
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  await new Promise((r, reject) => {
    child.once("started", r);
    child.once("exit", () => reject(new Error("shipper exited during start")));
  });
  const pid = child.pid;
  // RSS is file-backed pages (the node binary and libraries, ~45 MiB before any work) plus
  // anonymous memory (heaps, buffers): sample the anonymous part's peak separately.
  let peakAnon = 0;
  const timeline = [];
  const sampler = setInterval(() => {
    try {
      const anon = memField(pid, "RssAnon");
      peakAnon = Math.max(peakAnon, anon);
      if (args.timeline) timeline.push(Math.round(anon / 1048576));
    } catch {
      /* exited */
    }
  }, 50);
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  const memoryMidRun = {};
  const midScrape = setTimeout(() => void scrapeMemory(address, memoryMidRun), (seconds * 1000) / 2);
  // --steady-from=S: the CPU from S seconds after the first write until the writer stops, per
  // million lines written in that window — the run without start-up's compiling and first GCs.
  let steady = null;
  const steadyTimer =
    opt.steadyFrom > 0 && opt.steadyFrom < seconds
      ? setTimeout(() => {
          steady = { cpu: cpuSeconds(pid), at: Date.now() };
        }, opt.steadyFrom * 1000)
      : undefined;
  const w = await runWriter(logs, rate, seconds);
  const writerDone = Date.now();
  const cpuAtWriterStop = cpuSeconds(pid);
  clearTimeout(steadyTimer);
  const arrivedAtWriterStop = arrived;
  // Wait for the rest: at most 60 s, or until nothing moved for 10 s.
  let last = arrived;
  let lastMove = Date.now();
  const least = () => Math.min(arrived, ...Object.values(others()));
  while (least() < w.lines && Date.now() - writerDone < 60_000 && Date.now() - lastMove < 10_000) {
    await sleep(20);
    if (least() !== last) {
      last = least();
      lastMove = Date.now();
    }
  }
  const drainMs = Date.now() - writerDone;
  const cpu1 = cpuSeconds(pid);
  const hwm = memField(pid, "VmHWM");
  const rssFile = memField(pid, "RssFile");
  clearInterval(sampler);
  if (args.timeline) say(`RssAnon MiB every 50 ms: ${timeline.join(" ")}`);
  const cgStats = cg?.stats();
  clearTimeout(midScrape);
  // The shipper's own view of its memory, for the report.
  const memory = {};
  await scrapeMemory(address, memory);
  child.kill("SIGTERM");
  const exit = await exited;
  await loki.close();
  await otlp?.close();
  await es?.close();
  const perDestination = { loki: arrived, ...others() };
  cg?.remove();
  rmSync(tmp, { recursive: true, force: true });
  if (logsBase !== tmp) rmSync(logsBase, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });

  let lost = 0;
  let dup = 0;
  for (let i = 0; i < w.lines; i++) {
    if (counts[i] === 0) lost++;
    else if (counts[i] > 1) dup += counts[i] - 1;
  }
  const lat = Array.from(latencies.subarray(0, w.lines).filter((_, i) => counts[i] > 0)).sort(
    (a, b) => a - b,
  );
  const pct = (p) =>
    lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : Number.NaN;
  if (args.timeline) {
    // --timeline: the worst and median latency of the lines written in each second of the run
    // (where a p99 comes from: start-up, a rotation, a GC, throttling).
    const perSec = [];
    for (let s = 0; s * rate < w.lines; s++) {
      const xs = [];
      for (let i = s * rate; i < Math.min(w.lines, (s + 1) * rate); i++)
        if (counts[i] > 0) xs.push(latencies[i]);
      xs.sort((a, b) => a - b);
      perSec.push(
        `${s}s:${Math.round(xs[xs.length >> 1] ?? Number.NaN)}/${Math.round(xs.at(-1) ?? Number.NaN)}`,
      );
    }
    say(`timeline (median/max ms per second written): ${perSec.join(" ")}`);
  }
  const cpu = cpu1 - cpu0;
  const result = {
    rate,
    seconds,
    cgroup: opt.cgroup ? { cpuMillis: opt.cpuMillis, memoryMiB: opt.memoryMiB, ...cgStats } : null,
    batchWaitMs: opt.batchWaitMs,
    linesWritten: w.lines,
    writerSeconds: w.ms / 1000,
    achievedWriteRate: Math.round(w.lines / (w.ms / 1000)),
    linesDelivered: arrived,
    destinations: perDestination,
    lost,
    duplicated: dup,
    unknownLines: unknown,
    cpuSeconds: Number(cpu.toFixed(2)),
    cpuSecondsPerMillionLines: Number(((cpu / w.lines) * 1e6).toFixed(2)),
    steadyCpuSecondsPerMillionLines:
      steady === null
        ? null
        : Number(
            (((cpuAtWriterStop - steady.cpu) / ((rate * (writerDone - steady.at)) / 1000)) * 1e6).toFixed(2),
          ),
    peakRssMiB: Number((hwm / 1024 / 1024).toFixed(1)),
    peakRssAnonMiB: Number((peakAnon / 1024 / 1024).toFixed(1)),
    rssFileMiBAtEnd: Number((rssFile / 1024 / 1024).toFixed(1)),
    memoryMidRun,
    memoryAtEnd: memory,
    latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: lat.at(-1) ?? Number.NaN },
    backlogAtWriterStop: w.lines - arrivedAtWriterStop,
    drainMsAfterWriterStop: drainMs,
    keepsUp: lost === 0 && arrived === w.lines && drainMs <= 2000 && pct(99) <= 2000,
    exit,
    totalSeconds: (Date.now() - t0) / 1000,
    shipperWarnings: summaries.filter((s) => !s.includes('"summary"')).slice(0, 3),
  };
  return result;
}

async function scrapeMemory(address, into) {
  try {
    const text = await (await fetch(`${address}/metrics`)).text();
    const re =
      /^(process_resident_memory_bytes|nodejs_heap_size_total_bytes|nodejs_heap_size_used_bytes|nodejs_external_memory_bytes|nodejs_heap_space_size_total_bytes\{space="(?:new|old|large_object|code)"\}|log_shipper_pending_bytes) (\S+)$/gm;
    for (const m of text.matchAll(re)) into[m[1]] = Number((Number(m[2]) / 1024 / 1024).toFixed(1));
    // Not memory, but what each acknowledgement costs besides the send: positions file writes.
    const saves = /^log_shipper_positions_saves_total\{result="ok"\} (\S+)$/m.exec(text);
    if (saves) into.positionsSaves = Number(saves[1]);
    // And what each destination's requests carried (MiB of bodies, as sent: compressed or not).
    for (const m of text.matchAll(/^log_shipper_request_bytes_total\{destination="([^"]+)"\} (\S+)$/gm)) {
      into.requestMiB ??= {};
      into.requestMiB[m[1]] = Number((Number(m[2]) / 1024 / 1024).toFixed(1));
    }
    const batches = /^log_shipper_batches_total\{destination="([^"]+)",outcome="success"\} (\S+)$/gm;
    for (const m of text.matchAll(batches)) {
      into.batches ??= {};
      into.batches[m[1]] = Number(m[2]);
    }
  } catch {
    /* metrics are a nice-to-have here */
  }
}

function show(r) {
  say(
    `rate ${r.rate}/s × ${r.seconds}s${r.cgroup ? ` in cgroup ${r.cgroup.cpuMillis}m/${r.cgroup.memoryMiB}Mi` : ""}: ` +
      `${r.linesDelivered}/${r.linesWritten} delivered, lost ${r.lost}, duplicated ${r.duplicated}` +
      `${Object.keys(r.destinations).length > 1 ? ` (per destination ${JSON.stringify(r.destinations)})` : ""}; ` +
      `CPU ${r.cpuSecondsPerMillionLines} s/M lines${r.steadyCpuSecondsPerMillionLines === null ? "" : ` (${r.steadyCpuSecondsPerMillionLines} from ${opt.steadyFrom} s on)`}; peak RSS ${r.peakRssMiB} MiB ` +
      `(anonymous ${r.peakRssAnonMiB} MiB, file-backed ${r.rssFileMiBAtEnd} MiB); ` +
      `latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms max ${r.latencyMs.max} ms; ` +
      `drain ${r.drainMsAfterWriterStop} ms; keeps up: ${r.keepsUp}`,
  );
}

if (!SERVE_RECEIVERS) await main();

async function main() {
  mkdirSync(join(root, "bench/results"), { recursive: true });
  try {
    const results = [];
    if (opt.findMax) {
      let best = null;
      for (const rate of [25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 250_000]) {
        const r = await run(rate, opt.seconds);
        show(r);
        results.push(r);
        if (!r.keepsUp) break;
        best = rate;
      }
      say(`max rate kept up with: ${best ?? "< 25000"} lines/s`);
    } else if (opt.compareFanout) {
      // Same writer, same rate, one after the other: Loki alone, then the fan-out to all three;
      // --repeat=N pairs (on a shared machine one pair says little: the ratio moves with the load).
      const ratios = [];
      for (let i = 0; i < opt.repeat; i++) {
        const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
        const alone = await run(opt.rate, opt.seconds, ["loki"]);
        show(alone);
        const all = await run(opt.rate, opt.seconds, ["loki", "otlp", "elasticsearch"]);
        show(all);
        results.push(alone, all);
        const ratio = all.cpuSecondsPerMillionLines / alone.cpuSecondsPerMillionLines;
        ratios.push(ratio);
        say(
          `fan-out to Loki + OTLP + Elasticsearch costs ${ratio.toFixed(2)}× the CPU of Loki alone ` +
            `(${all.cpuSecondsPerMillionLines} vs ${alone.cpuSecondsPerMillionLines} s per million lines; load average ${load} at the start); ` +
            `peak RSS ${all.peakRssMiB} vs ${alone.peakRssMiB} MiB; positions writes ${all.memoryAtEnd.positionsSaves ?? "?"} vs ${alone.memoryAtEnd.positionsSaves ?? "?"}`,
        );
      }
      if (ratios.length > 1)
        say(
          `ratio over ${ratios.length} pairs: ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×`,
        );
    } else {
      const r = await run(opt.rate, opt.seconds);
      show(r);
      results.push(r);
    }
    const file = join(root, "bench/results", `log-shipper-${opt.cgroup ? "cgroup-" : ""}${Date.now()}.json`);
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    if (opt.json) console.log(JSON.stringify(results, null, 2));
    else say(`results written to ${file}`);
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
  }
}
