import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { buildHealthServer, type Readiness } from "../src/http-server.js";
import { createLogger } from "../src/logger.js";

const logger = createLogger({ service: "t", level: "silent" });

describe("buildHealthServer", () => {
  it("serves liveness, readiness and the registry's metrics", async () => {
    const registry = new Registry();
    new Counter({ name: "t_things_total", help: "Things.", registers: [registry] }).inc(3);
    let readiness: Readiness = { ready: false, reason: "positions not loaded" };
    const app = buildHealthServer({ logger, registry, readiness: () => readiness });

    expect((await app.inject("/healthz")).statusCode).toBe(200);
    const notReady = await app.inject("/readyz");
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: "not ready", reason: "positions not loaded" });
    readiness = { ready: true };
    expect((await app.inject("/readyz")).statusCode).toBe(200);

    const m = await app.inject("/metrics");
    expect(m.statusCode).toBe(200);
    expect(m.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(m.body).toContain("t_things_total 3");
    await app.close();
  });

  it("reports unhealthy when the liveness check fails", async () => {
    const app = buildHealthServer({ logger, liveness: () => ({ ready: false, reason: "stuck" }) });
    const r = await app.inject("/healthz");
    expect(r.statusCode).toBe(503);
    expect(r.json().reason).toBe("stuck");
    expect((await app.inject("/metrics")).statusCode).toBe(404);
    await app.close();
  });
});
