// The exporter against the real tools of the ecosystem (Debian packages; the test fails, never
// skips, when they are missing): promtool validates /metrics, a real Prometheus server scrapes it
// (it asks for OpenMetrics) and answers queries for the app's series, and a real Pushgateway
// receives the pushes. Every process started here is stopped by its PID in afterAll.
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import {
  requireBinary,
  type Started,
  silentLogger,
  startBinary,
  tempDir,
  waitFor,
  writeProm,
} from "./helpers.js";

const PROMTOOL = "/usr/bin/promtool";
const PROMETHEUS = "/usr/bin/prometheus";
const PUSHGATEWAY = "/usr/bin/prometheus-pushgateway";

const LABEL_VALUE = 'q"uote b\\sl n\nl ☃ 日本';
const escaped = LABEL_VALUE.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

const APP_FILE = [
  "# HELP app_requests_total Requests served.",
  "# TYPE app_requests_total counter",
  'app_requests_total{code="200",method="GET"} 1027',
  'app_requests_total{code="500",method="GET"} 3',
  "# HELP app_labels_info Label edge cases.",
  "# TYPE app_labels_info gauge",
  `app_labels_info{v="${escaped}"} 1`,
  "# HELP app_temperature_celsius Temperature.",
  "# TYPE app_temperature_celsius gauge",
  "app_temperature_celsius NaN",
  "# HELP app_latency_seconds Latency.",
  "# TYPE app_latency_seconds histogram",
  'app_latency_seconds_bucket{le="0.1"} 5',
  'app_latency_seconds_bucket{le="1"} 9',
  'app_latency_seconds_bucket{le="+Inf"} 10',
  "app_latency_seconds_sum 3.5",
  "app_latency_seconds_count 10",
  "# HELP app_size_bytes Sizes.",
  "# TYPE app_size_bytes summary",
  'app_size_bytes{quantile="0.5"} 100',
  'app_size_bytes{quantile="0.99"} +Inf',
  "app_size_bytes_sum 1000",
  "app_size_bytes_count 7",
  "",
].join("\n");

// A second producer whose series carry job/instance labels of their own.
const BATCH_FILE = [
  "# HELP batch_last_success_timestamp_seconds Last successful batch run.",
  "# TYPE batch_last_success_timestamp_seconds gauge",
  'batch_last_success_timestamp_seconds{instance="worker-1",job="nightly"} 1.7e9',
  "",
].join("\n");

const started: Started[] = [];
const apps: App[] = [];
let cleanup: (() => Promise<void>) | undefined;
let dir = "";
let root = "";

beforeAll(async () => {
  requireBinary(PROMTOOL, "prometheus");
  requireBinary(PROMETHEUS, "prometheus");
  requireBinary(PUSHGATEWAY, "prometheus-pushgateway");
  const t = await tempDir("mx-int-");
  cleanup = t.cleanup;
  root = t.dir;
  dir = join(root, "metrics");
  await mkdir(dir);
  await writeProm(dir, "app.prom", APP_FILE);
  await writeProm(dir, "batch.prom", BATCH_FILE);
});

afterAll(async () => {
  for (const a of apps) await a.close(Date.now() + 5000);
  for (const s of started) await s.stop();
  await cleanup?.();
});

async function startExporter(
  overrides: Parameters<typeof loadConfig>[1] = {},
): Promise<{ app: App; port: number }> {
  const config = loadConfig(
    {},
    { metricsDir: dir, httpHost: "127.0.0.1", httpPort: 0, collectIntervalMs: 500, ...overrides },
  );
  const app = buildApp(config, { logger: silentLogger() });
  apps.push(app);
  await app.start();
  const addr = app.server.server.address();
  if (typeof addr !== "object" || !addr) throw new Error("no address");
  return { app, port: addr.port };
}

