// Entry point of the metrics-exporter image (`node dist/main.js`): wiring only.
// First, before any code gets hot: no TurboFan in this process (tiering.ts).
import "./tiering.js";
import { createLifecycle, createLineLogger, runMain } from "@sidecar/shared";
import { buildApp } from "./app.js";
import { loadConfig } from "./config.js";

runMain("metrics-exporter", async () => {
  const config = loadConfig(process.env);
  const logger = createLineLogger({ service: "metrics-exporter", level: config.logLevel });
  const app = buildApp(config, { logger });
  const lifecycle = createLifecycle({ logger, timeoutMs: config.shutdownTimeoutMs });
  lifecycle.onShutdown("exporter", (deadline) => app.close(deadline));
  lifecycle.install();
  await app.start();
});
