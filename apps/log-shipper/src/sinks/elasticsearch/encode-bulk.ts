// The Elasticsearch / OpenSearch `_bulk` body: NDJSON, per line one `create` action and one ECS
// document, optionally gzip-compressed.
//
//   {"create":{"_id":"<file key>.<offset>.<line hash>"}}
//   {"@timestamp":"2024-01-31T12:00:00.123456789Z","message":"<the line>","log":{"level":"info",
//    "file":{"path":"/shared/logs/app.log"}},"kubernetes":{"namespace":"…","pod":{"name":"…"},
//    "container":{"name":"…"},"node":{"name":"…"}},"labels":{"job":"sample-app"},
//    "data_stream":{"type":"logs","dataset":"sidecar","namespace":"default"}}
//
// The action names no `_index` when the index is the request's own (`indexInPath`: a fixed ES_INDEX,
// posted to `/<index>/_bulk`, where Elasticsearch and OpenSearch take it as every item's default):
// 32 bytes less per line for the default name, the same documents in the same index. A date
// pattern names each line's index in its action (`"_index":"logs-2024.01.31",`).
//
// Labels promoted from the line's fields (LABEL_FIELDS) join `labels`; a line's structured
// metadata (METADATA_FIELDS) becomes `trace.id` / `span.id` (ECS) for `trace_id` / `span_id`, and
// `labels.<name>` for the others.
//
// `create`, not `index`: data streams accept only `create`, and `create` is what makes a re-sent
// line harmless — an `_id` that is already there is answered 409 and not written again.
//
// The `_id` is the line's identity, stable across re-sends and restarts:
//   file key   a hash of the SourceFile identity (`dev:ino:fingerprint`, fileIdentity()) — not of
//              the reader generation, which is new after every restart;
//   offset     the file offset just past the line (base 36);
//   line hash  52 bits of a hash of the line's bytes. The identity and offset alone are not
//              enough: a file truncated and rewritten in place keeps its identity when its first
//              line is the same (same inode, same fingerprint), and its new lines then end at
//              offsets the old ones had — without the hash a new line would be taken for an old
//              one (409) and silently lost.
//
// The document is written byte by byte into one reusable scratch buffer (no per-line object or
// JSON.stringify): the line's bytes are already valid UTF-8 (the batcher repairs them), so only
// `"`, `\` and control bytes need escaping. What the body keeps besides the bytes is where each
// item ends (`itemEnds`), so the client can rebuild a body of only the items to retry.
import { isoTime, sha256Hex } from "@sidecar/shared";
import { type BatchStream, type EncodedBody, GrowableBuffer, readPair } from "../loki/encode-protobuf.js";
import { fileIdentity } from "../sink.js";
import { zlib } from "../zlib.js";
import type { IndexName } from "./index-name.js";

export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

/** A `_bulk` request body and where each of its items (action + document) ends, uncompressed. */
export interface BulkBody extends EncodedBody {
  /** End offset (exclusive) of each item in the uncompressed NDJSON; length = item count. */
  readonly itemEnds: Uint32Array;
  /** Each item's line length in bytes (what the line counters count), same order. */
  readonly lineBytes: Uint32Array;
}

export function isBulkBody(b: EncodedBody): b is BulkBody {
  return (b as Partial<BulkBody>).itemEnds instanceof Uint32Array;
}

/** Sum of the items' line bytes. */
export function bulkLineBytes(b: BulkBody): number {
  let n = 0;
  for (const x of b.lineBytes) n += x;
  return n;
}

/** The first item's action and document, parsed (for the drop log's example). */
export function firstItem(b: BulkBody): { action: unknown; document: unknown } | undefined {
  if (b.itemEnds.length === 0) return undefined;
  const ndjson = b.contentEncoding === "gzip" ? zlib().gunzipSync(b.body) : b.body;
  const text = ndjson.toString("utf8", 0, b.itemEnds[0]);
  const nl = text.indexOf("\n");
  return { action: JSON.parse(text.slice(0, nl)), document: JSON.parse(text.slice(nl + 1)) };
}

