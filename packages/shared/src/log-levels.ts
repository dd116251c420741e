// The log levels LOG_LEVEL accepts, apart from the logger itself: a program that validates
// LOG_LEVEL but writes its lines without pino (the metrics exporter) does not load pino for them.
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
