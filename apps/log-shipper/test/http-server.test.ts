import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { HealthServer, httpDate } from "../src/http-server.js";
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

    const t0 = Date.now();
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    // One Date header (ours; Node's own is off), an IMF-fixdate within the request's second.
    const date = health.headers.get("date") ?? "";
    expect(date).toMatch(/^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
    expect(Math.abs(Date.parse(date) - t0)).toBeLessThan(5000);
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

  it("httpDate is Date#toUTCString for 100k seeded times, weekdays before 1970 included", () => {
    let x = 0x9e3779b9;
    for (let i = 0; i < 100_000; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      const ms = Math.floor((x / 2 ** 32 - 0.3) * 8_000_000_000_000); // ~1894 to ~2146
      expect(httpDate(ms)).toBe(new Date(ms).toUTCString());
    }
    expect(httpDate(0)).toBe("Thu, 01 Jan 1970 00:00:00 GMT");
    expect(httpDate(-1)).toBe("Wed, 31 Dec 1969 23:59:59 GMT");
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
