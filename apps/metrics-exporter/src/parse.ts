// Parser and validator for the Prometheus text exposition format 0.0.4, following the rules of the
// reference parser (prometheus/common expfmt, which `promtool check metrics` uses): HELP/TYPE
// lines, comments, label-value escapes (\\ \" \n only), NaN/±Inf, histogram and summary families
// found by their _bucket/_sum/_count suffixes, and samples of one family allowed anywhere in the
// file. Stricter where the exporter must be: sample timestamps, duplicate series and names that
// would collide in either output format reject the whole file, and a series cap stops parsing
// early so one file can never cost unbounded memory.
import { FAMILY_TYPES, type Family, type FamilyType, reservedNames } from "./families.js";

export type FileErrorReason =
  | "parse_error"
  | "timestamp"
  | "duplicate_series"
  | "name_collision"
  | "too_many_series"
  | "total_series_cap"
  | "invalid_utf8"
  | "too_large"
  | "read_error";

export interface FileError {
  readonly reason: FileErrorReason;
  /** 1-based line number; 0 when the problem is not tied to a line (size, encoding). */
  readonly line: number;
  readonly message: string;
}

export type ParseResult =
  | { readonly ok: true; readonly families: Family[]; readonly series: number }
  | { readonly ok: false; readonly error: FileError };

export interface ParseOptions {
  /** Stop with an error as soon as the file has more series than this. */
  readonly maxSeries: number;
  /** The reason reported when `maxSeries` is exceeded (the per-file or the total budget). */
  readonly seriesLimitReason?: "too_many_series" | "total_series_cap";
}

interface Building {
  name: string;
  type: FamilyType;
  typeSet: boolean;
  help: string | undefined;
  lines: string[];
  firstLine: number;
}

class LineError extends Error {
  constructor(
    readonly reason: FileErrorReason,
    message: string,
  ) {
    super(message);
  }
}

const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIMESTAMP = /^-?\d+$/;

/** A sample value in canonical form (NaN, +Inf, -Inf or the decimal as written), or undefined. */
export function normalizeValue(token: string): string | undefined {
  if (FLOAT.test(token)) return token;
  switch (token.toLowerCase()) {
    case "nan":
      return "NaN";
    case "inf":
    case "+inf":
    case "infinity":
    case "+infinity":
      return "+Inf";
    case "-inf":
    case "-infinity":
      return "-Inf";
    default:
      return undefined;
  }
}

const isBlank = (c: number) => c === 32 || c === 9;
const isNameStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);

