// Entry point of the log-shipper image (`node dist/main.js`): load the configuration, build the
// app, listen, and turn SIGTERM/SIGINT into a drain within SHUTDOWN_TIMEOUT_MS. Wiring only.
import "./v8-flags.js"; // first: process-wide V8 settings must precede everything else
import { dirname } from "node:path";
import {
  createLifecycle,
  createLineLogger,
  ensureRegularFileOrAbsent,
  ensureWritableDir,
  runMain,
} from "@sidecar/shared";
import { buildApp } from "./app.js";
import { loadConfig } from "./config.js";
import { startHeapUpkeep } from "./heap-upkeep.js";
import { applyCompiler, chooseCompiler } from "./v8-flags.js";

runMain("log-shipper", async () => {
  const config = loadConfig(process.env);
  // Decided from the configuration, so set as soon as it is read: nothing has run hot yet.
  const compiler = chooseCompiler({
    otherDestinations: [
      ...(config.otlpEndpoint !== undefined ? ["OTLP"] : []),
      ...(config.esEndpoint !== undefined ? ["Elasticsearch"] : []),
    ],
    execArgv: process.execArgv,
    v8Version: process.versions.v8,
  });
  applyCompiler(compiler);
  // Not pino: its streams and worker machinery were ≈ 1 MiB of the shipper's resident memory on
  // Node 24 for a few lines a minute (issue 12; PERFORMANCE.md).
  const logger = createLineLogger({ service: "log-shipper", level: config.logLevel });
  logger.info({ compiler: compiler.compiler, why: compiler.why, node: process.version }, "V8 compiler tiers");
  await ensureWritableDir(dirname(config.positionsFile), "POSITIONS_FILE");
  // A FIFO, socket or device there would block the read at start for good (a directory is set
  // aside by Positions.load like a corrupt file).
  await ensureRegularFileOrAbsent(config.positionsFile, "POSITIONS_FILE", { allowDirectory: true });
  const app = buildApp(config, { logger });
  const lifecycle = createLifecycle({ logger, timeoutMs: config.shutdownTimeoutMs });
  // A shutdown that could not deliver everything in time, or could not save the positions,
  // exits 1 (the rest is sent next start) — and `shutdown complete` says code 1.
  lifecycle.onShutdown("drain and save positions", async (deadline) =>
    (await app.close(deadline)).clean ? 0 : 1,
  );
  lifecycle.install();
  await app.start();
  // A major GC per MiB the old generation grows, not per V8's far larger step (heap-upkeep.ts).
  startHeapUpkeep();
});
