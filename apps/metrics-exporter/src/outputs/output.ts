// The contract every output shares (Pushgateway, StatsD, remote-write): take the current
// collection, send it, report. An output runs on its own schedule — a fixed interval, or after
// every collection — backs off with jitter while the destination fails, logs once per change of
// state (not per failed send), and sends a last time at shutdown within the deadline. Its
// self-metrics carry an `output` label.

import type { Log } from "@sidecar/shared";
import { backoffDelay, sleep } from "@sidecar/shared";
import type { Family } from "../families.js";
import type { SelfMetrics } from "../self-metrics.js";

export type OutputName = "pushgateway" | "statsd" | "remote_write";

/** One collection as the outputs see it. */
export interface Snapshot {
  readonly families: readonly Family[];
  /** When it was collected (epoch ms): remote-write stamps its samples with it. */
  readonly timestampMs: number;
}

export type SendResult =
  | { readonly kind: "success" }
  | { readonly kind: "retryable"; readonly message: string }
  | { readonly kind: "failure"; readonly message: string };

/** What the scheduler asks of each destination: one send of a snapshot. */
export interface Sender {
  readonly name: OutputName;
  /** Where it sends, for logs (no credentials). */
  readonly target: string;
  send(snapshot: Snapshot, timeoutMs: number, abort: AbortSignal): Promise<SendResult>;
  /** Release sockets; called once after the final send. */
  close?(): Promise<void> | void;
}

/** An output as the app drives it. */
export interface Output {
  readonly name: OutputName;
  readonly target: string;
  start(): void;
  /** A collection finished (outputs that follow the collection schedule send now). */
  collected(): void;
  /** Stop the schedule and send once more within the deadline (epoch ms). Idempotent. */
  close(deadline: number): Promise<unknown>;
}

export interface ScheduleOptions {
  /** 0 = after every collection. */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly snapshot: () => Snapshot;
  readonly logger: Log;
  readonly metrics: SelfMetrics;
}

export class ScheduledOutput implements Output {
  readonly name: OutputName;
  readonly target: string;
  private readonly sender: Sender;
  private readonly opts: ScheduleOptions;
  private readonly log: Log;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private inFlight: Promise<SendResult> | undefined;
  private wake: (() => void) | undefined;
  private pendingCollection = false;
  private healthy: boolean | undefined;
  private closing: Promise<void> | undefined;

  constructor(sender: Sender, opts: ScheduleOptions) {
    this.sender = sender;
    this.name = sender.name;
    this.target = sender.target;
    this.opts = opts;
    this.log = opts.logger.child({ component: "output", output: sender.name });
  }

  start(): void {
    if (this.loop || this.closing) return;
    this.loop = this.run();
  }

  collected(): void {
    this.pendingCollection = true;
    this.wake?.();
  }

  private async waitForCollection(): Promise<void> {
    if (this.pendingCollection || this.stop.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.wake = undefined;
        this.stop.signal.removeEventListener("abort", done);
        resolve();
      };
      this.wake = done;
      this.stop.signal.addEventListener("abort", done);
    });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let delay = 0;
    while (!this.stop.signal.aborted) {
      if (attempt === 0 && this.opts.intervalMs === 0) await this.waitForCollection();
      else await sleep(delay, this.stop.signal);
      if (this.stop.signal.aborted) break;
      this.pendingCollection = false;
      // Scheduled sends are cut short by close(): a hung one must not eat the final send's budget.
      const result = await this.sendOnce(this.opts.timeoutMs, this.stop.signal);
      if (result.kind === "retryable") {
        attempt++;
        delay = backoffDelay(attempt, { minMs: this.opts.retryMinMs, maxMs: this.opts.retryMaxMs });
      } else {
        attempt = 0;
        delay = this.opts.intervalMs;
      }
    }
  }

  /** Send the current snapshot now; concurrent callers share one send. */
  sendOnce(timeoutMs = this.opts.timeoutMs, abort?: AbortSignal): Promise<SendResult> {
    this.inFlight ??= this.sendNow(timeoutMs, abort).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async sendNow(timeoutMs: number, abort?: AbortSignal): Promise<SendResult> {
    const m = this.opts.metrics;
    const endTimer = m.outputDuration.startTimer({ output: this.name });
    const signal = abort
      ? AbortSignal.any([AbortSignal.timeout(timeoutMs), abort])
      : AbortSignal.timeout(timeoutMs);
    let result: SendResult;
    try {
      result = await this.sender.send(this.opts.snapshot(), timeoutMs, signal);
    } catch (err) {
      // A sender reports bad destinations as values; an exception here is unexpected, but an
      // output must never take the exporter down.
      result = { kind: "retryable", message: err instanceof Error ? err.message : String(err) };
    }
    endTimer();
    m.outputSends.inc({ output: this.name, result: result.kind });
    if (result.kind === "success") {
      m.outputLastSuccess.set({ output: this.name }, Date.now() / 1000);
      if (this.healthy === false) this.log.info({ target: this.target }, "output recovered");
      this.healthy = true;
    } else if (result.kind === "failure") {
      // Dropped: the destination refused this data; retrying the same would not help.
      this.log.warn(
        { target: this.target, err: result.message },
        "send rejected by the destination; dropped",
      );
    } else {
      if (this.healthy !== false) {
        this.log.warn({ target: this.target, err: result.message }, "send failed; retrying with backoff");
      }
      this.healthy = false;
    }
    return result;
  }

  close(deadline: number): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await this.loop;
      await this.inFlight;
      // Keep a little of the budget for logging and exiting: a send timing out exactly at the
      // deadline would race the lifecycle's forced exit 1.
      const left = deadline - Date.now();
      const budget = Math.floor(left - Math.min(1000, left / 10));
      if (budget > 0) {
        const result = await this.sendOnce(Math.min(this.opts.timeoutMs, budget));
        this.log.info({ target: this.target, result: result.kind }, "final send at shutdown");
      }
      await this.sender.close?.();
    })();
    return this.closing;
  }
}
