// The OTLP sink against the fake OTLP receiver over loopback: what arrives (decoded with the
// official definitions), and how every kind of answer is classified — success, partialSuccess,
// the spec's retryable statuses with Retry-After, 401/403/404 retried with a hint, other 4xx/5xx
// dropped with the google.rpc.Status message, network errors and timeouts — plus headers, bearer
// token rotation and an extra CA.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEnv } from "@sidecar/shared";
import { afterEach, describe, expect, it } from "vitest";
import { FileSecret } from "../src/secret-file.js";
import { createOtlpSink, type OtlpSink, otlpSchema } from "../src/sinks/otlp/otlp.js";
import { logsUrl, OtlpClient } from "../src/sinks/otlp/otlp-client.js";
import { type FakeOtlp, type FakeOtlpOptions, startFakeOtlp } from "./support/fake-otlp.js";
import { silentLogger } from "./support/logger.js";
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from "./support/loki-tls-fixture.js";
import { batch } from "./support/otlp-batch.js";

const LINES = ["one", "two poison", "three", "vier — ünïcödé"];

let servers: FakeOtlp[] = [];
let sinks: OtlpSink[] = [];
afterEach(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  sinks = [];
});

async function receiver(opts: FakeOtlpOptions = {}): Promise<FakeOtlp> {
  const r = await startFakeOtlp(opts);
  servers.push(r);
  return r;
}

function sink(env: Record<string, string>, timeoutMs = 10_000): OtlpSink {
  const cfg = parseEnv(otlpSchema, env);
  const s = createOtlpSink(cfg, {
    staticLabels: { job: "sample-app" },
    podLabels: {},
    timeoutMs,
    logger: silentLogger(),
  });
  if (s === undefined) throw new Error("no sink");
  sinks.push(s);
  return s;
}

const signal = () => new AbortController().signal;

describe("OTLP sink: delivery and classification", () => {
  for (const encoding of ["protobuf", "json"] as const) {
    for (const compression of ["gzip", "none"] as const) {
      it(`200: every record arrives once (${encoding}, ${compression})`, async () => {
        const r = await receiver();
        const s = sink({ OTLP_ENDPOINT: r.url, OTLP_ENCODING: encoding, OTLP_COMPRESSION: compression });
        const res = await s.send(s.encode(batch(LINES)), signal());
        expect(res).toEqual({ kind: "success", status: 200 });
        expect(r.records.map((x) => x.body)).toEqual(LINES);
        expect(r.requests[0]?.encoding).toBe(encoding);
        expect(r.requests[0]?.contentEncoding).toBe(compression === "gzip" ? "gzip" : undefined);
      });

      it(`partialSuccess: the refused records are dropped with the receiver's message, no retry (${encoding}, ${compression})`, async () => {
        const r = await receiver();
        r.setReject("poison", "1 log record too old");
        const s = sink({ OTLP_ENDPOINT: r.logsUrl, OTLP_ENCODING: encoding, OTLP_COMPRESSION: compression });
        const res = await s.send(s.encode(batch(LINES)), signal());
        expect(res).toEqual({
          kind: "partial",
          status: 200,
          dropped: 1,
          reason: "rejected",
          message: "1 log record too old",
        });
        expect(r.records.map((x) => x.body)).toEqual(["one", "three", "vier — ünïcödé"]);
      });
    }
  }

  interface Case {
    name: string;
    status: number;
    retryAfter?: string;
    want: Record<string, unknown>;
  }
  const cases: Case[] = [
    {
      name: "429 with Retry-After",
      status: 429,
      retryAfter: "7",
      want: { kind: "retryable", retryAfterMs: 7000 },
    },
    { name: "502", status: 502, want: { kind: "retryable" } },
    {
      name: "503 with Retry-After",
      status: 503,
      retryAfter: "2",
      want: { kind: "retryable", retryAfterMs: 2000 },
    },
    { name: "504", status: 504, want: { kind: "retryable" } },
    {
      name: "401 (credentials)",
      status: 401,
      want: { kind: "retryable", hint: expect.stringContaining("OTLP_BEARER_TOKEN_FILE") },
    },
    {
      name: "403 (permission)",
      status: 403,
      want: { kind: "retryable", hint: expect.stringContaining("logs:PutLogEvents") },
    },
    {
      name: "404 (URL)",
      status: 404,
      want: { kind: "retryable", hint: expect.stringContaining("OTLP_ENDPOINT") },
    },
    { name: "400", status: 400, want: { kind: "failure" } },
    { name: "413", status: 413, want: { kind: "failure" } },
    { name: "500 (not retryable in OTLP)", status: 500, want: { kind: "failure" } },
    { name: "501", status: 501, want: { kind: "failure" } },
  ];
  for (const encoding of ["protobuf", "json"] as const) {
    for (const c of cases) {
      it(`${c.name} (${encoding}): ${c.want.kind}, message from the google.rpc.Status body`, async () => {
        const r = await receiver();
        r.setFault({
          kind: "status",
          status: c.status,
          message: `injected ${c.status} — ünïcödé`,
          ...(c.retryAfter !== undefined ? { retryAfter: c.retryAfter } : {}),
          times: 1,
        });
        const s = sink({ OTLP_ENDPOINT: r.url, OTLP_ENCODING: encoding });
        const res = await s.send(s.encode(batch(LINES)), signal());
        expect(res).toMatchObject({
          ...c.want,
          status: c.status,
          reason: `http_${c.status}`,
          message: `injected ${c.status} — ünïcödé`,
        });
        if (c.retryAfter === undefined) expect(res).not.toHaveProperty("retryAfterMs");
        expect(r.records).toEqual([]);
        // The fault was for one request: the same body goes through next time.
        const again = await s.send(s.encode(batch(LINES)), signal());
        expect(again.kind).toBe("success");
        expect(r.records.map((x) => x.body)).toEqual(LINES);
      });
    }
  }

  it("400 for a body the receiver cannot decode: dropped with the receiver's decode error", async () => {
    const r = await receiver();
    const s = sink({ OTLP_ENDPOINT: r.url });
    const res = await s.send(
      { body: Buffer.from([0x0a, 0xff]), contentType: "application/x-protobuf" },
      signal(),
    );
    expect(res).toMatchObject({
      kind: "failure",
      status: 400,
      message: expect.stringContaining("failed to decode request"),
    });
  });

  it("a connection reset is retryable (network)", async () => {
    const r = await receiver();
    r.setFault({ kind: "reset", times: 1 });
    const s = sink({ OTLP_ENDPOINT: r.url });
    const res = await s.send(s.encode(batch(LINES)), signal());
    expect(res).toMatchObject({ kind: "retryable", reason: "network" });
  });

  it("no answer within OTLP_TIMEOUT_MS is retryable (timeout), and nothing is stored", async () => {
    const r = await receiver();
    r.setFault({ kind: "slow", delayMs: 5000, times: 1 });
    const s = sink({ OTLP_ENDPOINT: r.url, OTLP_TIMEOUT_MS: "200" });
    const res = await s.send(s.encode(batch(LINES)), signal());
    expect(res).toMatchObject({ kind: "retryable", reason: "timeout" });
    expect(r.records).toEqual([]);
  });

  it("an aborted signal is retryable without a request", async () => {
    const r = await receiver();
    const s = sink({ OTLP_ENDPOINT: r.url });
    const ac = new AbortController();
    ac.abort();
    expect(await s.send(s.encode(batch(LINES)), ac.signal)).toEqual({ kind: "retryable", reason: "aborted" });
    expect(r.requests).toEqual([]);
  });
});

