// Micro-benchmark of the processing stage (issue 13 item 6): CPU seconds per million ~300-byte
// pino lines through the shipper's sink side — processing stage (when configured) → fan-out →
// Loki pipeline (scan, stream pick, protobuf entries, snappy) with a no-op transport — for each
// stage enabled alone beside none, in the same run. Rounds are interleaved (none, stage A, stage
// B, …, then again) and the minimum per mode is reported: on a shared machine the minimum is the
// most faithful CPU cost. The production code is bundled with esbuild first, so what runs is
// what ships. "none" is the program without processing settings (the stage is not built and the
// fan-out passes lines straight through).
//
//   node bench/log-shipper-processing.mjs [millionLines=1] [rounds=3] [modes=none,drop-levels,...]
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const app = join(root, "apps/log-shipper");
const millions = Number(process.argv[2] ?? 1);
const roundsWanted = Number(process.argv[3] ?? 3);
const totalLines = Math.round(millions * 1e6);

const dir = mkdtempSync(join(app, "node_modules/.bench-proc-"));
const out = join(dir, "processing.mjs");
await build({
  stdin: {
    contents: [
      'import "./src/v8-flags.ts";',
      'export { FanOut } from "./src/fanout.ts";',
      'export { Pipeline } from "./src/pipeline.ts";',
      'export { ProcessingStage } from "./src/processing/stage.ts";',
      'export { presetRule } from "./src/processing/multiline.ts";',
      'export { redactRules } from "./src/processing/config.ts";',
      'export { REDACT_PRESETS } from "./src/processing/stage.ts";',
      'export { safeRegExp } from "./src/processing/regex.ts";',
      'export { createSinkMetrics } from "./src/sink-metrics.ts";',
    ].join("\n"),
    resolveDir: app,
    loader: "ts",
  },
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
  absWorkingDir: app,
});
const m = await import(pathToFileURL(out).href);
rmSync(dir, { recursive: true, force: true });
const { Registry } = createRequire(join(app, "package.json"))("prom-client");

// pino lines as an OpenTelemetry-instrumented app writes them: trace_id / span_id at the top.
const levels = [30, 30, 30, 30, 20, 40, 50];
const routes = ["/", "/work", "/error", "/api/v1/items", "/healthz"];
const hex = (n, digits) => (n * 2654435761).toString(16).padStart(digits, "0").slice(-digits);
function makeChunk(seed, startTime) {
  const lines = [];
  let size = 0;
  let i = 0;
  while (size < 1024 * 1024 - 500) {
    const n = seed * 100000 + i;
    const line =
      `{"level":${levels[n % levels.length]},"time":${startTime + i},"pid":${1000 + (seed % 7)},"hostname":"sample-app-7d9f8b6c5-x2k4q",` +
      `"trace_id":"${hex(n, 16)}${hex(n + 7, 16)}","span_id":"${hex(n + 3, 16)}","route":"${routes[n % routes.length]}",` +
      `"reqId":"req-${n.toString(36)}","req":{"method":"GET","url":"${routes[n % routes.length]}"},"res":{"statusCode":200},` +
      `"responseTime":${(n % 997) / 10},"msg":"request completed"}\n`;
    lines.push(line);
    size += line.length;
    i++;
  }
  return { buf: Buffer.from(lines.join("")), count: lines.length };
}
const chunks = Array.from({ length: 8 }, (_, s) => makeChunk(s, 1_764_000_000_000 + s * 10_000));
const avgLine = chunks.reduce((n, c) => n + c.buf.length, 0) / chunks.reduce((n, c) => n + c.count, 0);

/** Each mode's processing settings (as the environment variables would give them). */
const MODES = {
  none: undefined,
  "drop-levels": { dropLevels: ["debug"] }, // DROP_LEVELS=debug
  "drop-matching": { dropMatching: [m.safeRegExp("healthz")] }, // DROP_MATCHING=healthz
  redact: { redact: m.redactRules({ redactPatterns: [], redactPresets: [m.REDACT_PRESETS.bearer()] }) }, // REDACT_PRESETS=bearer
  multiline: {
    // MULTILINE_PRESET=java
    multiline: { continues: m.presetRule("java"), timeoutMs: 1000, maxLines: 500, maxBytes: 262_144 },
  },
  labels: { labelFields: ["route"] }, // LABEL_FIELDS=route
  metadata: { metadataFields: ["trace_id", "span_id"] }, // METADATA_FIELDS=trace_id,span_id
  fields: { labelFields: ["route"], metadataFields: ["trace_id", "span_id"] },
};
const modes = process.argv[4] ? process.argv[4].split(",") : Object.keys(MODES);

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

