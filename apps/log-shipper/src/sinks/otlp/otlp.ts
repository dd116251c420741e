// OTLP/HTTP logs as a destination (OpenTelemetry collector, Loki 3's /otlp, CloudWatch Logs,
// Elastic): its environment variables, their cross-checks, the Sink and its start-up description —
// the module shape of sink.ts, for config.ts and app.ts to wire.
//
// Enabled by OTLP_ENDPOINT. Variables: OTLP_ENCODING, OTLP_COMPRESSION, OTLP_HEADERS,
// OTLP_BEARER_TOKEN_FILE, OTLP_CA_FILE, OTLP_TIMEOUT_MS, OTLP_AWS_REGION (README "OTLP").
import {
  ConfigError,
  type ConfigOf,
  type ConfigProblem,
  type Env,
  type Field,
  oneOf,
  parseEnv,
  url,
} from "@sidecar/shared";
import { MAX_ENCODABLE_SEC } from "../../batcher.js";
import { caFile, credentialFile } from "../../config-fields.js";
import type { BatchStream, EncodedBody } from "../loki/encode-protobuf.js";
import type { Sink, SinkContext, SinkResult } from "../sink.js";
import { OtlpJsonEncoder } from "./encode-json.js";
import { OtlpProtobufEncoder } from "./encode-protobuf.js";
import { LOGS_PATH, OtlpClient } from "./otlp-client.js";
import { loadSigV4Signer, type RequestSigner } from "./sigv4.js";

/** An http(s) URL; a URL without a path gets `/v1/logs` appended. */
function otlpEndpoint(name: string): Field<URL | undefined> {
  const base = url(name);
  return {
    ...base,
    expected: `an http:// or https:// URL (a bare base URL gets ${LOGS_PATH} appended)`,
    parse: (raw, env) => {
      const u = base.parse(raw, env);
      if (u && (u.pathname === "" || u.pathname === "/")) u.pathname = LOGS_PATH;
      return u;
    },
  };
}

/** Header names the client sets itself (and SigV4 signs): not overridable from OTLP_HEADERS. */
const RESERVED_HEADERS = new Set([
  "content-type",
  "content-encoding",
  "content-length",
  "host",
  "transfer-encoding",
]);
/** RFC 9110 token: the characters a header name may have. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `name=value,name=value` request headers. Values are percent-decoded, as in OpenTelemetry's
 * OTEL_EXPORTER_OTLP_HEADERS (a comma in a value is `%2C`); names are lower-cased.
 */
function headerList(name: string): Field<Readonly<Record<string, string>>> {
  return {
    name,
    expected:
      "comma-separated name=value HTTP headers (values percent-decoded, e.g. x-aws-log-group=/eks/app)",
    secret: true, // may carry an API key
    default: () => Object.freeze({}),
    parse: (raw) => {
      const out: Record<string, string> = {};
      for (const part of raw.split(",")) {
        const item = part.trim();
        if (item === "") continue;
        const eq = item.indexOf("=");
        if (eq <= 0) throw new Error(`an item is not name=value`);
        const key = item.slice(0, eq).trim().toLowerCase();
        if (!HEADER_NAME.test(key)) throw new Error(`"${key}" is not a valid header name`);
        if (RESERVED_HEADERS.has(key)) throw new Error(`"${key}" is set by the shipper itself`);
        let value: string;
        try {
          value = decodeURIComponent(item.slice(eq + 1).trim());
        } catch {
          throw new Error(`the value of "${key}" is not valid percent-encoding`);
        }
        if (/[\r\n\0]/.test(value)) throw new Error(`the value of "${key}" has a line break or NUL`);
        out[key] = value;
      }
      return Object.freeze(out);
    },
  };
}

/** An optional integer in [min, max]; unset = the shared default (SinkContext.timeoutMs). */
function optionalInt(name: string, min: number, max: number): Field<number | undefined> {
  return {
    name,
    expected: `an integer from ${min} to ${max}`,
    default: () => undefined,
    parse: (raw) => {
      if (!/^\d+$/.test(raw.trim())) throw new Error("not an integer");
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error("out of range");
      return n;
    },
  };
}

/** An AWS region name such as `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`. */
function awsRegion(name: string): Field<string | undefined> {
  return {
    name,
    expected: "an AWS region such as us-east-1",
    default: () => undefined,
    parse: (raw) => {
      const v = raw.trim();
      if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(v)) throw new Error("not a region name");
      return v;
    },
  };
}

export const otlpSchema = {
  otlpEndpoint: otlpEndpoint("OTLP_ENDPOINT"),
  otlpEncoding: oneOf("OTLP_ENCODING", ["protobuf", "json"] as const, { default: "protobuf" }),
  otlpCompression: oneOf("OTLP_COMPRESSION", ["gzip", "none"] as const, { default: "gzip" }),
  otlpHeaders: headerList("OTLP_HEADERS"),
  otlpBearerToken: credentialFile("OTLP_BEARER_TOKEN_FILE"),
  otlpCa: caFile("OTLP_CA_FILE"),
  otlpTimeoutMs: optionalInt("OTLP_TIMEOUT_MS", 1, 600_000),
  otlpAwsRegion: awsRegion("OTLP_AWS_REGION"),
  // block: reading pauses while OTLP's unacknowledged bytes are at MAX_BUFFER_BYTES (lossless);
  // drop: best-effort, what OTLP cannot hold is dropped for it alone (other destinations go on).
  otlpWhenFull: oneOf("OTLP_WHEN_FULL", ["block", "drop"] as const, { default: "block" }),
};

