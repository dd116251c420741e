// OTLP/HTTP logs in protobuf: a sealed batch → one ExportLogsServiceRequest, hand-encoded from the
// batch's wire-form entries (no protobuf library, no object per line: each entry's time and line
// bytes are read in place and written straight into a reused scratch buffer), then gzip level 1.
//
//   ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
//   ResourceLogs  { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
//   Resource      { repeated KeyValue attributes = 1; }
//   ScopeLogs     { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
//   InstrumentationScope { string name = 1; }
//   LogRecord     { fixed64 time_unix_nano = 1; SeverityNumber severity_number = 2;
//                   string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6;
//                   bytes trace_id = 9; bytes span_id = 10; fixed64 observed_time_unix_nano = 11; }
//   KeyValue      { string key = 1; AnyValue value = 2; }
//   AnyValue      { oneof value { string string_value = 1; ... } }
//
// The mapping (README "OTLP"): one ResourceLogs whose resource holds the pod (k8s.*), service.name
// (the `job` static label) and the other static labels; one ScopeLogs; per line a LogRecord with
// the entry's time, the encode time as observed time, the severity from the `level` label, the line
// as a string body, and log.file.name / log.file.path from the `filename` label, and the labels
// promoted from the line's fields (LABEL_FIELDS) as attributes. The parts that are the same for
// every line of a stream (severity, file attributes) are encoded once per stream. A line's
// structured metadata (METADATA_FIELDS) become attributes of its record, except `trace_id` and
// `span_id` holding a valid id (32 / 16 hex digits, not all zero): those become the record's own
// trace_id / span_id (metadataParts).
import type { ZlibOptions } from "node:zlib";
import { compactBody } from "../compact.js";
import {
  type BatchEncoder,
  type BatchStream,
  type EncodedBody,
  GrowableBuffer,
  readPair,
  varintSize,
  writeVarint,
} from "../loki/encode-protobuf.js";
import { zlib } from "../zlib.js";

/**
 * gzip for OTLP bodies: level 1 (most of gzip's gain at a fraction of the default level's CPU) and
 * memLevel 9 (zlib's largest hash table, 128 KiB more than the default 8 while compressing: fewer
 * collisions to walk; ~4 % less gzip CPU on these requests, the same size within 0.1 %;
 * bench/log-shipper-otlp-encode.mjs).
 */
export const OTLP_GZIP: Readonly<ZlibOptions> = Object.freeze({ level: 1, memLevel: 9 });

/** The instrumentation scope every record is sent under. */
export const SCOPE_NAME = "sidecar-log-shipper";

/** OTLP SeverityNumber for each `level` label value (the first number of each range). */
export const SEVERITY_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  trace: 1,
  debug: 5,
  info: 9,
  warn: 13,
  error: 17,
  fatal: 21,
});

/** Pod labels (downward API) → OpenTelemetry semantic-convention resource attributes. */
export const POD_RESOURCE_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({
  namespace: "k8s.namespace.name",
  pod: "k8s.pod.name",
  container: "k8s.container.name",
  node: "k8s.node.name",
});

/** The resource attributes of every request, in order: pod, service.name (from `job`), the rest. */
export function resourceAttributes(
  staticLabels: Readonly<Record<string, string>>,
  podLabels: Readonly<Record<string, string>>,
): [string, string][] {
  const out: [string, string][] = [];
  for (const [label, key] of Object.entries(POD_RESOURCE_ATTRIBUTES)) {
    const v = podLabels[label];
    if (v !== undefined && v !== "") out.push([key, v]);
  }
  const job = staticLabels.job;
  if (job !== undefined && job !== "") out.push(["service.name", job]);
  for (const k of Object.keys(staticLabels).sort()) {
    if (k !== "job") out.push([k, staticLabels[k] as string]);
  }
  return out;
}

/** What a stream's labels contribute to each of its records. */
export interface RecordParts {
  severityNumber: number;
  /** The `level` label value, or undefined when the line had no level. */
  severityText: string | undefined;
  /** Record attributes: log.file.name and log.file.path from `filename`. */
  attributes: [string, string][];
}

