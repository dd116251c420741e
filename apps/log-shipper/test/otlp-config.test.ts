// OTLP configuration: defaults, the /v1/logs path, and one ConfigError naming each bad variable,
// its value and what was expected (what main.ts turns into exit 2); no secret in the description.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, parseEnv } from "@sidecar/shared";
import { describe, expect, it } from "vitest";
import {
  createOtlpSink,
  describeOtlp,
  type OtlpConfig,
  otlpProblems,
  otlpSchema,
} from "../src/sinks/otlp/otlp.js";
import { silentLogger } from "./support/logger.js";
import { TEST_CA_PEM } from "./support/loki-tls-fixture.js";

const dir = mkdtempSync(join(tmpdir(), "otlp-config-"));
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, "s3cr3t-token\n");
const caFile = join(dir, "ca.pem");
writeFileSync(caFile, TEST_CA_PEM);
const notPem = join(dir, "not.pem");
writeFileSync(notPem, "hello\n");

/** Parse and cross-check as config.ts will: throws one ConfigError. */
function load(env: Record<string, string>): OtlpConfig {
  const cfg = parseEnv(otlpSchema, env);
  const problems = otlpProblems(cfg, env);
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

function errorOf(env: Record<string, string>): string {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("no ConfigError");
}

const ctx = { staticLabels: { job: "a" }, podLabels: {}, timeoutMs: 10_000, logger: silentLogger() };

describe("OTLP configuration", () => {
  it("unset OTLP_ENDPOINT: no sink", () => {
    const cfg = load({});
    expect(createOtlpSink(cfg, ctx)).toBeUndefined();
    expect(describeOtlp(cfg)).toBeUndefined();
  });

  it("defaults: protobuf, gzip, no headers; a bare base URL gets /v1/logs", () => {
    const cfg = load({ OTLP_ENDPOINT: "http://collector:4318" });
    expect(cfg.otlpEndpoint?.href).toBe("http://collector:4318/v1/logs");
    expect(cfg.otlpEncoding).toBe("protobuf");
    expect(cfg.otlpCompression).toBe("gzip");
    expect(cfg.otlpHeaders).toEqual({});
    expect(cfg.otlpTimeoutMs).toBeUndefined();
    expect(load({ OTLP_ENDPOINT: "https://loki:3100/otlp/v1/logs" }).otlpEndpoint?.href).toBe(
      "https://loki:3100/otlp/v1/logs",
    );
  });

  it("describes itself without secrets", () => {
    const cfg = load({
      OTLP_ENDPOINT: "https://user:pw@collector:4318",
      OTLP_BEARER_TOKEN_FILE: tokenFile,
      OTLP_HEADERS: "x-api-key=abc123",
      OTLP_CA_FILE: caFile,
    });
    const d = describeOtlp(cfg);
    expect(d).toEqual({
      endpoint: "https://user:***@collector:4318/v1/logs",
      encoding: "protobuf",
      compression: "gzip",
      headers: ["x-api-key"],
      auth: "bearer",
      extraCa: true,
      whenFull: "block",
    });
    expect(JSON.stringify(d)).not.toContain("s3cr3t");
    expect(JSON.stringify(cfg)).not.toContain("s3cr3t");
  });

  const bad: [string, Record<string, string>, string][] = [
    [
      "OTLP_ENDPOINT",
      { OTLP_ENDPOINT: "ftp://collector" },
      'OTLP_ENDPOINT="ftp://collector" (expected an http:// or https:// URL',
    ],
    [
      "OTLP_ENCODING",
      { OTLP_ENDPOINT: "http://c", OTLP_ENCODING: "xml" },
      'OTLP_ENCODING="xml" (expected one of protobuf, json',
    ],
    [
      "OTLP_COMPRESSION",
      { OTLP_ENDPOINT: "http://c", OTLP_COMPRESSION: "zstd" },
      'OTLP_COMPRESSION="zstd" (expected one of gzip, none',
    ],
    [
      "OTLP_HEADERS (no =)",
      { OTLP_ENDPOINT: "http://c", OTLP_HEADERS: "x-a" },
      'OTLP_HEADERS="<redacted>" (expected comma-separated name=value HTTP headers',
    ],
    [
      "OTLP_HEADERS (reserved)",
      { OTLP_ENDPOINT: "http://c", OTLP_HEADERS: "Content-Type=text/plain" },
      '"content-type" is set by the shipper itself',
    ],
    [
      "OTLP_HEADERS (bad name)",
      { OTLP_ENDPOINT: "http://c", OTLP_HEADERS: "x a=b" },
      '"x a" is not a valid header name',
    ],
    [
      "OTLP_HEADERS (bad %)",
      { OTLP_ENDPOINT: "http://c", OTLP_HEADERS: "x-a=%E0%A4%A" },
      "not valid percent-encoding",
    ],
    [
      "OTLP_BEARER_TOKEN_FILE",
      { OTLP_ENDPOINT: "http://c", OTLP_BEARER_TOKEN_FILE: join(dir, "missing") },
      "OTLP_BEARER_TOKEN_FILE=",
    ],
    ["OTLP_CA_FILE", { OTLP_ENDPOINT: "http://c", OTLP_CA_FILE: notPem }, "no PEM certificate in the file"],
    [
      "OTLP_TIMEOUT_MS",
      { OTLP_ENDPOINT: "http://c", OTLP_TIMEOUT_MS: "0" },
      'OTLP_TIMEOUT_MS="0" (expected an integer from 1 to 600000: out of range)',
    ],
    [
      "OTLP_AWS_REGION",
      { OTLP_ENDPOINT: "http://c", OTLP_AWS_REGION: "Mars" },
      'OTLP_AWS_REGION="Mars" (expected an AWS region such as us-east-1',
    ],
    [
      "OTLP_AWS_REGION without OTLP_ENDPOINT",
      { OTLP_AWS_REGION: "us-east-1" },
      "OTLP_ENDPOINT=unset (expected a URL whenever OTLP_AWS_REGION is set (CloudWatch Logs: https://logs.us-east-1.amazonaws.com/v1/logs)",
    ],
    [
      "bearer token and SigV4",
      { OTLP_ENDPOINT: "http://c", OTLP_AWS_REGION: "us-east-1", OTLP_BEARER_TOKEN_FILE: tokenFile },
      "OTLP_BEARER_TOKEN_FILE",
    ],
    [
      "authorization header and SigV4",
      { OTLP_ENDPOINT: "http://c", OTLP_AWS_REGION: "us-east-1", OTLP_HEADERS: "authorization=x" },
      "no authorization header when OTLP_BEARER_TOKEN_FILE or OTLP_AWS_REGION is set",
    ],
  ];
  for (const [name, env, want] of bad) {
    it(`a bad ${name} is one clear ConfigError`, () => {
      const msg = errorOf(env);
      expect(msg).toContain(want);
      expect(msg).not.toContain("s3cr3t");
    });
  }

  it("names every bad variable at once", () => {
    const msg = errorOf({ OTLP_ENDPOINT: "nope", OTLP_ENCODING: "xml", OTLP_TIMEOUT_MS: "x" });
    expect(msg).toMatch(/OTLP_ENDPOINT=.*OTLP_ENCODING=.*OTLP_TIMEOUT_MS=/);
  });

  it("OTLP_HEADERS: names lower-cased, values percent-decoded and may hold =", () => {
    const cfg = load({
      OTLP_ENDPOINT: "http://c",
      OTLP_HEADERS: "X-Aws-Log-Group=/eks/a%2Cb, x-token=a=b==",
    });
    expect(cfg.otlpHeaders).toEqual({ "x-aws-log-group": "/eks/a,b", "x-token": "a=b==" });
  });
});
