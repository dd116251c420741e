// The sample app's configuration: one schema over the environment, parsed once at start-up and
// passed down frozen. Names and defaults of the first eight variables are the pod's contract
// (see shared/design/architecture.md); a bad value stops the program with exit code 2.
import { resolve } from "node:path";
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
} from "@sidecar/shared";

export const SERVICE_NAME = "sample-app";

/** A bare file name: the log file must live directly in LOG_DIR, where the shipper looks for it. */
function fileName(name: string, def: string): Field<string> {
  return {
    name,
    expected: "a file name without a directory part",
    default: def,
    parse: (raw) => {
      const v = raw.trim();
      if (v === "." || v === ".." || /[/\\\0]/.test(v)) throw new Error("not a plain file name");
      return v;
    },
  };
}

/**
 * A directory. Whitespace only is a mistake (a YAML value of " "), not a directory name; a relative
 * path is accepted and resolved against the working directory, so logs and errors show where the
 * files really are.
 */
function dirPath(name: string, def: string): Field<string> {
  return {
    name,
    expected: "a directory path",
    default: def,
    parse: (raw) => {
      if (raw.trim() === "") throw new Error("whitespace only");
      if (raw.includes("\0")) throw new Error("contains a NUL byte");
      return resolve(raw);
    },
  };
}

/**
 * The metrics-exporter drops a textfile older than its STALE_AFTER_MS (default 300 s) as stale;
 * writing less often than that would make the app's metrics vanish between writes.
 */
export const METRICS_INTERVAL_MAX_MS = 300_000;

const schema = {
  host: str("HOST", { default: "0.0.0.0", expected: "an address to listen on" }),
  // 0 asks the kernel for a free port (tests); the traffic generator follows the real one.
  port: int("PORT", { default: 8080, min: 0, max: 65535 }),
  logLevel: oneOf("LOG_LEVEL", LOG_LEVELS, { default: "info" }),
  logDir: dirPath("LOG_DIR", "/app/logs"),
  logFile: fileName("LOG_FILE", "app.log"),
  // A floor keeps a typo (LOG_MAX_BYTES=10) from turning every line into its own file.
  logMaxBytes: int("LOG_MAX_BYTES", { default: 10 * 1024 * 1024, min: 1024, max: 2 ** 40 }),
  logMaxFiles: int("LOG_MAX_FILES", { default: 5, min: 1, max: 1000 }),
  metricsDir: dirPath("METRICS_DIR", "/app/metrics"),
  metricsIntervalMs: int("METRICS_INTERVAL_MS", { default: 5000, min: 100, max: METRICS_INTERVAL_MAX_MS }),
  trafficRps: int("TRAFFIC_RPS", { default: 5, min: 0, max: 1000 }),
  /** Upper bound of GET /work?ms=N, so one request cannot hold a connection (or shutdown) forever. */
  workMaxMs: int("WORK_MAX_MS", { default: 5000, min: 0, max: 60_000 }),
  /** SIGTERM → exit budget; must leave the sidecars their share of terminationGracePeriodSeconds. */
  shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", { default: 10_000, min: 100, max: 600_000 }),
};

export type Config = ConfigOf<typeof schema>;

export function loadConfig(env: Env, overrides: Partial<Config> = {}): Config {
  const config = parseEnv(schema, env, overrides);
  // A /work request is allowed to finish on SIGTERM; one that may run as long as the whole
  // shutdown budget would turn every shutdown during load into the deadline's exit 1.
  if (config.workMaxMs >= config.shutdownTimeoutMs) {
    throw new ConfigError([
      {
        name: "WORK_MAX_MS",
        value: env.WORK_MAX_MS || String(config.workMaxMs),
        expected: `less than SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs})`,
        reason: "in-flight /work requests must be able to finish within the shutdown budget",
      },
    ]);
  }
  return config;
}
