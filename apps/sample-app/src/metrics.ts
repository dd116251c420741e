// The app's Prometheus metrics, all in one registry the caller owns: HTTP requests by route and
// status, process/runtime metrics, and the health of its own log file and traffic generator.
// Point-in-time values are read in collect() when the registry is rendered, not on a timer.
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from "prom-client";
import type { RotatingFileStats } from "./rotating-file.js";

export interface AppMetrics {
  readonly httpRequests: Counter<"method" | "route" | "status_code">;
  readonly httpDuration: Histogram<"method" | "route" | "status_code">;
  readonly httpInFlight: Gauge;
  readonly trafficRequests: Counter<"outcome">;
}

export interface MetricsOptions {
  registry: Registry;
  version: string;
  /** The log file's counters, read at collection time (omit when there is no file, e.g. in tests). */
  logStats?: () => Readonly<RotatingFileStats>;
}

// prom-client also exports these as gauges named *_total, which `promtool check metrics` flags
// (a non-counter must not end in _total). The same values exist without the suffix
// (nodejs_active_handles etc., by type), so dropping them loses nothing and keeps the file lint-clean.
const LINT_FAILING_DEFAULTS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

export function createMetrics(opts: MetricsOptions): AppMetrics {
  const { registry } = opts;
  collectDefaultMetrics({ register: registry });
  for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);

  new Gauge({
    name: "sample_app_build_info",
    help: "Always 1; the version label says which build is running.",
    labelNames: ["version"],
    registers: [registry],
  }).set({ version: opts.version }, 1);

  const httpRequests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests served, by method, route pattern and status code.",
    labelNames: ["method", "route", "status_code"] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time from receiving a request to sending its response, by method, route and status.",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const httpInFlight = new Gauge({
    name: "http_requests_in_flight",
    help: "Requests received and not yet answered (this scrape included).",
    registers: [registry],
  });
  const trafficRequests = new Counter({
    name: "sample_app_traffic_requests_total",
    help: "Requests made by the built-in traffic generator, by outcome (response, error, skipped when too many were in flight, aborted by the app's own shutdown).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });

  const logStats = opts.logStats;
  if (logStats) {
    // Counters fed from the file's own tallies: the hot write path stays free of metric updates.
    const fromStats = (name: string, help: string, pick: (s: Readonly<RotatingFileStats>) => number) => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const now = pick(logStats());
          if (now > seen) this.inc(now - seen);
          seen = now;
        },
      });
    };
    fromStats("sample_app_log_lines_total", "Log lines accepted by the log file.", (s) => s.lines);
    fromStats("sample_app_log_written_bytes_total", "Bytes written to the log file.", (s) => s.bytes);
    fromStats("sample_app_log_rotations_total", "Log file rotations.", (s) => s.rotations);
    fromStats(
      "sample_app_log_errors_total",
      "Failed log writes and rotations.",
      (s) => s.writeErrors + s.rotateErrors,
    );
    fromStats(
      "sample_app_log_dropped_bytes_total",
      "Bytes of log lines lost to failed writes.",
      (s) => s.droppedBytes,
    );
  }

  return { httpRequests, httpDuration, httpInFlight, trafficRequests };
}
