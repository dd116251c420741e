// Builds the whole log shipper in-process (the real Pipeline, pointed at the fake Loki) on temp
// directories, for integration and model tests. Restarts = close() and build again on the same
// positions file.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { type App, type AppDeps, buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "./logger.js";

export interface Dirs {
  root: string;
  logs: string;
  state: string;
  positionsFile: string;
}

export function tempDirs(prefix = "ls-"): Dirs {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const logs = join(root, "logs");
  const state = join(root, "state");
  mkdirSync(logs);
  mkdirSync(state);
  return { root, logs, state, positionsFile: join(state, "positions.json") };
}

export function buildTestApp(
  dirs: Dirs,
  env: Record<string, string>,
  logger: Logger = silentLogger(),
  deps: Partial<AppDeps> = {},
): App {
  const config = loadConfig({
    LOG_PATHS: `${dirs.logs}/*.log,${dirs.logs}/*.log.*`,
    POSITIONS_FILE: dirs.positionsFile,
    BATCH_WAIT_MS: "50",
    RETRY_MIN_MS: "20",
    RETRY_MAX_MS: "200",
    POLL_INTERVAL_MS: "50",
    RESCAN_INTERVAL_MS: "200",
    POSITIONS_SYNC_MS: "100",
    SUMMARY_INTERVAL_MS: "0",
    HTTP_PORT: "0",
    HTTP_HOST: "127.0.0.1",
    ...env,
  });
  return buildApp(config, { logger, processMetrics: false, listen: false, ...deps });
}
