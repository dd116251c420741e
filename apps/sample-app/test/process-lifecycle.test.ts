// The built program's start and stop as Kubernetes drives them: bad configuration and unwritable
// volumes stop it with exit code 2 and one clear line; SIGTERM drains an in-flight request, leaves
// its log line in the file, rewrites the metrics file and exits 0.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { exitOf, requireBuilt, runToExit, spawnApp, until } from "./process-helpers.js";

beforeAll(requireBuilt);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sample-app-life-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function get(port: number, path: string): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Wait until the server holds a request besides the scrape asking (so SIGTERM finds it in flight). */
async function untilInFlight(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { body } = await get(port, "/metrics");
    if (/^http_requests_in_flight 2$/m.test(body)) return;
    if (Date.now() > deadline) throw new Error("the request never showed up as in flight");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("sample-app process: start-up errors", () => {
  it("exits 2 naming every bad variable, without a stack trace", async () => {
    const r = await runToExit({
      LOG_DIR: join(dir, "logs"),
      METRICS_DIR: join(dir, "metrics"),
      PORT: "eighty",
      LOG_MAX_BYTES: "10",
      TRAFFIC_RPS: "lots",
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sample-app: invalid configuration: /);
    expect(r.stderr).toContain('PORT="eighty"');
    expect(r.stderr).toContain('LOG_MAX_BYTES="10"');
    expect(r.stderr).toContain('TRAFFIC_RPS="lots"');
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("    at ");
  });

  it.each([
    ["LOG_DIR", "logs"],
    ["METRICS_DIR", "metrics"],
  ])("exits 2 with a clear message when %s cannot be written", async (variable, sub) => {
    // A path below a regular file can never be created, whoever runs the test (root included).
    const blocker = join(dir, "not-a-directory");
    writeFileSync(blocker, "");
    const env: Record<string, string> = { LOG_DIR: join(dir, "logs"), METRICS_DIR: join(dir, "metrics") };
    env[variable] = join(blocker, sub);
    const r = await runToExit(env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${variable}="${join(blocker, sub)}" is not a writable directory (ENOTDIR)`);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("    at ");
  });

  it("exits 2 when the log file itself cannot be opened", async () => {
    const logDir = join(dir, "logs");
    mkdirSync(join(logDir, "app.log"), { recursive: true }); // a directory where the file should be
    const r = await runToExit({ LOG_DIR: logDir, METRICS_DIR: join(dir, "metrics") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('LOG_FILE="app.log" cannot be opened in LOG_DIR (EISDIR)');
  });
});

describe("sample-app process: SIGTERM", () => {
  it("finishes the in-flight request, logs it, rewrites the metrics file and exits 0", async () => {
    const logDir = join(dir, "logs");
    const metricsDir = join(dir, "metrics");
    const app = await spawnApp({
      LOG_DIR: logDir,
      METRICS_DIR: metricsDir,
      TRAFFIC_RPS: "0",
      // Only the start-up write and the final one can happen during the test.
      METRICS_INTERVAL_MS: "300000",
    });
    const metricsPath = join(metricsDir, "sample-app.prom");
    const before = readFileSync(metricsPath, "utf8");
    expect(before).not.toContain('route="/work"');
    // kubectl logs shows the start on stdout.
    expect(app.stdout()).toContain('"msg":"sample-app started"');

    expect((await get(app.port, "/work?ms=1&marker=first")).status).toBe(200);
    const inFlight = get(app.port, "/work?ms=1500&marker=in-flight");
    await untilInFlight(app.port);
    app.child.kill("SIGTERM");
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).requestedMs).toBe(1500);
    // The keep-alive client is told to hang up, so its idle connection does not hold the drain open.
    expect(res.connection).toBe("close");
    const exit = await exitOf(app);
    expect(exit, app.stderr()).toEqual({ code: 0, signal: null });

    const lines = readFileSync(join(logDir, "app.log"), "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const last = lines.filter((l) => l.msg === "request completed").at(-1);
    expect(last).toMatchObject({ url: "/work?ms=1500&marker=in-flight", statusCode: 200, level: 30 });
    expect(lines.at(-1)?.msg).toBe("sample-app stopped");

    const after = readFileSync(metricsPath, "utf8");
    expect(after).toContain('http_requests_total{method="GET",route="/work",status_code="200"} 2');
    expect(after).toMatch(/^http_requests_in_flight 0$/m);
    expect(app.stdout()).toContain('"msg":"shutting down"');
    expect(app.stdout()).toContain('"msg":"shutdown complete"');
    // Nothing on stderr but (at most) Node's deprecation warnings.
    expect(app.stderr().replace(/^\(node:\d+\).*\n|^\(Use `node --trace.*\n/gm, "")).toBe("");
  });

  it("a new connection during shutdown is refused while the in-flight one completes", async () => {
    const app = await spawnApp({
      LOG_DIR: join(dir, "logs"),
      METRICS_DIR: join(dir, "metrics"),
      TRAFFIC_RPS: "0",
    });
    const inFlight = get(app.port, "/work?ms=1500");
    await untilInFlight(app.port);
    app.child.kill("SIGTERM");
    await until(() => app.stdout().includes('"msg":"shutting down"'), "shutdown to begin");
    await expect(get(app.port, "/")).rejects.toThrow(/ECONNREFUSED|ECONNRESET|socket hang up/);
    expect((await inFlight).status).toBe(200);
    expect((await exitOf(app)).code).toBe(0);
  });
});
