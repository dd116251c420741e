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

import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
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

/** What the stage found in one line, handed with it to every destination's batcher. */
export interface LineFields {
  /** Promoted labels, in LABEL_FIELDS order: [label name, value] (only those promoted). */
  readonly labels: readonly (readonly [string, string])[];
  /** The promoted values as one string (stream key); "" when nothing was promoted. */
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
  registry: Registry;
  logger: Logger;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Index of the closing quote of a string whose content starts at `i`, or -1. */
function skipString(buf: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = buf[i] as number;
    if (c === QUOTE) return i;
    i += c === BACKSLASH ? 2 : 1;
  }
  return -1;
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

/** A scalar value at [s, e) as a string, or undefined (null, object, array, bad escape). */
function scalar(buf: Buffer, s: number, e: number): string | undefined {
  const c = buf[s];
  if (c === QUOTE) {
    // No backslash: the bytes are the string (the common case); else let JSON unescape it.
    let escaped = false;
    for (let i = s + 1; i < e - 1; i++) {
      if (buf[i] === BACKSLASH) {
        escaped = true;
        break;
      }
    }
    if (!escaped) return buf.toString("utf8", s + 1, e - 1);
    try {
      return JSON.parse(buf.toString("utf8", s, e)) as string;
    } catch {
      return undefined;
    }
  }
  if (c === LBRACE || c === LBRACKET || c === 0x6e /* n: null */) return undefined;
  const text = buf.toString("latin1", s, e);
  if (text === "true" || text === "false" || /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(text)) return text;
  return undefined;
}

/**
 * Finds the wanted top-level keys of a JSON line. `scan` fills `values` (index = wanted key's
 * index; undefined when absent) and is reused line after line.
 */
export class TopLevelScanner {
  /** Wanted keys as latin1 strings of their UTF-8 bytes (compared to keys read as latin1). */
  private readonly keys: Map<string, number>;
  /** True at index n when some wanted key is n bytes long (cheap filter before a key string). */
  private readonly lengths: boolean[] = [];
  readonly values: (string | undefined)[];

  constructor(wanted: readonly string[]) {
    this.keys = new Map(wanted.map((k, i) => [Buffer.from(k, "utf8").toString("latin1"), i]));
    for (const k of this.keys.keys()) this.lengths[k.length] = true;
    this.values = new Array<string | undefined>(wanted.length).fill(undefined);
  }

  /** Scan bytes [start, end) of `buf`; returns how many wanted keys were found. */
  scan(buf: Buffer, start: number, end: number): number {
    const values = this.values;
    values.fill(undefined);
    let i = start;
    while (i < end && isSpace(buf[i])) i++;
    if (buf[i] !== LBRACE) return 0;
    i++;
    let found = 0;
    const want = this.keys.size;
    for (;;) {
      while (i < end && isSpace(buf[i])) i++;
      if (buf[i] !== QUOTE) return found; // `}` or not JSON
      const ks = i + 1;
      const ke = skipString(buf, ks, end);
      if (ke < 0) return found;
      i = ke + 1;
      while (i < end && isSpace(buf[i])) i++;
      if (buf[i] !== COLON) return found;
      i++;
      while (i < end && isSpace(buf[i])) i++;
      if (i >= end) return found;
      const vs = i;
      const ve = skipValue(buf, vs, end);
      if (ve < 0) return found;
      if (this.lengths[ke - ks] === true) {
        const k = this.keys.get(buf.toString("latin1", ks, ke));
        if (k !== undefined && values[k] === undefined) {
          const v = scalar(buf, vs, ve);
          if (v !== undefined) {
            values[k] = v;
            if (++found === want) return found;
          }
        }
      }
      i = ve;
      while (i < end && isSpace(buf[i])) i++;
      if (buf[i] !== COMMA) return found;
      i++;
    }
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
  private readonly seen: Set<string>[];
  private readonly warned: boolean[];
  private readonly overLimit: Counter<"field" | "limit">;
  private readonly metadataTooLong: Counter<"field">;

  constructor(private readonly opts: FieldsOptions) {
    this.nLabels = opts.labelFields.length;
    this.scanner = new TopLevelScanner([...opts.labelFields, ...opts.metadataFields]);
    this.names = [...opts.labelFields, ...opts.metadataFields].map(sanitizeLabelName);
    this.seen = opts.labelFields.map(() => new Set<string>());
    this.warned = opts.labelFields.map(() => false);
    this.overLimit = new Counter({
      name: "log_shipper_label_values_over_limit_total",
      help: "LABEL_FIELDS values not promoted to a label (left in the line), by field and limit: values (the field already had LABEL_FIELDS_MAX_VALUES distinct values) or length (over 1024 bytes).",
      labelNames: ["field", "limit"],
      registers: [opts.registry],
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
    const values = scanner.values;
    let labels: [string, string][] | undefined;
    let labelKey = "";
    for (let k = 0; k < this.nLabels; k++) {
      const v = values[k];
      if (v === undefined || v === "") continue;
      if (!this.admit(k, v)) continue;
      if (labels === undefined) labels = [];
      labels.push([this.names[k] as string, v]);
      labelKey += `${k}\u0000${v}\u0000`;
    }
    let metadata: [string, string][] | undefined;
    for (let k = this.nLabels; k < values.length; k++) {
      const v = values[k];
      if (v === undefined || v === "") continue;
      if (v.length > MAX_METADATA_VALUE_BYTES / 3 && Buffer.byteLength(v) > MAX_METADATA_VALUE_BYTES) {
        this.metadataTooLong.inc({ field: this.opts.metadataFields[k - this.nLabels] as string });
        continue;
      }
      if (metadata === undefined) metadata = [];
      metadata.push([this.names[k] as string, v]);
    }
    if (labels === undefined && metadata === undefined) return undefined;
    return {
      labels: labels ?? [],
      labelKey,
      metadataWire: metadata !== undefined ? encodeMetadata(metadata) : undefined,
    };
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