export interface BulkEncoderOptions {
  index: IndexName;
  compression: "gzip" | "none";
  /** STATIC_LABELS → `labels.*`. */
  staticLabels: Readonly<Record<string, string>>;
  /** Downward API labels (`namespace`, `pod`, `container`, `node`) → `kubernetes.*`. */
  podLabels: Readonly<Record<string, string>>;
  /**
   * Uncompressed only: each body is a view of the encoder's own buffer, valid until the next
   * encode() — for a caller that encodes a batch only once the previous body is done with (the
   * pipeline with Sink.encodeLate). Saves copying (and page-faulting in) megabytes per batch.
   */
  reuseBody?: boolean;
  /**
   * The index (fixed: `index.fixed`) is in the request's path (`/<index>/_bulk`), so actions leave
   * `_index` out. The client must post to that path (BulkClientOptions.index).
   */
  indexInPath?: boolean;
}

/** File keys remembered (identity → hash); cleared when it grows past this (files long gone). */
const FILE_KEY_CACHE = 4096;

const ACTION_HEAD = Buffer.from('{"create":{"_index":"', "latin1");
const ACTION_ID = Buffer.from('","_id":"', "latin1");
/** The action's start when the index is the request's (indexInPath). */
const ACTION_HEAD_ID = Buffer.from('{"create":{"_id":"', "latin1");
const ACTION_TAIL = Buffer.from('"}}\n', "latin1");
const DOC_HEAD = Buffer.from('{"@timestamp":"', "latin1");
const DOC_MESSAGE = Buffer.from('","message":"', "latin1");
const ACTION_TAIL_DOC_HEAD = Buffer.concat([ACTION_TAIL, DOC_HEAD]);
const HEX_CODES = Uint8Array.from("0123456789abcdef", (ch) => ch.charCodeAt(0));

export class BulkEncoder {
  private readonly opts: BulkEncoderOptions;
  private readonly scratch = new GrowableBuffer(64 * 1024);
  /** A DataView of the scratch buffer (for 4-byte stores), remade when the buffer grows. */
  private outView: DataView = new DataView(new ArrayBuffer(0));
  private outViewOf: Buffer | undefined;
  private readonly fileKeys = new Map<string, Buffer>();
  /** The `YYYY-MM-DDTHH:MM:SS` of `lastSec`, as bytes. */
  private lastSec = Number.NaN;
  private readonly secBytes = Buffer.alloc(19);
  /** The last action head built (actionHead), and what it was built for. */
  private head = Buffer.alloc(0);
  private headIndex: Buffer | undefined;
  private headKey: Buffer | undefined;
  /** The ECS fields every document shares (kubernetes.*, labels.*, data_stream.*), as JSON members. */
  private readonly commonJson: string;
  /** The same, as an object (documents with promoted labels or metadata merge into `labels`). */
  private readonly common: Record<string, unknown>;

  constructor(opts: BulkEncoderOptions) {
    if (opts.indexInPath === true && !opts.index.fixed)
      throw new Error(`indexInPath needs a fixed index name, not the pattern ${opts.index.pattern}`);
    this.opts = opts;
    const pod = opts.podLabels;
    const common: Record<string, unknown> = {};
    const k8s: Record<string, unknown> = {};
    if (pod.namespace !== undefined) k8s.namespace = pod.namespace;
    if (pod.pod !== undefined) k8s.pod = { name: pod.pod };
    if (pod.container !== undefined) k8s.container = { name: pod.container };
    if (pod.node !== undefined) k8s.node = { name: pod.node };
    if (Object.keys(k8s).length > 0) common.kubernetes = k8s;
    if (Object.keys(opts.staticLabels).length > 0) common.labels = { ...opts.staticLabels };
    const ds = opts.index.dataStream;
    if (ds !== undefined)
      common.data_stream = { type: ds.type, dataset: ds.dataset, namespace: ds.namespace };
    this.commonJson = JSON.stringify(common).slice(1, -1);
    this.common = common;
  }

  /**
   * The document's end (after the message) for a stream with promoted labels or a line with
   * metadata: `log`, `trace.id` / `span.id`, then the shared fields with `labels` merged.
   */
  private fieldsTail(
    log: Record<string, unknown>,
    promoted: Readonly<Record<string, string>> | undefined,
    metadata: readonly [string, string][] | undefined,
  ): Buffer {
    const doc: Record<string, unknown> = { log };
    const labels: Record<string, string> = { ...(this.common.labels as Record<string, string> | undefined) };
    if (promoted !== undefined) Object.assign(labels, promoted);
    for (const [k, v] of metadata ?? []) {
      if (k === "trace_id") doc.trace = { id: v };
      else if (k === "span_id") doc.span = { id: v };
      else labels[k] = v;
    }
    for (const [k, v] of Object.entries(this.common)) doc[k] = k === "labels" ? labels : v;
    if (doc.labels === undefined && Object.keys(labels).length > 0) doc.labels = labels;
    return Buffer.from(`",${JSON.stringify(doc).slice(1)}\n`, "utf8");
  }

