// A Loki-compatible push receiver for tests and benchmarks: POST /loki/api/v1/push with
// protobuf+snappy (hand-written protobuf decoder, independent of the shipper's encoder) or JSON
// (gzip or not), decoded and validated like real Loki — labels string parsed with Loki's quoting
// rules, protobuf strings checked for valid UTF-8, protobuf timestamps within
// google.protobuf.Timestamp's range (years 1–9999), JSON nanoseconds within int64 — answering
// 204 on success and 400 with a message on an undecodable body (nothing of it stored, as Loki).
// Like Loki's distributor it then validates each entry's timestamp against its window (newer
// than now + creation_grace_period, default 10 min as Loki's; older than now −
// reject_old_samples_max_age, off unless asked since tests use fixed 2023 times — Loki's
// default is 1 week): refused entries are not stored, the rest of the push is, and the answer
// is 400 with Loki's message ("entry for stream '…' has timestamp too new: …", grouped as
// "N errors like: …" when several). Like Loki's ingester it silently drops an entry whose stream,
// timestamp and line all equal an entry it already holds (204 all the same, counted in
// `deduplicated`), so a shipper that gives distinct lines the same timestamp is caught losing
// them. Faults can be injected: a status (503, 429 + Retry-After, 400)
// for the next N requests, slowness, or a connection reset without an answer.
//
// Plain Node (no vitest imports), so process tests, the benchmark and a container test can use
// it from any script:
//
//   const loki = await startFakeLoki();            // http://127.0.0.1:<ephemeral port>
//   ...point LOKI_ENDPOINT at loki.pushUrl (or loki.url)...
//   await loki.waitForEntries(1000, 30_000);      // rejects with a clear message on timeout
//   loki.entries  // [{ labels: {job: "sample-app", filename: "...", level: "info"}, tsNs, line,
//                 //    metadata?: {trace_id: "..."} }]   (structured metadata, when the entry had any)
//   loki.setFault({ kind: "status", status: 503, times: 3 });
//   await loki.close();
//
// API:
//   interface ReceivedEntry { labels: Record<string, string>; tsNs: bigint; line: string }
//   interface ReceivedRequest { encoding: "protobuf" | "json"; contentEncoding?: string;
//     headers: Record<string, string | string[] | undefined>; bytes: number; status: number }
//   type Fault =
//     | { kind: "status"; status: number; body?: string; retryAfter?: string; times?: number }
//     | { kind: "slow"; delayMs: number; times?: number }
//     | { kind: "reset"; times?: number }                  // destroy the socket without answering
//   `times` = how many requests the fault applies to (default: until cleared with setFault(undefined)).
//   startFakeLoki({ host?, port?, requireTenant?, requireAuth?, store? }): Promise<FakeLoki>
//     requireTenant: X-Scope-OrgID must equal it (else 401 "no org id", as Loki).
//     requireAuth: the Authorization header must equal it exactly (else 401).
//     store: "full" (default) keeps every entry; "lines" keeps entries without their labels
//       (one shared empty object); "count" keeps none (entryCount and onEntry still see them) —
//       for big benchmark runs.
//     tls: { cert, key } serves HTTPS (test CA and certificate in loki-tls-fixture.ts).
//     onEntry: called for every accepted entry, in arrival order (e.g. latency measurement).
//     dedup: false turns off Loki's duplicate-entry drop (default on).
//     creationGracePeriodMs / rejectOldSamplesMaxAgeMs: Loki's timestamp window (10 min / off).
//   loki.refused: entries refused by that window (not stored).
//   loki.setPoison(text): from now on a push holding an entry whose line contains `text` fails
//     whole with 400 and nothing of it is stored — as one undecodable entry fails a real push
//     (a 400 that does not say which entry was bad). setPoison(undefined) ends it.
//   loki.deduplicated: entries dropped as duplicates (same stream, timestamp and line).

import { isUtf8 } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import snappy from "snappy";

