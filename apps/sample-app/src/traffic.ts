// The built-in traffic generator: calls the app's own routes over real HTTP on loopback at
// TRAFFIC_RPS, so a pod with no outside users still produces realistic request logs (with real
// connection handling, timings and status codes) and metrics. Requests go through the server
// exactly as a user's would; they carry a user-agent that says where they came from.
import { Agent, request } from "node:http";
import type { Logger } from "pino";
import type { Counter } from "prom-client";

export interface TrafficRoute {
  /** Path and query to request. */
  path: () => string;
  weight: number;
}

export interface TrafficOptions {
  /** Where the app listens, e.g. http://127.0.0.1:8080 */
  baseUrl: URL;
  rps: number;
  /** Debug lines about single failed requests. */
  logger: Logger;
  /** Where "cannot keep up" is reported (stdout in production, for kubectl logs); `logger` by default. */
  opsLogger?: Logger;
  requests: Counter<"outcome">;
  /** Injected for deterministic tests; Math.random by default. */
  random?: () => number;
  /** The route mix; DEFAULT_MIX by default. */
  mix?: readonly TrafficRoute[];
  /**
   * Bound on requests in flight (default: two seconds' worth, 8 to 256); beyond it ticks are
   * skipped (and counted), not queued. The HTTP agent gets exactly this many sockets.
   */
  maxInFlight?: number;
  requestTimeoutMs?: number;
}

export const TRAFFIC_USER_AGENT = "sample-app-traffic/1";

/** Mostly successful work, some probes and info, a few client errors and server errors. */
export function defaultMix(random: () => number, workMaxMs: number): TrafficRoute[] {
  const workMs = () => Math.min(workMaxMs, Math.round(5 + random() ** 2 * 250));
  return [
    { weight: 50, path: () => `/work?ms=${workMs()}` },
    { weight: 20, path: () => "/" },
    { weight: 10, path: () => "/healthz" },
    { weight: 5, path: () => "/readyz" },
    { weight: 6, path: () => "/error" },
    { weight: 5, path: () => "/work?ms=not-a-number" },
    { weight: 4, path: () => "/no-such-page" },
  ];
}

// Ticks at most this often; each tick sends what the rate owes since the last one, so the rate
// holds at high RPS even though timers are coarse.
const MIN_TICK_MS = 20;
// Enough for 1000 requests/s at ~250 ms each; more sockets would only hide a stalled server.
const MAX_IN_FLIGHT = 256;
// While the generator keeps skipping, remind at most this often.
const SKIP_WARN_EVERY_MS = 60_000;

/** Requests in flight allowed for a rate: two seconds' worth, at least 8, at most MAX_IN_FLIGHT. */
export function defaultMaxInFlight(rps: number): number {
  return Math.min(MAX_IN_FLIGHT, Math.max(8, Math.ceil(rps * 2)));
}

export class TrafficGenerator {
  private readonly opts: TrafficOptions;
  private readonly random: () => number;
  private readonly mix: readonly TrafficRoute[];
  private readonly totalWeight: number;
  private readonly maxInFlight: number;
  // One socket per request allowed in flight: a request never waits inside the agent (where no
  // timeout applies and the rate would silently cap at the agent's socket count).
  private readonly agent: Agent;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private owed = 0;
  private last = 0;
  private stopping = false;
  private lastSkipWarning = Number.NEGATIVE_INFINITY;
  private skippedSinceWarning = 0;

  constructor(opts: TrafficOptions) {
    this.opts = opts;
    this.random = opts.random ?? Math.random;
    this.mix = opts.mix ?? defaultMix(this.random, 1000);
    this.totalWeight = this.mix.reduce((s, r) => s + r.weight, 0);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? defaultMaxInFlight(opts.rps));
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: this.maxInFlight,
      maxFreeSockets: this.maxInFlight,
    });
  }

  start(): void {
    if (this.opts.rps <= 0 || this.timer) return;
    const tickMs = Math.max(MIN_TICK_MS, Math.floor(1000 / this.opts.rps));
    this.last = performance.now();
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
    this.opts.logger.info(
      { rps: this.opts.rps, target: this.opts.baseUrl.origin },
      "traffic generator started",
    );
  }

  /** Stop sending and wait for the requests in flight (their responses are part of the logs). */
  async close(): Promise<void> {
    // From here on, a request that fails was cut off by the shutdown (the server closing its
    // connections), which is not an error of the app.
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
    // A response can be read here before the server has seen its own write complete; closing the
    // socket at once would cut that request off before the server logs it. Two turns of the
    // event loop let the server's write callbacks run first.
    for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    this.agent.destroy();
  }

  private tick(): void {
    const now = performance.now();
    this.owed += ((now - this.last) * this.opts.rps) / 1000;
    this.last = now;
    const max = this.maxInFlight;
    // Do not let a stalled server build an unbounded backlog of owed requests.
    this.owed = Math.min(this.owed, max);
    let skipped = 0;
    while (this.owed >= 1) {
      this.owed -= 1;
      if (this.inFlight.size >= max) {
        skipped++;
        continue;
      }
      const p = this.send(this.pick()).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
    if (skipped > 0) this.skipped(skipped, now);
  }

  /** Count skipped requests; say so on the ops log when skipping starts (and every minute it lasts). */
  private skipped(n: number, now: number): void {
    this.opts.requests.inc({ outcome: "skipped" }, n);
    this.skippedSinceWarning += n;
    if (now - this.lastSkipWarning < SKIP_WARN_EVERY_MS) return;
    (this.opts.opsLogger ?? this.opts.logger).warn(
      { rps: this.opts.rps, maxInFlight: this.maxInFlight, skipped: this.skippedSinceWarning },
      "traffic generator cannot keep up: skipping requests",
    );
    this.lastSkipWarning = now;
    this.skippedSinceWarning = 0;
  }

  private pick(): string {
    let r = this.random() * this.totalWeight;
    for (const route of this.mix) {
      r -= route.weight;
      if (r < 0) return route.path();
    }
    return (this.mix[this.mix.length - 1] as TrafficRoute).path();
  }

  private send(path: string): Promise<void> {
    const url = new URL(path, this.opts.baseUrl);
    return new Promise<void>((resolve) => {
      const req = request(
        url,
        {
          agent: this.agent,
          headers: { "user-agent": TRAFFIC_USER_AGENT },
          timeout: this.opts.requestTimeoutMs ?? 10_000,
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            this.opts.requests.inc({ outcome: "response" });
            resolve();
          });
          res.on("error", () => {
            this.opts.requests.inc({ outcome: this.stopping ? "aborted" : "error" });
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => {
        this.opts.requests.inc({ outcome: this.stopping ? "aborted" : "error" });
        // Refused connections while the server closes are expected; anything else is worth a line.
        this.opts.logger.debug({ err, path }, "traffic request failed");
        resolve();
      });
      req.end();
    });
  }
}
