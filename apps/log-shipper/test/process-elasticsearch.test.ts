// Process tests on the BUILT shipper (dist/main.js) with Elasticsearch as the destination: real
// files, the fake Elasticsearch, real signals. Every line arrives exactly once and SIGTERM exits
// 0; a kill -9 mid-stream and a restart re-send what was not yet saved, and the stable `_id`s
// turn every re-sent line into a 409 — no duplicate document at all (Loki, in process.test.ts,
// gets up to one batch twice).
//
// These run once config.ts reads the ES_* variables (its schema merging elasticsearchSchema):
// until then the built program cannot be pointed at Elasticsearch, and they are skipped.
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { tempDirs } from "./support/app-harness.js";
import { type FakeElasticsearch, startFakeElasticsearch } from "./support/fake-elasticsearch.js";
import { assertBuilt, shipperEnv, shipperTracker } from "./support/process.js";
import { waitFor } from "./support/source-harness.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = (l: Record<string, unknown>) => l.msg === "log shipper started";

function line(i: number): string {
  return `{"level":30,"time":${Date.now()},"seq":${i},"msg":"es process line ${i} ${"e".repeat(60)}"}`;
}

/** seq → number of stored documents. */
function arrivals(es: FakeElasticsearch): Map<number, number> {
  const m = new Map<number, number>();
  for (const d of es.docs) {
    const s = /"seq":(\d+)/.exec(String(d.source.message));
    if (s) m.set(Number(s[1]), (m.get(Number(s[1])) ?? 0) + 1);
  }
  return m;
}

describe("log shipper process with Elasticsearch (dist/main.js)", () => {
  let es: FakeElasticsearch | undefined;
  const shippers = shipperTracker();
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    shippers.killAll();
    await es?.close();
    es = undefined;
  });

  it("every line exactly once, then SIGTERM exits 0", async () => {
    const dirs = tempDirs("proc-es-");
    es = await startFakeElasticsearch();
    const s = shippers.spawn({ ...shipperEnv(dirs), ES_ENDPOINT: es.url });
    await s.waitForLog(started, "start");
    const p = join(dirs.logs, "app.log");
    const total = 5000;
    for (let i = 0; i < total; ) {
      let chunk = "";
      for (let k = 0; k < 500; k++, i++) chunk += `${line(i)}\n`;
      appendFileSync(p, chunk);
      await sleep(20);
    }
    await es.waitForDocs(total, 30_000);
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
    const seen = arrivals(es);
    expect(seen.size).toBe(total);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(es.docs[0]?.index).toBe("logs-sidecar-default");
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0].offset;
    expect(saved).toBe(readFileSync(p).length);
  });

  it("kill -9 mid-stream and restart: nothing lost, no duplicate document (re-sent lines are 409s)", async () => {
    const dirs = tempDirs("proc-es-kill-");
    es = await startFakeElasticsearch();
    const env = { ...shipperEnv(dirs), ES_ENDPOINT: es.url, BATCH_MAX_BYTES: "65536" };
    const p = join(dirs.logs, "app.log");
    const total = 20_000;
    let written = 0;
    const write = (n: number) => {
      let chunk = "";
      for (let i = 0; i < n && written < total; i++, written++) chunk += `${line(written)}\n`;
      appendFileSync(p, chunk);
    };
    const first = shippers.spawn(env);
    await first.waitForLog(started, "start");
    while (es.docs.length < total / 3) {
      write(500);
      await sleep(10);
    }
    first.child.kill("SIGKILL");
    await first.exited;
    write(2000);
    const second = shippers.spawn(env);
    await second.waitForLog(started, "restart");
    while (written < total) {
      write(1000);
      await sleep(10);
    }
    await waitFor(() => arrivals(es as FakeElasticsearch).size === total, `all ${total} lines`, 60_000);
    await sleep(300);
    const final = arrivals(es);
    expect([...Array(total).keys()].filter((i) => !final.has(i))).toEqual([]);
    expect([...final].filter(([, n]) => n > 1).map(([s]) => s)).toEqual([]);
    console.log(`kill -9 with Elasticsearch: ${es.conflicts} re-sent lines answered 409, 0 duplicated`);
    second.child.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);
  });
});