/** Decode a UTF-8 file body; undefined when it is not valid UTF-8 (binary garbage, Latin-1). */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Parse and validate one file's text. Never throws for bad input; errors are values. */
export function parseText(text: string, opts: ParseOptions): ParseResult {
  const families = new Map<string, Building>();
  const seen = new Set<string>();
  let series = 0;
  let lineNo = 0;
  let pos = 0;

  const familyFor = (name: string, line: number): Building => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", typeSet: false, help: undefined, lines: [], firstLine: line };
      families.set(name, f);
    }
    return f;
  };

  // Which family a sample name belongs to, by expfmt's lookup order: exact name first, then a
  // summary or histogram whose suffixed sample this is; otherwise it starts an untyped family.
  const resolve = (name: string, line: number): Building => {
    const exact = families.get(name);
    if (exact) {
      if (exact.type === "histogram") {
        throw new LineError(
          "parse_error",
          `sample "${name}" of histogram "${name}" must be named ${name}_bucket, ${name}_sum or ${name}_count`,
        );
      }
      return exact;
    }
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (!name.endsWith(suffix)) continue;
      const base = families.get(name.slice(0, -suffix.length));
      if (!base) continue;
      if (base.type === "histogram") return base;
      if (base.type === "summary" && suffix !== "_bucket") return base;
    }
    return familyFor(name, line);
  };

  const parseLine = (line: string): void => {
    const len = line.length;
    let i = 0;
    while (i < len && isBlank(line.charCodeAt(i))) i++;
    if (i === len) return;
    if (line.charCodeAt(len - 1) === 13) {
      throw new LineError(
        "parse_error",
        "carriage return at end of line (CRLF line endings are not allowed)",
      );
    }

    const readName = (what: string): string => {
      const start = i;
      const c0 = line.charCodeAt(i);
      if (!(isNameStart(c0) || c0 === 58)) throw new LineError("parse_error", `invalid ${what}`);
      i++;
      while (i < len) {
        const c = line.charCodeAt(i);
        if (!(isNameChar(c) || c === 58)) break;
        i++;
      }
      return line.slice(start, i);
    };
    const skipBlanks = () => {
      while (i < len && isBlank(line.charCodeAt(i))) i++;
    };
    const readToken = (): string => {
      const start = i;
      while (i < len && !isBlank(line.charCodeAt(i))) i++;
      return line.slice(start, i);
    };

    if (line.charCodeAt(i) === 35 /* # */) {
      i++;
      skipBlanks();
      const keyword = readToken();
      if (keyword !== "HELP" && keyword !== "TYPE") return; // an ordinary comment
      skipBlanks();
      if (i === len) throw new LineError("parse_error", `${keyword} line without a metric name`);
      const name = readName("metric name in comment");
      if (i < len && !isBlank(line.charCodeAt(i))) {
        throw new LineError("parse_error", `invalid metric name in ${keyword} line`);
      }
      skipBlanks();
      if (keyword === "HELP") {
        const help = unescapeHelp(line.slice(i));
        const f = familyFor(name, lineNo);
        if (f.help !== undefined)
          throw new LineError("parse_error", `second HELP line for metric name "${name}"`);
        f.help = help;
        return;
      }
      const type = line.slice(i).trimEnd();
      if (!FAMILY_TYPES.includes(type as FamilyType)) {
        throw new LineError("parse_error", `unknown metric type "${type}"`);
      }
      const f = familyFor(name, lineNo);
      if (f.typeSet) throw new LineError("parse_error", `second TYPE line for metric name "${name}"`);
      if (f.lines.length > 0) {
        throw new LineError("parse_error", `TYPE line for metric name "${name}" after its samples`);
      }
      f.type = type as FamilyType;
      f.typeSet = true;
      return;
    }

    const name = readName("metric name");
    const labelNames: string[] = [];
    const labelValues: string[] = [];
    skipBlanks();
    if (i < len && line.charCodeAt(i) === 123 /* { */) {
      i++;
      for (;;) {
        skipBlanks();
        if (i >= len) throw new LineError("parse_error", "unterminated label set");
        if (line.charCodeAt(i) === 125 /* } */) {
          i++;
          break;
        }
        const start = i;
        if (!isNameStart(line.charCodeAt(i))) throw new LineError("parse_error", "invalid label name");
        while (i < len && isNameChar(line.charCodeAt(i))) i++;
        const label = line.slice(start, i);
        if (label === "__name__") throw new LineError("parse_error", 'label name "__name__" is reserved');
        if (labelNames.includes(label)) {
          throw new LineError("parse_error", `duplicate label name "${label}"`);
        }
        skipBlanks();
        if (line.charCodeAt(i) !== 61 /* = */) {
          throw new LineError("parse_error", `expected "=" after label name "${label}"`);
        }
        i++;
        skipBlanks();
        if (line.charCodeAt(i) !== 34 /* " */) {
          throw new LineError("parse_error", `expected '"' to start the value of label "${label}"`);
        }
        i++;
        const vStart = i;
        for (;;) {
          if (i >= len) throw new LineError("parse_error", `unterminated value of label "${label}"`);
          const c = line.charCodeAt(i);
          if (c === 34) break;
          if (c === 92 /* \ */) {
            const n = line.charCodeAt(i + 1);
            if (n !== 92 && n !== 34 && n !== 110) {
              throw new LineError("parse_error", `invalid escape sequence in value of label "${label}"`);
            }
            i += 2;
            continue;
          }
          i++;
        }
        // The escaped text is already canonical (only three escapes exist), so it is kept as is.
        labelNames.push(label);
        labelValues.push(line.slice(vStart, i));
        i++;
        skipBlanks();
        const sep = line.charCodeAt(i);
        if (sep === 44 /* , */) {
          i++;
          continue;
        }
        if (sep === 125) {
          i++;
          break;
        }
        throw new LineError("parse_error", `expected "," or "}" after the value of label "${label}"`);
      }
    }
    skipBlanks();
    if (i >= len) throw new LineError("parse_error", `missing value for "${name}"`);
    const rawValue = readToken();
    const value = normalizeValue(rawValue);
    if (value === undefined) throw new LineError("parse_error", `invalid value "${rawValue.slice(0, 40)}"`);
    skipBlanks();
    if (i < len) {
      const extra = readToken();
      if (TIMESTAMP.test(extra)) {
        throw new LineError("timestamp", "sample has a timestamp (not supported for collected files)");
      }
      throw new LineError("parse_error", `unexpected text after the value: "${extra.slice(0, 40)}"`);
    }

    const family = resolve(name, lineNo);
    if (family.type === "histogram" && name.endsWith("_bucket")) {
      const le = labelNames.indexOf("le");
      if (le === -1) throw new LineError("parse_error", `histogram bucket "${name}" without an "le" label`);
      if (normalizeValue(labelValues[le] as string) === undefined) {
        throw new LineError("parse_error", `histogram bucket "${name}" has an invalid "le" value`);
      }
    }
    if (family.type === "summary" && name === family.name) {
      const q = labelNames.indexOf("quantile");
      if (q === -1) throw new LineError("parse_error", `summary sample "${name}" without a "quantile" label`);
      if (normalizeValue(labelValues[q] as string) === undefined) {
        throw new LineError("parse_error", `summary sample "${name}" has an invalid "quantile" value`);
      }
    }

    let key = name;
    if (labelNames.length > 0) {
      const order = labelNames.map((_, k) => k);
      if (order.length > 1) {
        order.sort((a, b) => {
          const x = labelNames[a] as string;
          const y = labelNames[b] as string;
          return x < y ? -1 : x > y ? 1 : 0;
        });
      }
      key += "{";
      for (let k = 0; k < order.length; k++) {
        const idx = order[k] as number;
        key += `${k > 0 ? "," : ""}${labelNames[idx]}="${labelValues[idx]}"`;
      }
      key += "}";
    }
    if (seen.has(key)) throw new LineError("duplicate_series", `duplicate series ${key.slice(0, 200)}`);
    series++;
    if (series > opts.maxSeries) {
      throw new LineError(
        opts.seriesLimitReason ?? "too_many_series",
        `more than ${opts.maxSeries} series (limit reached)`,
      );
    }
    seen.add(key);
    family.lines.push(`${key} ${value}\n`);
  };

  const textLen = text.length;
  // A UTF-8 byte order mark is not part of the first line.
  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  while (pos < textLen) {
    let end = text.indexOf("\n", pos);
    if (end === -1) end = textLen;
    lineNo++;
    try {
      parseLine(text.slice(pos, end));
    } catch (err) {
      if (err instanceof LineError)
        return { ok: false, error: { reason: err.reason, line: lineNo, message: err.message } };
      throw err;
    }
    pos = end + 1;
  }

  const out: Family[] = [];
  const owners = new Map<string, Building>();
  for (const f of families.values()) {
    // A family announced by HELP/TYPE but without samples has nothing to serve.
    if (f.lines.length === 0) continue;
    for (const reserved of reservedNames(f.name, f.type)) {
      const other = owners.get(reserved);
      if (other && other !== f) {
        return {
          ok: false,
          error: {
            reason: "name_collision",
            line: Math.max(f.firstLine, other.firstLine),
            message: `${f.type} "${f.name}" and ${other.type} "${other.name}" both use the name "${reserved}"`,
          },
        };
      }
      owners.set(reserved, f);
    }
    out.push({ name: f.name, type: f.type, help: f.help, lines: f.lines.join(""), series: f.lines.length });
  }
  return { ok: true, families: out, series };
}

function unescapeHelp(raw: string): string {
  if (!raw.includes("\\")) return raw;
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = raw[i + 1];
    if (n === "\\") out += "\\";
    else if (n === "n") out += "\n";
    else throw new LineError("parse_error", "invalid escape sequence in HELP text");
    i++;
  }
  return out;
}
