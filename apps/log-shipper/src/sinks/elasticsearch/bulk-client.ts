// The Elasticsearch / OpenSearch `_bulk` client: one POST of an encoded body over Node's http client
// (own keep-alive pool, sinks/http.ts; an extra CA added to the default trust, a per-request timeout), with basic or
// ApiKey auth from files followed as they change. Like the Loki client it never retries by itself:
// it classifies the outcome and the pipeline decides.
//
// Whole-request answers:
//   429, 408, 5xx, network error, timeout   retryable (Retry-After honoured)
//   401, 403, 404                           retryable with a hint: they say nothing about the
//                                           batch — the credential, the user's privileges or the
//                                           URL is wrong, often only for a moment (a key being
//                                           rotated, a proxy being redeployed) — and dropping
//                                           would commit the offsets of every batch until someone
//                                           notices, losing all of it
//   other 4xx                               failure: this body will never be taken
//   200                                     the per-item answers below
//
// Per item (a 200 bulk answer with `errors: true`):
//   200, 201   stored
//   409        `version_conflict_engine_exception`: a document with this `_id` is already there —
//              this very line, sent before (a retry after a timeout, a re-send after a crash):
//              acknowledged
//   429, 5xx   retried: a body of only those items is returned to send again
//   others     dropped for good (`mapper_parsing_exception`, …), counted under the first error
//              type, the first message logged
//
// Every retry is safe because every document has its stable `_id` (encode-bulk.ts): what the
// server took already comes back as 409. That is also why anything unexpected in a 200 answer
// (unparsable, wrong item count) is retried as a whole rather than guessed at.
import { parseRetryAfter } from "@sidecar/shared";
import { recheckCredentials, type SecretSource, secretValue } from "../../secret-file.js";
import { HttpPool, postWithin, readText } from "../http.js";
import type { SendResult } from "../loki/loki-client.js";
import type { EncodedBody, PartialResult, SinkResult } from "../sink.js";
import { type BulkBody, isBulkBody, selectItems } from "./encode-bulk.js";

/** Error answers are logged; a body larger than this is cut (and the socket discarded). */
export const MAX_ERROR_BODY_BYTES = 1024;
/** A bulk answer larger than this is not parsed (the batch is retried; 409s make that safe). */
export const MAX_BULK_RESPONSE_BYTES = 32 * 1024 * 1024;
/**
 * Only what classification needs: without it the answer repeats index, id, version, shards and
 * sequence numbers for every line (~150 bytes each); with it ~25. Both Elasticsearch and
 * OpenSearch support `filter_path`; array items keep their positions because each has a status.
 */
export const BULK_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason";

export interface BulkClientOptions {
  /** Base URL of the cluster (or a proxy path in front of it); `/_bulk` is appended. */
  endpoint: URL;
  /** ES_PIPELINE: an ingest pipeline to run on every document. */
  pipeline?: string;
  /**
   * A fixed index posted to as `/<index>/_bulk` (every item's default index), for bodies whose
   * actions leave `_index` out (BulkEncoderOptions.indexInPath).
   */
  index?: string;
  username?: string;
  password?: SecretSource;
  /** ES_API_KEY_FILE: the base64 `id:key` (the `encoded` value Elasticsearch returns). */
  apiKey?: SecretSource;
  /** Extra CA certificate(s), PEM — added to Node's default trust, not replacing it. */
  ca?: string;
  timeoutMs: number;
  /** A keep-alive pool; when omitted the client creates (and closes) its own (sinks/http.ts). */
  pool?: HttpPool;
  userAgent?: string;
}

export const CONFIG_STATUS_HINTS: Readonly<Record<number, string>> = Object.freeze({
  401: "Elasticsearch refused the credentials: check ES_API_KEY_FILE or ES_USERNAME/ES_PASSWORD_FILE (re-read when the file changes)",
  403: "Elasticsearch forbids this bulk request: the user or API key needs the create_doc (or create/index) privilege on ES_INDEX",
  404: "nothing answers _bulk at this URL: check ES_ENDPOINT (host, port, proxy path)",
});

/**
 * `http://es:9200` → `http://es:9200/_bulk?filter_path=…[&pipeline=…]`, or with `index`
 * `http://es:9200/<index>/_bulk?…`. An endpoint already ending in `/_bulk` is taken as it is
 * (indexInPath() is then false).
 */
