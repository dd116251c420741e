// The Elasticsearch / OpenSearch `_bulk` body: NDJSON, per line one `create` action and one ECS
// document, optionally gzip-compressed.
//
//   {"create":{"_index":"logs-sidecar-default","_id":"<file key>.<offset>.<line hash>"}}
//   {"@timestamp":"2024-01-31T12:00:00.123456789Z","message":"<the line>","log":{"level":"info",
//    "file":{"path":"/shared/logs/app.log"}},"kubernetes":{"namespace":"…","pod":{"name":"…"},
//    "container":{"name":"…"},"node":{"name":"…"}},"labels":{"job":"sample-app"},
//    "data_stream":{"type":"logs","dataset":"sidecar","namespace":"default"}}
//
// `create`, not `index`: data streams accept only `create`, and `create` is what makes a re-sent
// line harmless — an `_id` that is already there is answered 409 and not written again.
//
// The `_id` is the line's identity, stable across re-sends and restarts:
//   file key   a hash of the SourceFile identity (`dev:ino:fingerprint`, fileIdentity()) — not of
//              the reader generation, which is new after every restart;
//   offset     the file offset just past the line (base 36);
//   line hash  53 bits of a hash of the line's bytes. The identity and offset alone are not
//              enough: a file truncated and rewritten in place keeps its identity when its first
//              line is the same (same inode, same fingerprint), and its new lines then end at
//              offsets the old ones had — without the hash a new line would be taken for an old
//              one (409) and silently lost.
//
// The document is written byte by byte into one reusable scratch buffer (no per-line object or
// JSON.stringify): the line's bytes are already valid UTF-8 (the batcher repairs them), so only
// `"`, `\` and control bytes need escaping. What the body keeps besides the bytes is where each
// item ends (`itemEnds`), so the client can rebuild a body of only the items to retry.
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { type BatchStream, type EncodedBody, forEachEntry, GrowableBuffer } from "../loki/encode-protobuf.js";
import { fileIdentity } from "../sink.js";
import type { IndexName } from "./index-name.js";

export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

/** A `_bulk` request body and where each of its items (action + document) ends, uncompressed. */
export interface BulkBody extends EncodedBody {
  /** End offset (exclusive) of each item in the uncompressed NDJSON; length = item count. */
  readonly itemEnds: Uint32Array;
}

export function isBulkBody(b: EncodedBody): b is BulkBody {
  return (b as Partial<BulkBody>).itemEnds instanceof Uint32Array;
}

export interface BulkEncoderOptions {
  index: IndexName;
  compression: "gzip" | "none";
  /** STATIC_LABELS → `labels.*`. */
  staticLabels: Readonly<Record<string, string>>;
  /** Downward API labels (`namespace`, `pod`, `container`, `node`) → `kubernetes.*`. */
  podLabels: Readonly<Record<string, string>>;
}

/** File keys remembered (identity → hash); cleared when it grows past this (files long gone). */
const FILE_KEY_CACHE = 4096;

const ACTION_HEAD = Buffer.from('{"create":{"_index":"', "latin1");
const ACTION_ID = Buffer.from('","_id":"', "latin1");
const ACTION_TAIL = Buffer.from('"}}\n', "latin1");
const DOC_HEAD = Buffer.from('{"@timestamp":"', "latin1");
const DOC_MESSAGE = Buffer.from('","message":"', "latin1");
const HEX = "0123456789abcdef";

export class BulkEncoder {
  private readonly opts: BulkEncoderOptions;
  private readonly scratch = new GrowableBuffer(64 * 1024);
  private readonly fileKeys = new Map<string, string>();
  /** The `YYYY-MM-DDTHH:MM:SS` of `lastSec`, as bytes. */
  private lastSec = Number.NaN;
  private readonly secBytes = Buffer.alloc(19);
  /** The ECS fields every document shares (kubernetes.*, labels.*, data_stream.*), as JSON members. */
  private readonly commonJson: string;

  constructor(opts: BulkEncoderOptions) {
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
  }

