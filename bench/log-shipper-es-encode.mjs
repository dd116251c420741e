// Micro-benchmark of the Elasticsearch bulk encoder against the Loki protobuf encoder on the same
// sealed batches: CPU seconds per million ~200-byte pino lines for encode() alone (NDJSON + ECS
// documents + `_id`s, uncompressed and gzip; protobuf + snappy), plus body bytes per line. The
// batches are made once by the real Batcher (with entry refs, as the Elasticsearch sink asks) and
// copied, so both encoders see identical input. Production code is bundled with esbuild first.
//
//   node bench/log-shipper-es-encode.mjs [millionLines=0.5]
import { mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const totalLines = Math.round(Number(process.argv[2] ?? 0.5) * 1e6);

const dir = mkdtempSync(join(root, "apps/log-shipper/node_modules/.bench-"));
const out = join(dir, "es-encode.mjs");
await build({
  stdin: {
    contents: [
      'export { Batcher } from "./src/batcher.ts";',
      'export { ProtobufEncoder } from "./src/sinks/loki/encode-protobuf.ts";',
      'export { BulkEncoder } from "./src/sinks/elasticsearch/encode-bulk.ts";',
      'export { IndexName } from "./src/sinks/elasticsearch/index-name.ts";',
    ].join("\n"),
    resolveDir: join(root, "apps/log-shipper"),
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
  absWorkingDir: join(root, "apps/log-shipper"),
});
const { Batcher, ProtobufEncoder, BulkEncoder, IndexName } = await import(pathToFileURL(out).href);
rmSync(dir, { recursive: true, force: true });

// The same ~200-byte pino lines as bench/log-shipper-encode.mjs.
const levels = [30, 30, 30, 30, 20, 40, 50];
const paths = ["/", "/work", "/error", "/api/v1/items", "/healthz"];
function line(n, time) {
  return (
    `{"level":${levels[n % levels.length]},"time":${time},"pid":${1000 + (n % 7)},"hostname":"sample-app-7d9f8b6c5-x2k4q",` +
    `"reqId":"req-${n.toString(36)}","req":{"method":"GET","url":"${paths[n % paths.length]}"},"res":{"statusCode":200},` +
    `"responseTime":${(n % 997) / 10},"msg":"request completed"}`
  );
}

// Seal real batches (1 MiB, entry refs on) and keep copies of them.
const batches = [];
const podLabels = {
  namespace: "default",
  pod: "sample-app-7d9f8b6c5-x2k4q",
  container: "sample-app",
  node: "node-1",
};
const batcher = new Batcher({
  baseLabels: { job: "sample-app", ...podLabels },
  batchMaxBytes: 1024 * 1024,
  batchWaitMs: 60_000,
  entryRefs: true,
  onSeal: (b) =>
    batches.push(
      b.streams.map((s) => ({
        ...s,
        entries: Buffer.from(s.entries),
        fileIds: s.fileIds,
        offsets: s.offsets,
      })),
    ),
});
const file = { id: "64769:1234:00aa11bb22cc33dd/1", path: "/shared/logs/app.log" };
let offset = 0;
let lineBytes = 0;
const t0 = 1_764_000_000_000;
for (let i = 0; i < totalLines; i++) {
  const buf = Buffer.from(line(i, t0 + i));
  offset += buf.length + 1;
  lineBytes += buf.length;
  batcher.add(file, buf, 0, buf.length, offset, t0 + i);
}
batcher.flush();
batcher.close();

function measure(name, encoder) {
  const rounds = [];
  let bytes = 0;
  for (let r = 0; r < 4; r++) {
    bytes = 0;
    const c0 = process.cpuUsage();
    for (const streams of batches) bytes += encoder.encode(streams).body.length;
    const c = process.cpuUsage(c0);
    rounds.push((c.user + c.system) / 1e6);
  }
  rounds.shift(); // warm-up
  const cpu = Math.min(...rounds);
  return {
    encoder: name,
    cpuSecondsPerMillionLines: +((cpu / totalLines) * 1e6).toFixed(3),
    cpuSecondsPerRound: rounds.map((c) => +c.toFixed(3)),
    bodyBytesPerLine: +(bytes / totalLines).toFixed(1),
  };
}

const es = (compression, index, reuseBody = false, indexInPath = false) =>
  new BulkEncoder({
    index: new IndexName(index),
    compression,
    staticLabels: { job: "sample-app" },
    podLabels,
    reuseBody,
    indexInPath,
  });
const results = [
  measure("loki protobuf+snappy", new ProtobufEncoder()),
  measure("elasticsearch ndjson (data stream)", es("none", "logs-sidecar-default")),
  measure(
    "elasticsearch ndjson (data stream, reused body, _index in actions)",
    es("none", "logs-sidecar-default", true),
  ),
  // As the sink runs it with ES_COMPRESSION=none: the body is the encoder's buffer, not a copy,
  // and the fixed index is the request path's (`/<index>/_bulk`), not each action's.
  measure(
    "elasticsearch ndjson (data stream, reused body, index in path)",
    es("none", "logs-sidecar-default", true, true),
  ),
  measure("elasticsearch ndjson (logs-%Y.%m.%d)", es("none", "logs-%Y.%m.%d")),
  measure("elasticsearch ndjson+gzip", es("gzip", "logs-sidecar-default")),
];
console.log(
  JSON.stringify(
    { lines: totalLines, avgLineBytes: Math.round(lineBytes / totalLines), batches: batches.length, results },
    null,
    2,
  ),
);