export function bulkUrl(endpoint: URL, pipeline?: string, index?: string): URL {
  const u = new URL(endpoint.href);
  u.username = "";
  u.password = "";
  if (!u.pathname.endsWith("/_bulk")) {
    const base = u.pathname.replace(/\/+$/, "");
    u.pathname = index !== undefined ? `${base}/${encodeURIComponent(index)}/_bulk` : `${base}/_bulk`;
  }
  u.searchParams.set("filter_path", BULK_FILTER_PATH);
  if (pipeline !== undefined) u.searchParams.set("pipeline", pipeline);
  return u;
}

/** Whether bodies for `endpoint` can leave `_index` out: a fixed index and a path of our making. */
export function indexInPath(endpoint: URL, fixedIndex: boolean): boolean {
  return fixedIndex && !endpoint.pathname.endsWith("/_bulk");
}

interface BulkItemResult {
  status?: number;
  error?: { type?: string; reason?: string };
}

export class BulkClient {
  readonly url: URL;
  private readonly pool: HttpPool;
  private readonly ownPool: boolean;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly username: string | undefined;
  private readonly password: SecretSource | undefined;
  private readonly apiKey: SecretSource | undefined;
  private authFrom: string | undefined;

  constructor(opts: BulkClientOptions) {
    this.url = bulkUrl(opts.endpoint, opts.pipeline, opts.index);
    this.timeoutMs = opts.timeoutMs;
    this.ownPool = opts.pool === undefined;
    this.pool =
      opts.pool ?? new HttpPool({ connections: 2, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) });
    this.headers = { "user-agent": opts.userAgent ?? "sidecar-log-shipper", accept: "application/json" };
    this.username = opts.username;
    this.password = opts.password;
    this.apiKey = opts.apiKey;
    this.refreshAuth();
  }

  private refreshAuth(): void {
    let header: string;
    if (this.apiKey !== undefined) {
      header = `ApiKey ${secretValue(this.apiKey)}`;
    } else if (this.username !== undefined) {
      const cred = `${this.username}:${this.password !== undefined ? secretValue(this.password) : ""}`;
      if (cred === this.authFrom) return;
      this.authFrom = cred;
      header = `Basic ${Buffer.from(cred, "utf8").toString("base64")}`;
    } else {
      return;
    }
    this.headers.authorization = header;
  }

  async send(batch: EncodedBody, signal: AbortSignal): Promise<SinkResult> {
    if (signal.aborted) return { kind: "retryable", reason: "aborted" };
    this.refreshAuth();
    const headers: Record<string, string> = { ...this.headers, "content-type": batch.contentType };
    if (batch.contentEncoding) headers["content-encoding"] = batch.contentEncoding;
    const within = { signal, timeoutMs: this.timeoutMs, destination: "Elasticsearch" };
    return postWithin(this.pool, this.url, headers, batch.body, within, async (res): Promise<SinkResult> => {
      const status = res.statusCode;
      if (status >= 200 && status < 300) {
        const text = await readBulkAnswer(res.body);
        if (text === ALL_WELL_READ) return { kind: "success", status };
        if (text.truncated)
          return {
            kind: "retryable",
            status,
            reason: "bad_response",
            message: `bulk answer larger than ${MAX_BULK_RESPONSE_BYTES} bytes`,
          };
        return classifyBulkResponse(status, text.text, batch);
      }
      const { text: message } = await readText(res.body, MAX_ERROR_BODY_BYTES);
      const reason = `http_${status}`;
      let hint = CONFIG_STATUS_HINTS[status];
      if (status >= 400 && status < 500 && status !== 429 && status !== 408 && hint === undefined)
        return { kind: "failure", status, reason, message };
      if (status === 401 || status === 403) hint = recheckCredentials(hint, [this.apiKey, this.password]);
      const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
      return {
        kind: "retryable",
        status,
        reason,
        message,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        ...(hint !== undefined ? { hint } : {}),
      };
    });
  }

  async close(): Promise<void> {
    if (this.ownPool) await this.pool.close();
  }
}

/** The head of a bulk answer that says every item succeeded. */
const ALL_WELL = /^\s*\{\s*(?:"took"\s*:\s*\d+\s*,\s*)?"errors"\s*:\s*false\s*[,}]/;
/** Bytes of an answer's head that ALL_WELL is tried on. */
const HEAD_BYTES = 64;
/** readBulkAnswer's answer when the head said every item succeeded. */
const ALL_WELL_READ = Symbol("all well");

/**
 * A 2xx bulk answer: ALL_WELL_READ when its head says every item succeeded — the rest (the items,
 * ~25 bytes per line: 120 KiB for a batch of 1 MiB) is then read and let go chunk by chunk
 * instead of gathered, copied and decoded into a string per batch only to be ignored. Otherwise
 * its text, at most MAX_BULK_RESPONSE_BYTES (`truncated` beyond: the rest is not read).
 */
