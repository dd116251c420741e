// The exporter's configuration: one schema over the environment, parsed once at start and frozen.
// Names and defaults of the architecture contract (METRICS_DIR, COLLECT_INTERVAL_MS, …) are kept;
// the bounds on what input may cost are named here so they can be tuned and are counted when hit.
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import {
  ConfigError,
  type ConfigOf,
  type Env,
  type Field,
  int,
  LOG_LEVELS,
  oneOf,
  parseEnv,
  str,
  url,
} from "@sidecar/shared";
import { parseStatsdAddress, STATSD_TAG_FORMATS, type StatsdAddress } from "./outputs/statsd.js";

const MiB = 1024 * 1024;

/** A Pushgateway job name: any non-empty text (it is path-encoded when pushed). */
function pushJob(name: string): Field<string> {
  return {
    name,
    expected: "a non-empty job name",
    default: "sidecar",
    parse: (raw) => {
      const v = raw.trim();
      if (v === "") throw new Error("empty");
      return v;
    },
  };
}

/** Optional `host:port` / `tcp://host:port` of a StatsD daemon. */
function statsdAddress(name: string): Field<StatsdAddress | undefined> {
  return {
    name,
    expected: "host:port (UDP), udp://host:port or tcp://host:port",
    default: () => undefined,
    parse: (raw) => parseStatsdAddress(raw),
  };
}

/** Optional path of a regular file this process can read (read later, at every use). */
function readableFile(name: string): Field<string | undefined> {
  return {
    name,
    expected: "the path of a readable regular file",
    default: () => undefined,
    parse: (raw) => {
      const path = raw.trim();
      if (!statSync(path).isFile()) throw new Error("not a regular file");
      accessSync(path, constants.R_OK);
      return path;
    },
  };
}