function makeSink(mode) {
  const settings = MODES[mode];
  const registry = new Registry();
  const metrics = m.createSinkMetrics(registry);
  const fanout = new m.FanOut({
    tracked: settings !== undefined,
    ack: { acknowledged() {}, persisted: async () => {} },
    logger: silent,
    metrics,
  });
  const pipeline = new m.Pipeline({
    encoding: "protobuf",
    timeoutMs: 10_000,
    retryMinMs: 500,
    retryMaxMs: 300_000,
    batchWaitMs: 1000,
    batchMaxBytes: 1024 * 1024,
    maxBufferBytes: 16 * 1024 * 1024,
    staticLabels: { job: "sample-app" },
    podLabels: { namespace: "default", pod: "sample-app-7d9f8b6c5-x2k4q", container: "log-shipper" },
    registry,
    metrics,
    logger: silent,
    ack: fanout.listenerFor("loki"),
    transport: noop,
  });
  fanout.add(pipeline, "block");
  const stage =
    settings === undefined
      ? undefined
      : new m.ProcessingStage(fanout, {
          dropLevels: [],
          keepMatching: [],
          dropMatching: [],
          redact: [],
          ...settings,
          registry,
          logger: silent,
        });
  return { fanout, stage, pipeline };
}

async function run(mode, lines) {
  const { fanout, stage, pipeline } = makeSink(mode);
  const sink = stage ?? fanout;
  fanout.start();
  const file = { id: "bench", path: "/shared/logs/app.log" };
  let waiting;
  sink.onDrain(() => waiting?.());
  fanout.begin(file, 0);
  let done = 0;
  let offset = 0;
  while (done < lines) {
    const { buf } = chunks[done % chunks.length];
    const now = Date.now();
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0 || done >= lines) break;
      offset += nl - start + 1;
      sink.writeLine(file, buf, start, nl, offset, false, now);
      start = nl + 1;
      done++;
    }
    if (!sink.canAccept()) await new Promise((r) => (waiting = r));
    else await new Promise((r) => setImmediate(r));
  }
  sink.flush();
  stage?.stop();
  const ok = await fanout.drain(Date.now() + 60_000);
  await fanout.close();
  if (!ok) throw new Error(`${mode}: drain did not finish`);
  return pipeline.stats().linesSent;
}

for (const mode of modes) await run(mode, 100_000); // warm-up: JIT, buffers
const cpu = Object.fromEntries(modes.map((k) => [k, []]));
const sent = {};
for (let r = 0; r < roundsWanted; r++) {
  for (const mode of modes) {
    const c0 = process.cpuUsage();
    sent[mode] = await run(mode, totalLines);
    const c1 = process.cpuUsage(c0);
    cpu[mode].push((c1.user + c1.system) / 1e6);
  }
}
const perM = (mode) => (Math.min(...cpu[mode]) / totalLines) * 1e6;
const none = modes.includes("none") ? perM("none") : undefined;
console.log(
  JSON.stringify(
    {
      lines: totalLines,
      avgLineBytes: Math.round(avgLine),
      rounds: roundsWanted,
      cpuSecondsPerMillionLines: Object.fromEntries(modes.map((k) => [k, +perM(k).toFixed(3)])),
      ...(none !== undefined
        ? { vsNone: Object.fromEntries(modes.map((k) => [k, +(perM(k) / none).toFixed(2)])) }
        : {}),
      linesSent: sent,
      cpuSecondsPerRound: Object.fromEntries(modes.map((k) => [k, cpu[k].map((c) => +c.toFixed(3))])),
    },
    null,
    2,
  ),
);
