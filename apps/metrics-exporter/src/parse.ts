// Parser and validator for the Prometheus text exposition format 0.0.4, following the rules of the
// reference parser (prometheus/common expfmt, which `promtool check metrics` uses): HELP/TYPE
// lines, comments, label-value escapes (\\ \" \n only), NaN/±Inf, histogram and summary families
// found by their _bucket/_sum/_count suffixes, and samples of one family allowed anywhere in the
// file. Stricter where the exporter must be: sample timestamps, duplicate series and names that
// would collide in either output format reject the whole file, and caps on series, families and
// labels per series stop parsing early so one file can never cost unbounded memory. Every check is
// linear in the file (a label set is sorted once, duplicates found next to each other), and
// parseTextAsync gives the event loop a turn every few milliseconds, so no file, however shaped,
// can keep /healthz or SIGTERM waiting.
import { FAMILY_TYPES, type Family, type FamilyType, reservedNames } from "./families.js";
import { type KeyHolder, SeriesSet } from "./series-set.js";

export type FileErrorReason =
  | "parse_error"
  | "timestamp"
  | "duplicate_series"
  | "name_collision"
  | "too_many_series"
  | "total_series_cap"
  | "too_many_labels"
  | "too_many_families"
  | "total_bytes_cap"
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
  | {
      readonly ok: true;
      readonly families: Family[];
      readonly series: number;
      /** UTF-8 bytes of the served families' HELP texts (kept as strings and in every rendered format). */
      readonly helpBytes: number;
    }
  | { readonly ok: false; readonly error: FileError };

export interface ParseOptions {
  /** Stop with an error as soon as the file has more series than this. */
  readonly maxSeries: number;
  /** The reason reported when `maxSeries` is exceeded (the per-file or the total budget). */
  readonly seriesLimitReason?: "too_many_series" | "total_series_cap";
  /** Reject a series with more labels than this (default: no limit). */
  readonly maxLabels?: number;
  /** Reject a file that names more families than this, HELP/TYPE-only ones included (default: no limit). */
  readonly maxFamilies?: number;
  /** Stop with `total_bytes_cap` once the HELP texts exceed this many UTF-8 bytes (default: no limit). */
  readonly maxHelpBytes?: number;
}

// One family while the file is parsed. Its lines live in the file's one LineBuffer, as runs of
// consecutive lines: [start, end) is the current run, `runs` the earlier ones (flattened pairs),
// needed only when the file interleaves families. No per-family buffer: a file of 50k one-series
// families used to cost 50k buffers.
interface Building {
  name: string;
  type: FamilyType;
  typeSet: boolean;
  help: string | undefined;
  count: number;
  start: number;
  end: number;
  runs: number[] | undefined;
  firstLine: number;
}

/** A growable byte buffer of sample lines: lines are encoded as they are parsed, not kept as strings. */
class LineBuffer implements KeyHolder {
  private buf = Buffer.allocUnsafe(1024);
  used = 0;

  /** Make room for a line built from a source line of `chars` UTF-16 code units. */
  reserve(chars: number): void {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit; a normalised line is at most a few
    // characters longer than its source (a value spelled `inf` becomes `+Inf`).
    const need = this.used + (chars + 8) * 3;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
  }

  /** Append `s`; `ascii` (known by the caller) allows the cheaper one-byte copy. */
  str(s: string, ascii: boolean): void {
    this.used += this.buf.write(s, this.used, ascii ? "latin1" : "utf8");
  }

  /** Append the ASCII characters `s[from, to)` without creating a substring. */
  asciiFrom(s: string, from: number, to: number): void {
    const buf = this.buf;
    let used = this.used;
    for (let k = from; k < to; k++) buf[used++] = s.charCodeAt(k);
    this.used = used;
  }

  byte(b: number): void {
    this.buf[this.used++] = b;
  }

  get bytes(): Buffer {
    return this.buf;
  }

  /** Drop everything after `start` (a line that turned out to be a duplicate). */
  truncate(start: number): void {
    this.used = start;
  }

