// The log shipper's configuration: every variable of the architecture's log-shipper table with its
// exact default, plus a few tuning knobs, parsed once from the environment into a frozen object.
// A bad value throws one ConfigError naming every bad variable (main.ts turns it into exit 2).
import { isAbsolute, resolve } from "node:path";
import {
  ConfigError,
  type ConfigProblem,
  type Env,
  type Field,
  int,
  LOG_LEVELS,
  labels,
  list,
  oneOf,
  optionalStr,
  parseEnv,
  str,
  url,
} from "@sidecar/shared";
import picomatch from "picomatch";
import { caFile, credentialFile } from "./config-fields.js";
import { processingProblems, processingSchema } from "./processing/config.js";
import {
  describeElasticsearch,
  elasticsearchProblems,
  elasticsearchSchema,
} from "./sinks/elasticsearch/elasticsearch.js";
import { describeOtlp, otlpProblems, otlpSchema } from "./sinks/otlp/otlp.js";

/** Loki's push path, appended to a bare base URL (`http://loki:3100` → `.../loki/api/v1/push`). */
export const LOKI_PUSH_PATH = "/loki/api/v1/push";

/** An http(s) URL; a URL without a path gets Loki's push path appended. */
function lokiEndpoint(name: string): Field<URL | undefined> {
  const base = url(name);
  return {
    ...base,
    expected: `an http:// or https:// URL (a bare base URL gets ${LOKI_PUSH_PATH} appended)`,
    parse: (raw, env) => {
      const u = base.parse(raw, env);
      if (u && (u.pathname === "" || u.pathname === "/")) u.pathname = LOKI_PUSH_PATH;
      return u;
    },
  };
}

/** Comma-separated globs; relative globs are resolved against the working directory. */
function globList(name: string, def: readonly string[], absolute: boolean): Field<readonly string[]> {
  const base = list(name, { default: def });
  return {
    ...base,
    expected: "a comma-separated list of glob patterns",
    parse: (raw, env) => {
      const items = base.parse(raw, env);
      if (items.length === 0) throw new Error("no pattern given");
      for (const g of items) {
        try {
          picomatch.makeRe(g);
        } catch {
          throw new Error(`"${g}" is not a valid glob`);
        }
      }
      return Object.freeze(absolute ? items.map((g) => (isAbsolute(g) ? g : resolve(g))) : items);
    },
  };
}

const schema = {
  lokiEndpoint: lokiEndpoint("LOKI_ENDPOINT"),
  logPaths: globList("LOG_PATHS", ["/shared/logs/*.log", "/shared/logs/*.log.*"], true),
  excludePaths: globList("EXCLUDE_PATHS", ["*.gz", "*.zip", "*.tmp"], false),
  positionsFile: str("POSITIONS_FILE", {
    default: "/var/lib/log-shipper/positions.json",
    expected: "a file path",
  }),
  staticLabels: labels("STATIC_LABELS", { default: Object.freeze({ job: "sample-app" }) }),
  batchWaitMs: int("BATCH_WAIT_MS", { default: 1000, min: 1, max: 3_600_000 }),
  batchMaxBytes: int("BATCH_MAX_BYTES", { default: 1_048_576, min: 1024, max: 64 * 1024 * 1024 }),
  maxLineBytes: int("MAX_LINE_BYTES", { default: 262_144, min: 64, max: 16 * 1024 * 1024 }),
  lokiEncoding: oneOf("LOKI_ENCODING", ["protobuf", "json"] as const, { default: "protobuf" }),
  lokiCompression: oneOf("LOKI_COMPRESSION", ["gzip", "none"] as const, { default: "gzip" }),
  lokiTenantId: optionalStr("LOKI_TENANT_ID", "a tenant id"),
  lokiUsername: optionalStr("LOKI_USERNAME", "a user name"),
  lokiPassword: credentialFile("LOKI_PASSWORD_FILE"),
  lokiBearerToken: credentialFile("LOKI_BEARER_TOKEN_FILE"),
  lokiCa: caFile("LOKI_CA_FILE"),
  lokiTimeoutMs: int("LOKI_TIMEOUT_MS", { default: 10_000, min: 1, max: 600_000 }),
  // block: reading pauses while Loki's unacknowledged bytes are at MAX_BUFFER_BYTES (lossless);
  // drop: best-effort, what Loki cannot hold is dropped for it alone (other destinations go on).
  lokiWhenFull: oneOf("LOKI_WHEN_FULL", ["block", "drop"] as const, { default: "block" }),
  retryMinMs: int("RETRY_MIN_MS", { default: 500, min: 1, max: 3_600_000 }),
  retryMaxMs: int("RETRY_MAX_MS", { default: 300_000, min: 1, max: 86_400_000 }),
  maxBufferBytes: int("MAX_BUFFER_BYTES", { default: 16_777_216, min: 65_536, max: 1024 * 1024 * 1024 }),
  shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", { default: 25_000, min: 100, max: 3_600_000 }),
  httpHost: str("HTTP_HOST", { default: "0.0.0.0", expected: "a listen address" }),
  httpPort: int("HTTP_PORT", { default: 9080, min: 0, max: 65535 }),
  logLevel: oneOf("LOG_LEVEL", LOG_LEVELS, { default: "info" }),
  // Pod metadata (downward API) that becomes stream labels when set.
  podName: optionalStr("POD_NAME", "the pod name"),
  podNamespace: optionalStr("POD_NAMESPACE", "the pod namespace"),
  containerName: optionalStr("CONTAINER_NAME", "the name of the container whose logs are shipped"),
  nodeName: optionalStr("NODE_NAME", "the node name"),
  // Tuning knobs beyond the contract table.
  rescanIntervalMs: int("RESCAN_INTERVAL_MS", { default: 10_000, min: 100, max: 3_600_000 }),
  pollIntervalMs: int("POLL_INTERVAL_MS", { default: 500, min: 10, max: 60_000 }),
  maxOpenFiles: int("MAX_OPEN_FILES", { default: 1024, min: 1, max: 1_000_000 }),
  // Entries the positions file keeps (one per file known); past it the least recently seen go.
  maxKnownFiles: int("MAX_KNOWN_FILES", { default: 10_000, min: 10, max: 1_000_000 }),
  positionsSyncMs: int("POSITIONS_SYNC_MS", { default: 1000, min: 10, max: 600_000 }),
  summaryIntervalMs: int("SUMMARY_INTERVAL_MS", { default: 30_000, min: 0, max: 86_400_000 }),
  // Between the files and the destinations: drop, keep, redact (processing/stage.ts).
  ...processingSchema,
  // Other destinations (src/sinks/<name>/): each enabled by its endpoint.
  ...otlpSchema,
  ...elasticsearchSchema,
};

