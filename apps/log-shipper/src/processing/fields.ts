// Fields of JSON lines that leave the line (issue 13 item 4): LABEL_FIELDS become Loki stream
// labels (bounded per field by LABEL_FIELDS_MAX_VALUES), METADATA_FIELDS become per-entry
// structured metadata (Loki 3), record attributes or trace/span ids (OTLP) and ECS fields
// (Elasticsearch). The line itself is never changed: a field that is promoted, refused by the cap
// or too long stays in the line as the app wrote it (as Promtail's `labels` stage leaves it).
//
// Only top-level keys of a line that is a JSON object count (nested objects are not looked into;
// a key that itself holds dots, `"trace.id"`, is matched whole). The line is read straight from
// its bytes in one pass that stops once every wanted key was seen — no JSON.parse of the line,
// no object per key; only a wanted value becomes a string. Strings, numbers and booleans are
// taken (numbers and booleans as written: `200`, `true`); null, objects and arrays are not. The
// first occurrence of a key wins. A line that is not JSON, or lacks a field, gets nothing.

import type { Log as Logger } from "@sidecar/shared";
import { Counter, Gauge, type Registry } from "@sidecar/shared";
import {
  BACKSLASH,
  COLON,
  COMMA,
  isSpace,
  LBRACE,
  LBRACKET,
  QUOTE,
  RBRACE,
  RBRACKET,
  skipString,
} from "../entry.js";
import { sanitizeLabelName } from "../labels.js";
import { varintSize, writeVarint } from "../sinks/loki/encode-protobuf.js";

/** Labels the shipper sets itself: LABEL_FIELDS/METADATA_FIELDS may not take these names. */
export const OWN_LABELS = ["filename", "level", "namespace", "pod", "container", "node"] as const;
/** Loki's default `max_label_names_per_series`: a stream with more labels is refused (400). */
export const LOKI_MAX_LABEL_NAMES = 15;
/** A label value longer than this (UTF-8 bytes) is not promoted (Loki's default limit is 2048). */
export const MAX_LABEL_VALUE_BYTES = 1024;
/** A metadata value longer than this (UTF-8 bytes) is not sent as metadata (the line keeps it). */
export const MAX_METADATA_VALUE_BYTES = 8192;

/**
 * What the stage found in one line, handed with it to every destination's batcher. Like the
 * line's bytes it is valid only during the writeLine call (the extractor reuses the object and
 * its metadata buffer for the next line): the batcher copies what it keeps.
 */
export interface LineFields {
  /** Promoted labels, in LABEL_FIELDS order: [label name, value] (only those promoted). */
  readonly labels: readonly (readonly [string, string])[];
  /**
   * The promoted values as one string that tells streams apart (with one label field, its value);
   * "" when nothing was promoted.
   */
  readonly labelKey: string;
  /**
   * METADATA_FIELDS found, as repeated Loki `EntryAdapter.structuredMetadata` fields (field 3,
   * LabelPairAdapter { name = 1; value = 2 }) — the bytes the batcher appends to the entry.
   * Undefined when none was found.
   */
  readonly metadataWire: Uint8Array | undefined;
}

export interface FieldsOptions {
  /** JSON keys promoted to labels. */
  labelFields: readonly string[];
  /** JSON keys sent as structured metadata. */
  metadataFields: readonly string[];
  /** Distinct values per label field; new values past it are not promoted. */
  maxValues: number;
  /**
   * Distinct combinations of promoted values (each is a stream per file and level): a line with
   * a new combination past it gets none of its labels. The per-field cap alone allows
   * maxValues^fields streams (50³ = 125,000 for three fields), each with its own buffers.
   */
  maxCombinations: number;
  registry: Registry;
  logger: Logger;
}

