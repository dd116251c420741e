// The sidecars' small HTTP surface: /healthz (liveness), /readyz (readiness) and /metrics from a
// prom-client Registry. Built apart from listening so tests can use inject().
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface HealthServerOptions {
  logger: Logger;
  /** Registry served on /metrics (omit when the app registers its own /metrics route). */
  registry?: Registry;
  /** Readiness: called per /readyz request. */
  readiness?: () => Readiness;
  /** Liveness beyond "the event loop answered": e.g. a watchdog on a stuck pipeline. */
  liveness?: () => Readiness;
  /**
   * Once close() began, answer requests arriving on open connections with a bare 503 that no
   * route or hook sees (fastify's default; right for probes and scrapes). An app that finishes
   * such requests itself while it drains passes false.
   */
  return503OnClosing?: boolean;
}

export function buildHealthServer(opts: HealthServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: "http" }) as FastifyBaseLogger,
    // Probes and scrapes every few seconds would drown the notable events; no per-request lines.
    logController: new LogController({ disableRequestLogging: true }),
    // Probes and scrapes are tiny; refuse anything large.
    bodyLimit: 64 * 1024,
    return503OnClosing: opts.return503OnClosing ?? true,
    forceCloseConnections: "idle",
  });

  app.get("/healthz", async (_req, reply) => {
    const live = opts.liveness?.() ?? { ready: true };
    if (!live.ready) return reply.code(503).send({ status: "unhealthy", reason: live.reason });
    return { status: "ok" };
  });

  app.get("/readyz", async (_req, reply) => {
    const r = opts.readiness?.() ?? { ready: true };
    if (!r.ready) return reply.code(503).send({ status: "not ready", reason: r.reason });
    return { status: "ready" };
  });

  const registry = opts.registry;
  if (registry) {
    app.get("/metrics", async (_req, reply) => {
      const body = await registry.metrics();
      return reply.header("content-type", registry.contentType).send(body);
    });
  }
  return app;
}