describe("promtool", () => {
  it("finds no problem at all in /metrics (no parse error, no lint)", async () => {
    const { port } = await startExporter();
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(body).toContain("app_requests_total");
    const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: body, encoding: "utf8" });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("Prometheus server", () => {
  it("scrapes the exporter (OpenMetrics) and its query API returns the app's series", async () => {
    const { port } = await startExporter();
    const promDir = join(root, "prometheus");
    await mkdir(promDir);
    const configFile = join(promDir, "prometheus.yml");
    await writeFile(
      configFile,
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "scrape_configs:",
        "  - job_name: exporter",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${port}"]`,
        "",
      ].join("\n"),
    );
    const prom = await startBinary(
      PROMETHEUS,
      (p) => [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(promDir, "data")}`,
        `--web.listen-address=127.0.0.1:${p}`,
        "--log.level=warn",
      ],
      "/-/ready",
    );
    started.push(prom);
    const api = `http://127.0.0.1:${prom.port}/api/v1`;
    const query = async (q: string) => {
      const res = (await (await fetch(`${api}/query?query=${encodeURIComponent(q)}`)).json()) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      return res.data.result;
    };

    const requests = await waitFor("app_requests_total in Prometheus", async () => {
      const r = await query('app_requests_total{job="exporter"}');
      return r.length === 2 ? r : undefined;
    });
    expect(requests.map((s) => [s.metric.code, s.value[1]]).sort()).toEqual([
      ["200", "1027"],
      ["500", "3"],
    ]);
    // Label values survive the round trip exactly; job/instance of the file become exported_*.
    const labels = await query("app_labels_info");
    expect(labels[0]?.metric.v).toBe(LABEL_VALUE);
    const batch = await query("batch_last_success_timestamp_seconds");
    expect(batch[0]?.metric).toMatchObject({
      exported_job: "nightly",
      exported_instance: "worker-1",
      job: "exporter",
    });
    expect((await query("app_temperature_celsius"))[0]?.value[1]).toBe("NaN");
    expect((await query('app_latency_seconds_bucket{le="+Inf"}'))[0]?.value[1]).toBe("10");
    expect((await query('app_size_bytes{quantile="0.99"}'))[0]?.value[1]).toBe("+Inf");
    expect(await query("metrics_exporter_file_ok")).toHaveLength(2);

    const targets = (await (await fetch(`${api}/targets`)).json()) as {
      data: { activeTargets: { health: string; lastError: string }[] };
    };
    expect(targets.data.activeTargets[0]).toMatchObject({ health: "up", lastError: "" });
    // Prometheus asked for OpenMetrics and got it.
    const om = await query('metrics_exporter_scrapes_total{format="openmetrics"}');
    expect(Number(om[0]?.value[1])).toBeGreaterThan(0);
  });
});

describe("Pushgateway", () => {
  it("receives the pushes: grouped by job and instance, series with job/instance labels kept as exported_*", async () => {
    // Debian builds the Pushgateway with --persistence.file=/var/lib/prometheus/pushgateway.data
    // as its default, which would carry groups from one run into the next: keep this run's state in
    // its own directory.
    const gw = await startBinary(
      PUSHGATEWAY,
      (p) => [`--web.listen-address=127.0.0.1:${p}`, `--persistence.file=${join(root, "pushgateway.data")}`],
      "/-/ready",
    );
    started.push(gw);
    const { app } = await startExporter({
      pushgatewayUrl: new URL(`http://127.0.0.1:${gw.port}`),
      pushIntervalMs: 1000,
      pushJob: "sidecar",
      pushInstance: "test-pod-0",
    });
    const body = await waitFor("the push at the Pushgateway", async () => {
      const text = await (await fetch(`http://127.0.0.1:${gw.port}/metrics`)).text();
      return text.includes("app_requests_total{") ? text : undefined;
    });
    expect(body).toContain(
      'app_requests_total{code="200",instance="test-pod-0",job="sidecar",method="GET"} 1027',
    );
    expect(body).toContain(
      'batch_last_success_timestamp_seconds{exported_instance="worker-1",exported_job="nightly",instance="test-pod-0",job="sidecar"} 1.7e+09',
    );
    expect(body).toContain('app_latency_seconds_bucket{instance="test-pod-0",job="sidecar",le="+Inf"} 10');
    expect(body).toContain('app_size_bytes_count{instance="test-pod-0",job="sidecar"} 7');
    expect(body).toMatch(/push_time_seconds\{instance="test-pod-0",job="sidecar"\} [1-9]/);
    expect(body).toMatch(/push_failure_time_seconds\{instance="test-pod-0",job="sidecar"\} 0\n/);

    // The API agrees that the last push succeeded.
    const api = (await (await fetch(`http://127.0.0.1:${gw.port}/api/v1/metrics`)).json()) as {
      data: { labels: Record<string, string>; last_push_successful: boolean }[];
    };
    expect(api.data.find((g) => g.labels.instance === "test-pod-0")).toMatchObject({
      labels: { job: "sidecar", instance: "test-pod-0" },
      last_push_successful: true,
    });

    // The push at shutdown carries the latest collection.
    await writeProm(dir, "app.prom", APP_FILE.replace("} 1027", "} 2048"));
    await app.close(Date.now() + 10_000);
    const after = await (await fetch(`http://127.0.0.1:${gw.port}/metrics`)).text();
    expect(after).toContain(
      'app_requests_total{code="200",instance="test-pod-0",job="sidecar",method="GET"} 2048',
    );
  });
});