export type Config = {
  readonly [K in keyof typeof schema]: (typeof schema)[K] extends Field<infer T> ? T : never;
};

/** Parse and cross-check the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Env, overrides: Partial<Config> = {}): Config {
  const cfg = parseEnv(schema, env, overrides) as Config;
  const problems: ConfigProblem[] = [];
  if (cfg.retryMinMs > cfg.retryMaxMs) {
    problems.push({
      name: "RETRY_MIN_MS",
      value: String(cfg.retryMinMs),
      expected: `at most RETRY_MAX_MS (${cfg.retryMaxMs})`,
    });
  }
  if (cfg.lokiPassword !== undefined && cfg.lokiUsername === undefined) {
    problems.push({
      name: "LOKI_USERNAME",
      value: undefined,
      expected: "a user name whenever LOKI_PASSWORD_FILE is set",
    });
  }
  if (cfg.lokiBearerToken !== undefined && cfg.lokiUsername !== undefined) {
    problems.push({
      name: "LOKI_BEARER_TOKEN_FILE",
      value: env.LOKI_BEARER_TOKEN_FILE,
      expected: "unset when basic auth (LOKI_USERNAME) is used — choose one",
    });
  }
  if (cfg.maxBufferBytes < cfg.batchMaxBytes) {
    problems.push({
      name: "MAX_BUFFER_BYTES",
      value: String(cfg.maxBufferBytes),
      expected: `at least BATCH_MAX_BYTES (${cfg.batchMaxBytes}), or no batch could ever fill`,
    });
  }
  problems.push(...processingProblems(cfg, env));
  problems.push(...otlpProblems(cfg, env));
  problems.push(...elasticsearchProblems(cfg, env));
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

/** The configuration as it may be logged: secrets and file contents left out. */
export function describeConfig(cfg: Config): Record<string, unknown> {
  return {
    lokiEndpoint: cfg.lokiEndpoint
      ? redactUrl(cfg.lokiEndpoint)
      : cfg.esEndpoint === undefined && cfg.otlpEndpoint === undefined
        ? "(dry run)"
        : "(unset)",
    otlp: describeOtlp(cfg),
    elasticsearch: describeElasticsearch(cfg),
    logPaths: cfg.logPaths,
    excludePaths: cfg.excludePaths,
    positionsFile: cfg.positionsFile,
    staticLabels: cfg.staticLabels,
    batchWaitMs: cfg.batchWaitMs,
    batchMaxBytes: cfg.batchMaxBytes,
    maxLineBytes: cfg.maxLineBytes,
    maxBufferBytes: cfg.maxBufferBytes,
    lokiEncoding: cfg.lokiEncoding,
    lokiCompression: cfg.lokiEncoding === "json" ? cfg.lokiCompression : "snappy",
    tenant: cfg.lokiTenantId !== undefined,
    auth: cfg.lokiBearerToken ? "bearer" : cfg.lokiUsername ? "basic" : "none",
    extraCa: cfg.lokiCa !== undefined,
    shutdownTimeoutMs: cfg.shutdownTimeoutMs,
    ...(cfg.labelFields.length > 0
      ? {
          labelFields: cfg.labelFields,
          labelFieldsMaxValues: cfg.labelFieldsMaxValues,
          labelFieldsMaxCombinations: cfg.labelFieldsMaxCombinations,
        }
      : {}),
    ...(cfg.metadataFields.length > 0 ? { metadataFields: cfg.metadataFields } : {}),
  };
}

function redactUrl(u: URL): string {
  const c = new URL(u.href);
  if (c.password) c.password = "***";
  return c.href;
}
