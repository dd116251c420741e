// The shipper's HTTP surface — GET /healthz (liveness), /readyz (readiness, never tied to Loki)
// and /metrics — on plain node:http. Not the shared fastify server: for three fixed GET routes
// fastify and its schema compiler cost ~14 MiB of private memory, about a tenth of the sidecar's
// 128Mi limit (measured: idle RSS with and without it).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Log as Logger, type Readiness, type Registry, utcParts } from "@sidecar/shared";

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): unknown;
}

export interface HealthServerOptions {
  logger: Logger;
  registry: Registry;
  readiness: () => Readiness;
}

export class HealthServer {
  private readonly server: Server;
  private closing = false;

  constructor(private readonly opts: HealthServerOptions) {
    this.server = createServer((req, res) => void this.serve(req, res));
    // Probes and scrapes are short; do not let an idle keep-alive socket hold up shutdown.
    this.server.keepAliveTimeout = 5_000;
    this.server.requestTimeout = 10_000;
    this.server.headersTimeout = 10_000;
  }

  /** Answer one request without a socket (what the tests use, like fastify's inject()). */
  async inject(req: { method?: string; url: string }): Promise<HttpResponse> {
    const { statusCode, headers, body } = await this.route(req.method ?? "GET", req.url);
    return { statusCode, headers, body, json: () => JSON.parse(body) };
  }

  /** Listen; resolves with the address as a URL (`http://127.0.0.1:9080`). */
  listen(opts: { host: string; port: number }): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(opts.port, opts.host, () => {
        this.server.off("error", onError);
        const a = this.server.address() as AddressInfo;
        const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
        resolve(`http://${host}:${a.port}`);
      });
    });
  }

  /** Stop accepting, answer 503 to requests on open connections, close idle ones. */
  close(): Promise<void> {
    this.closing = true;
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let out: { statusCode: number; headers: Record<string, string>; body: string };
    try {
      out = this.closing
        ? json(503, { status: "shutting down" })
        : await this.route(req.method ?? "GET", req.url ?? "/");
    } catch (err) {
      this.opts.logger.error({ err, url: req.url }, "HTTP handler failed");
      out = json(500, { status: "error" });
    }
    // Our own Date header: Node's comes from a Date object, whose first use loads ICU's time zones
    // (~0.7 MiB resident for good; shared iso-time.ts) — and every probe and scrape would make one.
    res.sendDate = false;
    res.writeHead(out.statusCode, {
      ...out.headers,
      date: httpDate(Date.now()),
      "content-length": Buffer.byteLength(out.body),
    });
    res.end(req.method === "HEAD" ? undefined : out.body);
  }

  private async route(
    method: string,
    url: string,
  ): Promise<{ statusCode: number; headers: Record<string, string>; body: string }> {
    const path = url.split("?", 1)[0];
    if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") {
      return json(404, { status: "not found" });
    }
    if (method !== "GET" && method !== "HEAD") {
      const r = json(405, { status: "method not allowed" });
      r.headers.allow = "GET, HEAD";
      return r;
    }
    if (path === "/healthz") return json(200, { status: "ok" });
    if (path === "/readyz") {
      const r = this.opts.readiness();
      return r.ready ? json(200, { status: "ready" }) : json(503, { status: "not ready", reason: r.reason });
    }
    const body = await this.opts.registry.metrics();
    return { statusCode: 200, headers: { "content-type": this.opts.registry.contentType }, body };
  }
}

function json(statusCode: number, value: unknown) {
  return {
    statusCode,
    headers: { "content-type": "application/json; charset=utf-8" } as Record<string, string>,
    body: JSON.stringify(value),
  };
}

const DAYS = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** RFC 9110's IMF-fixdate (`Mon, 07 Dec 2026 17:16:16 GMT`), what Date#toUTCString gives. */
export function httpDate(ms: number): string {
  const t = utcParts(ms);
  const weekday = DAYS[((Math.floor(ms / 86_400_000) % 7) + 7) % 7];
  return `${weekday}, ${pad2(t.day)} ${MONTHS[t.month - 1]} ${t.year} ${pad2(t.hour)}:${pad2(t.minute)}:${pad2(t.second)} GMT`;
}
