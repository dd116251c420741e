// V8 settings for the shipper process, applied before anything else is loaded (main.ts imports this
// module first).
import { setFlagsFromString } from "node:v8";

// User regexes (DROP_MATCHING, KEEP_MATCHING, REDACT): checked for linear-time at start with the
// `l` flag, and switched to the linear engine by V8 when a match backtracks excessively
// (processing/regex.ts). Must precede the compilation of any of them.
setFlagsFromString("--enable-experimental-regexp-engine");
setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");

/** Which of V8's optimizing compilers the shipper runs with, and why (logged at start). */
export interface CompilerChoice {
  /** `maglev`: TurboFan turned off here; `default`: V8's own tiers, as the command line left them. */
  compiler: "maglev" | "default";
  why: string;
}

/**
 * Node's own flags that already decide the optimizing tiers: then the shipper changes nothing.
 * V8 takes `-` and `_` alike in flag names (`--max_opt=2`, `--no_turbofan`).
 */
export const TIER_FLAGS = /^--(no[-_])?(max[-_]opt|turbofan|maglev|jitless|sparkplug)(=|$)/;

/**
 * Maglev alone (no TurboFan) when Loki is the only destination; V8's defaults (TurboFan too) when
 * OTLP or Elasticsearch is configured. TurboFan's code is ≈ 5 MiB of the node binary that stays
 * resident once used, and with Loki alone Maglev costs little CPU (README "The image's memory
 * settings"); the OTLP and Elasticsearch encoders' byte loops run several times slower without it
 * (the fan-out on Node 24: 5.7–5.8 against 3.5 CPU s per million lines). Only where Maglev is on by
 * default (V8 12, Node 22 and later): Node 20's V8 would be left with its baseline compiler alone.
 * A tier flag on the node command line (`--max-opt`, `--turbofan`, `--no-turbofan`, …) wins.
 */
export function chooseCompiler(opts: {
  /** The destinations configured besides Loki (OTLP, Elasticsearch). */
  otherDestinations: readonly string[];
  execArgv: readonly string[];
  v8Version: string;
}): CompilerChoice {
  const given = opts.execArgv.find((a) => TIER_FLAGS.test(a));
  if (given !== undefined) return { compiler: "default", why: `${given} on the command line` };
  if (Number.parseInt(opts.v8Version, 10) < 12)
    return { compiler: "default", why: `V8 ${opts.v8Version} has Maglev off: TurboFan stays` };
  if (opts.otherDestinations.length > 0)
    return {
      compiler: "default",
      why: `TurboFan for the ${opts.otherDestinations.join(" and ")} encoders`,
    };
  return {
    compiler: "maglev",
    why: "no OTLP or Elasticsearch destination: Maglev without TurboFan, for memory",
  };
}

/** Apply chooseCompiler's choice: before the shipper's code has run long enough to be optimized. */
export function applyCompiler(choice: CompilerChoice): void {
  if (choice.compiler === "maglev") setFlagsFromString("--no-turbofan");
}