export interface ReceivedEntry {
  labels: Record<string, string>;
  tsNs: bigint;
  line: string;
  /**
   * Structured metadata (Loki 3): protobuf EntryAdapter field 3 (repeated LabelPairAdapter
   * { name = 1; value = 2 }, grafana/loki pkg/push/push.proto), or a JSON value's third element.
   */
  metadata?: Record<string, string>;
}

export interface ReceivedRequest {
  encoding: "protobuf" | "json";
  contentEncoding?: string;
  headers: Record<string, string | string[] | undefined>;
  /** Body bytes as received (compressed). */
  bytes: number;
  status: number;
}

export type Fault =
  | { kind: "status"; status: number; body?: string; retryAfter?: string; times?: number }
  | { kind: "slow"; delayMs: number; times?: number }
  | { kind: "reset"; times?: number };

export interface FakeLokiOptions {
  host?: string;
  port?: number;
  requireTenant?: string;
  requireAuth?: string;
  store?: "full" | "lines" | "count";
  /** Serve HTTPS with this certificate and key (PEM); `url` is then https://. */
  tls?: { cert: string; key: string };
  onEntry?: (entry: ReceivedEntry) => void;
  /** Drop entries equal (stream, timestamp, line) to one already held, as Loki does. Default true. */
  dedup?: boolean;
  /** Refuse entries newer than now + this (Loki's creation_grace_period). Default 10 min. */
  creationGracePeriodMs?: number;
  /** Refuse entries older than now − this (Loki's reject_old_samples_max_age). Default: off. */
  rejectOldSamplesMaxAgeMs?: number;
}

/** Loki's defaults for its timestamp window (limits_config). */
export const LOKI_CREATION_GRACE_PERIOD_MS = 10 * 60 * 1000;
export const LOKI_REJECT_OLD_SAMPLES_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

