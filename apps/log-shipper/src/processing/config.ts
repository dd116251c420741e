// The processing stage's settings (processing/stage.ts): each is checked at start — an unknown
// level or preset, an invalid pattern, or one that cannot run in linear time stops the program
// with exit 2 naming the variable, never at the first line.
import { type ConfigProblem, type Env, type Field, int } from "@sidecar/shared";
import { LEVEL_NAMES } from "../entry.js";
import {
  type Continues,
  MULTILINE_PRESETS,
  type MultilinePreset,
  presetRule,
  startRule,
} from "./multiline.js";
import { safeRegExp } from "./regex.js";
import { REDACT_PRESETS, REDACTED, type RedactRule } from "./stage.js";

const LEVELS = LEVEL_NAMES.filter((n) => n !== "");

/** Patterns, one per line (a newline separates them: a pattern may hold commas). */
function patterns(name: string, flags: string): Field<readonly RegExp[]> {
  return {
    name,
    expected: "regular expressions, one per line, without backreferences or lookaround",
    default: () => Object.freeze([]),
    parse: (raw) => {
      const out: RegExp[] = [];
      for (const [i, line] of raw.split("\n").entries()) {
        const p = line.trim();
        if (p === "") continue;
        try {
          out.push(safeRegExp(p, flags));
        } catch (err) {
          throw new Error(`pattern ${i + 1} (${p}): ${(err as Error).message}`);
        }
      }
      return Object.freeze(out);
    },
  };
}

function levelList(name: string): Field<readonly string[]> {
  return {
    name,
    expected: `a comma-separated list of levels (${LEVELS.join(", ")})`,
    default: () => Object.freeze([]),
    parse: (raw) => {
      const items = raw
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter((s) => s !== "");
      for (const l of items)
        if (!(LEVELS as readonly string[]).includes(l)) throw new Error(`unknown level "${l}"`);
      return Object.freeze(items);
    },
  };
}

function presets(name: string): Field<readonly RedactRule[]> {
  return {
    name,
    expected: `a comma-separated list of ${Object.keys(REDACT_PRESETS).join(", ")}`,
    default: () => Object.freeze([]),
    parse: (raw) => {
      const out: RedactRule[] = [];
      for (const n of raw.split(",").map((s) => s.trim().toLowerCase())) {
        if (n === "") continue;
        const make = REDACT_PRESETS[n];
        if (make === undefined) throw new Error(`unknown preset "${n}"`);
        out.push(make());
      }
      return Object.freeze(out);
    },
  };
}

function onePattern(name: string): Field<RegExp | undefined> {
  return {
    name,
    expected: "a regular expression without backreferences or lookaround",
    default: () => undefined,
    parse: (raw) => (raw.trim() === "" ? undefined : safeRegExp(raw.trim())),
  };
}

function preset(name: string): Field<MultilinePreset | undefined> {
  return {
    name,
    expected: `one of ${MULTILINE_PRESETS.join(", ")}`,
    default: () => undefined,
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (v === "") return undefined;
      if (!(MULTILINE_PRESETS as readonly string[]).includes(v)) throw new Error(`unknown preset "${v}"`);
      return v as MultilinePreset;
    },
  };
}

export const processingSchema = {
  multilineStart: onePattern("MULTILINE_START"),
  multilinePreset: preset("MULTILINE_PRESET"),
  multilineTimeoutMs: int("MULTILINE_TIMEOUT_MS", { default: 1000, min: 10, max: 600_000 }),
  multilineMaxLines: int("MULTILINE_MAX_LINES", { default: 500, min: 2, max: 100_000 }),
  multilineMaxBytes: int("MULTILINE_MAX_BYTES", { default: 262_144, min: 256, max: 16 * 1024 * 1024 }),
  dropLevels: levelList("DROP_LEVELS"),
  keepMatching: patterns("KEEP_MATCHING", ""),
  dropMatching: patterns("DROP_MATCHING", ""),
  redactPatterns: patterns("REDACT", "g"),
  redactPresets: presets("REDACT_PRESETS"),
};

/** REDACT's patterns as rules (`REDACT#<n>`), then the presets. */
export function redactRules(cfg: {
  redactPatterns: readonly RegExp[];
  redactPresets: readonly RedactRule[];
}): RedactRule[] {
  return [
    ...cfg.redactPatterns.map((re, i) => ({ name: `REDACT#${i + 1}`, re, replace: REDACTED })),
    ...cfg.redactPresets,
  ];
}

/** MULTILINE_START and MULTILINE_PRESET are two answers to one question: set one. */
export function processingProblems(
  cfg: { multilineStart: RegExp | undefined; multilinePreset: MultilinePreset | undefined },
  env: Env,
): ConfigProblem[] {
  if (cfg.multilineStart !== undefined && cfg.multilinePreset !== undefined) {
    return [
      {
        name: "MULTILINE_PRESET",
        value: env.MULTILINE_PRESET,
        expected: "unset when MULTILINE_START is set — choose one",
      },
    ];
  }
  return [];
}

/** The continuation rule the settings ask for, if any. */
export function multilineRule(cfg: {
  multilineStart: RegExp | undefined;
  multilinePreset: MultilinePreset | undefined;
}): Continues | undefined {
  if (cfg.multilineStart !== undefined) return startRule(cfg.multilineStart);
  if (cfg.multilinePreset !== undefined) return presetRule(cfg.multilinePreset);
  return undefined;
}