  encode(streams: readonly BatchStream[]): BulkBody {
    const out = this.scratch;
    out.len = 0;
    let items = 0;
    for (const s of streams) items += s.count;
    const itemEnds = new Uint32Array(items);
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
      const tail = Buffer.from(`",${members.join(",")}}\n`, "utf8");
      let i = 0;
      forEachEntry(s.entries, (sec, nanos, line) => {
        const id = this.fileKey(fileIds[i] as string);
        const offset = offsets[i] as number;
        i++;
        this.writeItem(out, sec, nanos, line, id, offset, tail);
        itemEnds[item++] = out.len;
      });
    }
    const ndjson = out.view();
    let body: Buffer;
    let contentEncoding: string | undefined;
    if (this.opts.compression === "gzip") {
      // Level 1: most of gzip's gain on NDJSON comes at the lowest level, at a fraction of the CPU.
      body = gzipSync(ndjson, { level: 1 });
      contentEncoding = "gzip";
    } else {
      body = Buffer.from(ndjson); // a copy: the scratch buffer is reused for the next batch
    }
    const used = out.len;
    out.len = 0;
    out.shrink(used, 1024 * 1024);
    return {
      body,
      contentType: NDJSON_CONTENT_TYPE,
      ...(contentEncoding !== undefined ? { contentEncoding } : {}),
      itemEnds,
    };
  }

  /** A short stable key for a file identity: 64 bits of its SHA-256, hex (cached per file id). */
  private fileKey(fileId: string): string {
    let key = this.fileKeys.get(fileId);
    if (key === undefined) {
      if (this.fileKeys.size >= FILE_KEY_CACHE) this.fileKeys.clear();
      key = documentFileKey(fileId);
      this.fileKeys.set(fileId, key);
    }
    return key;
  }

  private writeItem(
    out: GrowableBuffer,
    sec: number,
    nanos: number,
    line: Buffer,
    fileKey: string,
    offset: number,
    tail: Buffer,
  ): void {
    const index = this.opts.index.nameFor(sec);
    const id = `${fileKey}.${offset.toString(36)}.${lineHash(line).toString(36)}`;
    // Worst case: every line byte escaped as \u00XX (6 bytes).
    out.reserve(
      ACTION_HEAD.length +
        index.length +
        ACTION_ID.length +
        id.length +
        ACTION_TAIL.length +
        DOC_HEAD.length +
        30 +
        DOC_MESSAGE.length +
        line.length * 6 +
        tail.length,
    );
    const b = out.buf;
    let p = out.len;
    p += ACTION_HEAD.copy(b, p);
    p += index.copy(b, p);
    p += ACTION_ID.copy(b, p);
    p += b.write(id, p, "latin1");
    p += ACTION_TAIL.copy(b, p);
    p += DOC_HEAD.copy(b, p);
    p = this.writeTimestamp(b, p, sec, nanos);
    p += DOC_MESSAGE.copy(b, p);
    p = writeJsonStringBytes(b, p, line);
    p += tail.copy(b, p);
    out.len = p;
  }

  /** RFC 3339 with nanoseconds, UTC: `2024-01-31T12:00:00.123456789Z`. */
  private writeTimestamp(b: Buffer, p: number, sec: number, nanos: number): number {
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.secBytes.write(new Date(sec * 1000).toISOString(), 0, 19, "latin1");
    }
    p += this.secBytes.copy(b, p);
    b[p++] = 0x2e; // .
    let n = nanos;
    for (let k = p + 8; k >= p; k--) {
      b[k] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
    p += 9;
    b[p++] = 0x5a; // Z
    return p;
  }
}

/** The file part of a document `_id`: 64 bits of SHA-256 of the file identity, hex. */
export function documentFileKey(fileId: string): string {
  return createHash("sha256").update(fileIdentity(fileId)).digest("hex").slice(0, 16);
}

/** A document `_id` as the encoder writes it (for tests and tools). */
export function documentId(fileId: string, offset: number, line: Uint8Array): string {
  return `${documentFileKey(fileId)}.${offset.toString(36)}.${lineHash(line).toString(36)}`;
}

/**
 * 53 bits of a fast non-cryptographic hash of `bytes` (two 32-bit multiplicative lanes mixed at
 * the end, as in the public-domain cyrb53). It only has to tell apart lines that share a file
 * identity and an end offset — a handful at most — so speed matters more than strength.
 */
export function lineHash(bytes: Uint8Array): number {
  let h1 = 0xdeadbeef ^ bytes.length;
  let h2 = 0x41c6ce57 ^ bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * Write `bytes` (valid UTF-8) as the inside of a JSON string at `p`; returns the end. Multi-byte
 * sequences pass through; `"`, `\` and bytes below 0x20 are escaped.
 */
export function writeJsonStringBytes(b: Buffer, p: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
      b[p++] = c;
    } else if (c === 0x22 || c === 0x5c) {
      b[p++] = 0x5c;
      b[p++] = c;
    } else if (c === 0x0a) {
      b[p++] = 0x5c;
      b[p++] = 0x6e; // \n
    } else if (c === 0x09) {
      b[p++] = 0x5c;
      b[p++] = 0x74; // \t
    } else if (c === 0x0d) {
      b[p++] = 0x5c;
      b[p++] = 0x72; // \r
    } else {
      b[p++] = 0x5c;
      b[p++] = 0x75; // \u00XX
      b[p++] = 0x30;
      b[p++] = 0x30;
      b[p++] = HEX.charCodeAt(c >> 4);
      b[p++] = HEX.charCodeAt(c & 15);
    }
  }
  return p;
}

/**
 * A body of only the items at `indexes` (ascending) of `body`: their action and document lines
 * copied from the original NDJSON (decompressed first when it was gzip), compressed the same way.
 */
export function selectItems(body: BulkBody, indexes: readonly number[]): BulkBody {
  // Only partial answers (rare) decompress a body again; keeping the NDJSON too would double the memory held.
  const ndjson = body.contentEncoding === "gzip" ? gunzipSync(body.body) : body.body;
  let size = 0;
  for (const i of indexes)
    size += (body.itemEnds[i] as number) - (i > 0 ? (body.itemEnds[i - 1] as number) : 0);
  const out = Buffer.allocUnsafe(size);
  const itemEnds = new Uint32Array(indexes.length);
  let p = 0;
  indexes.forEach((i, k) => {
    const start = i > 0 ? (body.itemEnds[i - 1] as number) : 0;
    p += ndjson.copy(out, p, start, body.itemEnds[i] as number);
    itemEnds[k] = p;
  });
  if (body.contentEncoding === "gzip") {
    return {
      body: gzipSync(out, { level: 1 }),
      contentType: body.contentType,
      contentEncoding: "gzip",
      itemEnds,
    };
  }
  return { body: out, contentType: body.contentType, itemEnds };
}
