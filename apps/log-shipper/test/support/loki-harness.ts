// Test harness for the sink side: a Pipeline wired to a fake Loki with small, fast settings, a
// reader-like line writer that records offsets, acknowledgement and log capture, and metric
// lookup from the registry. Used by the Loki client and pipeline tests.
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { SourceFile } from "../../src/contracts.js";
import { Pipeline, type PipelineOptions } from "../../src/pipeline.js";
import { LokiClient } from "../../src/sinks/loki/loki-client.js";
import { LokiSink } from "../../src/sinks/loki/loki-sink.js";
import type { Sink, SinkName } from "../../src/sinks/sink.js";
import type { FakeLoki } from "./fake-loki.js";

export interface Harness {
  pipeline: Pipeline;
  registry: Registry;
  /** Acknowledgements in arrival order. */
  acks: { fileId: string; offset: number }[];
  /** The pipeline's own log lines, parsed. */
  logs: Record<string, unknown>[];
  /**
   * Write lines to `file` as a reader would (one chunk, slices of it, all with the chunk's read
   * time — now unless given); returns the end offset.
   */
  write(file: SourceFile, lines: string[], readTimeMs?: number): number;
  /** Highest acknowledged offset per file id. */
  acked(fileId: string): number;
}

export function harness(loki: FakeLoki | undefined, overrides: Partial<PipelineOptions> = {}): Harness {
  const registry = new Registry();
  const acks: { fileId: string; offset: number }[] = [];
  const logs: Record<string, unknown>[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l) logs.push(JSON.parse(l));
      cb();
    },
  });
  const pipeline = new Pipeline({
    ...(loki ? { endpoint: new URL(loki.pushUrl) } : {}),
    encoding: "protobuf",
    compression: "gzip",
    timeoutMs: 5000,
    retryMinMs: 20,
    retryMaxMs: 200,
    batchWaitMs: 50,
    batchMaxBytes: 64 * 1024,
    maxBufferBytes: 1024 * 1024,
    staticLabels: { job: "test" },
    registry,
    logger: pino({ level: "debug" }, dest),
    ack: { acknowledged: (fileId, offset) => acks.push({ fileId, offset }) },
    random: () => 0.5,
    ...overrides,
  });
  const offsets = new Map<string, number>();
  return {
    pipeline,
    registry,
    acks,
    logs,
    write(file, lines, readTimeMs = Date.now()) {
      const chunk = Buffer.from(lines.map((l) => `${l}\n`).join(""));
      let pos = 0;
      let offset = offsets.get(file.id) ?? 0;
      for (const l of lines) {
        const len = Buffer.byteLength(l);
        offset += len + 1;
        pipeline.writeLine(file, chunk, pos, pos + len, offset, false, readTimeMs);
        pos += len + 1;
      }
      offsets.set(file.id, offset);
      return offset;
    },
    acked(fileId) {
      let max = -1;
      for (const a of acks) if (a.fileId === fileId) max = Math.max(max, a.offset);
      return max;
    },
  };
}

/** Value of a metric (sum over series matching `labels`), or 0 when absent. */
export async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const all = await registry.getMetricsAsJSON();
  const m = all.find((x) => x.name === name);
  if (!m) throw new Error(`metric ${name} is not registered`);
  let sum = 0;
  for (const v of m.values as {
    value: number;
    labels: Record<string, string | number>;
    metricName?: string;
  }[]) {
    if (v.metricName !== undefined && v.metricName !== name && v.metricName !== `${name}_count`) continue;
    if (Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val)) sum += v.value;
  }
  return sum;
}

/** Poll `cond` until true or fail with `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function lines(prefix: string, n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `{"level":30,"time":${1_700_000_000_000 + i},"msg":"${prefix}-${i}"}`,
  );
}

/** A Loki sink under another destination name: a second, independent destination (fan-out tests). */
export function lokiSinkNamed(loki: FakeLoki, name: SinkName): Sink {
  const inner = new LokiSink(
    new LokiClient({ endpoint: new URL(loki.pushUrl), timeoutMs: 5000 }),
    "protobuf",
    "gzip",
  );
  return Object.assign(Object.create(inner) as Sink, { name, title: name });
}
