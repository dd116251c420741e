// The assembled shipper in-process, fanning out to the fake Loki and the fake Elasticsearch:
// every line reaches both exactly once (also when Elasticsearch refuses some items with 429 and
// when it is down for a while), and a restart that lost its positions re-sends everything without
// creating a single duplicate document (409 = acknowledged).
//
// config.ts does not merge the ES_* schema yet, so the test adds the parsed ES settings to the
// loaded Config itself — exactly what the merged schema will produce.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "@sidecar/shared";
import { afterEach, describe, expect, it } from "vitest";
import { type App, buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { type ElasticsearchConfig, elasticsearchSchema } from "../src/sinks/elasticsearch/elasticsearch.js";
import { createDestinations } from "../src/sinks/index.js";
import { type Dirs, tempDirs } from "./support/app-harness.js";
import { type FakeElasticsearch, startFakeElasticsearch } from "./support/fake-elasticsearch.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { silentLogger } from "./support/logger.js";
import { waitFor } from "./support/source-harness.js";

function buildEsApp(dirs: Dirs, env: Record<string, string>): App {
  const full = {
    LOG_PATHS: `${dirs.logs}/*.log`,
    POSITIONS_FILE: dirs.positionsFile,
    BATCH_WAIT_MS: "50",
    BATCH_MAX_BYTES: "4096",
    RETRY_MIN_MS: "20",
    RETRY_MAX_MS: "200",
    POLL_INTERVAL_MS: "50",
    RESCAN_INTERVAL_MS: "200",
    POSITIONS_SYNC_MS: "100",
    SUMMARY_INTERVAL_MS: "0",
    HTTP_PORT: "0",
    HTTP_HOST: "127.0.0.1",
    ...env,
  };
  const config = { ...loadConfig(full), ...(parseEnv(elasticsearchSchema, full) as ElasticsearchConfig) };
  return buildApp(config, { logger: silentLogger(), processMetrics: false, listen: false });
}

const N = 300;
const content = Array.from(
  { length: N },
  (_, i) => `{"level":${i % 10 === 0 ? 50 : 30},"time":${1_700_000_000_000 + i},"n":${i},"msg":"m${i}"}`,
);

describe("destination list", () => {
  it("ES_ENDPOINT adds Elasticsearch after Loki, with its ES_WHEN_FULL", () => {
    const env = { LOKI_ENDPOINT: "http://loki:3100", ES_ENDPOINT: "http://es:9200", ES_WHEN_FULL: "drop" };
    const config = { ...loadConfig(env), ...(parseEnv(elasticsearchSchema, env) as ElasticsearchConfig) };
    const ctx = { staticLabels: {}, podLabels: {}, timeoutMs: 1000, logger: silentLogger() };
    const dests = createDestinations(config, ctx);
    expect(dests.map((d) => [d.sink.name, d.whenFull])).toEqual([
      ["loki", "block"],
      ["elasticsearch", "drop"],
    ]);
    expect(createDestinations(loadConfig({}), ctx).map((d) => d.sink.name)).toEqual(["dry-run"]);
    return Promise.all(dests.map((d) => d.sink.close()));
  });
});

describe("log shipper with an Elasticsearch destination", () => {
  let app: App | undefined;
  let loki: FakeLoki | undefined;
  let es: FakeElasticsearch | undefined;
  afterEach(async () => {
    await app?.close(Date.now() + 2000);
    await loki?.close();
    await es?.close();
    app = undefined;
    loki = undefined;
    es = undefined;
  });

  async function committed(dirs: Dirs, size: number): Promise<void> {
    await waitFor(() => {
      try {
        return JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files.some(
          (f: { offset: number }) => f.offset === size,
        );
      } catch {
        return false;
      }
    }, "positions file at the end of the file");
  }

  it("fans out: both get every line once; items refused with 429 are re-sent alone; a restart without positions duplicates nothing", async () => {
    const dirs = tempDirs("ls-es-");
    loki = await startFakeLoki();
    es = await startFakeElasticsearch();
    // Every line ending in 7 is refused once with 429: the partial retry carries only those.
    es.setItemFaults([{ match: '7,"msg"', status: 429, times: 30 }]);
    const p = join(dirs.logs, "app.log");
    writeFileSync(p, `${content.join("\n")}\n`);
    const env = { LOKI_ENDPOINT: loki.url, ES_ENDPOINT: es.url, STATIC_LABELS: "job=shop" };
    app = buildEsApp(dirs, env);
    await app.start();
    await es.waitForDocs(N, 30_000);
    await loki.waitForEntries(N, 30_000);
    await committed(dirs, readFileSync(p).length);
    // Within a batch, entries are grouped by stream (level): compare as sets, then count.
    expect(loki.entries.map((e) => e.line).sort()).toEqual([...content].sort());
    expect(es.docs.map((d) => d.source.message).sort()).toEqual([...content].sort());
    expect(new Set(es.docs.map((d) => d.id)).size).toBe(N);
    expect(es.docs[0]?.source).toMatchObject({
      "@timestamp": "2023-11-14T22:13:20.000000000Z",
      log: { level: "error", file: { path: p } },
      labels: { job: "shop" },
      data_stream: { type: "logs", dataset: "sidecar", namespace: "default" },
    });
    // The 429 items went again, alone: requests with only refused items' lines.
    const retried = es.requests.filter((r) => r.items.length > 0 && r.items.every((i) => i.status === 201));
    expect(retried.length).toBeGreaterThan(0);
    const m = (await app.server.inject({ method: "GET", url: "/metrics" })).body;
    expect(m).toMatch(new RegExp(`^log_shipper_sent_lines_total{destination="elasticsearch"} ${N}$`, "m"));
    expect(m).toMatch(new RegExp(`^log_shipper_sent_lines_total{destination="loki"} ${N}$`, "m"));
    await app.close(Date.now() + 5000);
    app = undefined;

    // A crash that lost the positions: everything is read and sent again. A new file found first
    // takes the first reader generation, so app.log's reader ids differ from the first run's: the
    // `_id`s must not depend on them.
    rmSync(dirs.positionsFile, { force: true });
    writeFileSync(join(dirs.logs, "a.log"), "new 1\nnew 2\n");
    const before = es.requests.length;
    app = buildEsApp(dirs, env);
    await app.start();
    await waitFor(() => (es?.conflicts ?? 0) >= N, "every line re-sent and answered 409", 30_000);
    await es.waitForDocs(N + 2, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(es.requests.length).toBeGreaterThan(before);
    expect(es.docs.length).toBe(N + 2);
    expect(es.docs.slice(N).map((d) => d.source.message)).toEqual(["new 1", "new 2"]);
  });

  it("Elasticsearch down: Loki keeps shipping; Elasticsearch gets everything once it is back", async () => {
    const dirs = tempDirs("ls-es-");
    loki = await startFakeLoki();
    es = await startFakeElasticsearch();
    es.setFault({ kind: "status", status: 503 });
    const p = join(dirs.logs, "app.log");
    writeFileSync(p, `${content.join("\n")}\n`);
    app = buildEsApp(dirs, { LOKI_ENDPOINT: loki.url, ES_ENDPOINT: es.url });
    await app.start();
    await loki.waitForEntries(N, 30_000);
    await waitFor(() => (es?.requests.length ?? 0) >= 3, "Elasticsearch retried");
    expect(es.docs.length).toBe(0);
    es.setFault(undefined);
    await es.waitForDocs(N, 30_000);
    await committed(dirs, readFileSync(p).length);
    expect(es.docs.map((d) => d.source.message).sort()).toEqual([...content].sort());
    expect(loki.entries.length).toBe(N);
  });

  it("a batch refused whole as too large (413) is split and delivered, nothing lost or doubled", async () => {
    const dirs = tempDirs("ls-es-");
    es = await startFakeElasticsearch();
    es.setFault({ kind: "status", status: 413, times: 1 });
    const p = join(dirs.logs, "app.log");
    writeFileSync(p, `${content.join("\n")}\n`);
    app = buildEsApp(dirs, { ES_ENDPOINT: es.url });
    await app.start();
    await es.waitForDocs(N, 30_000);
    await committed(dirs, readFileSync(p).length);
    expect(es.docs.map((d) => d.source.message).sort()).toEqual([...content].sort());
    const m = (await app.server.inject({ method: "GET", url: "/metrics" })).body;
    expect(m).toMatch(/^log_shipper_batches_total{destination="elasticsearch",outcome="split"} 1$/m);
    expect(m).not.toMatch(/log_shipper_dropped_lines_total{destination="elasticsearch"/);
  });
});
