import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { HealthServer } from "../src/http-server.js";
import { silentLogger } from "./support/logger.js";

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function make(ready: () => { ready: true } | { ready: false; reason: string }) {
  const registry = new Registry();
  new Counter({ name: "log_shipper_test_total", help: "Test.", registers: [registry] }).inc(2);
  server = new HealthServer({ logger: silentLogger(), registry, readiness: ready });
  return server;
}

describe("HealthServer", () => {
  it("answers probes and scrapes over real HTTP", async () => {
    let ready: { ready: true } | { ready: false; reason: string } = {
      ready: false,
      reason: "positions not loaded yet",
    };
    const s = make(() => ready);
    const base = await s.listen({ host: "127.0.0.1", port: 0 });
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: "not ready", reason: "positions not loaded yet" });
    ready = { ready: true };
    expect((await fetch(`${base}/readyz?verbose=1`)).status).toBe(200);

    const m = await fetch(`${base}/metrics`);
    expect(m.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await m.text()).toContain("log_shipper_test_total 2");

    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const head = await fetch(`${base}/healthz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("serves the same answers through inject() without a socket", async () => {
    const s = make(() => ({ ready: false, reason: "not watching yet" }));
    const r = await s.inject({ url: "/readyz" });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ status: "not ready", reason: "not watching yet" });
    expect((await s.inject({ url: "/metrics" })).body).toContain("log_shipper_test_total 2");
  });

  it("refuses new connections after close and reports a port in use", async () => {
    const s = make(() => ({ ready: true }));
    const base = await s.listen({ host: "127.0.0.1", port: 0 });
    const port = Number(new URL(base).port);
    const other = make(() => ({ ready: true }));
    await expect(other.listen({ host: "127.0.0.1", port })).rejects.toMatchObject({ code: "EADDRINUSE" });
    await s.close();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
