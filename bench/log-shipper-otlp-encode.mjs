// Micro-benchmark of the OTLP encoder against the Loki encoder on the SAME sealed batches: CPU
// seconds per million ~200-byte pino lines for turning a batch's streams into a request body
// (Loki: PushRequest + snappy; OTLP: ExportLogsServiceRequest + gzip level 1, without gzip, with
// gzip level 6 for comparison, and OTLP/JSON + gzip), and the body bytes per line each produces.
// The batches come from the real Batcher (entry scan, streams by level), copied once so every
// encoder sees identical input; the production code is bundled with esbuild first.
//
// Then gzip alone on the same (uncompressed) requests with the encoder's settings (OTLP_GZIP: level
// 1, memLevel 9) against zlib's default memLevel 8, rounds alternated, minimum of 8.
//
//   node bench/log-shipper-otlp-encode.mjs [millionLines=1]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const millions = Number(process.argv[2] ?? 1);
const totalLines = Math.round(millions * 1e6);
const captureLines = 200_000; // distinct lines batched once, then encoded repeatedly

const dir = mkdtempSync(join(root, "apps/log-shipper/node_modules/.bench-"));
const entry = join(dir, "entry.ts");
writeFileSync(
  entry,
  [
    `export { Batcher } from ${JSON.stringify(join(root, "apps/log-shipper/src/batcher.ts"))};`,
    `export { ProtobufEncoder } from ${JSON.stringify(join(root, "apps/log-shipper/src/sinks/loki/encode-protobuf.ts"))};`,
    `export { OTLP_GZIP, OtlpProtobufEncoder } from ${JSON.stringify(join(root, "apps/log-shipper/src/sinks/otlp/encode-protobuf.ts"))};`,
    `export { OtlpJsonEncoder } from ${JSON.stringify(join(root, "apps/log-shipper/src/sinks/otlp/encode-json.ts"))};`,
  ].join("\n"),
);
const out = join(dir, "encoders.mjs");
await build({
  entryPoints: [entry],
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
const { Batcher, ProtobufEncoder, OTLP_GZIP, OtlpProtobufEncoder, OtlpJsonEncoder } = await import(
  pathToFileURL(out).href
);
rmSync(dir, { recursive: true, force: true });

// The same ~200-byte pino lines as bench/log-shipper-encode.mjs.
const levels = [30, 30, 30, 30, 20, 40, 50];
const paths = ["/", "/work", "/error", "/api/v1/items", "/healthz"];
const batches = [];
const batcher = new Batcher({
  baseLabels: {
    job: "sample-app",
    namespace: "default",
    pod: "sample-app-7d9f8b6c5-x2k4q",
    container: "app",
  },
  batchMaxBytes: 1024 * 1024,
  batchWaitMs: 3_600_000,
  onSeal: (b) => {
    // Copy: the batcher reuses the streams' buffers after onSeal returns.
    batches.push(
      b.streams.map((s) => ({
        labels: s.labels,
        labelBytes: s.labelBytes,
        entries: Buffer.from(s.entries),
        count: s.count,
      })),
    );
  },
});
const file = { id: "bench", path: "/shared/logs/app.log" };
let offset = 0;
const t0 = 1_764_000_000_000;
for (let n = 0; n < captureLines; n++) {
  const line = Buffer.from(
    `{"level":${levels[n % levels.length]},"time":${t0 + n},"pid":${1000 + (n % 7)},"hostname":"sample-app-7d9f8b6c5-x2k4q",` +
      `"reqId":"req-${n.toString(36)}","req":{"method":"GET","url":"${paths[n % paths.length]}"},"res":{"statusCode":200},` +
      `"responseTime":${(n % 997) / 10},"msg":"request completed"}`,
  );
  offset += line.length + 1;
  batcher.add(file, line, 0, line.length, offset, t0 + n);
}
batcher.flush();
batcher.close();
const capturedLines = batches.reduce((n, b) => n + b.reduce((m, s) => m + s.count, 0), 0);
const lineBytes =
  batches.reduce((n, b) => n + b.reduce((m, s) => m + s.entries.length, 0), 0) / capturedLines;

const staticLabels = { job: "sample-app" };
const podLabels = { namespace: "default", pod: "sample-app-7d9f8b6c5-x2k4q", container: "app" };
const otlpNone = new OtlpProtobufEncoder({ staticLabels, podLabels, compression: "none" });
const encoders = {
  "loki protobuf+snappy": new ProtobufEncoder(),
  "otlp protobuf+gzip1": new OtlpProtobufEncoder({ staticLabels, podLabels, compression: "gzip" }),
  "otlp protobuf (no compression)": otlpNone,
  "otlp protobuf+gzip6 (default level, for comparison)": {
    encode: (streams) => ({ body: gzipSync(otlpNone.encode(streams).body, { level: 6 }) }),
  },
  "otlp json+gzip1": new OtlpJsonEncoder({ staticLabels, podLabels, compression: "gzip" }),
};

const rounds = Math.max(1, Math.round(totalLines / capturedLines));
const result = {
  lines: rounds * capturedLines,
  batches: batches.length,
  avgEntryBytes: +lineBytes.toFixed(1),
  encoders: {},
};
for (const [name, enc] of Object.entries(encoders)) {
  for (const b of batches.slice(0, 5)) enc.encode(b); // warm-up
  const perRound = [];
  let bodyBytes = 0;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    bodyBytes = 0;
    for (let i = 0; i < rounds; i++) for (const b of batches) bodyBytes += enc.encode(b).body.length;
    const c = process.cpuUsage(c0);
    perRound.push((c.user + c.system) / 1e6);
  }
  // On a shared machine the minimum is the most faithful CPU cost.
  const cpu = Math.min(...perRound);
  result.encoders[name] = {
    cpuSecondsPerMillionLines: +((cpu / (rounds * capturedLines)) * 1e6).toFixed(3),
    cpuSecondsPerRound: perRound.map((c) => +c.toFixed(3)),
    bodyBytesPerLine: +(bodyBytes / (rounds * capturedLines)).toFixed(1),
  };
}
const requests = batches.map((b) => Buffer.from(otlpNone.encode(b).body));
const gzipSettings = { "level 1, memLevel 9 (OTLP_GZIP)": OTLP_GZIP, "level 1, memLevel 8": { level: 1 } };
const gzipCpu = Object.fromEntries(Object.keys(gzipSettings).map((k) => [k, []]));
for (let r = 0; r < 8; r++) {
  const names = Object.keys(gzipSettings);
  for (const name of r % 2 === 0 ? names : names.reverse()) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < rounds; i++) for (const q of requests) gzipSync(q, gzipSettings[name]);
    const c = process.cpuUsage(c0);
    gzipCpu[name].push((c.user + c.system) / 1e6);
  }
}
result.gzipAlone = Object.fromEntries(
  Object.entries(gzipCpu).map(([k, v]) => [
    k,
    { cpuSecondsPerMillionLines: +((Math.min(...v) / (rounds * capturedLines)) * 1e6).toFixed(3) },
  ]),
);
console.log(JSON.stringify(result, null, 2));
