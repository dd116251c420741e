// The processing stage's settings (processing/stage.ts): each is checked at start — an unknown
// level or preset, an invalid pattern, or one that cannot run in linear time stops the program
// with exit 2 naming the variable, never at the first line.
import type { Field } from "@sidecar/shared";
import { LEVEL_NAMES } from "../entry.js";
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

export const processingSchema = {
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
