// Entry point (what the image runs): load config, check the volumes, open the log file, build and
// start the app, and on SIGTERM/SIGINT stop it in order — HTTP drain, last metrics file, log flush.
// Start and stop are also printed to stdout, so `kubectl logs` shows the app's life cycle while
// the request logs go to the shared volume for the log shipper.
import { hostname } from "node:os";
import { join } from "node:path";
import { createLifecycle, createLogger, ensureWritableDir, runMain, StartupError } from "@sidecar/shared";
import { pino } from "pino";
import { Registry } from "prom-client";
import pkg from "../package.json" with { type: "json" };
import { buildApp } from "./app.js";
import { loadConfig, SERVICE_NAME } from "./config.js";
import { RotatingFile } from "./rotating-file.js";

runMain(SERVICE_NAME, async () => {
  const config = loadConfig(process.env);
  await ensureWritableDir(config.logDir, "LOG_DIR");
  await ensureWritableDir(config.metricsDir, "METRICS_DIR");
  const stdoutLog = createLogger({ service: SERVICE_NAME, level: config.logLevel });

  const logPath = join(config.logDir, config.logFile);
  let logFile: RotatingFile;
  let lastLogFileError = 0;
  try {
    logFile = new RotatingFile({
      path: logPath,
      maxBytes: config.logMaxBytes,
      maxFiles: config.logMaxFiles,
      onError: (err, during) => {
        // A full volume fails every batch: say so on stdout at most every 10 s (the count of
        // failures is in sample_app_log_errors_total).
        const now = Date.now();
        if (now - lastLogFileError < 10_000) return;
        lastLogFileError = now;
        stdoutLog.error({ err, during, path: logPath }, "log file problem");
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new StartupError(
      `LOG_FILE=${JSON.stringify(config.logFile)} cannot be opened in LOG_DIR (${code})`,
    );
  }
  // Whatever ends the process (a fatal error, the shutdown deadline), buffered lines reach the file.
  process.on("exit", () => logFile.close());

  // The file gets pino's defaults — numeric `level`, epoch-ms `time` — which the shipper parses.
  const base: Record<string, string | number> = {
    pid: process.pid,
    hostname: hostname(),
    service: SERVICE_NAME,
  };
  if (process.env.POD_NAME) base.pod = process.env.POD_NAME;
  if (process.env.POD_NAMESPACE) base.namespace = process.env.POD_NAMESPACE;
  const logger = pino({ level: config.logLevel, base }, logFile);

  const app = buildApp(config, {
    logger,
    opsLogger: stdoutLog,
    registry: new Registry(),
    version: pkg.version,
    logStats: () => logFile.stats(),
    pod: process.env.POD_NAME,
    namespace: process.env.POD_NAMESPACE,
  });

  const lifecycle = createLifecycle({ logger: stdoutLog, timeoutMs: config.shutdownTimeoutMs });
  lifecycle.onShutdown("app", () => app.close());
  lifecycle.onShutdown("log file", () => {
    logger.info({ event: "stop" }, "sample-app stopped");
    logFile.close();
  });
  lifecycle.install();

  let url: URL;
  try {
    url = await app.start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
      throw new StartupError(`cannot listen on HOST=${config.host} PORT=${config.port} (${code})`);
    }
    throw err;
  }
  // A SIGTERM during start-up stopped it there; the shutdown steps own the rest.
  if (lifecycle.shuttingDown) return;
  const started = {
    event: "start",
    version: pkg.version,
    port: Number(url.port),
    logFile: logPath,
    metricsDir: config.metricsDir,
    trafficRps: config.trafficRps,
  };
  logger.info(started, "sample-app started");
  stdoutLog.info(started, "sample-app started");
});
