// The sink side's Prometheus metrics (prefix `log_shipper_`), registered once per registry and
// shared by every destination's pipeline: each series carries the `destination` label (loki,
// otlp, elasticsearch, dry-run). Counters are bumped once per batch, never per line;
// point-in-time values (pending bytes, queued batches) are read in collect() at scrape time.
import { Counter, Gauge, Histogram, type Registry } from "@sidecar/shared";

export interface SinkMetrics {
  sentLines: Counter<"destination">;
  sentBytes: Counter<"destination">;
  requestBytes: Counter<"destination">;
  batches: Counter<"destination" | "outcome">;
  sendDuration: Histogram<"destination" | "outcome">;
  retries: Counter<"destination" | "reason">;
  droppedLines: Counter<"destination" | "reason">;
  timestampsReplaced: Counter<"destination">;
  lastSuccess: Gauge<"destination">;
  /** Report a pipeline's gauges under its destination. */
  watch(destination: string, read: () => PipelineGauges): void;
}

export interface PipelineGauges {
  pendingBytes: number;
  queuedBatches: number;
  openBatchBytes: number;
}

const byRegistry = new WeakMap<Registry, SinkMetrics>();

/**
 * The metrics on `registry` (created on first use). `watch(destination, read)` adds a pipeline
 * whose state `read` gives at scrape time.
 */
export function createSinkMetrics(registry: Registry): SinkMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const sources = new Map<string, () => PipelineGauges>();
  const gauge = (key: keyof PipelineGauges) =>
    function (this: Gauge<"destination">) {
      this.reset();
      for (const [destination, read] of sources) this.set({ destination }, read()[key]);
    };
  const registers = [registry];
  new Gauge({
    name: "log_shipper_pending_bytes",
    help: "Bytes read from log files but not yet acknowledged by the destination (reading pauses at MAX_BUFFER_BYTES).",
    labelNames: ["destination"],
    registers,
    collect: gauge("pendingBytes"),
  });
  new Gauge({
    name: "log_shipper_queued_batches",
    help: "Sealed batches waiting to be sent or being sent.",
    labelNames: ["destination"],
    registers,
    collect: gauge("queuedBatches"),
  });
  new Gauge({
    name: "log_shipper_open_batch_bytes",
    help: "Encoded bytes in the batch currently being filled.",
    labelNames: ["destination"],
    registers,
    collect: gauge("openBatchBytes"),
  });
  const metrics: SinkMetrics = {
    watch(destination, read) {
      sources.set(destination, read);
    },
    sentLines: new Counter({
      name: "log_shipper_sent_lines_total",
      help: "Lines acknowledged by the destination.",
      labelNames: ["destination"],
      registers,
    }),
    sentBytes: new Counter({
      name: "log_shipper_sent_bytes_total",
      help: "Bytes of log lines acknowledged by the destination (uncompressed line bytes).",
      labelNames: ["destination"],
      registers,
    }),
    requestBytes: new Counter({
      name: "log_shipper_request_bytes_total",
      help: "Bytes of push request bodies acknowledged by the destination (encoded and compressed).",
      labelNames: ["destination"],
      registers,
    }),
    batches: new Counter({
      name: "log_shipper_batches_total",
      help: "Push attempts by outcome: success, retry (429, 5xx, network error, timeout), split (a 4xx that did not say which entries were bad: the halves are sent again) or dropped (other 4xx).",
      labelNames: ["destination", "outcome"],
      registers,
    }),
    sendDuration: new Histogram({
      name: "log_shipper_send_duration_seconds",
      help: "Duration of push requests to the destination, by outcome.",
      labelNames: ["destination", "outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    retries: new Counter({
      name: "log_shipper_retries_total",
      help: "Push attempts that will be retried, by reason (http_<status>, network, timeout).",
      labelNames: ["destination", "reason"],
      registers,
    }),
    droppedLines: new Counter({
      name: "log_shipper_dropped_lines_total",
      help: "Lines the destination rejected for good (a 4xx other than 429), by reason (http_<status>).",
      labelNames: ["destination", "reason"],
      registers,
    }),
    timestampsReplaced: new Counter({
      name: "log_shipper_timestamps_replaced_total",
      help: "Lines whose own time the destination could not take (not encodable, before 1970, or more than 10 min ahead of the read) and that were sent with their read time instead.",
      labelNames: ["destination"],
      registers,
    }),
    lastSuccess: new Gauge({
      name: "log_shipper_last_success_timestamp_seconds",
      help: "Unix time of the last batch the destination acknowledged.",
      labelNames: ["destination"],
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