/** Optional PEM file, read once at start. */
function pemFile(name: string): Field<string | undefined> {
  return {
    name,
    expected: "the path of a readable PEM file",
    default: () => undefined,
    parse: (raw) => {
      const path = raw.trim();
      if (!statSync(path).isFile()) throw new Error("not a regular file");
      const pem = readFileSync(path, "utf8");
      if (!pem.includes("-----BEGIN")) throw new Error("no PEM block");
      return pem;
    },
  };
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `Name=value,Name=value` HTTP headers (values may contain `=`). */
function headers(name: string): Field<Readonly<Record<string, string>>> {
  return {
    name,
    expected: "comma-separated Header-Name=value pairs",
    default: () => Object.freeze({}),
    parse: (raw) => {
      const out: Record<string, string> = {};
      for (const part of raw.split(",")) {
        const item = part.trim();
        if (item === "") continue;
        const eq = item.indexOf("=");
        if (eq <= 0) throw new Error(`"${item}" is not Name=value`);
        const key = item.slice(0, eq).trim();
        if (!HEADER_NAME.test(key)) throw new Error(`"${key}" is not a header name`);
        out[key.toLowerCase()] = item.slice(eq + 1).trim();
      }
      return Object.freeze(out);
    },
  };
}

export const schema = {
  metricsDir: str("METRICS_DIR", { default: "/shared/metrics", expected: "a directory path" }),
  collectIntervalMs: int("COLLECT_INTERVAL_MS", { default: 5000, min: 100, max: 3_600_000 }),
  /** 0 disables staleness (files are served until deleted, like node_exporter). */
  staleAfterMs: int("STALE_AFTER_MS", { default: 300_000, min: 0, max: 86_400_000 }),
  maxFileBytes: int("MAX_FILE_BYTES", { default: 8 * MiB, min: 1024, max: 256 * MiB }),
  maxSeriesPerFile: int("MAX_SERIES_PER_FILE", { default: 50_000, min: 1, max: 10_000_000 }),
  maxTotalSeries: int("MAX_TOTAL_SERIES", { default: 100_000, min: 1, max: 10_000_000 }),
  maxFiles: int("MAX_FILES", { default: 1000, min: 1, max: 100_000 }),
  /**
   * Labels of one series; more rejects the file (`too_many_labels`). The maximum keeps one line's
   * work (parsing a label set is the one step that cannot yield) to milliseconds.
   */
  maxLabelsPerSeries: int("MAX_LABELS_PER_SERIES", { default: 128, min: 1, max: 10_000 }),
  /**
   * Metric families of all files together (a family named in two files counts twice; HELP/TYPE-only
   * ones count while a file is parsed); a file that would go over is rejected (`too_many_families`).
   * Each family costs a few hundred bytes beyond its text: sized so that the worst shape within all
   * the caps stays inside the sidecar's 128Mi.
   */
  maxFamilies: int("MAX_FAMILIES", { default: 20_000, min: 1, max: 10_000_000 }),
  /**
   * Bytes of all served files together, HELP texts counted 4 times more (collector.ts, HELP_WEIGHT);
   * a file that would go over is rejected (`total_bytes_cap`).
   */
  maxTotalBytes: int("MAX_TOTAL_BYTES", { default: 12 * MiB, min: 1024, max: 4096 * MiB }),
  httpHost: str("HTTP_HOST", { default: "0.0.0.0", expected: "a host or IP address to listen on" }),
  httpPort: int("HTTP_PORT", { default: 9100, min: 0, max: 65535 }),
  pushgatewayUrl: url("PUSHGATEWAY_URL"),
  pushIntervalMs: int("PUSH_INTERVAL_MS", { default: 15_000, min: 1000, max: 3_600_000 }),
  pushJob: pushJob("PUSH_JOB"),
  /** The `instance` of the push grouping key: PUSH_INSTANCE, else POD_NAME, else the host name. */
  pushInstance: str("PUSH_INSTANCE", {
    default: () => hostname(),
    aliases: ["POD_NAME"],
    expected: "a non-empty instance name",
  }),
  pushTimeoutMs: int("PUSH_TIMEOUT_MS", { default: 10_000, min: 100, max: 300_000 }),
  /** The retry backoff of every output (Pushgateway, StatsD, remote-write). */
  pushRetryMinMs: int("PUSH_RETRY_MIN_MS", { default: 1000, min: 10, max: 3_600_000 }),
  pushRetryMaxMs: int("PUSH_RETRY_MAX_MS", { default: 120_000, min: 10, max: 3_600_000 }),
  podName: str("POD_NAME", { default: () => hostname(), expected: "a non-empty pod name" }),
  podNamespace: str("POD_NAMESPACE", { default: "", expected: "a namespace name" }),
  statsdAddress: statsdAddress("STATSD_ADDRESS"),
  statsdPrefix: str("STATSD_PREFIX", { default: "", expected: "a metric name prefix" }),
  statsdTags: oneOf("STATSD_TAGS", STATSD_TAG_FORMATS, { default: "dogstatsd" }),
  /** 0 = after every collection. */
  statsdIntervalMs: int("STATSD_INTERVAL_MS", { default: 0, min: 0, max: 3_600_000 }),
  statsdMtu: int("STATSD_MTU", { default: 1432, min: 64, max: 65_507 }),
  remoteWriteUrl: url("REMOTE_WRITE_URL"),
  remoteWriteUsername: { ...str("REMOTE_WRITE_USERNAME"), default: () => undefined } as Field<
    string | undefined
  >,
  remoteWritePasswordFile: readableFile("REMOTE_WRITE_PASSWORD_FILE"),
  remoteWriteBearerTokenFile: readableFile("REMOTE_WRITE_BEARER_TOKEN_FILE"),
  remoteWriteHeaders: headers("REMOTE_WRITE_HEADERS"),
  remoteWriteCa: pemFile("REMOTE_WRITE_CA_FILE"),
  /** The `job` external label; PUSH_JOB when unset. */
  remoteWriteJob: str("REMOTE_WRITE_JOB", { default: "", expected: "a job name" }),
  /** 0 = after every collection. */
  remoteWriteIntervalMs: int("REMOTE_WRITE_INTERVAL_MS", { default: 0, min: 0, max: 3_600_000 }),
  remoteWriteTimeoutMs: int("REMOTE_WRITE_TIMEOUT_MS", { default: 10_000, min: 100, max: 300_000 }),
  shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", { default: 10_000, min: 100, max: 600_000 }),
  logLevel: oneOf("LOG_LEVEL", LOG_LEVELS, { default: "info" }),
};

export type Config = ConfigOf<typeof schema>;

/** Parse and cross-check the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Env, overrides: Partial<Config> = {}): Config {
  const config = parseEnv(schema, env, overrides);
  if (config.pushRetryMinMs > config.pushRetryMaxMs) {
    throw new ConfigError([
      {
        name: "PUSH_RETRY_MIN_MS",
        value: String(config.pushRetryMinMs),
        expected: `at most PUSH_RETRY_MAX_MS (${config.pushRetryMaxMs})`,
      },
    ]);
  }
  if (config.remoteWriteBearerTokenFile && (config.remoteWriteUsername || config.remoteWritePasswordFile)) {
    throw new ConfigError([
      {
        name: "REMOTE_WRITE_BEARER_TOKEN_FILE",
        value: config.remoteWriteBearerTokenFile,
        expected: "unset when REMOTE_WRITE_USERNAME / REMOTE_WRITE_PASSWORD_FILE are set (one kind of auth)",
      },
    ]);
  }
  if (config.remoteWritePasswordFile && !config.remoteWriteUsername) {
    throw new ConfigError([
      {
        name: "REMOTE_WRITE_PASSWORD_FILE",
        value: config.remoteWritePasswordFile,
        expected: "set together with REMOTE_WRITE_USERNAME",
      },
    ]);
  }
  if (config.maxFileBytes > config.maxTotalBytes) {
    throw new ConfigError([
      {
        name: "MAX_FILE_BYTES",
        value: String(config.maxFileBytes),
        expected: `at most MAX_TOTAL_BYTES (${config.maxTotalBytes})`,
      },
    ]);
  }
  if (config.maxSeriesPerFile > config.maxTotalSeries) {
    throw new ConfigError([
      {
        name: "MAX_SERIES_PER_FILE",
        value: String(config.maxSeriesPerFile),
        expected: `at most MAX_TOTAL_SERIES (${config.maxTotalSeries})`,
      },
    ]);
  }
  return config;
}
