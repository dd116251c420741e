// Micro-benchmark of the log shipper's sink hot path: CPU seconds per million ~200-byte pino
// lines through Pipeline.writeLine (entry scan, stream pick, protobuf entry encoding) + batch
// assembly + snappy compression, with a no-op transport that acknowledges at once. Lines are
// split from 1 MiB chunks with Buffer.indexOf, as the reader does, and that cost is reported
// separately. The production code is bundled with esbuild first, so what runs is what ships.
//
//   node bench/log-shipper-encode.mjs [millionLines=2] [encoding=protobuf|json]
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const millions = Number(process.argv[2] ?? 2);
const encoding = process.argv[3] ?? "protobuf";
const totalLines = Math.round(millions * 1e6);

// Inside the app's node_modules so the bundle resolves its external packages like dist/ does.
const dir = mkdtempSync(join(root, "apps/log-shipper/node_modules/.bench-"));
const out = join(dir, "pipeline.mjs");
await build({
  entryPoints: [join(root, "apps/log-shipper/src/pipeline.ts")],
  outfile: out,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  external: ["snappy"],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: "warning",
  absWorkingDir: join(root, "apps/log-shipper"),
});
const { Pipeline } = await import(pathToFileURL(out).href);
rmSync(dir, { recursive: true, force: true });
const { Registry } = createRequire(join(root, "apps/log-shipper/package.json"))("prom-client");

// ~200-byte pino lines, varied so snappy sees realistic (not degenerate) input.
const levels = [30, 30, 30, 30, 20, 40, 50];
const paths = ["/", "/work", "/error", "/api/v1/items", "/healthz"];
function makeChunk(seed, startTime) {
  const lines = [];
  let size = 0;
  let i = 0;
  while (size < 1024 * 1024 - 400) {
    const n = seed * 100000 + i;
    const line =
      `{"level":${levels[n % levels.length]},"time":${startTime + i},"pid":${1000 + (seed % 7)},"hostname":"sample-app-7d9f8b6c5-x2k4q",` +
      `"reqId":"req-${n.toString(36)}","req":{"method":"GET","url":"${paths[n % paths.length]}"},"res":{"statusCode":200},` +
      `"responseTime":${(n % 997) / 10},"msg":"request completed"}\n`;
    lines.push(line);
    size += line.length;
    i++;
  }
  return { buf: Buffer.from(lines.join("")), count: lines.length };
}
const chunks = Array.from({ length: 8 }, (_, s) => makeChunk(s, 1_764_000_000_000 + s * 10_000));
const avgLine = chunks.reduce((n, c) => n + c.buf.length, 0) / chunks.reduce((n, c) => n + c.count, 0);

let acked = 0;
const noop = {
  async send() {
    return { kind: "success", status: 204 };
  },
  async close() {},
};
const silent = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return silent;
  },
};

function makePipeline() {
  return new Pipeline({
    encoding,
    compression: "gzip",
    timeoutMs: 10_000,
    retryMinMs: 500,
    retryMaxMs: 300_000,
    batchWaitMs: 1000,
    batchMaxBytes: 1024 * 1024,
    maxBufferBytes: 16 * 1024 * 1024,
    staticLabels: { job: "sample-app" },
    podLabels: { namespace: "default", pod: "sample-app-7d9f8b6c5-x2k4q", container: "log-shipper" },
    registry: new Registry(),
    logger: silent,
    ack: { acknowledged: () => acked++ },
    transport: noop,
  });
}

/** Feed `lines` lines; `sink` false = split only (the reader's share, for reference). */
async function run(lines, sink) {
  const p = makePipeline();
  p.start();
  const file = { id: "bench", path: "/shared/logs/app.log" };
  let waiting;
  p.onDrain(() => waiting?.());
  let done = 0;
  let offset = 0;
  let sinkLines = 0;
  while (done < lines) {
    const { buf } = chunks[done % chunks.length];
    const now = Date.now();
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0 || done >= lines) break;
      offset += nl - start + 1;
      if (sink) p.writeLine(file, buf, start, nl, offset, false, now);
      else sinkLines += nl - start;
      start = nl + 1;
      done++;
    }
    if (!p.canAccept()) await new Promise((r) => (waiting = r));
    else await new Promise((r) => setImmediate(r));
  }
  const ok = await p.drain(Date.now() + 60_000);
  await p.close();
  if (!ok) throw new Error("drain did not finish");
  return { stats: p.stats(), sinkLines };
}

await run(200_000, true); // warm-up: JIT, buffers
const rss0 = process.memoryUsage().rss;
let c0 = process.cpuUsage();
await run(totalLines, false);
let c1 = process.cpuUsage(c0);
const splitCpu = (c1.user + c1.system) / 1e6;
// Several rounds: on a shared machine the minimum is the most faithful CPU cost.
const rounds = [];
let stats;
let wall = 0;
for (let r = 0; r < 3; r++) {
  c0 = process.cpuUsage();
  const t0 = performance.now();
  ({ stats } = await run(totalLines, true));
  c1 = process.cpuUsage(c0);
  wall = (performance.now() - t0) / 1000;
  rounds.push((c1.user + c1.system) / 1e6);
  if (stats.linesSent !== totalLines) throw new Error(`sent ${stats.linesSent} of ${totalLines}`);
}
const cpu = Math.min(...rounds);
const perM = (cpu / totalLines) * 1e6;
console.log(
  JSON.stringify(
    {
      encoding,
      lines: totalLines,
      avgLineBytes: Math.round(avgLine),
      batches: stats.batchesSent,
      cpuSecondsPerRound: rounds.map((c) => +c.toFixed(3)),
      cpuSeconds: +cpu.toFixed(3),
      cpuSecondsPerMillionLines: +perM.toFixed(3),
      splitOnlyCpuSecondsPerMillionLines: +((splitCpu / totalLines) * 1e6).toFixed(3),
      sinkCpuSecondsPerMillionLines: +(((cpu - splitCpu) / totalLines) * 1e6).toFixed(3),
      wallSeconds: +wall.toFixed(3),
      linesPerSecond: Math.round(totalLines / wall),
      rssMiB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1),
      rssGrowthMiB: +((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(1),
    },
    null,
    2,
  ),
);
