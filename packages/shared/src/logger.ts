// The programs' own logs: pino JSON lines on stdout (what `kubectl logs -c <container>` shows),
// with the service name and, in a pod, the pod and namespace from the downward API.
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

import type { LogLevel } from "./log-levels.js";

export interface LoggerConfig {
  service: string;
  level?: LogLevel;
  env?: Readonly<Record<string, string | undefined>>;
  /** Where lines go; stdout (synchronously, so nothing is lost at exit) when omitted. */
  destination?: DestinationStream;
}

export function createLogger(cfg: LoggerConfig): Logger {
  const env = cfg.env ?? process.env;
  const base: Record<string, string> = { service: cfg.service };
  if (env.POD_NAME) base.pod = env.POD_NAME;
  if (env.POD_NAMESPACE) base.namespace = env.POD_NAMESPACE;
  const options: LoggerOptions = {
    level: cfg.level ?? "info",
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return pino(options, cfg.destination ?? pino.destination({ dest: 1, sync: true }));
}
