// The Loki client and the pipeline's retry policy against the real fake Loki over loopback,
// table-driven like Promtail's client tests: each case injects a fault, ships a batch, and checks
// what Loki received (nothing lost, nothing doubled), the requests it saw, the acknowledgements
// and the exported metrics.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileSecret, recheckCredentials } from "../src/secret-file.js";
import { isPermanentStatus, pushUrl } from "../src/sinks/loki/loki-client.js";
import { type FakeLoki, type Fault, startFakeLoki } from "./support/fake-loki.js";
import { harness, lines, metric, until } from "./support/loki-harness.js";
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from "./support/loki-tls-fixture.js";

let loki: FakeLoki;
beforeEach(async () => {
  loki = await startFakeLoki();
});
afterEach(async () => {
  await loki.close();
});

const file = { id: "dev1:ino1:fp", path: "/shared/logs/app.log" };

interface Case {
  name: string;
  fault?: Fault;
  opts?: Parameters<typeof harness>[1];
  /** Statuses of the requests Loki saw, in order (0 = no answer). */
  statuses: number[];
  delivered: boolean;
  metrics: [string, Record<string, string>, number][];
  log?: { msg: string; fields: Record<string, unknown> };
}

const N = 50;
const cases: Case[] = [
  {
    name: "204: acknowledged",
    statuses: [204],
    delivered: true,
    metrics: [
      ["log_shipper_batches_total", { outcome: "success" }, 1],
      ["log_shipper_sent_lines_total", {}, N],
      ["log_shipper_retries_total", {}, 0],
      ["log_shipper_send_duration_seconds", { outcome: "success" }, 1],
    ],
  },
  {
    name: "503 for a while: retried, then delivered exactly once",
    fault: { kind: "status", status: 503, times: 3 },
    statuses: [503, 503, 503, 204],
    delivered: true,
    metrics: [
      ["log_shipper_retries_total", { reason: "http_503" }, 3],
      ["log_shipper_batches_total", { outcome: "retry" }, 3],
      ["log_shipper_batches_total", { outcome: "success" }, 1],
      ["log_shipper_sent_lines_total", {}, N],
    ],
    log: { msg: "Loki accepts batches again", fields: { failedAttempts: 3 } },
  },
  {
    name: "500 with a message: retried and the message logged",
    fault: { kind: "status", status: 500, body: "ingester unavailable", times: 1 },
    statuses: [500, 204],
    delivered: true,
    metrics: [["log_shipper_retries_total", { reason: "http_500" }, 1]],
    log: {
      msg: "push to Loki failed; retrying",
      fields: { status: 500, reason: "http_500", attempt: 1, lokiMessage: "ingester unavailable" },
    },
  },
  {
    name: "400 that does not say which entries were bad: split, both halves sent again, nothing lost",
    fault: { kind: "status", status: 400, body: "error parsing push request", times: 1 },
    statuses: [400, 204, 204],
    delivered: true,
    metrics: [
      ["log_shipper_batches_total", { outcome: "split" }, 1],
      ["log_shipper_batches_total", { outcome: "success" }, 2],
      ["log_shipper_dropped_lines_total", {}, 0],
      ["log_shipper_sent_lines_total", {}, N],
      ["log_shipper_retries_total", {}, 0],
    ],
  },
  ...([401, 403, 404] as const).map(
    (status): Case => ({
      name: `${status} (credentials, tenant or URL): retried with an error naming the cause, never dropped`,
      fault: { kind: "status", status, body: `injected ${status}`, times: 3 },
      statuses: [status, status, status, 204],
      delivered: true,
      metrics: [
        ["log_shipper_retries_total", { reason: `http_${status}` }, 3],
        ["log_shipper_dropped_lines_total", {}, 0],
        ["log_shipper_batches_total", { outcome: "dropped" }, 0],
        ["log_shipper_sent_lines_total", {}, N],
      ],
      log: {
        msg: "push to Loki failed; retrying",
        fields: {
          level: 50,
          status,
          attempt: 1,
          hint: expect.stringMatching(status === 404 ? /LOKI_ENDPOINT/ : /LOKI_TENANT_ID/),
        },
      },
    }),
  ),
  {
    name: "422 to every part: split down to single lines, each dropped as http_422 and logged once",
    fault: { kind: "status", status: 422, body: "unprocessable" },
    // 50 lines: 49 splits, then 50 single-line parts — 99 requests.
    statuses: Array(2 * N - 1).fill(422),
    delivered: false,
    metrics: [
      ["log_shipper_dropped_lines_total", { reason: "http_422" }, N],
      ["log_shipper_batches_total", { outcome: "split" }, N - 1],
      ["log_shipper_batches_total", { outcome: "dropped" }, N],
      ["log_shipper_sent_lines_total", {}, 0],
    ],
    log: {
      msg: "Loki rejected a batch for good; dropped it",
      fields: {
        status: 422,
        lines: 1,
        lokiMessage: "unprocessable",
        example: {
          timestamp: "2023-11-14T22:13:20.000000000Z",
          line: '{"level":30,"time":1700000000000,"msg":"l-0"}',
        },
      },
    },
  },
  {
    name: "413 once: split, the halves delivered",
    fault: { kind: "status", status: 413, times: 1 },
    statuses: [413, 204, 204],
    delivered: true,
    metrics: [
      ["log_shipper_dropped_lines_total", {}, 0],
      ["log_shipper_sent_lines_total", {}, N],
    ],
  },
  {
    name: "connection reset without an answer: retried",
    fault: { kind: "reset", times: 2 },
    statuses: [0, 0, 204],
    delivered: true,
    metrics: [
      ["log_shipper_retries_total", { reason: "network" }, 2],
      ["log_shipper_sent_lines_total", {}, N],
    ],
  },
  {
    name: "slow answer past LOKI_TIMEOUT_MS: retried",
    fault: { kind: "slow", delayMs: 1500, times: 1 },
    opts: { timeoutMs: 300 },
    statuses: [0, 204],
    delivered: true,
    metrics: [["log_shipper_retries_total", { reason: "timeout" }, 1]],
  },
  {
    name: "slow answer within the timeout: no retry",
    fault: { kind: "slow", delayMs: 200, times: 1 },
    opts: { timeoutMs: 5000 },
    statuses: [204],
    delivered: true,
    metrics: [["log_shipper_retries_total", {}, 0]],
  },
];