export function recordParts(
  labels: Readonly<Record<string, string>>,
  promoted?: Readonly<Record<string, string>>,
): RecordParts {
  const level = labels.level;
  const attributes: [string, string][] = [];
  const filename = labels.filename;
  if (filename !== undefined && filename !== "") {
    attributes.push(["log.file.name", filename.slice(filename.lastIndexOf("/") + 1)]);
    attributes.push(["log.file.path", filename]);
  }
  if (promoted !== undefined) for (const [k, v] of Object.entries(promoted)) attributes.push([k, v]);
  const severityNumber = level !== undefined ? (SEVERITY_NUMBERS[level] ?? 0) : 0;
  return { severityNumber, severityText: severityNumber > 0 ? level : undefined, attributes };
}

/** A line's structured metadata as OTLP sees it: the record's own ids, and attributes. */
export interface MetadataParts {
  /** Lowercase hex, 32 digits (16 bytes) / 16 digits (8 bytes). */
  traceId: string | undefined;
  spanId: string | undefined;
  attributes: [string, string][];
}

const HEX_ID = /^[0-9a-fA-F]+$/;

/** A valid OTLP id: `digits` hex digits, not all zero (the spec's invalid id). */
function validId(v: string, digits: number): boolean {
  return v.length === digits && HEX_ID.test(v) && !/^0+$/.test(v);
}

export function metadataParts(metadata: readonly [string, string][]): MetadataParts {
  const out: MetadataParts = { traceId: undefined, spanId: undefined, attributes: [] };
  for (const [k, v] of metadata) {
    if (k === "trace_id" && out.traceId === undefined && validId(v, 32)) out.traceId = v.toLowerCase();
    else if (k === "span_id" && out.spanId === undefined && validId(v, 16)) out.spanId = v.toLowerCase();
    else out.attributes.push([k, v]);
  }
  return out;
}

/** The LogRecord fields of a line's metadata: attributes (6), trace_id (9), span_id (10). */
function metadataFields(metadata: readonly [string, string][]): Buffer {
  const m = metadataParts(metadata);
  const parts = m.attributes.map(([k, v]) => keyValueField(0x32, k, v));
  if (m.traceId !== undefined) parts.push(lenField(0x4a, Buffer.from(m.traceId, "hex")));
  if (m.spanId !== undefined) parts.push(lenField(0x52, Buffer.from(m.spanId, "hex")));
  return Buffer.concat(parts);
}

// --- small protobuf writers (cold: used for the per-stream and per-sink parts) -------------------

function lenField(tag: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(1 + varintSize(payload.length));
  head[0] = tag;
  writeVarint(head, 1, payload.length);
  return Buffer.concat([head, payload]);
}

function stringField(tag: number, s: string): Buffer {
  return lenField(tag, Buffer.from(s, "utf8"));
}

/** A KeyValue with a string AnyValue, as field `tag` of its parent. */
export function keyValueField(tag: number, key: string, value: string): Buffer {
  return lenField(tag, Buffer.concat([stringField(0x0a, key), lenField(0x12, stringField(0x0a, value))]));
}

function varintField(tag: number, v: number): Buffer {
  const b = Buffer.allocUnsafe(1 + varintSize(v));
  b[0] = tag;
  writeVarint(b, 1, v);
  return b;
}

/**
 * Write `sec`·10⁹ + `nanos` as a little-endian fixed64 at `pos` (0 ≤ sec < 2^34), exactly, without
 * BigInt: the product exceeds 2^53, so it is assembled from parts that stay below it.
 */
export function writeFixed64Nanos(b: Uint8Array, pos: number, sec: number, nanos: number): void {
  const sHi = Math.floor(sec / 65536);
  const sLo = sec - sHi * 65536;
  const a = sHi * 1e9; // < 2^48: the high part, in units of 2^16
  const aHi = Math.floor(a / 65536);
  const c = (a - aHi * 65536) * 65536 + sLo * 1e9 + nanos; // < 2^48
  const cHi = Math.floor(c / 4294967296);
  const lo = c - cHi * 4294967296;
  const hi = aHi + cHi;
  b[pos] = lo & 0xff;
  b[pos + 1] = (lo >>> 8) & 0xff;
  b[pos + 2] = (lo >>> 16) & 0xff;
  b[pos + 3] = lo >>> 24;
  b[pos + 4] = hi & 0xff;
  b[pos + 5] = (hi >>> 8) & 0xff;
  b[pos + 6] = (hi >>> 16) & 0xff;
  b[pos + 7] = hi >>> 24;
}