  encode(streams: readonly BatchStream[]): BulkBody {
    const out = this.scratch;
    out.len = 0;
    let items = 0;
    for (const s of streams) items += s.count;
    const itemEnds = new Uint32Array(items);
    const lineBytes = new Uint32Array(items);
    let item = 0;
    for (const s of streams) {
      const fileIds = s.fileIds;
      const offsets = s.offsets;
      if (fileIds === undefined || offsets === undefined)
        throw new Error("Elasticsearch encoding needs entry refs (Sink.entryRefs)");
      // `log.*` depends on the stream (filename, level); the rest is shared.
      const log: Record<string, unknown> = {};
      if (s.labels.level !== undefined) log.level = s.labels.level;
      if (s.labels.filename !== undefined) log.file = { path: s.labels.filename };
      const members = [JSON.stringify({ log }).slice(1, -1), this.commonJson].filter((m) => m !== "");
      const tail =
        s.promoted === undefined
          ? Buffer.from(`",${members.join(",")}}\n`, "utf8")
          : this.fieldsTail(log, s.promoted, undefined);
      // The entries' wire form (encode-protobuf.ts appendEntry), read in place: no per-line view.
      const e = s.entries;
      // For 4-byte loads of the line bytes (writeItem).
      const ev = new DataView(e.buffer, e.byteOffset, e.length);
      let p = 0;
      for (let i = 0; p < e.length; i++) {
        p++; // StreamAdapter.entries tag
        let v = 0;
        let mul = 1;
        let c: number;
        do {
          c = e[p++] as number;
          v += (c & 0x7f) * mul;
          mul *= 128;
        } while (c >= 0x80);
        const entryEnd = p + v;
        let sec = 0;
        let nanos = 0;
        let lineStart = p;
        let lineEnd = p;
        let metadata: [string, string][] | undefined;
        while (p < entryEnd) {
          const tag = e[p++] as number;
          let len = 0;
          mul = 1;
          do {
            c = e[p++] as number;
            len += (c & 0x7f) * mul;
            mul *= 128;
          } while (c >= 0x80);
          if (tag === 0x0a) {
            const tsEnd = p + len;
            while (p < tsEnd) {
              const t = e[p++] as number;
              let x = 0;
              mul = 1;
              do {
                c = e[p++] as number;
                x += (c & 0x7f) * mul;
                mul *= 128;
              } while (c >= 0x80);
              if (t === 0x08) sec = x;
              else if (t === 0x10) nanos = x;
            }
          } else if (tag === 0x12) {
            lineStart = p;
            lineEnd = p + len;
            p = lineEnd;
          } else {
            // EntryAdapter.structuredMetadata (METADATA_FIELDS): only lines that carry some.
            if (metadata === undefined) metadata = [];
            metadata.push(readPair(e, p, p + len));
            p += len;
          }
        }
        this.writeItem(
          out,
          sec,
          nanos,
          e,
          ev,
          lineStart,
          lineEnd,
          this.fileKey(fileIds[i] as string),
          offsets[i] as number,
          metadata === undefined ? tail : this.fieldsTail(log, s.promoted, metadata),
        );
        lineBytes[item] = lineEnd - lineStart;
        itemEnds[item++] = out.len;
      }
    }
    const ndjson = out.view();
    let body: Buffer;
    let contentEncoding: string | undefined;
    if (this.opts.compression === "gzip") {
      // Level 1: most of gzip's gain on NDJSON comes at the lowest level, at a fraction of the CPU.
      body = zlib().gzipSync(ndjson, { level: 1 });
      contentEncoding = "gzip";
    } else if (this.opts.reuseBody === true) {
      body = ndjson;
    } else {
      // A copy (the scratch buffer is reused for the next batch) into memory that is not zeroed
      // first: Buffer.from(view) zero-fills a megabyte-sized body and then copies it byte-wise.
      body = Buffer.allocUnsafeSlow(ndjson.length);
      body.set(ndjson);
    }
    const used = out.len;
    out.len = 0;
    out.shrink(used, 1024 * 1024);
    return {
      body,
      contentType: NDJSON_CONTENT_TYPE,
      ...(contentEncoding !== undefined ? { contentEncoding } : {}),
      itemEnds,
      lineBytes,
    };
  }

