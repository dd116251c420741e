// The exporter's node:http server on a real loopback port: routes and methods, HEAD, a failing
// handler, and close() with keep-alive connections (idle ones closed at once, a response in flight
// finished, a request arriving on an open connection answered 503).
import { Agent, request } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpServer, type Handler, type HttpServer } from "../src/server.js";
import { silentLogger } from "./helpers.js";

const servers: HttpServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(metrics: Handler, ready = true): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer({
    logger: silentLogger(),
    readiness: () => (ready ? { ready: true } : { ready: false, reason: "first collection not finished" }),
    metrics,
  });
  servers.push(server);
  await server.listen({ host: "127.0.0.1", port: 0 });
  // A long idle timeout: close() must not wait for it.
  server.server.keepAliveTimeout = 120_000;
  return { server, port: (server.server.address() as AddressInfo).port };
}

function send(
  port: number,
  method: string,
  path: string,
  agent?: Agent,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, method, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    })
      .on("error", reject)
      .end();
  });
}

const hello: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": 6 });
  res.end(res.req.method === "HEAD" ? undefined : "hello\n");
};

describe("routes", () => {
  it("answers /healthz, /readyz and /metrics on GET and HEAD, 404 elsewhere, 405 for other methods", async () => {
    const { port } = await start(hello, false);
    expect(await send(port, "GET", "/healthz")).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    const notReady = await send(port, "GET", "/readyz");
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toEqual({
      status: "not ready",
      reason: "first collection not finished",
    });
    expect(await send(port, "GET", "/metrics?x=1")).toMatchObject({ status: 200, body: "hello\n" });
    const head = await send(port, "HEAD", "/metrics");
    expect(head).toMatchObject({ status: 200, body: "" });
    expect(head.headers["content-length"]).toBe("6");
    expect((await send(port, "HEAD", "/healthz")).body).toBe("");
    expect((await send(port, "GET", "/nope")).status).toBe(404);
    const post = await send(port, "POST", "/metrics");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
  });

  it("answers 500 when the handler throws, and keeps serving", async () => {
    const { port } = await start(() => {
      throw new Error("bug");
    });
    expect((await send(port, "GET", "/metrics")).status).toBe(500);
    expect((await send(port, "GET", "/healthz")).status).toBe(200);
  });
});

describe("close", () => {
  it("closes idle keep-alive connections at once, finishes the response in flight, then refuses new requests", async () => {
    let release: (() => void) | undefined;
    const slow: Handler = async (_req, res) => {
      await new Promise<void>((r) => {
        release = r;
      });
      hello(_req, res);
    };
    const { server, port } = await start(slow);
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    try {
      // One idle keep-alive connection, one with a request in flight.
      expect((await send(port, "GET", "/healthz", agent)).status).toBe(200);
      const inFlight = send(port, "GET", "/metrics", agent);
      while (!release) await new Promise((r) => setTimeout(r, 10));
      let closed = false;
      const closing = server.close().then(() => {
        closed = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(closed).toBe(false);
      release();
      expect(await inFlight).toMatchObject({ status: 200, body: "hello\n" });
      // Well before the 120 s idle timeout.
      await closing;
      await expect(send(port, "GET", "/healthz")).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      agent.destroy();
    }
  });
});