export interface FakeLoki {
  /** Base URL, http://127.0.0.1:<port>. */
  url: string;
  /** url + "/loki/api/v1/push". */
  pushUrl: string;
  /** Accepted entries in arrival order (empty with store: "count"). */
  entries: ReceivedEntry[];
  /** Number of accepted entries (also with store: "count"). */
  readonly entryCount: number;
  /** Entries dropped silently because stream, timestamp and line equal an entry already held. */
  readonly deduplicated: number;
  /** Entries refused by the timestamp window (too new / too old), in arrival order. */
  refused: ReceivedEntry[];
  requests: ReceivedRequest[];
  setFault(f: Fault | undefined): void;
  /** Fail every push holding an entry whose line contains `text` (400, nothing stored). */
  setPoison(text: string | undefined): void;
  /** Resolves once at least `n` entries were accepted; rejects after `timeoutMs` (default 30 s). */
  waitForEntries(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Requests bigger than this are refused with 413, like Loki's default gRPC/HTTP limits. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Timestamps remembered per stream for duplicate detection. Loki compares against the entries of
 * a stream's open head block; a bounded window of recent timestamps is the same for any test
 * (and keeps a long benchmark's receiver small).
 */
const DEDUP_WINDOW = 8192;

/** Per stream: recent timestamps and the lines stored at each (one line is the common case). */
type SeenLines = Map<bigint, string | string[]>;

/** A stream's identity: its labels, sorted (Loki hashes the sorted label set). */
function streamKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** True when `seen` already holds (ts, line); otherwise records it. */
function isDuplicate(seen: SeenLines, ts: bigint, line: string): boolean {
  const have = seen.get(ts);
  if (have === undefined) {
    seen.set(ts, line);
    if (seen.size > DEDUP_WINDOW) seen.delete(seen.keys().next().value as bigint);
    return false;
  }
  if (typeof have === "string") {
    if (have === line) return true;
    seen.set(ts, [have, line]);
    return false;
  }
  if (have.includes(line)) return true;
  have.push(line);
  return false;
}

export async function startFakeLoki(opts: FakeLokiOptions = {}): Promise<FakeLoki> {
  const entries: ReceivedEntry[] = [];
  const requests: ReceivedRequest[] = [];
  let count = 0;
  let deduplicated = 0;
  const dedup = opts.dedup ?? true;
  const seenByStream = new Map<string, SeenLines>();
  let fault: Fault | undefined;
  let poison: string | undefined;
  let faultLeft = Number.POSITIVE_INFINITY;
  let waiters: { n: number; resolve: () => void }[] = [];
  const store = opts.store ?? "full";
  const grace = opts.creationGracePeriodMs ?? LOKI_CREATION_GRACE_PERIOD_MS;
  const maxAge = opts.rejectOldSamplesMaxAgeMs;
  const refused: ReceivedEntry[] = [];

  const takeFault = (): Fault | undefined => {
    if (fault === undefined) return undefined;
    const f = fault;
    faultLeft--;
    if (faultLeft <= 0) fault = undefined;
    return f;
  };

  const accept = (batch: ReceivedEntry[]) => {
    // Entries of one decoded stream share their labels object: look its key up once.
    let lastLabels: Record<string, string> | undefined;
    let seen: SeenLines | undefined;
    for (const e of batch) {
      if (dedup) {
        if (e.labels !== lastLabels) {
          lastLabels = e.labels;
          const key = streamKey(e.labels);
          seen = seenByStream.get(key);
          if (seen === undefined) {
            seen = new Map();
            seenByStream.set(key, seen);
          }
        }
        if (isDuplicate(seen as SeenLines, e.tsNs, e.line)) {
          deduplicated++;
          continue;
        }
      }
      count++;
      if (store === "full") entries.push(e);
      else if (store === "lines") entries.push({ labels: NO_LABELS, tsNs: e.tsNs, line: e.line });
      opts.onEntry?.(e);
    }
    if (waiters.length > 0) {
      const still: typeof waiters = [];
      for (const w of waiters) (count >= w.n ? w.resolve : () => still.push(w))();
      waiters = still;
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) reply(res, 500, String(err));
    });
  };
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer(onRequest);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/ready") return reply(res, 200, "ready");
    if (url.pathname !== "/loki/api/v1/push") return reply(res, 404, "404 page not found");
    if (req.method !== "POST") return reply(res, 405, "method not allowed");

    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY_BYTES) return reply(res, 413, "request body too large");
      chunks.push(c as Buffer);
    }
    const raw = Buffer.concat(chunks);
    const contentType = String(req.headers["content-type"] ?? "");
    const contentEncoding = req.headers["content-encoding"] as string | undefined;
    const encoding: "protobuf" | "json" = contentType.includes("json") ? "json" : "protobuf";
    const record = (status: number) =>
      requests.push({
        encoding,
        ...(contentEncoding !== undefined ? { contentEncoding } : {}),
        headers: { ...req.headers },
        bytes: raw.length,
        status,
      });

    const f = takeFault();
    if (f?.kind === "reset") {
      record(0);
      req.socket.destroy();
      return;
    }
    if (f?.kind === "slow") {
      // Answer late — unless the client gives up first (its timeout): then, like a request
      // that never reached Loki's storage, nothing is accepted.
      const gaveUp = await new Promise<boolean>((resolve) => {
        const onClose = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          res.off("close", onClose);
          resolve(false);
        }, f.delayMs);
        res.once("close", onClose);
      });
      if (gaveUp) {
        record(0);
        return;
      }
    }
    if (f?.kind === "status") {
      record(f.status);
      if (f.retryAfter !== undefined) res.setHeader("retry-after", f.retryAfter);
      return reply(res, f.status, f.body ?? `injected ${f.status}`);
    }
    if (opts.requireTenant !== undefined && req.headers["x-scope-orgid"] !== opts.requireTenant) {
      record(401);
      return reply(res, 401, "no org id");
    }
    if (opts.requireAuth !== undefined && req.headers.authorization !== opts.requireAuth) {
      record(401);
      return reply(res, 401, "unauthorized");
    }
    let decoded: ReceivedEntry[];
    try {
      decoded = encoding === "json" ? decodeJsonPush(raw, contentEncoding) : decodeProtobufPush(raw);
    } catch (err) {
      record(400);
      return reply(res, 400, `error parsing push request: ${(err as Error).message}`);
    }
    if (poison !== undefined && decoded.some((e) => e.line.includes(poison as string))) {
      record(400);
      return reply(res, 400, "error parsing push request: injected: an entry this receiver cannot decode");
    }
    // Loki's distributor: entries outside the window are refused one by one, the rest is stored,
    // and the answer is a 400 naming what was refused (util.GroupedErrors' format).
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const newest = nowNs + BigInt(grace) * 1_000_000n;
    const oldest = maxAge === undefined ? undefined : nowNs - BigInt(maxAge) * 1_000_000n;
    const errors = new Map<string, number>();
    const valid: ReceivedEntry[] = [];
    for (const e of decoded) {
      let why: string | undefined;
      if (e.tsNs > newest) why = "too new";
      else if (oldest !== undefined && e.tsNs < oldest) why = "too old";
      if (why === undefined) {
        valid.push(e);
        continue;
      }
      refused.push(e);
      const msg = `entry for stream '${formatStream(e.labels)}' has timestamp ${why}: ${goTime(e.tsNs)}`;
      errors.set(msg, (errors.get(msg) ?? 0) + 1);
    }
    accept(valid);
    if (errors.size > 0) {
      record(400);
      const parts = [...errors].map(([m, n]) => (errors.size > 1 || n > 1 ? `${n} errors like: ${m}` : m));
      return reply(res, 400, parts.join("; "));
    }
    record(204);
    res.statusCode = 204;
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  server.keepAliveTimeout = 60_000;
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  const base = `${opts.tls ? "https" : "http"}://${host}:${port}`;

  return {
    url: base,
    pushUrl: `${base}/loki/api/v1/push`,
    entries,
    requests,
    get entryCount() {
      return count;
    },
    get deduplicated() {
      return deduplicated;
    },
    refused,
    setFault(f) {
      fault = f;
      faultLeft = f?.times ?? Number.POSITIVE_INFINITY;
    },
    setPoison(text) {
      poison = text;
    },
    waitForEntries(n, timeoutMs = 30_000) {
      if (count >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w.resolve !== done);
          reject(
            new Error(
              `fake Loki: waited ${timeoutMs} ms for ${n} entries, got ${count} ` +
                `(${requests.length} requests, last status ${requests.at(-1)?.status ?? "none"})`,
            ),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push({ n, resolve: done });
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Labels as Loki prints a stream: `{a="x", b="y"}`, sorted. */
function formatStream(labels: Record<string, string>): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `{${parts.join(", ")}}`;
}

/** A timestamp as Go's time.Time prints it (`2300-01-01 00:00:00 +0000 UTC`), to the second. */
function goTime(tsNs: bigint): string {
  const d = new Date(Number(tsNs / 1_000_000n));
  return Number.isNaN(d.getTime())
    ? `${tsNs}ns`
    : `${d.toISOString().slice(0, 19).replace("T", " ")} +0000 UTC`;
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.end(`${body}\n`);
}

// --- protobuf -----------------------------------------------------------------------------------

/** Decode a snappy-compressed PushRequest as Loki does; throws on anything malformed. */
export function decodeProtobufPush(raw: Buffer): ReceivedEntry[] {
  let body: Buffer;
  try {
    body = snappy.uncompressSync(raw, { asBuffer: true }) as Buffer;
  } catch (err) {
    throw new Error(`snappy: ${(err as Error).message}`);
  }
  return decodePushRequest(body);
}

/** Decode an uncompressed PushRequest. */
export function decodePushRequest(body: Buffer): ReceivedEntry[] {
  const out: ReceivedEntry[] = [];
  const r = new Reader(body, 0, body.length);
  while (!r.done()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | 2)) decodeStream(r.sub(), out);
    else r.skip(tag & 7);
  }
  return out;
}