  endLine(): void {
    this.buf[this.used++] = 10;
  }
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
  if (FLOAT.test(token)) {
    // Syntactically a float but beyond float64 (`1e400`): Go's strconv.ParseFloat fails with
    // ErrRange, and Prometheus then rejects the whole scrape, not just this series. Only an
    // exponent or more than 308 digits can overflow, so the common short decimal skips the check.
    if ((token.length > 308 || token.includes("e") || token.includes("E")) && !Number.isFinite(Number(token)))
      return undefined;
    return token;
  }
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
  const p = new TextParser(opts, text);
  while (!p.step(Number.POSITIVE_INFINITY));
  return p.result();
}

/** How long parsing may hold the event loop before it gives other work (health checks, signals) a turn. */
export const PARSE_SLICE_MS = 10;

/** parseText that yields to the event loop every `sliceMs` of work. */
export async function parseTextAsync(
  text: string,
  opts: ParseOptions,
  sliceMs = PARSE_SLICE_MS,
): Promise<ParseResult> {
  const p = new TextParser(opts, text);
  while (!p.step(performance.now() + sliceMs)) await new Promise((r) => setImmediate(r));
  return p.result();
}

/**
 * A fresh copy of a short string. Slices of the file text are "sliced strings" in V8 that keep the
 * whole file text alive; names and HELP texts kept after the parse must not pin it.
 */
