// Process tests of the OTLP destination on the BUILT shipper (dist/main.js): real files, the fake
// OTLP receiver on loopback, real signals. OTLP alone: every line exactly once through a 503 with
// Retry-After, then SIGTERM → exit 0 with the positions saved; Loki and OTLP at once: each gets
// every line exactly once; a bad OTLP variable stops the program at start with exit 2.
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { type FakeOtlp, startFakeOtlp } from "./support/fake-otlp.js";
import { assertBuilt, shipperEnv, shipperTracker } from "./support/process.js";

const started = (l: Record<string, unknown>) => l.msg === "log shipper started";
const line = (i: number, level: number) =>
  `{"level":${level},"time":${1_765_000_000_000 + i},"seq":${i},"msg":"otlp process line ${i} — ünïcödé"}`;

function seqCounts(bodies: string[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const b of bodies) {
    const s = /"seq":(\d+)/.exec(b);
    if (s) m.set(Number(s[1]), (m.get(Number(s[1])) ?? 0) + 1);
  }
  return m;
}

function expectExactlyOnce(bodies: string[], total: number): void {
  const counts = seqCounts(bodies);
  const missing = [...Array(total).keys()].filter((i) => counts.get(i) !== 1);
  expect(missing.slice(0, 10), `lines not delivered exactly once (of ${total})`).toEqual([]);
  expect(bodies.length).toBe(total);
}