function decodeStream(r: Reader, out: ReceivedEntry[]): void {
  let labels: Record<string, string> | undefined;
  const first = out.length;
  while (!r.done()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | 2)) labels = parseLabels(r.string());
    else if (tag === ((2 << 3) | 2)) decodeEntry(r.sub(), out);
    else r.skip(tag & 7);
  }
  if (labels === undefined) throw new Error("stream without labels");
  if (out.length === first) throw new Error("stream without entries");
  for (let i = first; i < out.length; i++) (out[i] as ReceivedEntry).labels = labels;
}

const NO_LABELS_YET: Record<string, string> = {};
/** 10000-01-01T00:00:00Z: the first second google.protobuf.Timestamp cannot hold. */
const MAX_TIMESTAMP_SECONDS = 253_402_300_800;
const MAX_INT64 = 9_223_372_036_854_775_807n;

function decodeEntry(r: Reader, out: ReceivedEntry[]): void {
  let sec = 0;
  let nanos = 0;
  let line = "";
  let haveTs = false;
  let metadata: Record<string, string> | undefined;
  while (!r.done()) {
    const tag = r.varint();
    if (tag === ((1 << 3) | 2)) {
      haveTs = true;
      const t = r.sub();
      while (!t.done()) {
        const tt = t.varint();
        if (tt === ((1 << 3) | 0)) sec = t.varint();
        else if (tt === ((2 << 3) | 0)) nanos = t.varint();
        else t.skip(tt & 7);
      }
    } else if (tag === ((2 << 3) | 2)) {
      line = r.string();
    } else if (tag === ((3 << 3) | 2)) {
      // structuredMetadata: LabelPairAdapter { string name = 1; string value = 2; }
      const pr = r.sub();
      let name = "";
      let value = "";
      while (!pr.done()) {
        const pt = pr.varint();
        if (pt === ((1 << 3) | 2)) name = pr.string();
        else if (pt === ((2 << 3) | 2)) value = pr.string();
        else pr.skip(pt & 7);
      }
      if (name === "") throw new Error("structured metadata without a name");
      metadata ??= {};
      metadata[name] = value;
    } else if (tag === ((4 << 3) | 2)) {
      throw new Error("EntryAdapter.parsed (field 4) is for query answers, not pushes");
    } else {
      r.skip(tag & 7);
    }
  }
  if (!haveTs) throw new Error("entry without timestamp");
  if (nanos >= 1_000_000_000) throw new Error(`timestamp nanos out of range: ${nanos}`);
  // google.protobuf.Timestamp (gogo's StdTimeUnmarshal, as Loki decodes it) ends with year 9999.
  if (sec >= MAX_TIMESTAMP_SECONDS) throw new Error(`timestamp: seconds:${sec} after 10000-01-01`);
  out.push({
    labels: NO_LABELS_YET,
    tsNs: BigInt(sec) * 1_000_000_000n + BigInt(nanos),
    line,
    ...(metadata !== undefined ? { metadata } : {}),
  });
}

