// An Elasticsearch-compatible `_bulk` receiver for tests and benchmarks, parsing the body as
// Elasticsearch documents it: NDJSON, one action line (`index`, `create` or `delete`, with
// `_index`/`_id`, or the index from the path `[/<proxy>]/<index>/_bulk`) followed by a source line for
// index/create; the body must end with a newline. A malformed body (bad action JSON, unknown
// action, missing source line, no final newline, unsupported Content-Type) fails the whole request
// with 400 (406 for the content type) and Elasticsearch's error JSON:
//   {"error":{"root_cause":[{"type","reason"}],"type","reason"},"status":400}
// Otherwise each item is answered on its own, in the real bulk answer shape:
//   {"took":N,"errors":bool,"items":[{"create":{"_index","_id","_version","result","status",...}}]}
// with these rules, per index:
//   `create` of an `_id` already there → 409 version_conflict_engine_exception (not stored again)
//   `index` overwrites (200 "updated") or creates (201)
//   an index named like a data stream (`logs-*-*`) takes only `create` (400
//   illegal_argument_exception otherwise) and needs `@timestamp` (400 otherwise)
//   a source line that is not a JSON object → 400 document_parsing_exception for that item
// `filter_path` is applied to the answer like Elasticsearch does (comma-separated dotted paths,
// `*` matching any key). `Content-Encoding: gzip`/`deflate` bodies are decompressed.
//
// Auth (optional): requireAuth { basic: {username, password} } and/or { apiKey: "<base64 id:key>" }
// — a missing or wrong Authorization header is answered 401 security_exception with a
// WWW-Authenticate header, like Elasticsearch with security on.
//
// Faults: setFault({kind: "status", status, retryAfter?, times?}) answers the next requests with
// that status and an Elasticsearch error body (429 → es_rejected_execution_exception), nothing
// stored; {kind: "slow", delayMs} answers late (after storing: a shipper that timed out finds its
// lines there on retry — the case stable `_id`s exist for); {kind: "reset"} destroys the socket
// without answering (after storing, with `afterStore: true`). setItemFaults([{match, status,
// type?, times?}]) fails the items whose source line contains `match` (not stored), `times` items
// in all (default: every one).
//
// Plain Node (no vitest imports): process tests and benchmarks can use it from any script.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";

export interface StoredDoc {
  index: string;
  id: string;
  source: Record<string, unknown>;
}

export interface BulkRequestRecord {
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  contentEncoding?: string;
  /** Body bytes as received. */
  bytes: number;
  status: number;
  /** Per item: action, index, id, status (empty when the request failed whole). */
  items: { action: string; index: string; id: string; status: number }[];
}

export type EsFault =
  | { kind: "status"; status: number; retryAfter?: string; times?: number }
  | { kind: "slow"; delayMs: number; times?: number }
  | { kind: "reset"; afterStore?: boolean; times?: number };

export interface ItemFault {
  /** Items whose source line contains this text. */
  match: string;
  status: number;
  type?: string;
  reason?: string;
  /** How many items in all (default: every matching item, until cleared). */
  times?: number;
}

export interface FakeElasticsearchOptions {
  host?: string;
  port?: number;
  requireAuth?: { basic?: { username: string; password: string }; apiKey?: string };
  tls?: { cert: string; key: string };
  /**
   * Keep the stored documents (default) or only count them (big runs, benchmarks): every document
   * is still parsed and checked and every `_id` remembered (409 on a second create); `docs` stays
   * empty and `docCount` counts.
   */
  store?: "full" | "count";
}

