// The sidecars' own log lines, without pino: the same JSON lines createLogger (logger.ts) writes
// (`level` label, ISO `time`, `service`/`pod`/`namespace`, child bindings, fields, `msg`; an Error
// under `err` as pino's serializer writes it), written to stdout synchronously. pino, sonic-boom and
// thread-stream (with the worker_threads and assert builtins they load) were ≈ 1 MiB of a typical
// pod's peak RSS on Node 24 for a few dozen lines a day (metrics-exporter, issue 10.5; log shipper,
// issue 12). Components take the `Log` type, so tests can still hand in a pino logger.
import { writeSync } from "node:fs";
import type { Logger } from "pino";
import { isoTime } from "./iso-time.js";
import type { LogLevel } from "./log-levels.js";

/** What the sidecars use of a logger; a pino Logger is one. */
export type Log = Pick<Logger, "fatal" | "error" | "warn" | "info" | "debug" | "trace"> & {
  child(bindings: Record<string, unknown>): Log;
};

export interface LineLoggerOptions {
  service: string;
  level?: LogLevel;
  env?: Readonly<Record<string, string | undefined>>;
  /** Where each line (with its newline) goes; stdout, synchronously, when omitted. */
  write?: (line: string) => void;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type Method = keyof typeof LEVELS;

export function createLineLogger(opts: LineLoggerOptions): Log {
  const env = opts.env ?? process.env;
  const base: Record<string, unknown> = { service: opts.service };
  if (env.POD_NAME) base.pod = env.POD_NAME;
  if (env.POD_NAMESPACE) base.namespace = env.POD_NAMESPACE;
  const level = opts.level ?? "info";
  const threshold = level === "silent" ? Number.POSITIVE_INFINITY : LEVELS[level];
  const write = opts.write ?? writeStdout;

  const make = (bindings: Record<string, unknown>): Log => {
    const method =
      (name: Method) =>
      (first?: unknown, msg?: unknown): void => {
        if (LEVELS[name] < threshold) return;
        const line: Record<string, unknown> = { level: name, time: isoTime(), ...bindings };
        if (isErrorLike(first)) {
          line.err = serializeError(first);
          if (msg === undefined) msg = first.message;
        } else if (typeof first === "object" && first !== null) {
          for (const [k, v] of Object.entries(first))
            line[k] = k === "err" && isErrorLike(v) ? serializeError(v) : v;
        } else if (first !== undefined) msg = first;
        if (msg !== undefined) line.msg = String(msg);
        write(`${stringify(line)}\n`);
      };
    return {
      fatal: method("fatal"),
      error: method("error"),
      warn: method("warn"),
      info: method("info"),
      debug: method("debug"),
      trace: method("trace"),
      child: (more) => make({ ...bindings, ...more }),
    } as Log;
  };
  return make(base);
}

const isErrorLike = (v: unknown): v is Error =>
  typeof v === "object" && v !== null && typeof (v as Error).message === "string";

/** As pino's default `err` serializer: type, message and stack (with causes), own enumerable fields. */
function serializeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.constructor?.name ?? err.name, message: err.message };
  let stack = err.stack ?? "";
  let message = err.message;
  for (let cause = err.cause, depth = 0; isErrorLike(cause) && depth < 10; cause = cause.cause, depth++) {
    message += `: ${cause.message}`;
    stack += `\ncaused by: ${cause.stack ?? ""}`;
  }
  out.message = message;
  out.stack = stack;
  for (const [k, v] of Object.entries(err)) {
    if (k !== "cause" && !(k in out)) out[k] = isErrorLike(v) ? serializeError(v) : v;
  }
  return out;
}

function stringify(line: Record<string, unknown>): string {
  try {
    return JSON.stringify(line, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  } catch (e) {
    // A circular field: keep the line, say what was lost.
    return JSON.stringify({
      level: line.level,
      time: line.time,
      service: line.service,
      msg: line.msg,
      logError: String(e),
    });
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Whole lines to fd 1; a non-blocking pipe that is full (EAGAIN) is waited for, as pino's sync destination does. */
function writeStdout(line: string): void {
  const bytes = Buffer.from(line);
  let off = 0;
  for (let waits = 0; off < bytes.length; ) {
    try {
      off += writeSync(1, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN" || waits++ >= 1000) return;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}
