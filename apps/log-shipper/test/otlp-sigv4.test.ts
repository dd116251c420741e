// SigV4 (OTLP_AWS_REGION): requests signed with AWS's own packages and credentials from the
// default chain (here: the environment) must pass the fake receiver's verification, which
// recomputes the signature from the SigV4 specification with node:crypto — independent of the
// signer. The verifier itself is checked against AWS's published "get-vanilla" test vector, and
// with wrong credentials (403 → retried with a hint, not dropped).
import { createHash } from "node:crypto";
import { parseEnv } from "@sidecar/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createOtlpSink, type OtlpSink, otlpSchema } from "../src/sinks/otlp/otlp.js";
import { type FakeOtlp, type SigV4Check, startFakeOtlp, verifySigV4 } from "./support/fake-otlp.js";
import { silentLogger } from "./support/logger.js";
import { batch } from "./support/otlp-batch.js";

const CREDS: SigV4Check = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  region: "eu-west-1",
  service: "logs",
};

const ENV_KEYS = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_EC2_METADATA_DISABLED",
  "AWS_PROFILE",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];
let saved: Record<string, string | undefined> = {};
let otlp: FakeOtlp;
let sinks: OtlpSink[] = [];

beforeEach(async () => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  // Never let the chain fall through to instance metadata (a non-loopback address).
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  process.env.AWS_CONFIG_FILE = "/nonexistent/aws-config";
  process.env.AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/aws-credentials";
  otlp = await startFakeOtlp({ sigv4: CREDS });
});

afterEach(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  sinks = [];
  await otlp.close();
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

function awsSink(extra: Record<string, string> = {}): OtlpSink {
  const cfg = parseEnv(otlpSchema, {
    OTLP_ENDPOINT: otlp.url,
    OTLP_AWS_REGION: CREDS.region,
    OTLP_HEADERS: "x-aws-log-group=/eks/shop,x-aws-log-stream=app",
    ...extra,
  });
  const s = createOtlpSink(cfg, {
    staticLabels: { job: "sample-app" },
    podLabels: {},
    timeoutMs: 10_000,
    logger: silentLogger(),
  });
  if (s === undefined) throw new Error("no sink");
  sinks.push(s);
  return s;
}

const LINES = ["signed one", "signed two — ünïcödé"];

describe("SigV4 with the default credential chain", () => {
  for (const encoding of ["protobuf", "json"] as const) {
    it(`signs every request for service logs; the receiver's own computation agrees (${encoding})`, async () => {
      process.env.AWS_ACCESS_KEY_ID = CREDS.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = CREDS.secretAccessKey;
      const s = awsSink({ OTLP_ENCODING: encoding });
      const body = s.encode(batch(LINES));
      expect(await s.send(body, new AbortController().signal)).toEqual({ kind: "success", status: 200 });
      expect(await s.send(s.encode(batch(["again"])), new AbortController().signal)).toEqual({
        kind: "success",
        status: 200,
      });
      expect(otlp.records.map((r) => r.body)).toEqual([...LINES, "again"]);
      const h = otlp.requests[0]?.headers ?? {};
      // The compressed body is what is hashed and signed.
      expect(h["content-encoding"]).toBe("gzip");
      expect(h["x-amz-content-sha256"]).toBe(createHash("sha256").update(body.body).digest("hex"));
      expect(String(h.authorization)).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/logs\/aws4_request, SignedHeaders=content-encoding;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-aws-log-group;x-aws-log-stream, Signature=[0-9a-f]{64}$/,
      );
    });
  }

  it("a session token (IRSA, Pod Identity) is sent and signed", async () => {
    await otlp.close();
    otlp = await startFakeOtlp({ sigv4: { ...CREDS, sessionToken: "FwoGZXIvYXdzEXAMPLE" } });
    process.env.AWS_ACCESS_KEY_ID = CREDS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = CREDS.secretAccessKey;
    process.env.AWS_SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE";
    const s = awsSink();
    expect(await s.send(s.encode(batch(LINES)), new AbortController().signal)).toEqual({
      kind: "success",
      status: 200,
    });
    expect(otlp.requests[0]?.headers["x-amz-security-token"]).toBe("FwoGZXIvYXdzEXAMPLE");
  });

  it("a wrong secret: 403 from the verifier, retried with a hint (the lines are kept)", async () => {
    process.env.AWS_ACCESS_KEY_ID = CREDS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = "not-the-secret";
    const s = awsSink();
    const res = await s.send(s.encode(batch(LINES)), new AbortController().signal);
    expect(res).toMatchObject({
      kind: "retryable",
      status: 403,
      message: "The request signature we calculated does not match the signature you provided.",
      hint: expect.stringContaining("logs:PutLogEvents"),
    });
    expect(otlp.records).toEqual([]);
  });
});

describe("the receiver's SigV4 verification", () => {
  it("accepts AWS's get-vanilla test vector and refuses it altered", () => {
    // From AWS's Signature Version 4 test suite (get-vanilla).
    const req = {
      method: "GET",
      url: "/",
      headers: {
        host: "example.amazonaws.com",
        "x-amz-date": "20150830T123600Z",
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      },
    };
    const creds = { ...CREDS, region: "us-east-1", service: "service" };
    const at = Date.UTC(2015, 7, 30, 12, 36, 0);
    expect(verifySigV4(req, Buffer.alloc(0), creds, at, ["host", "x-amz-date"])).toBeUndefined();
    const altered = { ...req, headers: { ...req.headers, host: "example2.amazonaws.com" } };
    expect(verifySigV4(altered, Buffer.alloc(0), creds, at, ["host", "x-amz-date"])).toMatch(
      /does not match/,
    );
    expect(
      verifySigV4(req, Buffer.alloc(0), { ...creds, secretAccessKey: "x" }, at, ["host", "x-amz-date"]),
    ).toMatch(/does not match/);
  });
});