/** Encoded per-stream record fields: severity (2, 3) before the body, attributes (6) after it. */
interface StreamBytes {
  mid: Buffer;
  attrs: Buffer;
}

export interface OtlpEncoderOptions {
  staticLabels: Readonly<Record<string, string>>;
  podLabels: Readonly<Record<string, string>>;
  compression: "gzip" | "none";
  /** The observed time (epoch ms); Date.now by default (tests pass a fixed clock). */
  now?: () => number;
}

/** ExportLogsServiceRequest + gzip (or not). The uncompressed request is built in a reused buffer. */
export class OtlpProtobufEncoder implements BatchEncoder {
  private readonly scratch = new GrowableBuffer(64 * 1024);
  /** `Resource` as ResourceLogs field 1, and `InstrumentationScope` as ScopeLogs field 1. */
  private readonly resourceField: Buffer;
  private readonly scopeField: Buffer;
  /** Room left before the records for the two enclosing headers (tags, lengths, fixed parts). */
  private readonly headroom: number;
  /** Per label set (the batcher keeps one object per stream): its record fields. */
  private readonly streamBytes = new WeakMap<object, StreamBytes>();
  private readonly compression: "gzip" | "none";
  private readonly now: () => number;

  constructor(opts: OtlpEncoderOptions) {
    const attrs = resourceAttributes(opts.staticLabels, opts.podLabels).map(([k, v]) =>
      keyValueField(0x0a, k, v),
    );
    this.resourceField = lenField(0x0a, Buffer.concat(attrs));
    this.scopeField = lenField(0x0a, stringField(0x0a, SCOPE_NAME));
    this.headroom = 1 + 10 + this.resourceField.length + 1 + 10 + this.scopeField.length;
    this.compression = opts.compression;
    this.now = opts.now ?? Date.now;
  }

  private bytesOf(
    labels: Readonly<Record<string, string>>,
    promoted: Readonly<Record<string, string>> | undefined,
  ): StreamBytes {
    let sb = this.streamBytes.get(labels);
    if (sb === undefined) {
      const p = recordParts(labels, promoted);
      const mid: Buffer[] = [];
      if (p.severityNumber > 0) mid.push(varintField(0x10, p.severityNumber));
      if (p.severityText !== undefined) mid.push(stringField(0x1a, p.severityText));
      sb = {
        mid: Buffer.concat(mid),
        attrs: Buffer.concat(p.attributes.map(([k, v]) => keyValueField(0x32, k, v))),
      };
      this.streamBytes.set(labels, sb);
    }
    return sb;
  }

