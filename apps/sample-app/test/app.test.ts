// The app's routes through fastify inject(): responses, validation, request log lines and the
// metrics they produce; readiness across start and close; the traffic generator on a real listen.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp, METRICS_FILE_NAME } from "../src/app.js";
import { type Config, loadConfig } from "../src/config.js";

type Line = Record<string, unknown> & { level: number; msg: string; time: number };

function memoryLogger() {
  const lines: Line[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sample-app-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function setup(overrides: Partial<Config> = {}) {
  const config = loadConfig(
    {},
    { logDir: dir, metricsDir: dir, port: 0, host: "127.0.0.1", trafficRps: 0, ...overrides },
  );
  const { logger, lines } = memoryLogger();
  const registry = new Registry();
  const sample = buildApp(config, { logger, registry, version: "9.9.9-test" });
  return { sample, app: sample.app, lines, registry, config };
}

describe("routes", () => {
  it("GET / describes the service", async () => {
    const { app } = setup();
    const res = await app.inject("/");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      service: "sample-app",
      version: "9.9.9-test",
      pid: process.pid,
      routes: expect.arrayContaining(["/work?ms=N", "/error", "/metrics"]),
    });
    await app.close();
  });

  it("GET /work waits N ms and answers; N defaults and is bounded", async () => {
    const { app } = setup({ workMaxMs: 200 });
    const ok = await app.inject("/work?ms=30");
    expect(ok.statusCode).toBe(200);
    expect(ok.json().requestedMs).toBe(30);
    expect(ok.json().tookMs).toBeGreaterThanOrEqual(29);
    const dflt = await app.inject("/work");
    expect(dflt.statusCode).toBe(200);
    expect(dflt.json().requestedMs).toBe(50);
    const zero = await app.inject("/work?ms=0");
    expect(zero.statusCode).toBe(200);
    const max = await app.inject("/work?ms=200");
    expect(max.statusCode).toBe(200);
    expect(max.json().requestedMs).toBe(200);
    await app.close();
  });

  it.each([
    ["abc"],
    ["-1"],
    ["201"],
    ["1.5"],
    ["1e9"],
    // Issue 15.4: numbers JavaScript (or a number schema) would take, but not plain decimal integers.
    ["Infinity"],
    ["-Infinity"],
    ["1e3"],
    ["1e1"],
    ["0x10"],
    ["+5"],
    ["4999.0"],
    ["10.0"],
    ["%2010"],
    ["10%20"],
    [""],
    ["NaN"],
    ["9999999999"],
  ])("GET /work?ms=%s is a 400 with the reason", async (ms) => {
    const { app, lines } = setup({ workMaxMs: 200 });
    const res = await app.inject(`/work?ms=${ms}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: "bad request", message: expect.stringContaining("ms") });
    // One warn-level line per client error: the request line, no second error record.
    const forRequest = lines.filter((l) => l.reqId !== undefined);
    expect(forRequest).toHaveLength(1);
    expect(forRequest[0]).toMatchObject({
      level: 40,
      msg: "request completed",
      statusCode: 400,
      route: "/work",
    });
    await app.close();
  });

  it("GET /error answers 500 and logs the error with its stack", async () => {
    const { app, lines } = setup();
    const res = await app.inject("/error");
    expect(res.statusCode).toBe(500);
    expect(res.json().error).toBe("internal server error");
    const err = lines.find((l) => l.msg === "simulated error") as Line & { err: { stack: string } };
    expect(err.level).toBe(50);
    expect(err.err.stack).toMatch(/^Error: simulated failure[\s\S]*\n\s+at /);
    const done = lines.find((l) => l.msg === "request completed");
    expect(done).toMatchObject({ level: 50, statusCode: 500, route: "/error", reqId: err.reqId });
    await app.close();
  });

  it("logs one line per request with method, url, route, status and response time", async () => {
    const { app, lines } = setup();
    await app.inject({ url: "/?x=1", headers: { "user-agent": "probe/1" } });
    await app.inject("/missing");
    const done = lines.filter((l) => l.msg === "request completed");
    expect(done).toHaveLength(2);
    expect(done[0]).toMatchObject({
      level: 30,
      method: "GET",
      url: "/?x=1",
      route: "/",
      statusCode: 200,
      userAgent: "probe/1",
    });
    expect(typeof done[0]?.responseTime).toBe("number");
    expect(typeof done[0]?.time).toBe("number");
    expect(done[1]).toMatchObject({ level: 40, route: "unmatched", statusCode: 404 });
    await app.close();
  });

  it("counts and times requests by method, route pattern and status on /metrics", async () => {
    const { app } = setup();
    await app.inject("/");
    await app.inject("/");
    await app.inject("/work?ms=1");
    await app.inject("/work?ms=x");
    await app.inject("/error");
    await app.inject("/some/unknown/path");
    const res = await app.inject("/metrics");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toContain('http_requests_total{method="GET",route="/",status_code="200"} 2');
    expect(text).toContain('http_requests_total{method="GET",route="/work",status_code="200"} 1');
    expect(text).toContain('http_requests_total{method="GET",route="/work",status_code="400"} 1');
    expect(text).toContain('http_requests_total{method="GET",route="/error",status_code="500"} 1');
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status_code="404"} 1');
    expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/",status_code="200"} 2');
    expect(text).toContain("process_cpu_seconds_total");
    expect(text).toContain('sample_app_build_info{version="9.9.9-test"} 1');
    // The lint-failing prom-client gauges are not exported.
    expect(text).not.toMatch(/^nodejs_active_handles_total/m);
    await app.close();
  });
});

describe("lifecycle", () => {
  it("is not ready before start, ready after, and writes the metrics file on start and on close", async () => {
    const { sample, app } = setup({ metricsIntervalMs: 60_000 });
    expect((await app.inject("/readyz")).statusCode).toBe(503);
    expect((await app.inject("/healthz")).statusCode).toBe(200);
    const url = await sample.start();
    expect(url.hostname).toBe("127.0.0.1");
    const ready = await fetch(new URL("/readyz", url));
    expect(ready.status).toBe(200);
    const path = join(dir, METRICS_FILE_NAME);
    const first = readFileSync(path, "utf8");
    expect(first).toContain('http_requests_total{method="GET",route="/readyz",status_code="503"} 1');
    expect(first).not.toContain('route="/readyz",status_code="200"');
    await sample.close();
    await sample.close(); // idempotent
    const last = readFileSync(path, "utf8");
    // The last write happened after the server drained: it counts the /readyz request.
    expect(last).toContain('http_requests_total{method="GET",route="/readyz",status_code="200"} 1');
    await expect(fetch(new URL("/", url))).rejects.toThrow();
  });

  it("with TRAFFIC_RPS > 0 calls its own routes over loopback HTTP, errors included", async () => {
    const { sample, lines } = setup({ trafficRps: 200, workMaxMs: 20 });
    await sample.start();
    const deadline = Date.now() + 20_000;
    const seen = () =>
      lines.filter((l) => l.msg === "request completed" && l.userAgent === "sample-app-traffic/1");
    while (Date.now() < deadline) {
      const statuses = new Set(seen().map((l) => l.statusCode));
      if (seen().length >= 100 && [200, 400, 404, 500].every((s) => statuses.has(s))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await sample.close();
    const done = seen();
    expect(done.length).toBeGreaterThanOrEqual(100);
    expect(new Set(done.map((l) => l.statusCode))).toEqual(new Set([200, 400, 404, 500]));
    // Real connections from loopback, not inject(): the remote address is set.
    expect(done[0]?.remoteAddress).toBe("127.0.0.1");
    const routes = new Set(done.map((l) => l.route));
    for (const r of ["/", "/work", "/error", "/healthz"]) expect(routes).toContain(r);
    const text = readFileSync(join(dir, METRICS_FILE_NAME), "utf8");
    const responses = Number(/sample_app_traffic_requests_total\{outcome="response"\} (\d+)/.exec(text)?.[1]);
    // Every generated request got its response before close finished.
    expect(responses).toBe(done.length);
    // Closing (what SIGTERM does) stops the generator before the server: no request fails.
    expect(text).not.toMatch(/sample_app_traffic_requests_total\{outcome="error"\} [1-9]/);
  });
});

describe("close during start", () => {
  it("stops start-up where it is: no traffic generator, no metrics schedule, start resolves", async () => {
    const { sample, lines } = setup({ trafficRps: 50, workMaxMs: 20, metricsIntervalMs: 100 });
    const path = join(dir, METRICS_FILE_NAME);
    const started = sample.start();
    const closed = sample.close();
    await Promise.all([started.catch((err) => err), closed]);
    const writes = () =>
      Number(
        /sample_app_metrics_file_writes_total\{result="success"\} (\d+)/.exec(
          readFileSync(path, "utf8"),
        )?.[1],
      );
    const after = writes();
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 500)); // several metrics intervals and traffic ticks
    expect(lines.slice(count).map((l) => l.msg)).toEqual([]);
    expect(lines.some((l) => l.msg === "traffic generator started")).toBe(false);
    expect(writes()).toBe(after);
    await expect(sample.start()).rejects.toThrow(/closed/);
  });
});

describe("in-flight gauge", () => {
  const inFlight = async (url: URL) =>
    Number(
      /^http_requests_in_flight (\d+)$/m.exec(await (await fetch(new URL("/metrics", url))).text())?.[1],
    );

  async function until(cond: () => Promise<boolean>, what: string) {
    const deadline = Date.now() + 15_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("counts requests until they are answered or aborted by the client", async () => {
    const { sample } = setup({ workMaxMs: 5000 });
    const url = await sample.start();
    // The scrape itself is in flight while it is rendered: 1 means "nothing else".
    expect(await inFlight(url)).toBe(1);

    const answered = fetch(new URL("/work?ms=300", url));
    await until(async () => (await inFlight(url)) === 2, "the /work request to be in flight");
    expect((await answered).status).toBe(200);
    await until(async () => (await inFlight(url)) === 1, "the answered request to be taken off");

    const req = request(new URL("/work?ms=300", url));
    req.on("error", () => {});
    req.end();
    await until(async () => (await inFlight(url)) === 2, "the second /work request to be in flight");
    req.destroy();
    await until(async () => (await inFlight(url)) === 1, "the aborted request to be taken off");
    await sample.close();
  });
});
