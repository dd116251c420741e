// Loggers for tests: silent by default; LOG_TEST=1 shows the shipper's own logs while debugging.
import { createLogger, type Logger } from "@sidecar/shared";

export function silentLogger(): Logger {
  return createLogger({ service: "log-shipper-test", level: process.env.LOG_TEST ? "debug" : "silent" });
}
