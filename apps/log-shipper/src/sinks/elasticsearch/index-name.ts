// Where each line goes: ES_INDEX, either a fixed name (a data stream such as the default
// `logs-sidecar-default`, or a classic index) or a date pattern for time-based classic indices
// (`logs-%Y.%m.%d`). The placeholders are strftime's, as Fluent Bit's `Logstash_DateFormat` and
// Vector's `index` template spell them: %Y (4-digit year), %m (month 01–12), %d (day 01–31),
// %H (hour 00–23) and %% (a literal %); anything else is a config error. The date is the line's
// own time in UTC (the entry's timestamp, the read time when the line has none).
//
// The name is checked at start against Elasticsearch's index naming rules (lowercase; none of
// `\ / * ? " < > | , # :` or a space; not starting with `-`, `_` or `+`; not `.`/`..`; at most
// 255 bytes) — a bad name would otherwise be refused for every line, one item error at a time.
import { utcParts } from "@sidecar/shared";

/** A fixed name in the `{type}-{dataset}-{namespace}` scheme the built-in `logs-*-*` template turns into a data stream. */
const DATA_STREAM_NAME = /^(logs)-([^-]+)-([^-]+)$/;
const FORBIDDEN = /[\\/*?"<>|,#: A-Z]/;
const MAX_INDEX_BYTES = 255;

export interface DataStreamParts {
  readonly type: string;
  readonly dataset: string;
  readonly namespace: string;
}

type Part = string | "Y" | "m" | "d" | "H";

export class IndexName {
  /** The pattern as configured. */
  readonly pattern: string;
  /** Set when the name is fixed and follows the data stream naming scheme. */
  readonly dataStream: DataStreamParts | undefined;
  /** The name does not depend on the time. */
  readonly fixed: boolean;
  private readonly parts: readonly { literal: boolean; value: Part }[];
  /** Seconds one formatted name stays valid for (a day, or an hour with %H). */
  private readonly period: number;
  private cachedPeriod = Number.NaN;
  private cachedName: Buffer = Buffer.alloc(0);

  /** Throws an Error with a short reason when the pattern is not usable. */
  constructor(pattern: string) {
    this.pattern = pattern;
    const parts: { literal: boolean; value: Part }[] = [];
    let lit = "";
    let hasHour = false;
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i] as string;
      if (c !== "%") {
        lit += c;
        continue;
      }
      const n = pattern[++i];
      if (n === "%") {
        lit += "%";
      } else if (n === "Y" || n === "m" || n === "d" || n === "H") {
        if (lit) parts.push({ literal: true, value: lit });
        lit = "";
        parts.push({ literal: false, value: n });
        if (n === "H") hasHour = true;
      } else {
        throw new Error(`unsupported placeholder "%${n ?? ""}" (use %Y, %m, %d, %H or %%)`);
      }
    }
    if (lit) parts.push({ literal: true, value: lit });
    this.parts = parts;
    this.fixed = parts.every((p) => p.literal);
    this.period = hasHour ? 3600 : 86400;
    // Check a sample name: placeholders expand to digits, which are always allowed.
    const sample = this.format(0);
    const reason = indexNameProblem(sample);
    if (reason !== undefined) throw new Error(reason);
    const m = this.fixed ? DATA_STREAM_NAME.exec(sample) : null;
    this.dataStream = m
      ? Object.freeze({ type: m[1] as string, dataset: m[2] as string, namespace: m[3] as string })
      : undefined;
  }

  /** The index name for a line whose time is `sec` (epoch seconds), as UTF-8 bytes. Cached per day/hour. */
  nameFor(sec: number): Buffer {
    const p = this.fixed ? 0 : Math.floor(sec / this.period);
    if (p !== this.cachedPeriod) {
      this.cachedPeriod = p;
      this.cachedName = Buffer.from(this.format(sec), "utf8");
    }
    return this.cachedName;
  }

  /** The index name for `sec` as a string. */
  format(sec: number): string {
    if (this.fixed) return this.parts.map((p) => p.value).join("");
    // Without a Date for years 0–9999 (shared iso-time.ts: a Date's first use loads ICU's time zones).
    const t = utcParts(sec * 1000);
    let out = "";
    for (const p of this.parts) {
      if (p.literal) out += p.value;
      else if (p.value === "Y") out += String(t.year).padStart(4, "0");
      else if (p.value === "m") out += String(t.month).padStart(2, "0");
      else if (p.value === "d") out += String(t.day).padStart(2, "0");
      else out += String(t.hour).padStart(2, "0");
    }
    return out;
  }
}

/** Why Elasticsearch would refuse `name` as an index name, or undefined when it is acceptable. */
export function indexNameProblem(name: string): string | undefined {
  if (name === "") return "empty index name";
  if (name === "." || name === "..") return `"${name}" is not an index name`;
  if (/^[-_+]/.test(name)) return "an index name must not start with -, _ or +";
  const bad = FORBIDDEN.exec(name);
  if (bad) {
    return /[A-Z]/.test(bad[0])
      ? "index names must be lowercase"
      : `an index name must not contain ${JSON.stringify(bad[0])}`;
  }
  if (Buffer.byteLength(name, "utf8") > MAX_INDEX_BYTES) return `longer than ${MAX_INDEX_BYTES} bytes`;
  return undefined;
}