describe("OTLP sink: headers, credentials, TLS", () => {
  it("sends OTLP_HEADERS (percent-decoded) on every request", async () => {
    const r = await receiver();
    const s = sink({
      OTLP_ENDPOINT: r.url,
      OTLP_HEADERS: "x-aws-log-group=/eks/shop%2Cweb, X-Aws-Log-Stream=app",
    });
    expect((await s.send(s.encode(batch(LINES)), signal())).kind).toBe("success");
    expect(r.requests[0]?.headers["x-aws-log-group"]).toBe("/eks/shop,web");
    expect(r.requests[0]?.headers["x-aws-log-stream"]).toBe("app");
  });

  it("bearer token: a rotated token file is picked up after the 401 (nothing dropped)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "otlp-token-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "old-token\n");
    const r = await receiver({ requireAuth: "Bearer new-token" });
    // A long check interval: only the 401's recheck can make the client read the file again.
    const token = new FileSecret("OTLP_BEARER_TOKEN_FILE", tokenFile, { checkIntervalMs: 3_600_000 });
    const client = new OtlpClient({ endpoint: new URL(r.url), bearerToken: token, timeoutMs: 10_000 });
    try {
      const s = sink({ OTLP_ENDPOINT: r.url });
      const body = s.encode(batch(LINES));
      writeFileSync(tokenFile, "new-token\n"); // rotated under the running client
      const first = await client.send(body, signal());
      expect(first).toMatchObject({
        kind: "retryable",
        status: 401,
        hint: expect.stringContaining("OTLP_BEARER_TOKEN_FILE"),
      });
      expect(r.requests[0]?.headers.authorization).toBe("Bearer old-token");
      const second = await client.send(body, signal());
      expect(second).toEqual({ kind: "success", status: 200 });
      expect(r.requests[1]?.headers.authorization).toBe("Bearer new-token");
      expect(r.records.map((x) => x.body)).toEqual(LINES);
    } finally {
      await client.close();
    }
  });

  it("OTLP_CA_FILE is added to the default trust: HTTPS to a server signed by that CA works, without it fails", async () => {
    const r = await receiver({ tls: { cert: TEST_SERVER_CERT_PEM, key: TEST_SERVER_KEY_PEM } });
    const dir = mkdtempSync(join(tmpdir(), "otlp-ca-"));
    const caFile = join(dir, "ca.pem");
    writeFileSync(caFile, TEST_CA_PEM);
    const trusted = sink({ OTLP_ENDPOINT: r.url, OTLP_CA_FILE: caFile });
    expect(await trusted.send(trusted.encode(batch(LINES)), signal())).toEqual({
      kind: "success",
      status: 200,
    });
    const untrusted = sink({ OTLP_ENDPOINT: r.url });
    const res = await untrusted.send(untrusted.encode(batch(LINES)), signal());
    expect(res).toMatchObject({ kind: "retryable", reason: "network" });
    expect(r.records.map((x) => x.body)).toEqual(LINES);
  });

  it("a bare base URL gets /v1/logs; a URL with a path is kept", () => {
    expect(logsUrl(new URL("http://collector:4318")).href).toBe("http://collector:4318/v1/logs");
    expect(logsUrl(new URL("http://gw/otlp/v1/logs")).href).toBe("http://gw/otlp/v1/logs");
  });
});