function detach(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

// One parser per file. Methods and reused scratch arrays instead of per-line closures and objects:
// a 10k-series file must parse in milliseconds and leave little garbage behind (a sidecar's heap).
class TextParser {
  private readonly opts: ParseOptions;
  private readonly maxLabels: number;
  private readonly maxFamilies: number;
  private readonly maxHelpBytes: number;
  private helpBytes = 0;
  private readonly text: string;
  private pos: number;
  private error: FileError | undefined;
  private readonly families = new Map<string, Building>();
  private readonly out = new LineBuffer();
  private readonly seen = new SeriesSet();
  private series = 0;
  private lineNo = 0;
  private line = "";
  private i = 0;
  private len = 0;
  private last: Building | undefined;
  // Scratch, reused for every sample line.
  private readonly labelNames: string[] = [];
  private readonly valueStarts: number[] = [];
  private readonly valueEnds: number[] = [];
  private readonly order: number[] = [];

  constructor(opts: ParseOptions, text: string) {
    this.opts = opts;
    this.maxLabels = opts.maxLabels ?? Number.POSITIVE_INFINITY;
    this.maxFamilies = opts.maxFamilies ?? Number.POSITIVE_INFINITY;
    this.maxHelpBytes = opts.maxHelpBytes ?? Number.POSITIVE_INFINITY;
    this.text = text;
    // A UTF-8 byte order mark is not part of the first line.
    this.pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  }

  /** Parse lines until done (true) or until `until` (performance.now() time) has passed (false). */
  step(until: number): boolean {
    const text = this.text;
    const textLen = text.length;
    let pos = this.pos;
    let n = 0;
    while (pos < textLen && this.error === undefined) {
      // The clock is read every 64 lines or after a long line (a line may be megabytes long).
      if ((++n & 63) === 0 && performance.now() > until) break;
      let end = text.indexOf("\n", pos);
      if (end === -1) end = textLen;
      this.lineNo++;
      this.line = text.slice(pos, end);
      this.len = this.line.length;
      this.i = 0;
      try {
        this.parseLine();
      } catch (err) {
        if (!(err instanceof LineError)) throw err;
        this.error = { reason: err.reason, line: this.lineNo, message: err.message };
      }
      pos = end + 1;
      if (this.len > 65_536) n = 63;
    }
    this.pos = pos;
    this.line = "";
    return pos >= textLen || this.error !== undefined;
  }

  result(): ParseResult {
    if (this.error) return { ok: false, error: this.error };
    return this.finish();
  }

  private finish(): ParseResult {
    const out: Family[] = [];
    const owners = new Map<string, Building>();
    // All the file's lines in one buffer of exactly their size, each family's lines together; a
    // family's `lines` is a view into it.
    const all = Buffer.allocUnsafeSlow(this.out.used);
    const src = this.out.bytes;
    let at = 0;
    let helpBytes = 0;
    for (const f of this.families.values()) {
      // A family announced by HELP/TYPE but without samples has nothing to serve.
      if (f.count === 0) continue;
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
      const from = at;
      if (f.runs)
        for (let k = 0; k < f.runs.length; k += 2) at += src.copy(all, at, f.runs[k], f.runs[k + 1]);
      at += src.copy(all, at, f.start, f.end);
      if (f.help !== undefined) helpBytes += Buffer.byteLength(f.help, "utf8");
      out.push({
        name: detach(f.name),
        type: f.type,
        help: f.help === undefined ? undefined : detach(f.help),
        lines: all.subarray(from, at),
        series: f.count,
      });
    }
    return { ok: true, families: out, series: this.series, helpBytes };
  }

  private skipBlanks(): void {
    const line = this.line;
    while (this.i < this.len && isBlank(line.charCodeAt(this.i))) this.i++;
  }

  private readToken(): string {
    const start = this.i;
    const line = this.line;
    while (this.i < this.len && !isBlank(line.charCodeAt(this.i))) this.i++;
    return line.slice(start, this.i);
  }

  /** Advance over a metric name; returns its start index. */
  private scanName(what: string): number {
    const line = this.line;
    const start = this.i;
    const c0 = line.charCodeAt(this.i);
    if (!(isNameStart(c0) || c0 === 58)) throw new LineError("parse_error", `invalid ${what}`);
    this.i++;
    while (this.i < this.len) {
      const c = line.charCodeAt(this.i);
      if (!(isNameChar(c) || c === 58)) break;
      this.i++;
    }
    return start;
  }

  private familyFor(name: string): Building {
    let f = this.families.get(name);
    if (!f) {
      if (this.families.size >= this.maxFamilies) {
        throw new LineError(
          "too_many_families",
          `more than ${this.maxFamilies} metric families (limit reached)`,
        );
      }
      f = {
        name,
        type: "untyped",
        typeSet: false,
        help: undefined,
        count: 0,
        start: 0,
        end: 0,
        runs: undefined,
        firstLine: this.lineNo,
      };
      this.families.set(name, f);
    }
    return f;
  }

  // Which family a sample name belongs to, by expfmt's lookup order: exact name first, then a
  // summary or histogram whose suffixed sample this is; otherwise it starts an untyped family.
  private resolve(name: string): Building {
    const exact = this.families.get(name);
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
      const base = this.families.get(name.slice(0, -suffix.length));
      if (!base) continue;
      if (base.type === "histogram") return base;
      if (base.type === "summary" && suffix !== "_bucket") return base;
    }
    return this.familyFor(name);
  }

  private parseLine(): void {
    this.skipBlanks();
    if (this.i === this.len) return;
    const line = this.line;
    if (line.charCodeAt(this.len - 1) === 13) {
      throw new LineError(
        "parse_error",
        "carriage return at end of line (CRLF line endings are not allowed)",
      );
    }
    if (line.charCodeAt(this.i) === 35 /* # */) {
      this.parseComment();
      return;
    }
    this.parseSample();
  }

  private parseComment(): void {
    const line = this.line;
    this.i++;
    this.skipBlanks();
    const keyword = this.readToken();
    if (keyword !== "HELP" && keyword !== "TYPE") return; // an ordinary comment
    this.skipBlanks();
    if (this.i === this.len) throw new LineError("parse_error", `${keyword} line without a metric name`);
    const name = line.slice(this.scanName("metric name in comment"), this.i);
    if (this.i < this.len && !isBlank(line.charCodeAt(this.i))) {
      throw new LineError("parse_error", `invalid metric name in ${keyword} line`);
    }
    this.skipBlanks();
    if (keyword === "HELP") {
      const help = unescapeHelp(line.slice(this.i));
      this.helpBytes += Buffer.byteLength(help, "utf8");
      if (this.helpBytes > this.maxHelpBytes) {
        throw new LineError(
          "total_bytes_cap",
          `HELP texts over ${this.maxHelpBytes} bytes (what MAX_TOTAL_BYTES leaves)`,
        );
      }
      const f = this.familyFor(name);
      if (f.help !== undefined)
        throw new LineError("parse_error", `second HELP line for metric name "${name}"`);
      f.help = help;
      return;
    }
    const type = line.slice(this.i).trimEnd();
    if (!FAMILY_TYPES.includes(type as FamilyType)) {
      throw new LineError("parse_error", `unknown metric type "${type.slice(0, 40)}"`);
    }
    const f = this.familyFor(name);
    if (f.typeSet) throw new LineError("parse_error", `second TYPE line for metric name "${name}"`);
    if (f.count > 0) {
      throw new LineError("parse_error", `TYPE line for metric name "${name}" after its samples`);
    }
    f.type = type as FamilyType;
    f.typeSet = true;
  }

  private parseSample(): void {
    const line = this.line;
    const len = this.len;
    const lineStart = this.i;
    const nameStart = this.scanName("metric name");
    const name = line.slice(nameStart, this.i);
    const names = this.labelNames;
    const vStarts = this.valueStarts;
    const vEnds = this.valueEnds;
    names.length = 0;
    vStarts.length = 0;
    vEnds.length = 0;
    // Canonical = already exactly as we would write it (labels sorted, no optional blanks or
    // trailing comma, canonical value): then the line itself is stored, without building a copy.
    let canonical = lineStart === 0;
    // Label values are the only place for non-ASCII characters.
    let ascii = true;
    // Label names in strictly ascending order so far: then no two can be equal, and no sort is needed.
    let sorted = true;
    const afterName = this.i;
    let keyEnd = afterName;
    let valueMark = afterName;
    this.skipBlanks();
    if (this.i < len && line.charCodeAt(this.i) === 123 /* { */) {
      if (this.i !== afterName) canonical = false;
      this.i++;
      for (;;) {
        const before = this.i;
        this.skipBlanks();
        if (this.i !== before) canonical = false;
        if (this.i >= len) throw new LineError("parse_error", "unterminated label set");
        if (line.charCodeAt(this.i) === 125 /* } */) {
          if (names.length > 0) canonical = false; // a trailing comma
          this.i++;
          break;
        }
        const start = this.i;
        if (!isNameStart(line.charCodeAt(this.i))) throw new LineError("parse_error", "invalid label name");
        while (this.i < len && isNameChar(line.charCodeAt(this.i))) this.i++;
        const label = line.slice(start, this.i);
        if (label === "__name__") throw new LineError("parse_error", 'label name "__name__" is reserved');
        if (names.length >= this.maxLabels) {
          throw new LineError(
            "too_many_labels",
            `series "${name.slice(0, 100)}" has more than ${this.maxLabels} labels`,
          );
        }
        const prev = names[names.length - 1];
        if (prev !== undefined && prev >= label) {
          if (prev === label) throw new LineError("parse_error", `duplicate label name "${label}"`);
          sorted = false;
          canonical = false;
        }
        let mark = this.i;
        this.skipBlanks();
        if (line.charCodeAt(this.i) !== 61 /* = */) {
          throw new LineError("parse_error", `expected "=" after label name "${label}"`);
        }
        this.i++;
        if (this.i !== mark + 1) canonical = false;
        mark = this.i;
        this.skipBlanks();
        if (this.i !== mark) canonical = false;
        if (line.charCodeAt(this.i) !== 34 /* " */) {
          throw new LineError("parse_error", `expected '"' to start the value of label "${label}"`);
        }
        this.i++;
        const vStart = this.i;
        for (;;) {
          if (this.i >= len) throw new LineError("parse_error", `unterminated value of label "${label}"`);
          const c = line.charCodeAt(this.i);
          if (c === 34) break;
          if (c > 127) ascii = false;
          if (c === 92 /* \ */) {
            const n = line.charCodeAt(this.i + 1);
            if (n !== 92 && n !== 34 && n !== 110) {
              throw new LineError("parse_error", `invalid escape sequence in value of label "${label}"`);
            }
            this.i += 2;
            continue;
          }
          this.i++;
        }
        // The escaped text is already canonical (only three escapes exist), so it is kept as is.
        // An empty value means "no such label" to Prometheus: it is left out of the stored line
        // (below), so `a{b=""}` and `a` are one series to the duplicate checks, as they are to it.
        if (this.i === vStart) canonical = false;
        names.push(label);
        vStarts.push(vStart);
        vEnds.push(this.i);
        this.i++;
        mark = this.i;
        this.skipBlanks();
        if (this.i !== mark) canonical = false;
        const sep = line.charCodeAt(this.i);
        if (sep === 44 /* , */) {
          this.i++;
          continue;
        }
        if (sep === 125) {
          this.i++;
          break;
        }
        throw new LineError("parse_error", `expected "," or "}" after the value of label "${label}"`);
      }
      keyEnd = this.i;
      valueMark = this.i;
      this.skipBlanks();
    }
    if (this.i >= len) throw new LineError("parse_error", `missing value for "${name}"`);
    if (this.i !== valueMark + 1 || line.charCodeAt(valueMark) !== 32) canonical = false;
    const rawValue = this.readToken();
    const value = normalizeValue(rawValue);
    if (value === undefined) throw new LineError("parse_error", `invalid value "${rawValue.slice(0, 40)}"`);
    if (value !== rawValue) canonical = false;
    const valueEnd = this.i;
    this.skipBlanks();
    if (this.i < len) {
      const extra = this.readToken();
      if (TIMESTAMP.test(extra)) {
        throw new LineError("timestamp", "sample has a timestamp (not supported for collected files)");
      }
      throw new LineError("parse_error", `unexpected text after the value: "${extra.slice(0, 40)}"`);
    }
    if (valueEnd !== len) canonical = false;

    // Label names out of order: sort once (n log n) and find duplicates side by side.
    const order = this.order;
    order.length = 0;
    if (!sorted) {
      for (let k = 0; k < names.length; k++) order.push(k);
      order.sort((a, b) => {
        const x = names[a] as string;
        const y = names[b] as string;
        return x < y ? -1 : x > y ? 1 : 0;
      });
      for (let k = 1; k < order.length; k++) {
        const label = names[order[k] as number] as string;
        if (label === names[order[k - 1] as number]) {
          throw new LineError("parse_error", `duplicate label name "${label}"`);
        }
      }
    }

    // Consecutive samples of one family are the common case; histogram samples are resolved by suffix.
    let family = this.last;
    if (family === undefined || family.name !== name || family.type === "histogram")
      family = this.resolve(name);
    if (family.type === "histogram" && name.endsWith("_bucket"))
      this.checkFloatLabel(name, "le", "histogram bucket");
    if (family.type === "summary" && name === family.name)
      this.checkFloatLabel(name, "quantile", "summary sample");

    // The normalised line is written straight into the family's buffer; the series key is the
    // bytes up to the value, checked for duplicates where they lie.
    const out = this.out;
    const outStart = out.used;
    out.reserve(len);
    let keyEndByte: number;
    if (canonical) {
      out.str(keyEnd === len ? line : line.slice(0, keyEnd), ascii);
      keyEndByte = out.used;
      out.asciiFrom(line, keyEnd, len);
    } else {
      let text = name;
      let written = 0;
      if (names.length > 0) {
        // A long label set is joined from parts: repeated `+=` on a string this long would be
        // a deep rope that V8 flattens at great cost.
        const parts: string[] = [];
        for (let k = 0; k < names.length; k++) {
          const idx = sorted ? k : (order[k] as number);
          const vs = vStarts[idx] as number;
          const ve = vEnds[idx] as number;
          if (vs === ve) continue;
          parts.push(`${written++ === 0 ? "{" : ","}${names[idx]}="${line.slice(vs, ve)}"`);
        }
        if (written > 0) text += `${parts.join("")}}`;
      }
      out.str(text, ascii);
      keyEndByte = out.used;
      out.byte(32);
      out.asciiFrom(value, 0, value.length);
    }
    if (!this.seen.add(out, outStart, keyEndByte)) {
      const series = out.bytes.toString("utf8", outStart, keyEndByte);
      out.truncate(outStart);
      throw new LineError("duplicate_series", `duplicate series ${series.slice(0, 200)}`);
    }
    this.series++;
    if (this.series > this.opts.maxSeries) {
      throw new LineError(
        this.opts.seriesLimitReason ?? "too_many_series",
        `more than ${this.opts.maxSeries} series (limit reached)`,
      );
    }
    out.endLine();
    // Extend the family's current run, or start a new one when another family's lines came between.
    if (family.count > 0 && family.end === outStart) {
      family.end = out.used;
    } else {
      if (family.count > 0) {
        if (family.runs === undefined) family.runs = [];
        family.runs.push(family.start, family.end);
      }
      family.start = outStart;
      family.end = out.used;
    }
    family.count++;
    this.last = family;
  }

  private checkFloatLabel(name: string, label: string, what: string): void {
    const k = this.labelNames.indexOf(label);
    if (k === -1) throw new LineError("parse_error", `${what} "${name}" without a "${label}" label`);
    const raw = this.line.slice(this.valueStarts[k] as number, this.valueEnds[k] as number);
    if (normalizeValue(raw) === undefined)
      throw new LineError("parse_error", `${what} "${name}" has an invalid "${label}" value`);
  }
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
