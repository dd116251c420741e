// The exporter's HTTP surface on node:http alone: /healthz (liveness), /readyz (readiness) and
// /metrics, GET and HEAD. Three fixed routes do not need a framework, and fastify with its
// dependencies (ajv, fast-json-stringify, find-my-way, avvio…) was two thirds of the bundle and
// ≈ 7 MiB of the sidecar's resident memory at start (issue 10.5: ≤ 64 MiB for a typical pod).
// Close: stop accepting, close idle keep-alive connections, answer requests still arriving on open
// connections with 503 + `Connection: close` (as fastify's return503OnClosing did), and wait for
// the responses in flight.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Log } from "@sidecar/shared";
import { http } from "./node-http.js";

export type Readiness = { ready: true } | { ready: false; reason: string };

/** Writes the whole response (status, headers, body) itself. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  readonly logger: Log;
  readonly readiness: () => Readiness;
  /** GET/HEAD /metrics. */
  readonly metrics: Handler;
}

export interface HttpServer {
  /** The node:http server (its address once listening). */
  readonly server: Server;
  /** Resolves with the address as a URL, e.g. `http://127.0.0.1:9100`. */
  listen(opts: { host: string; port: number }): Promise<string>;
  /** Idempotent: stop accepting, drain the requests in flight, close every connection. */
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...extra,
  });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

export function createHttpServer(opts: HttpServerOptions): HttpServer {
  const log = opts.logger.child({ component: "http" });
  let closing: Promise<void> | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Probes and scrapes have no body; whatever a client sends is discarded, never buffered.
    req.resume();
    if (closing) {
      json(res, 503, { status: "closing" }, { connection: "close" });
      return;
    }
    const path = (req.url ?? "/").split("?", 1)[0];
    const route =
      path === "/metrics"
        ? "metrics"
        : path === "/healthz"
          ? "healthz"
          : path === "/readyz"
            ? "readyz"
            : undefined;
    if (!route) {
      json(res, 404, { error: "Not Found", message: `Route ${req.method}:${path} not found` });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      json(res, 405, { error: "Method Not Allowed" }, { allow: "GET, HEAD" });
      return;
    }
    if (route === "healthz") {
      json(res, 200, { status: "ok" });
    } else if (route === "readyz") {
      const r = opts.readiness();
      if (r.ready) json(res, 200, { status: "ready" });
      else json(res, 503, { status: "not ready", reason: r.reason });
    } else {
      await opts.metrics(req, res);
    }
  };

  const server = http.createServer((req, res) => {
    // A keep-alive connection whose response finished after close() began would otherwise hold
    // close() until its idle timeout.
    res.on("finish", () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res).catch((err: unknown) => {
      // A bug, not bad input: report it and answer 500 if nothing was sent yet.
      log.error({ err, url: req.url }, "request failed");
      if (!res.headersSent) json(res, 500, { error: "Internal Server Error" });
      else res.destroy();
    });
  });

  return {
    server,
    listen({ host, port }) {
      return new Promise<string>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const a = server.address() as AddressInfo;
          const address = `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
          log.info({ address }, "listening");
          resolve(address);
        });
      });
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