/** Protobuf wire reader over buf[pos, end). Numbers are exact up to 2^53 (enough for Loki). */
class Reader {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
    private readonly end: number,
  ) {}
  done(): boolean {
    return this.pos >= this.end;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const b = this.buf[this.pos++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new Error("varint beyond 2^53 (negative int64?)");
        return v;
      }
      mul *= 128;
    }
    throw new Error("varint too long");
  }
  private span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new Error("length past end of message");
    this.pos += len;
    return [start, start + len];
  }
  sub(): Reader {
    const [s, e] = this.span();
    return new Reader(this.buf, s, e);
  }
  string(): string {
    const [s, e] = this.span();
    // Go's protobuf rejects invalid UTF-8 in proto3 strings; so does this receiver.
    const b = this.buf.subarray(s, e);
    if (!isUtf8(b)) throw new Error("invalid UTF-8 in a string field");
    return b.toString("utf8");
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.span();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

// --- labels -------------------------------------------------------------------------------------

/**
 * Parse a stream selector `{a="x", b="y"}` as Loki does (Go-style quoted values; `\n` must be
 * escaped; names `[a-zA-Z_][a-zA-Z0-9_]*`; no duplicates). Throws on anything else.
 */
export function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i] as string)) i++;
  };
  const fail = (why: string): never => {
    throw new Error(`invalid labels ${JSON.stringify(s)}: ${why} at ${i}`);
  };
  ws();
  if (s[i] !== "{") fail("expected {");
  i++;
  ws();
  if (s[i] === "}") fail("no labels");
  for (;;) {
    ws();
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(i));
    if (!m) fail("expected a label name");
    const name = (m as RegExpExecArray)[0];
    i += name.length;
    ws();
    if (s[i] !== "=") fail("expected =");
    i++;
    ws();
    if (s[i] !== '"') fail('expected "');
    i++;
    let value = "";
    for (;;) {
      if (i >= s.length) fail("unterminated value");
      const c = s[i++] as string;
      if (c === '"') break;
      if (c === "\n") fail("raw newline in value");
      if (c !== "\\") {
        value += c;
        continue;
      }
      const e = s[i++];
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\", "'": "'" };
      if (e !== undefined && e in simple) value += simple[e];
      else fail(`unsupported escape \\${e}`);
    }
    if (name in out) fail(`duplicate label ${name}`);
    out[name] = value;
    ws();
    if (s[i] === ",") {
      i++;
      continue;
    }
    if (s[i] === "}") {
      i++;
      break;
    }
    fail("expected , or }");
  }
  ws();
  if (i !== s.length) fail("trailing characters");
  return out;
}

