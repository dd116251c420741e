// The exporter's own metrics, in its own prom-client Registry (never the global one): collection,
// per-file status, limits hit, scrapes and pushes, plus Node process metrics. Also turns the
// registry into Families so one renderer serves both formats for collected and own metrics alike.

import {
  type Counter,
  Counter as CounterClass,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type Registry,
} from "@sidecar/shared";
import type { Family, FamilyType } from "./families.js";
import { escapeLabelValue, formatNumber } from "./render.js";

export interface SelfMetrics {
  collections: Counter<never>;
  collectionErrors: Counter<"reason">;
  collectionDuration: Histogram<never>;
  dirReadable: Gauge<never>;
  lastCollection: Gauge<never>;
  fileParses: Counter<never>;
  fileErrors: Counter<"file" | "reason">;
  fileOk: Gauge<"file">;
  fileMtime: Gauge<"file">;
  fileSeries: Gauge<"file">;
  fileStale: Gauge<"file">;
  fileRejected: Gauge<"file">;
  fileConflict: Gauge<"file" | "reason">;
  conflicts: Counter<"reason">;
  filesDropped: Counter<"reason">;
  filesSkipped: Counter<"reason">;
  limitHits: Counter<"limit">;
  series: Gauge<never>;
  families: Gauge<never>;
  expositionBytes: Gauge<never>;
  memoryReclaims: Counter<never>;
  scrapes: Counter<"format">;
  pushes: Counter<"result">;
  pushDuration: Histogram<never>;
  lastPushSuccess: Gauge<never>;
  outputSends: Counter<"output" | "result">;
  outputDuration: Histogram<"output">;
  outputLastSuccess: Gauge<"output">;
  outputDropped: Counter<"output" | "reason">;
}

// The exporter's own process metrics carry its prefix: the pod's apps write their own `process_*`
// and `nodejs_*` families into the shared directory, and on the pod's one scrape target those
// must be the app's, not silently shadowed by (or conflicting with) the sidecar's.
const PROCESS_PREFIX = "metrics_exporter_";

// prom-client's default metrics include `nodejs_active_*_total` gauges, which duplicate the
// `nodejs_active_*` gauges and which `promtool check metrics` flags (a gauge named *_total).
const LINTED_DEFAULTS = [
  "nodejs_active_resources_total",
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
].map((n) => PROCESS_PREFIX + n);

