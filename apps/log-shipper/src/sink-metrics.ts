// The sink side's Prometheus metrics (prefix `log_shipper_`), registered on the registry the app
// passes in. Counters are bumped once per batch, never per line; point-in-time values (pending
// bytes, queued batches) are read in collect() at scrape time.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface SinkMetrics {
  sentLines: Counter;
  sentBytes: Counter;
  requestBytes: Counter;
  batches: Counter<"outcome">;
  sendDuration: Histogram<"outcome">;
  retries: Counter<"reason">;
  droppedLines: Counter<"reason">;
  timestampsReplaced: Counter;
  lastSuccess: Gauge;
}

/** `read` is called at scrape time for the gauges that describe the pipeline's current state. */
export function createSinkMetrics(
  registry: Registry,
  read: () => { pendingBytes: number; queuedBatches: number; openBatchBytes: number },
): SinkMetrics {
  const registers = [registry];
  new Gauge({
    name: "log_shipper_pending_bytes",
    help: "Bytes read from log files but not yet acknowledged by Loki (reading pauses at MAX_BUFFER_BYTES).",
    registers,
    collect() {
      this.set(read().pendingBytes);
    },
  });
  new Gauge({
    name: "log_shipper_queued_batches",
    help: "Sealed batches waiting to be sent or being sent.",
    registers,
    collect() {
      this.set(read().queuedBatches);
    },
  });
  new Gauge({
    name: "log_shipper_open_batch_bytes",
    help: "Encoded bytes in the batch currently being filled.",
    registers,
    collect() {
      this.set(read().openBatchBytes);
    },
  });
  return {
    sentLines: new Counter({
      name: "log_shipper_sent_lines_total",
      help: "Lines acknowledged by Loki.",
      registers,
    }),
    sentBytes: new Counter({
      name: "log_shipper_sent_bytes_total",
      help: "Bytes of log lines acknowledged by Loki (uncompressed line bytes).",
      registers,
    }),
    requestBytes: new Counter({
      name: "log_shipper_request_bytes_total",
      help: "Bytes of push request bodies acknowledged by Loki (encoded and compressed).",
      registers,
    }),
    batches: new Counter({
      name: "log_shipper_batches_total",
      help: "Push attempts by outcome: success, retry (429, 5xx, network error, timeout), split (a 4xx that did not say which entries were bad: the halves are sent again) or dropped (other 4xx).",
      labelNames: ["outcome"],
      registers,
    }),
    sendDuration: new Histogram({
      name: "log_shipper_send_duration_seconds",
      help: "Duration of push requests to Loki, by outcome.",
      labelNames: ["outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    retries: new Counter({
      name: "log_shipper_retries_total",
      help: "Push attempts that will be retried, by reason (http_<status>, network, timeout).",
      labelNames: ["reason"],
      registers,
    }),
    droppedLines: new Counter({
      name: "log_shipper_dropped_lines_total",
      help: "Lines Loki rejected for good (a 4xx other than 429), by reason (http_<status>).",
      labelNames: ["reason"],
      registers,
    }),
    timestampsReplaced: new Counter({
      name: "log_shipper_timestamps_replaced_total",
      help: "Lines whose own time Loki could not take (not encodable, before 1970, or more than 10 min ahead of the read) and that were sent with their read time instead.",
      registers,
    }),
    lastSuccess: new Gauge({
      name: "log_shipper_last_success_timestamp_seconds",
      help: "Unix time of the last batch Loki acknowledged.",
      registers,
    }),
  };
}
