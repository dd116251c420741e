// Composes the sample app from its parts — HTTP server, metrics, metrics file, traffic generator —
// without touching the process: main.ts owns signals, stdout and exit codes. Tests build it with
// their own logger and registry and use `app.inject()` or a real listen on port 0.
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Config } from "./config.js";
import { SERVICE_NAME } from "./config.js";
import { type AppMetrics, createMetrics } from "./metrics.js";
import { MetricsFileWriter } from "./metrics-file.js";
import type { RotatingFileStats } from "./rotating-file.js";
import { buildServer } from "./server.js";
import { defaultMix, TrafficGenerator } from "./traffic.js";

export const METRICS_FILE_NAME = `${SERVICE_NAME}.prom`;

export interface AppDeps {
  /** Where request logs and app events go (the rotating file, in production). */
  logger: Logger;
  /**
   * Operational problems an operator must see in `kubectl logs` (stdout, in production): the
   * metrics file failing, the traffic generator falling behind. Defaults to `logger`.
   */
  opsLogger?: Logger;
  /** A fresh registry owned by this app. */
  registry: Registry;
  version: string;
  /** The log file's counters, exported as metrics. */
  logStats?: () => Readonly<RotatingFileStats>;
  /** Downward-API identity shown on `/`. */
  pod?: string;
  namespace?: string;
  random?: () => number;
}

export interface SampleApp {
  readonly app: FastifyInstance;
  readonly metrics: AppMetrics;
  /** Listen, write the first metrics file, start the traffic generator. Resolves with the URL. */
  start(): Promise<URL>;
  /**
   * Stop accepting, let in-flight requests finish, write the metrics file a last time.
   * Idempotent; the log destination is the caller's to flush and close afterwards.
   */
  close(): Promise<void>;
}

export function buildApp(config: Config, deps: AppDeps): SampleApp {
  const { logger, registry } = deps;
  const opsLogger = deps.opsLogger ?? logger;
  const metrics = createMetrics({ registry, version: deps.version, logStats: deps.logStats });
  let state: "new" | "started" | "closing" = "new";
  const app = buildServer({
    logger,
    registry,
    metrics,
    service: SERVICE_NAME,
    version: deps.version,
    workMaxMs: config.workMaxMs,
    pod: deps.pod,
    namespace: deps.namespace,
    draining: () => state === "closing",
    readiness: () =>
      state === "started"
        ? { ready: true }
        : { ready: false, reason: state === "closing" ? "shutting down" : "starting" },
  });
  const metricsFile = new MetricsFileWriter({
    registry,
    path: join(config.metricsDir, METRICS_FILE_NAME),
    intervalMs: config.metricsIntervalMs,
    logger: opsLogger.child({ component: "metrics-file" }),
  });
  let traffic: TrafficGenerator | undefined;
  let starting: Promise<URL> | undefined;
  let closing: Promise<void> | undefined;

  return {
    app,
    metrics,
    start() {
      if (closing) return Promise.reject(new Error("the app is closed; build a new one"));
      starting ??= (async () => {
        await app.listen({ host: config.host, port: config.port });
        const url = loopbackUrl(app);
        // close() may have been called at any await: start no more parts (close() waits for this
        // promise, then closes what exists), and resolve — a shutdown during start is no error.
        if (closing) return url;
        await metricsFile.start();
        if (closing) return url;
        if (config.trafficRps > 0) {
          const random = deps.random ?? Math.random;
          traffic = new TrafficGenerator({
            baseUrl: url,
            rps: config.trafficRps,
            logger: logger.child({ component: "traffic" }),
            opsLogger: opsLogger.child({ component: "traffic" }),
            requests: metrics.trafficRequests,
            random,
            mix: defaultMix(random, config.workMaxMs),
          });
          traffic.start();
        }
        state = "started";
        return url;
      })();
      return starting;
    },
    close() {
      closing ??= (async () => {
        state = "closing";
        // Let a start in progress reach its next step (it starts nothing more once closing is set).
        await starting?.catch(() => {});
        // traffic.close() stops the generator synchronously, before app.close() runs, so no new
        // request meets a closing server; its requests in flight finish with everyone else's
        // while fastify drains, so their response lines are in the log.
        await Promise.all([traffic?.close(), app.close()]);
        await metricsFile.close();
      })();
      return closing;
    },
  };
}

/** The URL this process reaches itself on: a wildcard bind is reached over loopback. */
function loopbackUrl(app: FastifyInstance): URL {
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("server is not listening on TCP");
  const wildcard = addr.address === "0.0.0.0" || addr.address === "::";
  const host = wildcard ? "127.0.0.1" : addr.address;
  return new URL(`http://${host.includes(":") ? `[${host}]` : host}:${addr.port}`);
}
