// Entry point of the log-shipper image (`node dist/main.js`): load the configuration, build the
// app, listen, and turn SIGTERM/SIGINT into a drain within SHUTDOWN_TIMEOUT_MS. Wiring only.
import "./v8-flags.js"; // first: process-wide V8 settings must precede everything else
import { dirname } from "node:path";
import { createLifecycle, createLogger, ensureWritableDir, runMain } from "@sidecar/shared";
import { buildApp } from "./app.js";
import { loadConfig } from "./config.js";

runMain("log-shipper", async () => {
  const config = loadConfig(process.env);
  const logger = createLogger({ service: "log-shipper", level: config.logLevel });
  await ensureWritableDir(dirname(config.positionsFile), "POSITIONS_FILE");
  const app = buildApp(config, { logger });
  let clean = true;
  const lifecycle = createLifecycle({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    // A shutdown that could not deliver everything in time exits 1 (the rest is sent next start).
    exit: (code) => process.exit(code === 0 && !clean ? 1 : code),
  });
  lifecycle.onShutdown("drain and save positions", async (deadline) => {
    clean = (await app.close(deadline)).clean;
  });
  lifecycle.install();
  await app.start();
});