describe("Loki client outcomes", () => {
  it.each(cases)("$name", async (c) => {
    if (c.fault) loki.setFault(c.fault);
    const h = harness(loki, c.opts);
    h.pipeline.start();
    const end = h.write(file, lines("l", N));
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();

    expect(loki.requests.map((r) => r.status)).toEqual(c.statuses);
    expect(loki.entries.map((e) => e.line)).toEqual(c.delivered ? lines("l", N) : []);
    // Acknowledged in both cases: delivered, or dropped for good (must not block commits).
    expect(h.acks).toEqual([{ fileId: file.id, offset: end }]);
    expect(h.pipeline.pendingBytes).toBe(0);
    for (const [name, labels, value] of c.metrics) {
      expect([name, labels, await metric(h.registry, name, labels)]).toEqual([name, labels, value]);
    }
    if (c.log) expect(h.logs).toContainEqual(expect.objectContaining({ msg: c.log.msg, ...c.log.fields }));
  });

  it("honours Retry-After (seconds) on 429", async () => {
    loki.setFault({ kind: "status", status: 429, retryAfter: "1", times: 1 });
    const times: number[] = [];
    const h = harness(loki, { retryMinMs: 10, retryMaxMs: 5000 });
    h.pipeline.start();
    h.write(file, lines("r", 5));
    const t0 = Date.now();
    // Record when each request arrives.
    const poll = setInterval(() => {
      while (times.length < loki.requests.length) times.push(Date.now() - t0);
    }, 5);
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    clearInterval(poll);
    while (times.length < loki.requests.length) times.push(Date.now() - t0);
    await h.pipeline.close();
    expect(loki.requests.map((r) => r.status)).toEqual([429, 204]);
    // Backoff alone would have waited ~10 ms; Retry-After asked for a second.
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(900);
    expect(h.logs).toContainEqual(
      expect.objectContaining({
        msg: "push to Loki failed; retrying",
        status: 429,
        retryAfterMs: 1000,
        delayMs: 1000,
      }),
    );
    expect(await metric(h.registry, "log_shipper_retries_total", { reason: "http_429" })).toBe(1);
    expect(loki.entries).toHaveLength(5);
  });

  it("honours a Retry-After longer than RETRY_MAX_MS in full (RETRY_MAX_MS bounds only backoff)", async () => {
    loki.setFault({ kind: "status", status: 503, retryAfter: "2", times: 1 });
    const h = harness(loki, { retryMinMs: 10, retryMaxMs: 100 });
    h.pipeline.start();
    h.write(file, lines("ra", 3));
    const t0 = Date.now();
    await until(() => loki.requests.length >= 1, "the first request");
    const first = Date.now() - t0;
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    const second = Date.now() - t0;
    await h.pipeline.close();
    expect(loki.requests.map((r) => r.status)).toEqual([503, 204]);
    // Clamped to RETRY_MAX_MS it would have come back after 100 ms.
    expect(second - first).toBeGreaterThanOrEqual(1900);
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: "push to Loki failed; retrying", retryAfterMs: 2000, delayMs: 2000 }),
    );
  });

  it("sends the tenant header and basic auth", async () => {
    await loki.close();
    const auth = `Basic ${Buffer.from("user:s3cret").toString("base64")}`;
    loki = await startFakeLoki({ requireTenant: "team-a", requireAuth: auth });
    // Secret files end with a newline that is not part of the password.
    const h = harness(loki, { tenantId: "team-a", username: "user", password: "s3cret\n" });
    h.pipeline.start();
    h.write(file, lines("t", 3));
    expect(await h.pipeline.drain(Date.now() + 10_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries).toHaveLength(3);
    expect(loki.requests[0]?.headers["x-scope-orgid"]).toBe("team-a");
    expect(loki.requests[0]?.headers.authorization).toBe(auth);
    expect(loki.requests[0]?.headers["content-type"]).toBe("application/x-protobuf");
  });

  it("follows a rotated bearer token file: 401s are retried, the new token is picked up, nothing lost", async () => {
    await loki.close();
    loki = await startFakeLoki({ requireAuth: "Bearer tok-2" });
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "tok-1\n"); // about to expire: Loki already wants the next one
    const token = new FileSecret("LOKI_BEARER_TOKEN_FILE", tokenFile);
    const h = harness(loki, { bearerToken: token, retryMinMs: 10, retryMaxMs: 50 });
    h.pipeline.start();
    const end = h.write(file, lines("b", 4));
    await until(() => loki.requests.filter((r) => r.status === 401).length >= 3, "401 answers");
    expect(h.acks).toEqual([]); // refused batches are not committed
    writeFileSync(tokenFile, "tok-2\n"); // the kubelet rotates the token
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries.map((e) => e.line)).toEqual(lines("b", 4));
    expect(loki.requests.at(-1)?.headers.authorization).toBe("Bearer tok-2");
    expect(h.acks).toEqual([{ fileId: file.id, offset: end }]);
    expect(await metric(h.registry, "log_shipper_dropped_lines_total")).toBe(0);
    // One loud line for the outage (rate-limited), naming the cause but never the token.
    const errors = h.logs.filter((l) => l.msg === "push to Loki failed; retrying");
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeLessThan(loki.requests.length - 1);
    expect(errors[0]).toMatchObject({
      level: 50,
      status: 401,
      hint: expect.stringMatching(/LOKI_BEARER_TOKEN_FILE/),
    });
    expect(JSON.stringify(h.logs)).not.toMatch(/tok-[12]/);
  });

  it("follows a rewritten LOKI_PASSWORD_FILE for basic auth", async () => {
    await loki.close();
    loki = await startFakeLoki({ requireAuth: `Basic ${Buffer.from("user:new-pw").toString("base64")}` });
    const dir = mkdtempSync(join(tmpdir(), "pw-"));
    const pwFile = join(dir, "password");
    writeFileSync(pwFile, "old-pw");
    const h = harness(loki, {
      username: "user",
      password: new FileSecret("LOKI_PASSWORD_FILE", pwFile),
      retryMinMs: 10,
      retryMaxMs: 50,
    });
    h.pipeline.start();
    h.write(file, lines("p", 2));
    await until(() => loki.requests.some((r) => r.status === 401), "a 401");
    writeFileSync(pwFile, "new-pw\n");
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries.map((e) => e.line)).toEqual(lines("p", 2));
  });

  it.each(["gzip", "none"] as const)("JSON encoding (%s) arrives intact", async (compression) => {
    const h = harness(loki, { encoding: "json", compression });
    h.pipeline.start();
    h.write(file, [...lines("j", 3), 'odd "quotes" \\ and ünïcödé']);
    expect(await h.pipeline.drain(Date.now() + 10_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.requests[0]).toMatchObject({ encoding: "json", status: 204 });
    expect(loki.requests[0]?.contentEncoding).toBe(compression === "gzip" ? "gzip" : undefined);
    expect(loki.entries.map((e) => e.line)).toEqual([...lines("j", 3), 'odd "quotes" \\ and ünïcödé']);
    expect(loki.entries[0]?.labels).toEqual({ job: "test", filename: "/shared/logs/app.log", level: "info" });
    expect(loki.entries[0]?.tsNs).toBe(1_700_000_000_000_000_000n);
  });

  it("LOKI_CA_FILE: trusts a Loki certificate signed by the extra CA (and only then)", async () => {
    await loki.close();
    loki = await startFakeLoki({ tls: { cert: TEST_SERVER_CERT_PEM, key: TEST_SERVER_KEY_PEM } });
    expect(loki.url.startsWith("https://127.0.0.1:")).toBe(true);

    // Without the CA: the TLS failure is a network error, retried (never a drop).
    const untrusted = harness(loki, { retryMinMs: 20, retryMaxMs: 40 });
    untrusted.pipeline.start();
    untrusted.write(file, lines("tls", 2));
    expect(await untrusted.pipeline.drain(Date.now() + 500)).toBe(false);
    await untrusted.pipeline.close();
    expect(
      await metric(untrusted.registry, "log_shipper_retries_total", { reason: "network" }),
    ).toBeGreaterThan(0);
    expect(untrusted.logs).toContainEqual(
      expect.objectContaining({
        msg: "push to Loki failed; retrying",
        lokiMessage: expect.stringMatching(/certificate/i),
      }),
    );
    expect(loki.entries).toEqual([]);

    // With the CA file (added to, not replacing, the default trust): delivered.
    const caFile = join(mkdtempSync(join(tmpdir(), "loki-ca-")), "ca.pem");
    writeFileSync(caFile, TEST_CA_PEM);
    const trusted = harness(loki, { caFile });
    trusted.pipeline.start();
    trusted.write(file, lines("tls", 2));
    expect(await trusted.pipeline.drain(Date.now() + 10_000)).toBe(true);
    await trusted.pipeline.close();
    expect(loki.entries.map((e) => e.line)).toEqual(lines("tls", 2));
  });

  it("a bare base URL gets the push path", async () => {
    const h = harness(undefined, { endpoint: new URL(loki.url) });
    h.pipeline.start();
    h.write(file, lines("u", 1));
    expect(await h.pipeline.drain(Date.now() + 10_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries).toHaveLength(1);
    expect(pushUrl(new URL("http://loki:3100")).href).toBe("http://loki:3100/loki/api/v1/push");
    expect(pushUrl(new URL("http://gw/custom/push")).href).toBe("http://gw/custom/push");
  });

  it("classifies statuses", () => {
    expect([400, 405, 409, 413, 415, 422].every(isPermanentStatus)).toBe(true);
    expect([401, 403, 404, 408, 429, 500, 502, 503, 504, 200, 302].some(isPermanentStatus)).toBe(false);
  });
});