export interface FakeElasticsearch {
  url: string;
  /** Documents stored, in arrival order (an overwrite by `index` replaces in place). */
  docs: StoredDoc[];
  /** Documents stored (docs.length, also with store: "count"). */
  readonly docCount: number;
  requests: BulkRequestRecord[];
  /** Items answered 409 (already there). */
  readonly conflicts: number;
  setFault(f: EsFault | undefined): void;
  setItemFaults(f: ItemFault[]): void;
  waitForDocs(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const DATA_STREAM = /^logs-[^-]+-[^-]+$/;

function esError(type: string, reason: string, status: number, extra: Record<string, unknown> = {}) {
  const cause = { type, reason, ...extra };
  return { error: { root_cause: [cause], ...cause }, status };
}

/** Elasticsearch's `filter_path`: keep only the listed dotted paths (`*` = any key). */
export function filterPath(value: unknown, paths: string[][]): unknown {
  if (paths.some((p) => p.length === 0)) return value;
  if (Array.isArray(value)) {
    const out = value.map((v) => filterPath(v, paths)).filter((v) => v !== undefined);
    return out.length > 0 ? out : undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const rest = paths.filter((p) => p[0] === "*" || p[0] === k).map((p) => p.slice(1));
    if (rest.length === 0) continue;
    const f = filterPath(v, rest);
    if (f !== undefined) out[k] = f;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export async function startFakeElasticsearch(
  opts: FakeElasticsearchOptions = {},
): Promise<FakeElasticsearch> {
  const indices = new Map<string, Map<string, number>>(); // index → id → position in docs
  const docs: StoredDoc[] = [];
  const requests: BulkRequestRecord[] = [];
  let fault: EsFault | undefined;
  let faultLeft = 0;
  let itemFaults: (ItemFault & { left: number })[] = [];
  let conflicts = 0;
  let seqNo = 0;
  const countOnly = opts.store === "count";
  let docCount = 0;
  let autoId = 0;
  const waiters: { n: number; resolve: () => void }[] = [];

  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i] as { n: number; resolve: () => void };
      if (docs.length >= w.n) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  const takeFault = (): EsFault | undefined => {
    if (fault === undefined) return undefined;
    const f = fault;
    if (f.times !== undefined && --faultLeft <= 0) fault = undefined;
    return f;
  };

  const authorized = (req: IncomingMessage): boolean => {
    const need = opts.requireAuth;
    if (need === undefined) return true;
    const h = req.headers.authorization ?? "";
    if (need.basic !== undefined) {
      const want = Buffer.from(`${need.basic.username}:${need.basic.password}`, "utf8").toString("base64");
      if (h === `Basic ${want}`) return true;
    }
    if (need.apiKey !== undefined && h === `ApiKey ${need.apiKey}`) return true;
    return false;
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "x-elastic-product": "Elasticsearch",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    const u = new URL(req.url ?? "/", "http://x");
    const query = Object.fromEntries(u.searchParams);
    const contentEncoding = req.headers["content-encoding"];
    const record: BulkRequestRecord = {
      path: u.pathname,
      query,
      headers: req.headers,
      ...(contentEncoding !== undefined ? { contentEncoding } : {}),
      bytes: raw.length,
      status: 0,
      items: [],
    };
    requests.push(record);
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      record.status = status;
      send(res, status, body, headers);
    };

    // `/_bulk` or `/<index>/_bulk`, either behind one path segment of a proxy in front.
    const m = /^(?:\/[^/]+)??(?:\/([^/_][^/]*))?\/_bulk$/.exec(u.pathname);
    if (req.method !== "POST" && req.method !== "PUT") {
      return reply(
        405,
        esError("illegal_argument_exception", `Incorrect HTTP method for uri [${req.url}]`, 405),
      );
    }
    if (m === null) {
      return reply(404, esError("index_not_found_exception", `no such index [${u.pathname}]`, 404));
    }
    if (!authorized(req)) {
      return reply(
        401,
        esError("security_exception", `unable to authenticate user for REST request [${u.pathname}]`, 401, {
          header: { "WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"] },
        }),
        { "www-authenticate": 'Basic realm="security" charset="UTF-8"' },
      );
    }
    const f = takeFault();
    if (f?.kind === "status") {
      const type = f.status === 429 ? "es_rejected_execution_exception" : "unavailable_shards_exception";
      return reply(
        f.status,
        esError(type, `injected ${f.status}`, f.status),
        f.retryAfter !== undefined ? { "retry-after": f.retryAfter } : {},
      );
    }
    if (f?.kind === "reset" && !f.afterStore) {
      record.status = 0;
      req.socket.destroy();
      return;
    }
    const ctype = String(req.headers["content-type"] ?? "")
      .split(";")[0]
      ?.trim();
    if (ctype !== "application/json" && ctype !== "application/x-ndjson") {
      record.status = 406;
      return send(res, 406, { error: `Content-Type header [${ctype}] is not supported`, status: 406 });
    }
    let body: Buffer;
    try {
      body =
        contentEncoding === "gzip" ? gunzipSync(raw) : contentEncoding === "deflate" ? inflateSync(raw) : raw;
    } catch (err) {
      return reply(400, esError("parse_exception", `cannot decompress: ${(err as Error).message}`, 400));
    }
    const parsed = parseBulk(body, m[1] !== undefined ? decodeURIComponent(m[1]) : undefined);
    if ("error" in parsed) return reply(400, esError(parsed.error.type, parsed.error.reason, 400));

    const t0 = Date.now();
    let errors = false;
    const items: Record<string, unknown>[] = [];
    for (const it of parsed.items) {
      const r = applyItem(it);
      if (r.status >= 300) errors = true;
      record.items.push({ action: it.action, index: it.index, id: r._id as string, status: r.status });
      items.push({ [it.action]: r });
    }
    notify();
    if (f?.kind === "reset") {
      record.status = 0;
      req.socket.destroy();
      return;
    }
    if (f?.kind === "slow") await new Promise((r) => setTimeout(r, f.delayMs));
    let answer: unknown = { took: Date.now() - t0, errors, items };
    if (query.filter_path !== undefined) {
      answer =
        filterPath(
          answer,
          query.filter_path.split(",").map((p) => p.trim().split(".")),
        ) ?? {};
    }
    reply(200, answer);
  };

  interface Item {
    action: string;
    index: string;
    id: string | undefined;
    source: string | undefined;
  }

  const parseBulk = (
    body: Buffer,
    pathIndex: string | undefined,
  ): { items: Item[] } | { error: { type: string; reason: string } } => {
    if (body.length === 0)
      return {
        error: {
          type: "action_request_validation_exception",
          reason: "Validation Failed: 1: no requests added;",
        },
      };
    if (body[body.length - 1] !== 0x0a)
      return {
        error: {
          type: "illegal_argument_exception",
          reason: "The bulk request must be terminated by a newline [\\n]",
        },
      };
    const lines = body.toString("utf8").split("\n");
    lines.pop();
    const items: Item[] = [];
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.trim() === "") continue;
      let action: unknown;
      try {
        action = JSON.parse(line);
      } catch (err) {
        return {
          error: { type: "x_content_parse_exception", reason: `[${i + 1}:1] ${(err as Error).message}` },
        };
      }
      if (action === null || typeof action !== "object" || Object.keys(action).length !== 1) {
        return {
          error: {
            type: "illegal_argument_exception",
            reason: `Malformed action/metadata line [${i + 1}], expected START_OBJECT`,
          },
        };
      }
      const [name, meta] = Object.entries(action as Record<string, unknown>)[0] as [string, unknown];
      if (name !== "index" && name !== "create" && name !== "delete") {
        return {
          error: {
            type: "illegal_argument_exception",
            reason: `Action/metadata line [${i + 1}] contains an unknown parameter [${name}]`,
          },
        };
      }
      const md = (meta ?? {}) as Record<string, unknown>;
      const index = typeof md._index === "string" ? md._index : pathIndex;
      if (index === undefined) {
        return {
          error: {
            type: "action_request_validation_exception",
            reason: "Validation Failed: 1: index is missing;",
          },
        };
      }
      const id = typeof md._id === "string" ? md._id : undefined;
      let source: string | undefined;
      if (name !== "delete") {
        if (i + 1 >= lines.length) {
          return {
            error: {
              type: "illegal_argument_exception",
              reason: `The bulk request must be terminated by a newline [\\n]`,
            },
          };
        }
        source = lines[++i] as string;
      }
      items.push({ action: name, index, id, source });
    }
    if (items.length === 0)
      return {
        error: {
          type: "action_request_validation_exception",
          reason: "Validation Failed: 1: no requests added;",
        },
      };
    return { items };
  };

  const itemError = (it: Item, id: string, status: number, type: string, reason: string) => ({
    _index: it.index,
    _id: id,
    status,
    error: { type, reason, index: it.index },
  });

  const applyItem = (it: Item): Record<string, unknown> & { status: number } => {
    const id = it.id ?? `auto-${++autoId}`;
    const fault = itemFaults.find((f) => f.left !== 0 && it.source?.includes(f.match));
    if (fault !== undefined) {
      fault.left--;
      const type =
        fault.type ?? (fault.status === 429 ? "es_rejected_execution_exception" : "mapper_parsing_exception");
      return itemError(it, id, fault.status, type, fault.reason ?? `injected ${fault.status}`);
    }
    let idx = indices.get(it.index);
    const ds = DATA_STREAM.test(it.index);
    if (it.action === "delete") {
      const pos = idx?.get(id);
      if (pos === undefined) return { _index: it.index, _id: id, result: "not_found", status: 404 };
      idx?.delete(id);
      return { _index: it.index, _id: id, result: "deleted", status: 200 };
    }
    if (ds && it.action !== "create") {
      return itemError(
        it,
        id,
        400,
        "illegal_argument_exception",
        `only write ops with an op_type of create are allowed in data streams`,
      );
    }
    let source: unknown;
    try {
      source = JSON.parse(it.source as string);
    } catch (err) {
      return itemError(
        it,
        id,
        400,
        "document_parsing_exception",
        `[1:1] failed to parse: ${(err as Error).message}`,
      );
    }
    if (source === null || typeof source !== "object" || Array.isArray(source)) {
      return itemError(it, id, 400, "document_parsing_exception", "[1:1] failed to parse: not an object");
    }
    if (ds && typeof (source as Record<string, unknown>)["@timestamp"] !== "string") {
      return itemError(
        it,
        id,
        400,
        "document_parsing_exception",
        "data stream timestamp field [@timestamp] is missing",
      );
    }
    if (idx === undefined) {
      idx = new Map();
      indices.set(it.index, idx);
    }
    const have = idx.get(id);
    if (have !== undefined && it.action === "create") {
      conflicts++;
      return itemError(
        it,
        id,
        409,
        "version_conflict_engine_exception",
        `[${id}]: version conflict, document already exists (current version [1])`,
      );
    }
    const doc: StoredDoc = { index: it.index, id, source: source as Record<string, unknown> };
    const shards = { total: 2, successful: 1, failed: 0 };
    if (have !== undefined) {
      if (!countOnly) docs[have] = doc;
      return {
        _index: it.index,
        _id: id,
        _version: 2,
        result: "updated",
        _shards: shards,
        _seq_no: seqNo++,
        _primary_term: 1,
        status: 200,
      };
    }
    idx.set(id, docCount);
    docCount++;
    if (!countOnly) docs.push(doc);
    return {
      _index: it.index,
      _id: id,
      _version: 1,
      result: "created",
      _shards: shards,
      _seq_no: seqNo++,
      _primary_term: 1,
      status: 201,
    };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks)).catch((err) => {
        if (!res.headersSent) send(res, 500, esError("exception", String(err), 500));
      });
    });
    req.on("error", () => {});
  };
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve));
  const addr = server.address() as AddressInfo;
  const scheme = opts.tls ? "https" : "http";

  return {
    url: `${scheme}://${addr.address}:${addr.port}`,
    docs,
    requests,
    get docCount() {
      return docCount;
    },
    get conflicts() {
      return conflicts;
    },
    setFault(f) {
      fault = f;
      faultLeft = f?.times ?? 0;
    },
    setItemFaults(f) {
      itemFaults = f.map((x) => ({ ...x, left: x.times ?? -1 }));
    },
    waitForDocs(n, timeoutMs = 30_000) {
      if (docs.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = { n, resolve: () => {} };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`fake Elasticsearch: ${docs.length} of ${n} documents after ${timeoutMs} ms`));
        }, timeoutMs);
        w.resolve = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(w);
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      });
    },
  };
}