describe("log shipper process with OTLP (dist/main.js)", () => {
  const shippers = shipperTracker();
  let otlp: FakeOtlp | undefined;
  let loki: FakeLoki | undefined;
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    shippers.killAll();
    await otlp?.close();
    await loki?.close();
    otlp = undefined;
    loki = undefined;
  });

  it("OTLP alone: every line exactly once through a 503 with Retry-After; SIGTERM exits 0", async () => {
    const dirs = tempDirs("proc-otlp-");
    otlp = await startFakeOtlp();
    otlp.setFault({ kind: "status", status: 503, retryAfter: "1", times: 2 });
    const s = shippers.spawn({
      ...shipperEnv(dirs),
      OTLP_ENDPOINT: otlp.url,
      STATIC_LABELS: "job=sample-app,env=test",
      POD_NAMESPACE: "shop",
      POD_NAME: "sample-app-0",
    });
    await s.waitForLog(started, "start");
    const total = 3000;
    const p = join(dirs.logs, "app.log");
    for (let i = 0; i < total; i += 500) {
      let chunk = "";
      for (let j = i; j < i + 500; j++) chunk += `${line(j, j % 2 === 0 ? 30 : 50)}\n`;
      appendFileSync(p, chunk);
    }
    await otlp.waitForRecords(total, 60_000);
    s.child.kill("SIGTERM");
    const exit = await s.exited;
    expect(exit, s.stderr()).toEqual({ code: 0, signal: null });

    expectExactlyOnce(
      otlp.records.map((r) => r.body),
      total,
    );
    expect(otlp.requests.slice(0, 3).map((r) => r.status)).toEqual([503, 503, 200]);
    // Retry-After: 1 honoured (RETRY_MIN_MS is 50 here): a lower bound, so load cannot break it.
    const [a, b, c] = otlp.requests.map((r) => r.at) as [number, number, number];
    expect(b - a).toBeGreaterThanOrEqual(950);
    expect(c - b).toBeGreaterThanOrEqual(950);
    const r0 = otlp.records[0];
    expect(r0?.resource).toEqual({
      "k8s.namespace.name": "shop",
      "k8s.pod.name": "sample-app-0",
      "service.name": "sample-app",
      env: "test",
    });
    expect(r0?.attributes).toEqual({ "log.file.name": "app.log", "log.file.path": p });
    for (const r of otlp.records) {
      const seq = Number(/"seq":(\d+)/.exec(r.body)?.[1]);
      expect(r.timeUnixNano).toBe(BigInt(1_765_000_000_000 + seq) * 1_000_000n);
      expect([r.severityNumber, r.severityText]).toEqual(seq % 2 === 0 ? [9, "info"] : [17, "error"]);
    }
    // Acknowledged, so saved: a restart would send nothing again.
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8"));
    expect(JSON.stringify(saved)).toContain(String(readFileSync(p).length));
  });

  it("Loki and OTLP at once: each gets every line exactly once", async () => {
    const dirs = tempDirs("proc-otlp-fan-");
    otlp = await startFakeOtlp();
    loki = await startFakeLoki({ store: "lines" });
    const s = shippers.spawn({
      ...shipperEnv(dirs, loki.url),
      OTLP_ENDPOINT: otlp.url,
      OTLP_ENCODING: "json",
    });
    await s.waitForLog(started, "start");
    const total = 2000;
    let chunk = "";
    for (let i = 0; i < total; i++) chunk += `${line(i, 30)}\n`;
    appendFileSync(join(dirs.logs, "app.log"), chunk);
    await otlp.waitForRecords(total, 60_000);
    await loki.waitForEntries(total, 60_000);
    s.child.kill("SIGTERM");
    expect((await s.exited).code, s.stderr()).toBe(0);
    expectExactlyOnce(
      otlp.records.map((r) => r.body),
      total,
    );
    expectExactlyOnce(
      loki.entries.map((e) => e.line),
      total,
    );
    expect(otlp.requests.every((r) => r.encoding === "json" && r.status === 200)).toBe(true);
  });

  it("fan-out with OTLP down for a while: Loki is not held back, OTLP gets everything once when it is back; across a SIGTERM neither gets a line twice", async () => {
    const dirs = tempDirs("proc-otlp-down-");
    otlp = await startFakeOtlp();
    loki = await startFakeLoki({ store: "lines" });
    otlp.setFault({ kind: "status", status: 503 });
    const env = { ...shipperEnv(dirs, loki.url), OTLP_ENDPOINT: otlp.url, SHUTDOWN_TIMEOUT_MS: "3000" };
    const s = shippers.spawn(env);
    await s.waitForLog(started, "start");
    const p = join(dirs.logs, "app.log");
    let chunk = "";
    for (let i = 0; i < 1000; i++) chunk += `${line(i, 30)}\n`;
    appendFileSync(p, chunk);
    // Loki gets every line while OTLP refuses everything.
    await loki.waitForEntries(1000, 60_000);
    expect(otlp.records.length).toBe(0);
    // A stop while OTLP is down: not clean (OTLP has nothing), exit 1; positions keep Loki ahead.
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(1);
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0];
    expect(saved.offset).toBe(0);
    expect(saved.ahead.loki).toBeGreaterThan(0);
    // OTLP back, more lines, a restart: OTLP gets all 1500 once, Loki only the 500 new ones.
    otlp.setFault(undefined);
    chunk = "";
    for (let i = 1000; i < 1500; i++) chunk += `${line(i, 30)}\n`;
    appendFileSync(p, chunk);
    const again = shippers.spawn(env);
    await otlp.waitForRecords(1500, 60_000);
    await loki.waitForEntries(1500, 60_000);
    again.child.kill("SIGTERM");
    expect((await again.exited).code, again.stderr()).toBe(0);
    expectExactlyOnce(
      otlp.records.map((r) => r.body),
      1500,
    );
    expectExactlyOnce(
      loki.entries.map((e) => e.line),
      1500,
    );
  });

  it("adding a destination to a running setup: it starts at the committed offsets, not at the beginning of the files", async () => {
    const dirs = tempDirs("proc-otlp-add-");
    loki = await startFakeLoki({ store: "lines" });
    const p = join(dirs.logs, "app.log");
    let chunk = "";
    for (let i = 0; i < 300; i++) chunk += `${line(i, 30)}\n`;
    appendFileSync(p, chunk);
    const s = shippers.spawn(shipperEnv(dirs, loki.url));
    await loki.waitForEntries(300, 60_000);
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
    // OTLP added; the next lines go to both, the old ones to neither.
    otlp = await startFakeOtlp();
    chunk = "";
    for (let i = 300; i < 400; i++) chunk += `${line(i, 30)}\n`;
    appendFileSync(p, chunk);
    const again = shippers.spawn({ ...shipperEnv(dirs, loki.url), OTLP_ENDPOINT: otlp.url });
    await otlp.waitForRecords(100, 60_000);
    await loki.waitForEntries(400, 60_000);
    again.child.kill("SIGTERM");
    expect((await again.exited).code).toBe(0);
    expect([...seqCounts(otlp.records.map((r) => r.body)).keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => 300 + i),
    );
    expectExactlyOnce(
      loki.entries.map((e) => e.line),
      400,
    );
  });

  it("partialSuccess: the refused records are dropped (counted, logged), the others delivered once, offsets move", async () => {
    const dirs = tempDirs("proc-otlp-partial-");
    otlp = await startFakeOtlp();
    otlp.setReject("POISON", "2 log records too old");
    const s = shippers.spawn({ ...shipperEnv(dirs), OTLP_ENDPOINT: otlp.url });
    await s.waitForLog(started, "start");
    const total = 200;
    let chunk = "";
    for (let i = 0; i < total; i++) chunk += `${line(i, 30)}${i === 10 || i === 150 ? " POISON" : ""}\n`;
    const p = join(dirs.logs, "app.log");
    appendFileSync(p, chunk);
    await otlp.waitForRecords(total - 2, 60_000);
    await s.waitForLog((l) => l.destinationMessage === "2 log records too old", "the drop log");
    s.child.kill("SIGTERM");
    expect((await s.exited).code, s.stderr()).toBe(0);
    const counts = seqCounts(otlp.records.map((r) => r.body));
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(
      [...Array(total).keys()].filter((i) => i !== 10 && i !== 150),
    );
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(otlp.rejected.map((r) => Number(/"seq":(\d+)/.exec(r.body)?.[1]))).toEqual([10, 150]);
    const drop = s.logs.find((l) => l.destinationMessage === "2 log records too old");
    expect(drop).toMatchObject({ reason: "rejected", lines: 2, stored: total - 2 });
    // Not retried: every record was sent once, every answer a 200.
    expect(otlp.requests.every((r) => r.status === 200)).toBe(true);
    expect(otlp.requests.reduce((n, r) => n + r.records, 0)).toBe(total);
    expect(JSON.stringify(JSON.parse(readFileSync(dirs.positionsFile, "utf8")))).toContain(
      String(readFileSync(p).length),
    );
  });

  it("SigV4 (OTLP_AWS_REGION): the built program loads AWS's packages and signs; the receiver's own computation agrees", async () => {
    const dirs = tempDirs("proc-otlp-sigv4-");
    const creds = {
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      sessionToken: "FwoGZXIvYXdzEXAMPLE",
      region: "eu-west-1",
      service: "logs",
    };
    otlp = await startFakeOtlp({ sigv4: creds });
    const s = shippers.spawn({
      ...shipperEnv(dirs),
      OTLP_ENDPOINT: otlp.url,
      OTLP_AWS_REGION: creds.region,
      OTLP_HEADERS: "x-aws-log-group=/eks/shop,x-aws-log-stream=app",
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      AWS_SESSION_TOKEN: creds.sessionToken,
      // Never fall through to instance metadata (not loopback).
      AWS_EC2_METADATA_DISABLED: "true",
    });
    await s.waitForLog(started, "start");
    const total = 500;
    let chunk = "";
    for (let i = 0; i < total; i++) chunk += `${line(i, 40)}\n`;
    appendFileSync(join(dirs.logs, "app.log"), chunk);
    await otlp.waitForRecords(total, 60_000);
    s.child.kill("SIGTERM");
    expect((await s.exited).code, s.stderr()).toBe(0);
    expectExactlyOnce(
      otlp.records.map((r) => r.body),
      total,
    );
    expect(otlp.requests.every((r) => r.status === 200)).toBe(true);
    expect(String(otlp.requests[0]?.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/logs\/aws4_request, /,
    );
  });

  it("a bad OTLP variable stops the program at start with exit 2 and a message naming it", async () => {
    const dirs = tempDirs("proc-otlp-bad-");
    const s = shippers.spawn({
      ...shipperEnv(dirs),
      OTLP_ENDPOINT: "http://127.0.0.1:1/v1/logs",
      OTLP_ENCODING: "xml",
      BATCH_WAIT_MS: "zero",
    });
    const exit = await s.exited;
    expect(exit.code).toBe(2);
    const text = s.stdout() + s.stderr();
    expect(text).toContain('OTLP_ENCODING="xml" (expected one of protobuf, json');
    expect(text).toContain("BATCH_WAIT_MS=");
  });
});