export async function readBulkAnswer(
  body: AsyncIterable<unknown>,
): Promise<typeof ALL_WELL_READ | { text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let headTried = false;
  let allWell = false;
  try {
    for await (const chunk of body) {
      if (allWell) continue;
      const b = chunk as Buffer;
      chunks.push(b);
      size += b.length;
      if (size > MAX_BULK_RESPONSE_BYTES) break;
      if (!headTried && size >= HEAD_BYTES) {
        headTried = true;
        const head = (chunks.length === 1 ? b : Buffer.concat(chunks)).toString("utf8", 0, HEAD_BYTES);
        if (ALL_WELL.test(head)) {
          allWell = true;
          chunks.length = 0;
        }
      }
    }
  } catch {
    // A body cut off mid-way: what came is classified (as readText did).
  }
  if (allWell) return ALL_WELL_READ;
  const text = Buffer.concat(chunks).subarray(0, MAX_BULK_RESPONSE_BYTES).toString("utf8").trim();
  return size > MAX_BULK_RESPONSE_BYTES ? { text: `${text}…`, truncated: true } : { text, truncated: false };
}

/** Classify a 2xx `_bulk` answer for `batch` (see the header for the rules). */
export function classifyBulkResponse(status: number, text: string, batch: EncodedBody): SinkResult {
  // The common answer, `{"errors":false,"items":[…]}` (or with `took` first, without
  // filter_path), is decided by its head: parsing one status object per item — thousands per
  // batch — only to learn that all is well cost more CPU than encoding the batch.
  if (ALL_WELL.test(text.slice(0, 64))) return { kind: "success", status };
  let parsed: { errors?: unknown; items?: unknown };
  try {
    parsed = JSON.parse(text) as { errors?: unknown; items?: unknown };
  } catch {
    return {
      kind: "retryable",
      status,
      reason: "bad_response",
      message: `unparsable bulk answer: ${cut(text)}`,
    };
  }
  if (parsed.errors === false) return { kind: "success", status };
  const items = parsed.items;
  const expected = isBulkBody(batch) ? batch.itemEnds.length : -1;
  if (parsed.errors !== true || !Array.isArray(items) || (expected >= 0 && items.length !== expected)) {
    return {
      kind: "retryable",
      status,
      reason: "bad_response",
      message: `bulk answer without the expected items (${expected} sent): ${cut(text)}`,
    };
  }
  const retry: number[] = [];
  let dropped = 0;
  let firstType: string | undefined;
  let firstMessage: string | undefined;
  const byType = new Map<string, number>();
  for (let i = 0; i < items.length; i++) {
    const entry = items[i] as Record<string, BulkItemResult> | null;
    const r = entry !== null && typeof entry === "object" ? Object.values(entry)[0] : undefined;
    const st = r?.status;
    if (typeof st !== "number") {
      retry.push(i); // an item without a status says nothing: send it again (a 409 if it was taken)
      continue;
    }
    if ((st >= 200 && st < 300) || st === 409) continue;
    if (st === 429 || st >= 500) {
      retry.push(i);
      continue;
    }
    dropped++;
    const type = r?.error?.type ?? `http_${st}`;
    byType.set(type, (byType.get(type) ?? 0) + 1);
    if (firstType === undefined) {
      firstType = type;
      firstMessage = `${type}: ${r?.error?.reason ?? "(no reason given)"}`;
    }
  }
  if (dropped === 0 && retry.length === 0) return { kind: "success", status };
  if (!isBulkBody(batch)) {
    // Only bodies from BulkEncoder can be split; anything else is sent again whole.
    return { kind: "retryable", status, reason: "bulk_items", message: `${retry.length} items to retry` };
  }
  let message = firstMessage;
  if (byType.size > 1) {
    const counts = [...byType].map(([t, n]) => `${n} ${t}`).join(", ");
    message = `${counts}; first: ${firstMessage}`;
  }
  const result: PartialResult = {
    kind: "partial",
    status,
    dropped,
    reason: firstType ?? "retry",
    ...(message !== undefined ? { message: cut(message) } : {}),
  };
  if (retry.length > 0) {
    const body: BulkBody = selectItems(batch, retry);
    result.retry = { body, lines: retry.length };
  }
  return result;
}

function cut(s: string): string {
  return s.length > MAX_ERROR_BODY_BYTES ? `${s.slice(0, MAX_ERROR_BODY_BYTES)}…` : s;
}

export type { SendResult };