describe("recheckCredentials (a 401/403 from any destination)", () => {
  it("looks at each credential file again and names those it could not re-read, never their content", () => {
    const dir = mkdtempSync(join(tmpdir(), "cred-"));
    const good = join(dir, "token");
    const gone = join(dir, "password");
    writeFileSync(good, "tok\n");
    writeFileSync(gone, "secret-pw\n");
    let now = 0;
    const opts = { checkIntervalMs: 1000, now: () => now };
    const token = new FileSecret("LOKI_BEARER_TOKEN_FILE", good, opts);
    const password = new FileSecret("LOKI_PASSWORD_FILE", gone, opts);
    const hint = "check the credentials";
    expect(recheckCredentials(hint, [token, password, "plain", undefined])).toBe(hint);
    rmSync(gone);
    now = 5000;
    token.value();
    password.value(); // its last re-read fails: the last value read stays in use
    expect(password.value()).toBe("secret-pw");
    const said = recheckCredentials(hint, [token, password]);
    expect(said).toBe(`${hint} (cannot re-read LOKI_PASSWORD_FILE: ENOENT; the last value read is used)`);
    expect(said).not.toContain("secret-pw");
    // Looked at again: the next value() re-reads the file regardless of the interval.
    writeFileSync(gone, "new-pw\n");
    expect(password.value()).toBe("new-pw");
  });
});