  encode(streams: readonly BatchStream[]): EncodedBody {
    const out = this.scratch;
    const start = this.headroom;
    out.len = 0;
    out.reserve(start);
    out.len = start;
    const nowMs = this.now();
    const obsSec = Math.floor(nowMs / 1000);
    const obsNanos = Math.round((nowMs - obsSec * 1000) * 1e6);
    // The observed time closes every record: written once, copied with each stream's attributes.
    const observed = Buffer.allocUnsafe(9);
    observed[0] = 0x59; // LogRecord.observed_time_unix_nano (fixed64)
    writeFixed64Nanos(observed, 1, obsSec, obsNanos);
    for (const s of streams) {
      const { mid, attrs } = this.bytesOf(s.labels, s.promoted);
      const tail = Buffer.concat([attrs, observed]);
      const midLen = mid.length;
      const tailLen = tail.length;
      // time (1+8) + mid + body tag + attributes + observed time; the body's length varies.
      const fixedLen = 9 + midLen + 1 + tailLen;
      const e = s.entries;
      const end = e.length;
      let p = 0;
      while (p < end) {
        // One entry in the batcher's wire form (encode-protobuf.ts appendEntry):
        // 0x12 len { 0x0a len { 0x08 sec, 0x10 nanos }, 0x12 len line }
        p++;
        let entryLen = 0;
        let mul = 1;
        for (;;) {
          const c = e[p++] as number;
          entryLen += (c & 0x7f) * mul;
          if (c < 0x80) break;
          mul *= 128;
        }
        const entryEnd = p + entryLen;
        let sec = 0;
        let nanos = 0;
        let lineStart = p;
        let lineLen = 0;
        let metadata: [string, string][] | undefined;
        while (p < entryEnd) {
          const tag = e[p++] as number;
          let len = 0;
          mul = 1;
          for (;;) {
            const c = e[p++] as number;
            len += (c & 0x7f) * mul;
            if (c < 0x80) break;
            mul *= 128;
          }
          if (tag === 0x0a) {
            const tsEnd = p + len;
            while (p < tsEnd) {
              const t = e[p++] as number;
              let v = 0;
              mul = 1;
              for (;;) {
                const c = e[p++] as number;
                v += (c & 0x7f) * mul;
                if (c < 0x80) break;
                mul *= 128;
              }
              if (t === 0x08) sec = v;
              else if (t === 0x10) nanos = v;
            }
          } else if (tag === 0x12) {
            lineStart = p;
            lineLen = len;
            p += len;
          } else {
            // EntryAdapter.structuredMetadata (METADATA_FIELDS): only lines that carry some.
            if (metadata === undefined) metadata = [];
            metadata.push(readPair(e, p, p + len));
            p += len;
          }
        }
        const extra = metadata !== undefined ? metadataFields(metadata) : undefined;
        const anyLen = 1 + varintSize(lineLen) + lineLen;
        const recLen = fixedLen + varintSize(anyLen) + anyLen + (extra !== undefined ? extra.length : 0);
        out.reserve(1 + 5 + recLen);
        const b = out.buf;
        let q = out.len;
        b[q++] = 0x12; // ScopeLogs.log_records
        q = writeVarint(b, q, recLen);
        b[q++] = 0x09; // LogRecord.time_unix_nano (fixed64)
        writeFixed64Nanos(b, q, sec, nanos);
        q += 8;
        // Short runs are copied byte by byte: cheaper than a native copy call at these sizes.
        for (let i = 0; i < midLen; i++) b[q++] = mid[i] as number;
        b[q++] = 0x2a; // LogRecord.body
        q = writeVarint(b, q, anyLen);
        b[q++] = 0x0a; // AnyValue.string_value
        q = writeVarint(b, q, lineLen);
        e.copy(b, q, lineStart, lineStart + lineLen);
        q += lineLen;
        b.set(tail, q); // attributes (6), observed time (11)
        q += tailLen;
        if (extra !== undefined) {
          b.set(extra, q); // the line's metadata: attributes (6), trace_id (9), span_id (10)
          q += extra.length;
        }
        out.len = q;
      }
    }
    // The enclosing headers go right before the records, in the room left for them.
    const recordsLen = out.len - start;
    const scopeLogsLen = this.scopeField.length + recordsLen;
    const resourceLogsLen = this.resourceField.length + 1 + varintSize(scopeLogsLen) + scopeLogsLen;
    const headerLen =
      1 +
      varintSize(resourceLogsLen) +
      this.resourceField.length +
      1 +
      varintSize(scopeLogsLen) +
      this.scopeField.length;
    const b = out.buf;
    let q = start - headerLen;
    const from = q;
    b[q++] = 0x0a; // ExportLogsServiceRequest.resource_logs
    q = writeVarint(b, q, resourceLogsLen);
    this.resourceField.copy(b, q); // ResourceLogs.resource
    q += this.resourceField.length;
    b[q++] = 0x12; // ResourceLogs.scope_logs
    q = writeVarint(b, q, scopeLogsLen);
    this.scopeField.copy(b, q); // ScopeLogs.scope
    const request = b.subarray(from, out.len);
    let body: Buffer;
    if (this.compression === "gzip") {
      body = compactBody(zlib().gzipSync(request, OTLP_GZIP));
    } else {
      body = Buffer.from(request); // the scratch buffer is reused for the next batch
    }
    const used = out.len;
    out.len = 0;
    out.shrink(used, 1024 * 1024);
    return {
      body,
      contentType: "application/x-protobuf",
      ...(this.compression === "gzip" ? { contentEncoding: "gzip" } : {}),
    };
  }
}
