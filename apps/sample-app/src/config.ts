// The sample app's configuration: one schema over the environment, parsed once at start-up and
// passed down frozen. Names and defaults of the first eight variables are the pod's contract
// (see shared/design/architecture.md); a bad value stops the program with exit code 2.
import { type ConfigOf, type Env, type Field, int, LOG_LEVELS, oneOf, parseEnv, str } from "@sidecar/shared";

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

const schema = {
  host: str("HOST", { default: "0.0.0.0", expected: "an address to listen on" }),
  // 0 asks the kernel for a free port (tests); the traffic generator follows the real one.
  port: int("PORT", { default: 8080, min: 0, max: 65535 }),
  logLevel: oneOf("LOG_LEVEL", LOG_LEVELS, { default: "info" }),
  logDir: str("LOG_DIR", { default: "/app/logs", expected: "a directory path" }),
  logFile: fileName("LOG_FILE", "app.log"),
  // A floor keeps a typo (LOG_MAX_BYTES=10) from turning every line into its own file.
  logMaxBytes: int("LOG_MAX_BYTES", { default: 10 * 1024 * 1024, min: 1024, max: 2 ** 40 }),
  logMaxFiles: int("LOG_MAX_FILES", { default: 5, min: 1, max: 1000 }),
  metricsDir: str("METRICS_DIR", { default: "/app/metrics", expected: "a directory path" }),
  metricsIntervalMs: int("METRICS_INTERVAL_MS", { default: 5000, min: 100, max: 3_600_000 }),
  trafficRps: int("TRAFFIC_RPS", { default: 5, min: 0, max: 1000 }),
  /** Upper bound of GET /work?ms=N, so one request cannot hold a connection (or shutdown) forever. */
  workMaxMs: int("WORK_MAX_MS", { default: 5000, min: 0, max: 60_000 }),
  /** SIGTERM → exit budget; must leave the sidecars their share of terminationGracePeriodSeconds. */
  shutdownTimeoutMs: int("SHUTDOWN_TIMEOUT_MS", { default: 10_000, min: 100, max: 600_000 }),
};

export type Config = ConfigOf<typeof schema>;

export function loadConfig(env: Env, overrides: Partial<Config> = {}): Config {
  return parseEnv(schema, env, overrides);
}
