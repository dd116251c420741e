// Output to a Prometheus Pushgateway (the shared contract is in output.ts): PUT (replace the group) of the collected families in
// text format to /metrics/job/<job>/instance/<instance> every PUSH_INTERVAL_MS, backing off with
// jitter while the gateway is unreachable or failing, and once more at shutdown so the last state
// of a terminating pod is not lost. Results are typed values, not exceptions.

import type { Log } from "@sidecar/shared";
import { backoffDelay, sleep } from "@sidecar/shared";
import { CONTENT_TYPES } from "../render.js";
import type { SelfMetrics } from "../self-metrics.js";
import type { Output } from "./output.js";

export type PushResult =
  | { readonly kind: "success"; readonly status: number }
  | { readonly kind: "retryable"; readonly status?: number; readonly message: string }
  | { readonly kind: "failure"; readonly status: number; readonly message: string };

export interface PusherOptions {
  readonly url: URL;
  readonly job: string;
  readonly instance: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** The body to push (text format 0.0.4), taken fresh for every push. */
  readonly body: () => Buffer;
  readonly logger: Log;
  readonly metrics: SelfMetrics;
}

/**
 * One path segment of a grouping key; base64url form when the value has a `/`, is empty, or is a
 * dot segment (`.`/`..`), which URL normalisation would otherwise resolve away and so push to a
 * different group (or a path the Pushgateway rejects).
 */
export function groupingSegment(name: string, value: string): string {
  if (value === "" || value === "." || value === ".." || value.includes("/")) {
    return `${name}@base64/${Buffer.from(value, "utf8").toString("base64url") || "="}`;
  }
  return `${name}/${encodeURIComponent(value)}`;
}

export function pushUrl(base: URL, job: string, instance: string): URL {
  const u = new URL(base.href);
  u.username = "";
  u.password = "";
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/metrics/${groupingSegment("job", job)}/${groupingSegment("instance", instance)}`;
  return u;
}

export class Pusher implements Output {
  readonly name = "pushgateway" as const;
  private readonly opts: PusherOptions;
  private readonly log: Log;
  private readonly endpoint: URL;
  private readonly auth: string | undefined;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private inFlight: Promise<PushResult> | undefined;
  private closed = false;

  constructor(opts: PusherOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: "push" });
    this.endpoint = pushUrl(opts.url, opts.job, opts.instance);
    // Credentials in the URL become a Basic Authorization header (and never appear in logs).
    this.auth =
      opts.url.username || opts.url.password
        ? `Basic ${Buffer.from(`${decodeURIComponent(opts.url.username)}:${decodeURIComponent(opts.url.password)}`).toString("base64")}`
        : undefined;
  }

  get url(): string {
    return this.endpoint.href;
  }

  get target(): string {
    return this.endpoint.href;
  }

  /** The Pushgateway keeps its own interval (PUSH_INTERVAL_MS); collections do not trigger pushes. */
  collected(): void {}

  start(): void {
    if (this.loop || this.closed) return;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stop.signal.aborted) {
      // Scheduled pushes are cut short by close(): a hung one must not eat the shutdown budget
      // that the final push needs.
      const result = await this.pushOnce(this.opts.timeoutMs, this.stop.signal);
      let delay = this.opts.intervalMs;
      if (result.kind === "retryable") {
        attempt++;
        delay = backoffDelay(attempt, { minMs: this.opts.retryMinMs, maxMs: this.opts.retryMaxMs });
      } else {
        attempt = 0;
      }
      await sleep(delay, this.stop.signal);
    }
  }

  /** Push now; concurrent callers share one request. `abort` cancels it early. */
  pushOnce(timeoutMs = this.opts.timeoutMs, abort?: AbortSignal): Promise<PushResult> {
    if (!this.inFlight) {
      this.inFlight = this.send(timeoutMs, abort).finally(() => {
        this.inFlight = undefined;
      });
    }
    return this.inFlight;
  }

  private async send(timeoutMs: number, abort?: AbortSignal): Promise<PushResult> {
    const endTimer = this.opts.metrics.pushDuration.startTimer();
    const body = this.opts.body();
    let result: PushResult;
    try {
      const headers: Record<string, string> = { "content-type": CONTENT_TYPES.text };
      if (this.auth) headers.authorization = this.auth;
      // Node's built-in fetch (undici inside): no second HTTP client bundled into a 128Mi sidecar.
      const res = await fetch(this.endpoint, {
        method: "PUT",
        body,
        headers,
        signal: abort
          ? AbortSignal.any([AbortSignal.timeout(timeoutMs), abort])
          : AbortSignal.timeout(timeoutMs),
      });
      const text = (await res.text()).slice(0, 500).trim();
      const status = res.status;
      if (status >= 200 && status < 300) {
        result = { kind: "success", status };
      } else if (status === 429 || status === 408 || status >= 500) {
        result = { kind: "retryable", status, message: text };
      } else {
        result = { kind: "failure", status, message: text };
      }
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
      result = { kind: "retryable", message: `${err instanceof Error ? err.message : String(err)}${cause}` };
    }
    const seconds = endTimer();
    const m = this.opts.metrics;
    m.pushes.inc({ result: result.kind });
    m.outputSends.inc({ output: this.name, result: result.kind });
    m.outputDuration.observe({ output: this.name }, seconds);
    if (result.kind === "success") {
      m.lastPushSuccess.set(Date.now() / 1000);
      m.outputLastSuccess.set({ output: this.name }, Date.now() / 1000);
      this.log.debug({ url: this.endpoint.href, bytes: body.length }, "pushed");
    } else {
      // A rejected body (4xx) will not get better by retrying it sooner: it waits for the next interval.
      this.log.warn(
        {
          url: this.endpoint.href,
          status: "status" in result ? result.status : undefined,
          err: result.message,
          kind: result.kind,
        },
        result.kind === "failure" ? "push rejected by the Pushgateway" : "push failed; backing off",
      );
    }
    return result;
  }

  /** Stop the schedule and push a last time within the deadline (epoch ms). */
  async close(deadline: number): Promise<PushResult | undefined> {
    if (this.closed) return undefined;
    this.closed = true;
    this.stop.abort();
    await this.loop;
    // Keep a little of the budget for logging and exiting: a push timing out exactly at the
    // deadline would race the lifecycle's forced exit 1.
    const left = deadline - Date.now();
    const budget = Math.floor(left - Math.min(1000, left / 10));
    if (budget <= 0) return undefined;
    const result = await this.pushOnce(Math.min(this.opts.timeoutMs, budget));
    this.log.info({ url: this.endpoint.href, result: result.kind }, "final push at shutdown");
    return result;
  }
}