/** Index just past the value starting at `i` (any JSON value), or -1 when it runs past `end`. */
function skipValue(buf: Uint8Array, i: number, end: number): number {
  const c = buf[i];
  if (c === QUOTE) {
    const e = skipString(buf, i + 1, end);
    return e < 0 ? -1 : e + 1;
  }
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0;
    while (i < end) {
      const b = buf[i] as number;
      if (b === QUOTE) {
        const e = skipString(buf, i + 1, end);
        if (e < 0) return -1;
        i = e + 1;
        continue;
      }
      if (b === LBRACE || b === LBRACKET) depth++;
      else if (b === RBRACE || b === RBRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  while (i < end) {
    const b = buf[i] as number;
    if (b === COMMA || b === RBRACE || b === RBRACKET || isSpace(b)) return i;
    i++;
  }
  return i;
}

function isAscii(buf: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if ((buf[i] as number) >= 0x80) return false;
  return true;
}

/** How a found value is held: absent, its bytes as they are, or a string with escapes. */
const ABSENT = 0;
const RAW = 1;
const ESCAPED = 2;
/** The key was there with null, an object or an array: decided, no value. */
const NONE = 3;

/** `true`, `false` or a JSON number, at [s, e). */
function isPlainScalar(buf: Uint8Array, s: number, e: number): boolean {
  const c = buf[s] as number;
  if (c === 0x74) return e - s === 4 && buf[s + 1] === 0x72 && buf[s + 2] === 0x75 && buf[s + 3] === 0x65;
  if (c === 0x66)
    return (
      e - s === 5 && buf[s + 1] === 0x61 && buf[s + 2] === 0x6c && buf[s + 3] === 0x73 && buf[s + 4] === 0x65
    );
  // A number: digits, sign, point, exponent — loose (the app wrote JSON), but never other bytes.
  if (c !== 0x2d && (c < 0x30 || c > 0x39)) return false;
  for (let i = s + 1; i < e; i++) {
    const d = buf[i] as number;
    if (!((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d))
      return false;
  }
  return true;
}

/**
 * Finds the wanted top-level keys of a JSON line, reused line after line. After `scan`, a found
 * value is bytes [start, end) of the line: a string's content (without quotes; `kind` ESCAPED when
 * it holds escapes), or a number or boolean as written. `value(k)` gives it as a string.
 */
export class TopLevelScanner {
  /** Wanted keys as UTF-8 bytes (compared byte by byte with the line's raw key bytes). */
  private readonly keys: Uint8Array[];
  /** True at index n when some wanted key is n bytes long (cheap filter before comparing). */
  private readonly lengths: boolean[] = [];
  readonly kinds: Uint8Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  private buf: Buffer = Buffer.alloc(0);

  constructor(wanted: readonly string[]) {
    this.keys = wanted.map((k) => Buffer.from(k, "utf8"));
    for (const k of this.keys) this.lengths[k.length] = true;
    this.kinds = new Uint8Array(wanted.length);
    this.starts = new Int32Array(wanted.length);
    this.ends = new Int32Array(wanted.length);
  }

  /** The wanted key whose bytes are [s, e) of `buf`, not found yet; -1 when none. */
  private keyAt(buf: Buffer, s: number, e: number): number {
    const keys = this.keys;
    const len = e - s;
    outer: for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as Uint8Array;
      if (key.length !== len || this.kinds[k] !== ABSENT) continue;
      for (let j = 0; j < len; j++) if (buf[s + j] !== key[j]) continue outer;
      return k;
    }
    return -1;
  }

  /** Scan bytes [start, end) of `buf`; returns how many wanted keys were found (with any value). */
  scan(buf: Buffer, start: number, end: number): number {
    this.buf = buf;
    this.kinds.fill(ABSENT);
    let i = start;
    while (i < end && isSpace(buf[i] as number)) i++;
    if (buf[i] !== LBRACE) return 0;
    i++;
    let found = 0;
    const want = this.keys.length;
    for (;;) {
      while (i < end && isSpace(buf[i] as number)) i++;
      if (buf[i] !== QUOTE) return found; // `}` or not JSON
      const ks = i + 1;
      const ke = skipString(buf, ks, end);
      if (ke < 0) return found;
      i = ke + 1;
      while (i < end && isSpace(buf[i] as number)) i++;
      if (buf[i] !== COLON) return found;
      i++;
      while (i < end && isSpace(buf[i] as number)) i++;
      if (i >= end) return found;
      const vs = i;
      const ve = skipValue(buf, vs, end);
      if (ve < 0) return found;
      if (this.lengths[ke - ks] === true) {
        const k = this.keyAt(buf, ks, ke);
        if (k >= 0) {
          const c = buf[vs];
          let kind = ABSENT;
          if (c === QUOTE) {
            kind = RAW;
            for (let j = vs + 1; j < ve - 1; j++) {
              if (buf[j] === BACKSLASH) {
                kind = ESCAPED;
                break;
              }
            }
            this.starts[k] = vs + 1;
            this.ends[k] = ve - 1;
          } else if (isPlainScalar(buf, vs, ve)) {
            kind = RAW;
            this.starts[k] = vs;
            this.ends[k] = ve;
          }
          // null, objects and arrays are not taken — and the key is decided all the same (the
          // first occurrence counts).
          this.kinds[k] = kind === ABSENT ? NONE : kind;
          if (++found === want) return found;
        }
      }
      i = ve;
      while (i < end && isSpace(buf[i] as number)) i++;
      if (buf[i] !== COMMA) return found;
      i++;
    }
  }

  /** Wanted key `k`'s value as a string; undefined when absent, not a scalar, or badly escaped. */
  value(k: number): string | undefined {
    const kind = this.kinds[k];
    if (kind === ABSENT || kind === NONE) return undefined;
    const s = this.starts[k] as number;
    const e = this.ends[k] as number;
    if (kind === RAW) return this.buf.toString("utf8", s, e);
    try {
      return JSON.parse(this.buf.toString("utf8", s - 1, e + 1)) as string;
    } catch {
      return undefined;
    }
  }

  /** Bytes of value `k` (found, RAW): its length. */
  rawLength(k: number): number {
    return (this.ends[k] as number) - (this.starts[k] as number);
  }

  /** Whether value `k` can be copied as bytes (found and without escapes). */
  isRaw(k: number): boolean {
    return this.kinds[k] === RAW;
  }
}

/** Repeated `EntryAdapter.structuredMetadata` fields (tag 0x1a) for these pairs. */
export function encodeMetadata(pairs: readonly (readonly [string, string])[]): Uint8Array {
  const parts = pairs.map(([n, v]) => [Buffer.from(n, "utf8"), Buffer.from(v, "utf8")] as const);
  let size = 0;
  const lens: number[] = [];
  for (const [n, v] of parts) {
    const len = 1 + varintSize(n.length) + n.length + 1 + varintSize(v.length) + v.length;
    lens.push(len);
    size += 1 + varintSize(len) + len;
  }
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  parts.forEach(([n, v], i) => {
    out[p++] = 0x1a; // EntryAdapter.structuredMetadata
    p = writeVarint(out, p, lens[i] as number);
    out[p++] = 0x0a; // LabelPairAdapter.name
    p = writeVarint(out, p, n.length);
    p += n.copy(out, p);
    out[p++] = 0x12; // LabelPairAdapter.value
    p = writeVarint(out, p, v.length);
    p += v.copy(out, p);
  });
  return out;
}

/** Promotes LABEL_FIELDS and gathers METADATA_FIELDS of a line (see the header). */
export class FieldExtractor {
  private readonly scanner: TopLevelScanner;
  private readonly nLabels: number;
  /** Label names (sanitized), then metadata names (sanitized), by wanted index. */
  private readonly names: string[];
  /** The same names as UTF-8 bytes. */
  private readonly nameBytes: Uint8Array[];
  private readonly seen: Set<string>[];
  /** Label keys (LineFields.labelKey) admitted so far: at most maxCombinations. */
  private readonly combinations = new Set<string>();
  private warnedCombinations = false;
  /** The result, reused line after line (see LineFields), and its metadata bytes. */
  private readonly result: {
    labels: [string, string][];
    labelKey: string;
    metadataWire: Uint8Array | undefined;
  } = { labels: [], labelKey: "", metadataWire: undefined };
  private scratch = Buffer.allocUnsafe(1024);
  private readonly warned: boolean[];
  private readonly overLimit: Counter<"field" | "limit">;
  private readonly metadataTooLong: Counter<"field">;

  constructor(private readonly opts: FieldsOptions) {
    this.nLabels = opts.labelFields.length;
    this.scanner = new TopLevelScanner([...opts.labelFields, ...opts.metadataFields]);
    this.names = [...opts.labelFields, ...opts.metadataFields].map(sanitizeLabelName);
    this.nameBytes = this.names.map((n) => Buffer.from(n, "utf8"));
    this.seen = opts.labelFields.map(() => new Set<string>());
    this.warned = opts.labelFields.map(() => false);
    this.overLimit = new Counter({
      name: "log_shipper_label_values_over_limit_total",
      help: "LABEL_FIELDS values not promoted to a label (left in the line), by field and limit: values (the field already had LABEL_FIELDS_MAX_VALUES distinct values), length (over 1024 bytes) or combinations (the line's values would have made a combination past LABEL_FIELDS_MAX_COMBINATIONS; counted for each of its fields).",
      labelNames: ["field", "limit"],
      registers: [opts.registry],
    });
    const seen = this.seen;
    new Gauge({
      name: "log_shipper_label_values",
      help: "Distinct values each LABEL_FIELDS field has been promoted with since the start (at most LABEL_FIELDS_MAX_VALUES).",
      labelNames: ["field"],
      registers: [opts.registry],
      collect() {
        for (const [k, field] of opts.labelFields.entries())
          this.set({ field }, (seen[k] as Set<string>).size);
      },
    });
    this.metadataTooLong = new Counter({
      name: "log_shipper_metadata_values_too_long_total",
      help: "METADATA_FIELDS values over 8192 bytes, not sent as metadata (left in the line), by field.",
      labelNames: ["field"],
      registers: [opts.registry],
    });
  }

  /** The fields of bytes [start, end) of `buf`, or undefined when the line has none of them. */
  extract(buf: Buffer, start: number, end: number): LineFields | undefined {
    const scanner = this.scanner;
    if (scanner.scan(buf, start, end) === 0) return undefined;
    const out = this.result;
    // A fresh array (cheap) rather than `length = 0`, which V8 handles in its runtime.
    let labels: [string, string][] = [];
    let labelKey = "";
    for (let k = 0; k < this.nLabels; k++) {
      const v = scanner.value(k);
      if (v === undefined || v === "") continue;
      if (!this.admit(k, v)) continue;
      labels.push([this.names[k] as string, v]);
      // One label field (the usual case): its value is the key; several: index and value each.
      labelKey = this.nLabels === 1 ? v : `${labelKey}${k}\u0000${v}\u0000`;
    }
    if (labelKey !== "" && !this.combinations.has(labelKey) && !this.admitCombination(labelKey, labels)) {
      labels = [];
      labelKey = "";
    }
    const metadataWire = this.metadata(buf);
    if (labels.length === 0 && metadataWire === undefined) return undefined;
    out.labels = labels;
    out.labelKey = labelKey;
    out.metadataWire = metadataWire;
    return out;
  }

  /**
   * The found METADATA_FIELDS as structuredMetadata fields, in one buffer: a value without
   * escapes (the usual case) is copied from the line's bytes, never made a string.
   */
  private metadata(buf: Buffer): Uint8Array | undefined {
    const scanner = this.scanner;
    const n = this.names.length;
    let size = 0;
    let escaped: (Buffer | undefined)[] | undefined;
    for (let k = this.nLabels; k < n; k++) {
      let len: number;
      // Raw bytes are copied only when ASCII: anything else goes through a string, which also
      // replaces invalid UTF-8 (protobuf strings must be valid UTF-8, or Loki refuses the push).
      if (scanner.isRaw(k) && isAscii(buf, scanner.starts[k] as number, scanner.ends[k] as number))
        len = scanner.rawLength(k);
      else {
        const v = scanner.value(k);
        if (v === undefined) continue;
        const b = Buffer.from(v, "utf8");
        if (escaped === undefined) escaped = [];
        escaped[k] = b;
        len = b.length;
      }
      if (len === 0) continue;
      if (len > MAX_METADATA_VALUE_BYTES) {
        this.metadataTooLong.inc({ field: this.opts.metadataFields[k - this.nLabels] as string });
        continue;
      }
      const name = this.nameBytes[k] as Uint8Array;
      const pair = 1 + varintSize(name.length) + name.length + 1 + varintSize(len) + len;
      size += 1 + varintSize(pair) + pair;
    }
    if (size === 0) return undefined;
    if (this.scratch.length < size)
      this.scratch = Buffer.allocUnsafe(Math.max(size, this.scratch.length * 2));
    const out = this.scratch;
    let p = 0;
    for (let k = this.nLabels; k < n; k++) {
      const e = escaped?.[k];
      let len: number;
      if (e !== undefined) len = e.length;
      else if (scanner.isRaw(k)) len = scanner.rawLength(k);
      else continue;
      if (len === 0 || len > MAX_METADATA_VALUE_BYTES) continue;
      const name = this.nameBytes[k] as Uint8Array;
      out[p++] = 0x1a; // EntryAdapter.structuredMetadata
      p = writeVarint(out, p, 1 + varintSize(name.length) + name.length + 1 + varintSize(len) + len);
      out[p++] = 0x0a; // LabelPairAdapter.name
      p = writeVarint(out, p, name.length);
      for (let j = 0; j < name.length; j++) out[p++] = name[j] as number;
      out[p++] = 0x12; // LabelPairAdapter.value
      p = writeVarint(out, p, len);
      if (e !== undefined) {
        out.set(e, p);
        p += len;
      } else {
        const s = scanner.starts[k] as number;
        for (let j = 0; j < len; j++) out[p++] = buf[s + j] as number;
      }
    }
    return new Uint8Array(out.buffer, out.byteOffset, size);
  }

  /**
   * Whether a new combination of promoted values (`key`, with `labels`) may be one more stream,
   * counting a refusal for each of its fields. Values of a refused combination that each field
   * admitted stay admitted (their per-field cap counts them).
   */
  private admitCombination(key: string, labels: readonly [string, string][]): boolean {
    if (this.combinations.size < this.opts.maxCombinations) {
      this.combinations.add(key);
      return true;
    }
    for (const [name] of labels) {
      const k = this.names.indexOf(name);
      this.overLimit.inc({ field: this.opts.labelFields[k] as string, limit: "combinations" });
    }
    if (!this.warnedCombinations) {
      this.warnedCombinations = true;
      this.opts.logger.warn(
        {
          event: "label_combinations_over_limit",
          fields: this.opts.labelFields,
          maxCombinations: this.opts.maxCombinations,
        },
        `LABEL_FIELDS: the fields' values have made LABEL_FIELDS_MAX_COMBINATIONS (${this.opts.maxCombinations}) distinct combinations; lines with a new combination keep their fields in the line but get none of these labels (counted in log_shipper_label_values_over_limit_total{limit="combinations"}; logged once)`,
      );
    }
    return false;
  }

  /** Whether value `v` of label field `k` may be a label (the cap, the length), counting refusals. */
  private admit(k: number, v: string): boolean {
    const field = this.opts.labelFields[k] as string;
    if (v.length > MAX_LABEL_VALUE_BYTES / 3 && Buffer.byteLength(v) > MAX_LABEL_VALUE_BYTES) {
      this.overLimit.inc({ field, limit: "length" });
      return false;
    }
    const seen = this.seen[k] as Set<string>;
    if (seen.has(v)) return true;
    if (seen.size < this.opts.maxValues) {
      seen.add(v);
      return true;
    }
    this.overLimit.inc({ field, limit: "values" });
    if (!this.warned[k]) {
      this.warned[k] = true;
      this.opts.logger.warn(
        { event: "label_values_over_limit", field, label: this.names[k], maxValues: this.opts.maxValues },
        `LABEL_FIELDS: field "${field}" has had LABEL_FIELDS_MAX_VALUES (${this.opts.maxValues}) distinct values; lines with new values keep the field in the line but get no "${this.names[k]}" label (counted in log_shipper_label_values_over_limit_total; logged once per field)`,
      );
    }
    return false;
  }
}
