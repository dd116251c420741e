// The periodic summary line: what `kubectl logs -c log-shipper` shows every so often instead of a
// line per shipped log line — lines and bytes read and shipped since the last summary, lag,
// retries, drops — so a person can tell at a glance whether the shipper keeps up.
import type { Log as Logger } from "@sidecar/shared";

/** Monotonic totals; the summary logs their increase since the previous line. */
export interface SummaryCounters {
  linesRead: number;
  bytesRead: number;
  linesSent: number;
  bytesSent: number;
  retries: number;
  linesDropped: number;
  linesTruncated: number;
}

/** Point-in-time values logged as they are. */
export interface SummaryGauges {
  lagBytes: number;
  pendingBytes: number;
  filesWatched: number;
  readPaused: boolean;
  consecutiveFailures: number;
}

export interface SummaryOptions {
  logger: Logger;
  intervalMs: number;
  read: () => { counters: SummaryCounters; gauges: SummaryGauges };
  /** More fields logged as they are (per-destination progress when there are several). */
  detail?: () => Record<string, unknown>;
}

export class Summary {
  private timer: NodeJS.Timeout | null = null;
  private last: SummaryCounters;
  private lastAt = Date.now();

  constructor(private readonly opts: SummaryOptions) {
    this.last = opts.read().counters;
  }

  start(): void {
    if (this.opts.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.log(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Log one summary line now (also used at shutdown with `final`). */
  log(msg = "summary"): void {
    const { counters, gauges } = this.opts.read();
    const now = Date.now();
    const delta = {} as Record<keyof SummaryCounters, number>;
    for (const k of Object.keys(counters) as (keyof SummaryCounters)[]) {
      delta[k] = counters[k] - this.last[k];
    }
    const seconds = Math.max(0.001, (now - this.lastAt) / 1000);
    this.opts.logger.info(
      {
        periodSeconds: Math.round(seconds),
        ...delta,
        linesPerSecond: Math.round(delta.linesSent / seconds),
        ...gauges,
        ...this.opts.detail?.(),
      },
      msg,
    );
    this.last = counters;
    this.lastAt = now;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