// --- JSON ---------------------------------------------------------------------------------------

/** Decode a JSON push body (gzip when Content-Encoding says so); throws on anything malformed. */
export function decodeJsonPush(raw: Buffer, contentEncoding?: string): ReceivedEntry[] {
  const body = contentEncoding === "gzip" ? gunzipSync(raw) : raw;
  const doc = JSON.parse(body.toString("utf8")) as { streams?: unknown };
  if (!Array.isArray(doc.streams)) throw new Error("missing streams");
  const out: ReceivedEntry[] = [];
  for (const s of doc.streams as { stream?: unknown; values?: unknown }[]) {
    if (typeof s.stream !== "object" || s.stream === null) throw new Error("stream without labels");
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.stream as Record<string, unknown>)) {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) throw new Error(`invalid label name ${k}`);
      if (typeof v !== "string") throw new Error(`label ${k} is not a string`);
      labels[k] = v;
    }
    if (!Array.isArray(s.values)) throw new Error("stream without values");
    for (const v of s.values as unknown[]) {
      if (
        !Array.isArray(v) ||
        v.length < 2 ||
        v.length > 3 ||
        typeof v[0] !== "string" ||
        typeof v[1] !== "string" ||
        !/^\d+$/.test(v[0])
      ) {
        throw new Error(`bad value ${JSON.stringify(v)}`);
      }
      // [ts, line, {structured metadata}]: an object of string values.
      let metadata: Record<string, string> | undefined;
      if (v.length === 3) {
        const m = v[2] as unknown;
        if (typeof m !== "object" || m === null || Array.isArray(m))
          throw new Error(`structured metadata is not an object: ${JSON.stringify(v)}`);
        metadata = {};
        for (const [k, x] of Object.entries(m as Record<string, unknown>)) {
          if (typeof x !== "string") throw new Error(`structured metadata ${k} is not a string`);
          metadata[k] = x;
        }
      }
      const tsNs = BigInt(v[0]);
      // Loki parses the nanoseconds with strconv.ParseInt(…, 10, 64).
      if (tsNs > MAX_INT64)
        throw new Error(`strconv.ParseInt: parsing ${JSON.stringify(v[0])}: value out of range`);
      out.push({ labels, tsNs, line: v[1], ...(metadata !== undefined ? { metadata } : {}) });
    }
  }
  return out;
}
