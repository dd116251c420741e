// The processing stage's settings (processing/stage.ts): each is checked at start — an unknown
// level or preset, an invalid pattern, or one that cannot run in linear time stops the program
// with exit 2 naming the variable, never at the first line.
import { type ConfigProblem, type Env, type Field, int } from "@sidecar/shared";
import { LEVEL_NAMES } from "../entry.js";
import { sanitizeLabelName } from "../labels.js";
import { LOKI_MAX_LABEL_NAMES, OWN_LABELS } from "./fields.js";
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

/** JSON keys, comma-separated (LABEL_FIELDS, METADATA_FIELDS). */
function fieldList(name: string): Field<readonly string[]> {
  return {
    name,
    expected: "a comma-separated list of top-level JSON field names",
    default: () => Object.freeze([]),
    parse: (raw) => {
      const items = raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
      const seen = new Set<string>();
      for (const f of items) {
        const label = sanitizeLabelName(f);
        if (seen.has(label)) throw new Error(`"${f}" is listed twice (as the name ${label})`);
        seen.add(label);
        if (label.startsWith("__")) throw new Error(`"${f}": names starting with __ are reserved by Loki`);
      }
      return Object.freeze(items);
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
  labelFields: fieldList("LABEL_FIELDS"),
  labelFieldsMaxValues: int("LABEL_FIELDS_MAX_VALUES", { default: 50, min: 1, max: 10_000 }),
  labelFieldsMaxCombinations: int("LABEL_FIELDS_MAX_COMBINATIONS", { default: 200, min: 1, max: 100_000 }),
  metadataFields: fieldList("METADATA_FIELDS"),
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

/**
 * MULTILINE_START and MULTILINE_PRESET are two answers to one question: set one. LABEL_FIELDS and
 * METADATA_FIELDS may not take a name the shipper's own labels have (filename, level, the pod
 * labels, STATIC_LABELS) nor each other's, and the labels of a stream must stay within Loki's
 * default max_label_names_per_series.
 */
export function processingProblems(
  cfg: {
    multilineStart: RegExp | undefined;
    multilinePreset: MultilinePreset | undefined;
    labelFields: readonly string[];
    metadataFields: readonly string[];
    staticLabels: Readonly<Record<string, string>>;
  },
  env: Env,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (cfg.multilineStart !== undefined && cfg.multilinePreset !== undefined) {
    problems.push({
      name: "MULTILINE_PRESET",
      value: env.MULTILINE_PRESET,
      expected: "unset when MULTILINE_START is set — choose one",
    });
  }
  const own = new Set<string>([...OWN_LABELS, ...Object.keys(cfg.staticLabels)]);
  const labelNames = new Set(cfg.labelFields.map(sanitizeLabelName));
  const check = (name: "LABEL_FIELDS" | "METADATA_FIELDS", fields: readonly string[]) => {
    for (const f of fields) {
      const label = sanitizeLabelName(f);
      let why: string | undefined;
      if (own.has(label)) why = `"${f}" would be named ${label}, a label the shipper sets itself`;
      else if (name === "METADATA_FIELDS" && labelNames.has(label))
        why = `"${f}" is in LABEL_FIELDS too (as ${label}) — a field is a label or metadata, not both`;
      if (why !== undefined) {
        problems.push({
          name,
          value: env[name],
          expected: `field names other than ${[...own].join(", ")}`,
          reason: why,
        });
        return;
      }
    }
  };
  check("LABEL_FIELDS", cfg.labelFields);
  check("METADATA_FIELDS", cfg.metadataFields);
  // filename + level + the pod labels (when set) + STATIC_LABELS + LABEL_FIELDS.
  const base = 2 + 4 + Object.keys(cfg.staticLabels).length;
  if (cfg.labelFields.length > 0 && base + cfg.labelFields.length > LOKI_MAX_LABEL_NAMES) {
    problems.push({
      name: "LABEL_FIELDS",
      value: env.LABEL_FIELDS,
      expected: `at most ${Math.max(0, LOKI_MAX_LABEL_NAMES - base)} fields`,
      reason: `a stream would have more than Loki's default ${LOKI_MAX_LABEL_NAMES} labels (filename, level, namespace, pod, container, node and STATIC_LABELS are there already)`,
    });
  }
  return problems;
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