  /** `<file key>.` for a file id, as bytes (cached per file id; see documentFileKey). */
  private fileKey(fileId: string): Buffer {
    let key = this.fileKeys.get(fileId);
    if (key === undefined) {
      if (this.fileKeys.size >= FILE_KEY_CACHE) this.fileKeys.clear();
      key = Buffer.from(`${documentFileKey(fileId)}.`, "latin1");
      this.fileKeys.set(fileId, key);
    }
    return key;
  }

  /**
   * One action line and one document for the line `src[start, end)`. The line hash is computed
   * in the same pass that escapes the line into the document, so the `_id` is written with a
   * fixed-width placeholder for it, filled in once the document is written.
   */
  private writeItem(
    out: GrowableBuffer,
    sec: number,
    nanos: number,
    src: Uint8Array,
    srcView: DataView,
    start: number,
    end: number,
    fileKey: Buffer,
    offset: number,
    tail: Buffer,
  ): void {
    const index = this.opts.index.nameFor(sec);
    const lineLen = end - start;
    // Worst case: every line byte escaped as \u00XX (6 bytes).
    out.reserve(
      ACTION_HEAD.length +
        index.length +
        ACTION_ID.length +
        fileKey.length +
        12 +
        HASH_DIGITS +
        ACTION_TAIL.length +
        DOC_HEAD.length +
        30 +
        DOC_MESSAGE.length +
        lineLen * 6 +
        tail.length,
    );
    // TypedArray#set, not Buffer#copy: the copies are small and copy's argument handling costs more.
    // Each set() is a builtin call that costs about as much as copying a few dozen bytes, so the
    // fixed parts are joined: `{"create":{"_index":"<index>","_id":"<file key>.` is one piece
    // (kept while index and file stay the same), `"}}\n{"@timestamp":"` another.
    const b = out.buf;
    if (b !== this.outViewOf) {
      this.outViewOf = b;
      this.outView = new DataView(b.buffer, b.byteOffset, b.length);
    }
    const ov = this.outView;
    let p = out.len;
    const head = this.actionHead(index, fileKey);
    b.set(head, p);
    p += head.length;
    p = writeBase36(b, p, offset);
    b[p++] = 0x2e; // .
    const hashAt = p;
    p += HASH_DIGITS;
    b.set(ACTION_TAIL_DOC_HEAD, p);
    p += ACTION_TAIL_DOC_HEAD.length;
    p = this.writeTimestamp(b, p, sec, nanos);
    b.set(DOC_MESSAGE, p);
    p += DOC_MESSAGE.length;
    // The line as the inside of a JSON string (it is valid UTF-8: multi-byte sequences pass
    // through; `"`, `\` and bytes below 0x20 are escaped), hashed on the way (see lineHash).
    let h1 = 0xdeadbeef ^ lineLen;
    let h2 = 0x41c6ce57 ^ lineLen;
    // Four bytes per turn, loaded as one little-endian word: the hash takes the word whole (as
    // lineHash reads it), and a word none of whose bytes can need escaping — none below
    // 0x23 (controls, space, `!`, `"`) and none equal to `\`, found with two SWAR tests — is stored
    // as one word. Otherwise each byte goes through escapeByte. ~15 % less CPU than two bytes per
    // turn with a test per byte (bench/log-shipper-es-encode.mjs), the output byte for byte the same.
    let i = start;
    for (const wordsEnd = end - 3; i < wordsEnd; i += 4) {
      const w = srcView.getUint32(i, true);
      const c0 = w & 0xff;
      const c1 = (w >>> 8) & 0xff;
      const c2 = (w >>> 16) & 0xff;
      const c3 = w >>> 24;
      h1 = Math.imul(h1 ^ w, 2654435761);
      h1 ^= h1 >>> 15;
      h2 = Math.imul(h2 ^ w, 1597334677);
      h2 ^= h2 >>> 13;
      // A byte below 0x23: (w - 0x23…) borrows into its top bit while its own top bit is clear.
      // A byte equal to 0x5c: zero in w ^ 0x5c…, found the same way. Exact for "any byte".
      const x = w ^ 0x5c5c5c5c;
      if ((((w - 0x23232323) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) {
        p = escapeByte(b, p, c0);
        p = escapeByte(b, p, c1);
        p = escapeByte(b, p, c2);
        p = escapeByte(b, p, c3);
      } else {
        ov.setUint32(p, w, true);
        p += 4;
      }
    }
    for (; i < end; i++) {
      const c = src[i] as number;
      h1 = Math.imul(h1 ^ c, 2654435761);
      h1 ^= h1 >>> 15;
      h2 = Math.imul(h2 ^ c, 1597334677);
      h2 ^= h2 >>> 13;
      p = escapeByte(b, p, c);
    }
    writeHashHex(b, hashAt, h1, h2);
    b.set(tail, p);
    p += tail.length;
    out.len = p;
  }

  /**
   * `{"create":{"_index":"<index>","_id":"<file key>.` for this index and file key, or
   * `{"create":{"_id":"<file key>.` when the index is in the request's path.
   */
  private actionHead(index: Buffer, fileKey: Buffer): Buffer {
    if (index !== this.headIndex || fileKey !== this.headKey) {
      this.headIndex = index;
      this.headKey = fileKey;
      this.head =
        this.opts.indexInPath === true
          ? Buffer.concat([ACTION_HEAD_ID, fileKey])
          : Buffer.concat([ACTION_HEAD, index, ACTION_ID, fileKey]);
    }
    return this.head;
  }

  /** RFC 3339 with nanoseconds, UTC: `2024-01-31T12:00:00.123456789Z`. */
  private writeTimestamp(b: Buffer, p: number, sec: number, nanos: number): number {
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.secBytes.write(isoTime(sec * 1000), 0, 19, "latin1");
    }
    b.set(this.secBytes, p);
    p += 19;
    b[p++] = 0x2e; // .
    // nanos < 10^9 < 2^31: integer division (`| 0`), several times cheaper than Math.floor.
    let n = nanos | 0;
    for (let k = p + 8; k >= p; k--) {
      const q = (n / 10) | 0;
      b[k] = 0x30 + n - q * 10;
      n = q;
    }
    p += 9;
    b[p++] = 0x5a; // Z
    return p;
  }
}

/** The file part of a document `_id`: 64 bits of SHA-256 of the file identity, hex. */
export function documentFileKey(fileId: string): string {
  return sha256Hex(Buffer.from(fileIdentity(fileId))).slice(0, 16);
}

/** A document `_id` as the encoder writes it (for tests and tools). */
export function documentId(fileId: string, offset: number, line: Uint8Array): string {
  return `${documentFileKey(fileId)}.${offset.toString(36)}.${lineHash(line)}`;
}

/** Hex digits of the line hash in an `_id`: 52 bits. */
const HASH_DIGITS = 13;

/**
 * 52 bits of a fast non-cryptographic hash of `bytes`, as 13 hex digits: two 32-bit
 * multiplicative lanes that take the bytes four at a time (little-endian words, then the 0–3 left
 * one by one), each step a multiply and an xor-shift that brings the high bits down, mixed at the
 * end as in the public-domain cyrb53. It only has to tell apart lines that share a file identity
 * and an end offset — a handful at most — so speed matters more than strength. (The encoder
 * computes the same hash inline while escaping.) Byte by byte it cost ≈ 10 % more of the encoder's
 * CPU (bench/log-shipper-es-encode.mjs); `_id`s written by shippers before that differ, which
 * matters only for a batch re-sent across the upgrade.
 */
export function lineHash(bytes: Uint8Array): string {
  let h1 = 0xdeadbeef ^ bytes.length;
  let h2 = 0x41c6ce57 ^ bytes.length;
  let i = 0;
  for (; i < bytes.length - 3; i += 4) {
    // The encoder's little-endian word (signed here, unsigned there: `^` takes both as the same bits).
    const w =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    h1 = Math.imul(h1 ^ w, 2654435761);
    h1 ^= h1 >>> 15;
    h2 = Math.imul(h2 ^ w, 1597334677);
    h2 ^= h2 >>> 13;
  }
  for (; i < bytes.length; i++) {
    const c = bytes[i] as number;
    h1 = Math.imul(h1 ^ c, 2654435761);
    h1 ^= h1 >>> 15;
    h2 = Math.imul(h2 ^ c, 1597334677);
    h2 ^= h2 >>> 13;
  }
  const b = Buffer.alloc(HASH_DIGITS);
  writeHashHex(b, 0, h1, h2);
  return b.toString("latin1");
}

/** Final mixing of the two lanes, written as 13 hex digits (20 bits of one lane, 32 of the other). */
function writeHashHex(b: Uint8Array, p: number, h1: number, h2: number): void {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  let hi = h2 & 0xfffff;
  for (let k = p + 4; k >= p; k--) {
    b[k] = HEX_CODES[hi & 15] as number;
    hi >>>= 4;
  }
  let lo = h1 >>> 0;
  for (let k = p + 12; k >= p + 5; k--) {
    b[k] = HEX_CODES[lo & 15] as number;
    lo >>>= 4;
  }
}

/** `v` (0 ≤ v < 2^53) in base 36, lowercase, as Number#toString(36) writes it; returns the end. */
function writeBase36(b: Uint8Array, p: number, v: number): number {
  if (v <= 0x7fffffff) {
    // The usual case (offsets below 2 GiB): integer division.
    let x = v | 0;
    let n = 1;
    for (let y = x; y >= 36; y = (y / 36) | 0) n++;
    for (let k = p + n - 1; k >= p; k--) {
      const q = (x / 36) | 0;
      const d = x - q * 36;
      b[k] = d < 10 ? 0x30 + d : 0x57 + d; // 0-9, a-z
      x = q;
    }
    return p + n;
  }
  let n = 1;
  for (let x = v; x >= 36; x = Math.floor(x / 36)) n++;
  for (let k = p + n - 1; k >= p; k--) {
    const d = v % 36;
    b[k] = d < 10 ? 0x30 + d : 0x57 + d; // 0-9, a-z
    v = Math.floor(v / 36);
  }
  return p + n;
}

/** One line byte into a JSON string at `p` (escaped when it must be); returns the end. */
function escapeByte(b: Uint8Array, p: number, c: number): number {
  // Two comparisons, not a table lookup: most bytes are above `"` and not `\` (measured ~15 %
  // faster on the loop; bench/log-shipper-es-encode.mjs).
  if (c > 0x22 && c !== 0x5c) {
    b[p] = c;
    return p + 1;
  }
  if (c === 0x22) {
    // The common escape in JSON lines (every key and string value).
    b[p] = 0x5c;
    b[p + 1] = 0x22;
    return p + 2;
  }
  if (c >= 0x20 && c !== 0x5c) {
    b[p] = c; // space, `!`
    return p + 1;
  }
  return writeEscape(b, p, c);
}

/** Escape one byte that cannot stand in a JSON string as itself; returns the end. */
function writeEscape(b: Uint8Array, p: number, c: number): number {
  b[p++] = 0x5c; // \
  if (c === 0x22 || c === 0x5c) {
    b[p++] = c;
  } else if (c === 0x0a) {
    b[p++] = 0x6e; // \n
  } else if (c === 0x09) {
    b[p++] = 0x74; // \t
  } else if (c === 0x0d) {
    b[p++] = 0x72; // \r
  } else {
    b[p++] = 0x75; // \u00XX
    b[p++] = 0x30;
    b[p++] = 0x30;
    b[p++] = HEX_CODES[c >> 4] as number;
    b[p++] = HEX_CODES[c & 15] as number;
  }
  return p;
}

/**
 * A body of only the items at `indexes` (ascending) of `body`: their action and document lines
 * copied from the original NDJSON (decompressed first when it was gzip), compressed the same way.
 */
export function selectItems(body: BulkBody, indexes: readonly number[]): BulkBody {
  // Only partial answers (rare) decompress a body again; keeping the NDJSON too would double the memory held.
  const ndjson = body.contentEncoding === "gzip" ? zlib().gunzipSync(body.body) : body.body;
  let size = 0;
  for (const i of indexes)
    size += (body.itemEnds[i] as number) - (i > 0 ? (body.itemEnds[i - 1] as number) : 0);
  const out = Buffer.allocUnsafe(size);
  const itemEnds = new Uint32Array(indexes.length);
  const lineBytes = new Uint32Array(indexes.length);
  let p = 0;
  indexes.forEach((i, k) => {
    const start = i > 0 ? (body.itemEnds[i - 1] as number) : 0;
    p += ndjson.copy(out, p, start, body.itemEnds[i] as number);
    itemEnds[k] = p;
    lineBytes[k] = body.lineBytes[i] as number;
  });
  if (body.contentEncoding === "gzip") {
    return {
      body: zlib().gzipSync(out, { level: 1 }),
      contentType: body.contentType,
      contentEncoding: "gzip",
      itemEnds,
      lineBytes,
    };
  }
  return { body: out, contentType: body.contentType, itemEnds, lineBytes };
}