export type OtlpConfig = ConfigOf<typeof otlpSchema>;

/** Parse the OTLP variables and cross-check them: one ConfigError naming every bad one. */
export function loadOtlpConfig(env: Env): OtlpConfig {
  const cfg = parseEnv(otlpSchema, env);
  const problems = otlpProblems(cfg, env);
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

/** Cross-checks between the OTLP variables (exit 2 at start). */
export function otlpProblems(cfg: OtlpConfig, env: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (cfg.otlpEndpoint === undefined) {
    if (cfg.otlpAwsRegion !== undefined) {
      problems.push({
        name: "OTLP_ENDPOINT",
        value: undefined,
        expected: `a URL whenever OTLP_AWS_REGION is set (CloudWatch Logs: https://logs.${cfg.otlpAwsRegion}.amazonaws.com/v1/logs)`,
      });
    }
    return problems;
  }
  if (cfg.otlpBearerToken !== undefined && cfg.otlpAwsRegion !== undefined) {
    problems.push({
      name: "OTLP_BEARER_TOKEN_FILE",
      value: env.OTLP_BEARER_TOKEN_FILE,
      expected: "unset when OTLP_AWS_REGION (SigV4) is set — choose one",
    });
  }
  if (
    cfg.otlpHeaders.authorization !== undefined &&
    (cfg.otlpBearerToken !== undefined || cfg.otlpAwsRegion !== undefined)
  ) {
    problems.push({
      name: "OTLP_HEADERS",
      value: "<redacted>",
      expected: "no authorization header when OTLP_BEARER_TOKEN_FILE or OTLP_AWS_REGION is set — choose one",
    });
  }
  return problems;
}

/** OTLP as a Sink: the encoder chosen by OTLP_ENCODING and the OTLP/HTTP client. */
export class OtlpSink implements Sink {
  readonly name = "otlp" as const;
  readonly title = "OTLP";
  /** Times are nanosecond integers; receivers commonly read them as int64 (ends in 2262). */
  readonly maxOwnSec = MAX_ENCODABLE_SEC.json;
  private readonly encoder: OtlpProtobufEncoder | OtlpJsonEncoder;

  constructor(
    readonly client: OtlpClient,
    encoder: OtlpProtobufEncoder | OtlpJsonEncoder,
  ) {
    this.encoder = encoder;
  }

  encode(streams: readonly BatchStream[]): EncodedBody {
    return this.encoder.encode(streams);
  }

  send(body: EncodedBody, signal: AbortSignal): Promise<SinkResult> {
    return this.client.send(body, signal);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

export interface OtlpSinkDeps {
  /** Replaces the SigV4 signer loaded from AWS's packages (tests). */
  signer?: Promise<RequestSigner>;
  /** The observed-time clock (tests). */
  now?: () => number;
}

/** The OTLP sink, or undefined when OTLP_ENDPOINT is not set. */
export function createOtlpSink(
  cfg: OtlpConfig,
  ctx: SinkContext,
  deps: OtlpSinkDeps = {},
): OtlpSink | undefined {
  if (cfg.otlpEndpoint === undefined) return undefined;
  const encOpts = {
    staticLabels: ctx.staticLabels,
    podLabels: ctx.podLabels,
    compression: cfg.otlpCompression,
    ...(deps.now !== undefined ? { now: deps.now } : {}),
  };
  const encoder =
    cfg.otlpEncoding === "json" ? new OtlpJsonEncoder(encOpts) : new OtlpProtobufEncoder(encOpts);
  // Start loading the AWS packages now, so the first send does not wait for them.
  const signer =
    deps.signer ?? (cfg.otlpAwsRegion !== undefined ? loadSigV4Signer(cfg.otlpAwsRegion) : undefined);
  const client = new OtlpClient({
    endpoint: cfg.otlpEndpoint,
    headers: cfg.otlpHeaders,
    ...(cfg.otlpBearerToken !== undefined ? { bearerToken: cfg.otlpBearerToken } : {}),
    ...(cfg.otlpCa !== undefined ? { ca: cfg.otlpCa } : {}),
    timeoutMs: cfg.otlpTimeoutMs ?? ctx.timeoutMs,
    ...(signer !== undefined ? { signer } : {}),
  });
  return new OtlpSink(client, encoder);
}

/** What the start-up log shows: no secrets, header names only. */
export function describeOtlp(cfg: OtlpConfig): Record<string, unknown> | undefined {
  if (cfg.otlpEndpoint === undefined) return undefined;
  const u = new URL(cfg.otlpEndpoint.href);
  if (u.password) u.password = "***";
  return {
    endpoint: u.href,
    encoding: cfg.otlpEncoding,
    compression: cfg.otlpCompression,
    headers: Object.keys(cfg.otlpHeaders),
    auth:
      cfg.otlpAwsRegion !== undefined
        ? `sigv4 (${cfg.otlpAwsRegion}, service logs)`
        : cfg.otlpBearerToken
          ? "bearer"
          : "none",
    extraCa: cfg.otlpCa !== undefined,
    ...(cfg.otlpTimeoutMs !== undefined ? { timeoutMs: cfg.otlpTimeoutMs } : {}),
    whenFull: cfg.otlpWhenFull,
  };
}