export function createSelfMetrics(registry: Registry): SelfMetrics {
  // Event-loop lag sampled once a second instead of prom-client's every 10 ms: its timer wakes the
  // process whatever it is doing. At 10 ms it alone cost ~0.8 % of a core in an idle sidecar; at
  // 100 ms it was all 10 of an idle exporter's wake-ups a second (README, "Own metrics").
  collectDefaultMetrics({ register: registry, prefix: PROCESS_PREFIX, eventLoopMonitoringPrecision: 1000 });
  for (const name of LINTED_DEFAULTS) registry.removeSingleMetric(name);
  const registers = [registry];
  const p = "metrics_exporter_";
  return {
    collections: new CounterClass({
      name: `${p}collections_total`,
      help: "Collections of the metrics directory.",
      registers,
    }),
    collectionErrors: new CounterClass({
      name: `${p}collection_errors_total`,
      help: "Collections that could not list the metrics directory, by reason.",
      labelNames: ["reason"],
      registers,
    }),
    collectionDuration: new Histogram({
      name: `${p}collection_duration_seconds`,
      help: "Time one collection took (listing, parsing changed files, merging, rendering).",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    dirReadable: new Gauge({
      name: `${p}dir_readable`,
      help: "1 when the last listing of the metrics directory succeeded.",
      registers,
    }),
    lastCollection: new Gauge({
      name: `${p}last_collection_timestamp_seconds`,
      help: "When the last collection finished (Unix time).",
      registers,
    }),
    fileParses: new CounterClass({
      name: `${p}file_parses_total`,
      help: "Files parsed; a file is parsed again only when its size, mtime or inode changed.",
      registers,
    }),
    fileErrors: new CounterClass({
      name: `${p}file_errors_total`,
      help: "Versions of a file rejected whole, by reason (counted once per version).",
      labelNames: ["file", "reason"],
      registers,
    }),
    fileOk: new Gauge({
      name: `${p}file_ok`,
      help: "1 when the file's metrics are in the output.",
      labelNames: ["file"],
      registers,
    }),
    fileMtime: new Gauge({
      name: `${p}file_mtime_seconds`,
      help: "Modification time of the file on disk (Unix time).",
      labelNames: ["file"],
      registers,
    }),
    fileSeries: new Gauge({
      name: `${p}file_series`,
      help: "Series served from the file.",
      labelNames: ["file"],
      registers,
    }),
    fileStale: new Gauge({
      name: `${p}file_stale`,
      help: "1 when the file's last good version is older than STALE_AFTER_MS and was dropped.",
      labelNames: ["file"],
      registers,
    }),
    fileRejected: new Gauge({
      name: `${p}file_rejected`,
      help: "1 when the version on disk was rejected (the last good version is served until stale).",
      labelNames: ["file"],
      registers,
    }),
    fileConflict: new Gauge({
      name: `${p}file_conflict`,
      help: "1 when the file is left out because it conflicts with a file already served (or an earlier one by name) or an own metric.",
      labelNames: ["file", "reason"],
      registers,
    }),
    conflicts: new CounterClass({
      name: `${p}conflicts_total`,
      help: "Files newly left out because of a conflict, by reason.",
      labelNames: ["reason"],
      registers,
    }),
    filesDropped: new CounterClass({
      name: `${p}files_dropped_total`,
      help: "Files dropped from the output because they went stale or were deleted.",
      labelNames: ["reason"],
      registers,
    }),
    filesSkipped: new CounterClass({
      name: `${p}files_skipped_total`,
      help: "Directory entries named *.prom that are not collected (symlink outside the directory, not a regular file, over MAX_FILES), counted once per occurrence.",
      labelNames: ["reason"],
      registers,
    }),
    limitHits: new CounterClass({
      name: `${p}limit_hits_total`,
      help: "Times a configured bound cut input, by limit.",
      labelNames: ["limit"],
      registers,
    }),
    series: new Gauge({ name: `${p}series`, help: "Collected series in the output.", registers }),
    families: new Gauge({
      name: `${p}families`,
      help: "Collected metric families in the output.",
      registers,
    }),
    expositionBytes: new Gauge({
      name: `${p}exposition_bytes`,
      help: "Size of the collected sample lines in /metrics (uncompressed, without HELP and TYPE lines).",
      registers,
    }),
    memoryReclaims: new CounterClass({
      name: `${p}memory_reclaims_total`,
      help: "Full garbage collections run to free the buffers of superseded collections.",
      registers,
    }),
    scrapes: new CounterClass({
      name: `${p}scrapes_total`,
      help: "Requests served on /metrics, by format.",
      labelNames: ["format"],
      registers,
    }),
    pushes: new CounterClass({
      name: `${p}pushes_total`,
      help: "Pushes to the Pushgateway, by result.",
      labelNames: ["result"],
      registers,
    }),
    pushDuration: new Histogram({
      name: `${p}push_duration_seconds`,
      help: "Duration of pushes to the Pushgateway.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    lastPushSuccess: new Gauge({
      name: `${p}last_push_success_timestamp_seconds`,
      help: "When the last successful push finished (Unix time).",
      registers,
    }),
    outputSends: new CounterClass({
      name: `${p}output_sends_total`,
      help: "Sends by output (pushgateway, statsd, remote_write) and result (success, retryable, failure).",
      labelNames: ["output", "result"],
      registers,
    }),
    outputDuration: new Histogram({
      name: `${p}output_send_duration_seconds`,
      help: "Duration of one send, by output.",
      labelNames: ["output"],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    outputLastSuccess: new Gauge({
      name: `${p}output_last_success_timestamp_seconds`,
      help: "When the output's last successful send finished (Unix time).",
      labelNames: ["output"],
      registers,
    }),
    outputDropped: new CounterClass({
      name: `${p}output_dropped_total`,
      help: "Samples or requests an output left out, by output and reason.",
      labelNames: ["output", "reason"],
      registers,
    }),
  };
}

/** Names and types of the registry's families, reserved so collected files cannot shadow them. */
export function ownFamilyNames(registry: Registry): { name: string; type: FamilyType }[] {
  return registry.getMetricsAsArray().map((m) => {
    const t = (m as unknown as { type?: string }).type;
    const type: FamilyType =
      t === "counter" || t === "gauge" || t === "histogram" || t === "summary" ? t : "untyped";
    return { name: (m as unknown as { name: string }).name, type };
  });
}

interface JsonValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** Snapshot the registry (running its collect() hooks) as Families. */
export async function ownFamilies(registry: Registry): Promise<Family[]> {
  const json = (await registry.getMetricsAsJSON()) as unknown as {
    name: string;
    help: string;
    type: string;
    values: JsonValue[];
  }[];
  const out: Family[] = [];
  for (const m of json) {
    if (m.values.length === 0) continue;
    const type: FamilyType =
      m.type === "counter" || m.type === "gauge" || m.type === "histogram" || m.type === "summary"
        ? m.type
        : "untyped";
    let lines = "";
    for (const v of m.values) {
      const names = Object.keys(v.labels).sort();
      let labels = "";
      for (const n of names) {
        const raw = v.labels[n];
        const value = typeof raw === "number" ? formatNumber(raw) : String(raw);
        labels += `${labels ? "," : ""}${n}="${escapeLabelValue(value)}"`;
      }
      lines += `${v.metricName ?? m.name}${labels ? `{${labels}}` : ""} ${formatNumber(v.value)}\n`;
    }
    out.push({
      name: m.name,
      type,
      help: m.help,
      lines: Buffer.from(lines, "utf8"),
      series: m.values.length,
    });
  }
  return out;
}
