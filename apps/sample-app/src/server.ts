// The HTTP surface: `/` (service info), `/work?ms=N` (simulated work), `/error` (a logged failure),
// plus /healthz, /readyz and /metrics from the shared health server. Every response is counted
// and timed by route pattern and status, and logged as one pino line ("request completed").
import { hostname } from "node:os";
import { buildHealthServer, type Readiness, sleep } from "@sidecar/shared";
import type { FastifyError, FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { AppMetrics } from "./metrics.js";

export interface ServerOptions {
  logger: Logger;
  registry: Registry;
  metrics: AppMetrics;
  service: string;
  version: string;
  workMaxMs: number;
  readiness: () => Readiness;
  /** True once shutdown began: responses then close their keep-alive connection. */
  draining: () => boolean;
  /** Pod identity from the downward API, shown on `/` when set. */
  pod?: string;
  namespace?: string;
}

/** Work when `ms` is omitted: long enough to show up in the duration histogram. */
const DEFAULT_WORK_MS = 50;

export function buildServer(opts: ServerOptions): FastifyInstance {
  const app = buildHealthServer({
    logger: opts.logger,
    registry: opts.registry,
    readiness: opts.readiness,
    // A request already on its way over a kept-alive connection when shutdown begins is in flight
    // too: it is answered by its route (with Connection: close, below), logged and counted, not
    // turned away with a bare 503 that no hook sees.
    return503OnClosing: false,
  });
  const startedAt = Date.now();

  // A keep-alive client whose request was in flight at SIGTERM would otherwise hold its idle
  // connection (and so the drain) open until the keep-alive timeout; tell it to hang up.
  app.addHook("onSend", async (_req, reply) => {
    if (opts.draining()) reply.header("connection", "close");
  });

  // In flight from arrival to response or abort; the flag makes sure each request is taken off
  // exactly once whichever of the two hooks runs (or both).
  const counted = new WeakSet<object>();
  app.addHook("onRequest", async (req) => {
    counted.add(req);
    opts.metrics.httpInFlight.inc();
  });
  const done = (req: object) => {
    if (counted.delete(req)) opts.metrics.httpInFlight.dec();
  };
  app.addHook("onRequestAbort", async (req) => done(req));

  // Request logs: one line per response, at a level that follows the status, so `level` in Loki
  // separates failures from traffic. The route pattern (not the raw URL) keeps metric labels
  // bounded; requests that matched no route share one label value.
  app.addHook("onResponse", async (req, reply) => {
    done(req);
    const route = req.routeOptions.url ?? "unmatched";
    const status = reply.statusCode;
    const labels = { method: req.method, route, status_code: String(status) };
    opts.metrics.httpRequests.inc(labels);
    opts.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    const level = status >= 500 ? "error" : status >= 400 ? "warn" : "info";
    // Flat fields (not `req`/`res` objects, which fastify's serializers would reshape) so that a
    // LogQL `| json` gets them as they are.
    req.log[level](
      {
        method: req.method,
        url: req.url,
        route,
        statusCode: status,
        responseTime: Math.round(reply.elapsedTime * 1000) / 1000,
        remoteAddress: req.ip,
        userAgent: req.headers["user-agent"],
      },
      "request completed",
    );
  });

  // Client mistakes answer 4xx with a reason; the response line above is their log record, so
  // the default handler's extra line per 4xx is not wanted. Server errors keep their stack.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, "request failed");
    return reply.code(status).send({
      error: status >= 500 ? "internal server error" : "bad request",
      message: status >= 500 ? "internal server error" : err.message,
    });
  });

  app.get("/", async () => ({
    service: opts.service,
    version: opts.version,
    hostname: hostname(),
    pid: process.pid,
    pod: opts.pod,
    namespace: opts.namespace,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    routes: ["/", "/work?ms=N", "/error", "/healthz", "/readyz", "/metrics"],
  }));

  app.get<{ Querystring: { ms: string } }>(
    "/work",
    {
      schema: {
        querystring: {
          type: "object",
          properties: {
            // A plain decimal integer, checked as text: a number schema would coerce `1e3`, `0x10`,
            // `+5`, `4999.0` and `Infinity` (which then overflowed the timer: a warning and no wait).
            ms: { type: "string", pattern: "^[0-9]{1,9}$", default: String(DEFAULT_WORK_MS) },
          },
          additionalProperties: true,
        },
      },
    },
    async (req) => {
      const ms = Number(req.query.ms);
      if (ms > opts.workMaxMs) {
        throw Object.assign(new Error(`querystring/ms must be <= ${opts.workMaxMs}`), { statusCode: 400 });
      }
      const started = performance.now();
      // Simulated work is waiting, as for a downstream call: it ties up the request, not the CPU.
      // It is not cut short on shutdown — in-flight requests finish; WORK_MAX_MS bounds the wait.
      await sleep(ms);
      return { requestedMs: ms, tookMs: Math.round(performance.now() - started) };
    },
  );

  app.get("/error", async (req, reply) => {
    const err = new Error("simulated failure: the /error route always fails");
    req.log.error({ err }, "simulated error");
    return reply.code(500).send({ error: "internal server error", message: err.message });
  });

  return app;
}
