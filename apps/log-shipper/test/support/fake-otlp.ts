// An OTLP/HTTP logs receiver for tests and benchmarks (POST /v1/logs), answering as the
// OpenTelemetry collector does. Protobuf bodies are decoded with the official OpenTelemetry
// definitions — the protobufjs code generated from opentelemetry-proto that
// @opentelemetry/otlp-transformer 0.57 ships (later versions dropped it) — so nothing here shares
// code or assumptions with the shipper's hand-written encoder. JSON bodies are read per the OTLP
// JSON mapping, strictly: lowerCamelCase names, 64-bit times as decimal strings, enums as numbers.
// gzip bodies are inflated first.
//
// Answers: 200 + ExportLogsServiceResponse in the request's encoding (with partialSuccess when
// records were refused, see setReject); 400 + google.rpc.Status for a body it cannot decode; 415
// for another Content-Type; 404 elsewhere. Faults for the next N requests: a status (with
// Retry-After and a Status message), slowness, or a connection reset without an answer.
// Optional checks: an exact Authorization header (else 401), or an AWS SigV4 signature RECOMPUTED
// here from the known test credentials with node:crypto, following the SigV4 specification
// (canonical request, string to sign, HMAC key chain) — independent of the signer (else 403).
//
// Plain Node (no vitest imports):
//   const otlp = await startFakeOtlp();           // http://127.0.0.1:<ephemeral port>
//   ...point OTLP_ENDPOINT at otlp.url (or otlp.logsUrl)...
//   await otlp.waitForRecords(1000, 30_000);
//   otlp.records  // [{ resource, scope, timeUnixNano, observedTimeUnixNano, severityNumber,
//                 //    severityText, body, attributes }]
//   otlp.setFault({ kind: "status", status: 503, retryAfter: "1", times: 2 });
//   otlp.setReject("poison", "2 records too old")  // refuse records whose body holds "poison"
//   await otlp.close();
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

interface PbType {
  decode(buf: Uint8Array): unknown;
  encode(msg: unknown): { finish(): Uint8Array };
  fromObject(o: unknown): unknown;
  toObject(m: unknown, o: Record<string, unknown>): Record<string, unknown>;
}
const otelRoot = createRequire(import.meta.url)(
  "@opentelemetry/otlp-transformer/build/src/generated/root.js",
) as {
  opentelemetry: { proto: { collector: { logs: { v1: Record<string, PbType> } } } };
};
const logsV1 = otelRoot.opentelemetry.proto.collector.logs.v1;
export const ExportLogsServiceRequest = logsV1.ExportLogsServiceRequest as PbType;
export const ExportLogsServiceResponse = logsV1.ExportLogsServiceResponse as PbType;

export interface ReceivedRecord {
  resource: Record<string, string>;
  scope: string;
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: string;
  attributes: Record<string, string>;
  /** The record's trace_id / span_id as lowercase hex; only when the record has one. */
  traceId?: string;
  spanId?: string;
}

export interface ReceivedOtlpRequest {
  encoding: "protobuf" | "json";
  contentEncoding?: string;
  headers: Record<string, string | string[] | undefined>;
  /** Body bytes as received (compressed). */
  bytes: number;
  status: number;
  /** Records in this request (decoded), 0 when not decoded. */
  records: number;
  /** When the request's body had arrived (epoch ms). */
  at: number;
}

export type OtlpFault =
  | { kind: "status"; status: number; message?: string; retryAfter?: string; times?: number }
  | { kind: "slow"; delayMs: number; times?: number }
  | { kind: "reset"; times?: number };

export interface SigV4Check {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
}

export interface FakeOtlpOptions {
  host?: string;
  tls?: { cert: string; key: string };
  /** The Authorization header must equal this exactly (else 401). */
  requireAuth?: string;
  /** Verify an AWS SigV4 signature with these credentials (else 403). */
  sigv4?: SigV4Check;
  /** Keep records (default) or only count them (big runs). */
  store?: "full" | "count";
}

export interface FakeOtlp {
  url: string;
  /** url + "/v1/logs" */
  logsUrl: string;
  records: ReceivedRecord[];
  readonly recordCount: number;
  /** Records refused through setReject (not stored). */
  rejected: ReceivedRecord[];
  requests: ReceivedOtlpRequest[];
  setFault(f: OtlpFault | undefined): void;
  /** From now on refuse (partialSuccess) records whose body contains `text`. */
  setReject(text: string | undefined, message?: string): void;
  waitForRecords(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** gRPC codes used in google.rpc.Status answers. */
const CODE_INVALID_ARGUMENT = 3;
const CODE_PERMISSION_DENIED = 7;
const CODE_UNAUTHENTICATED = 16;
const CODE_UNAVAILABLE = 14;

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export async function startFakeOtlp(opts: FakeOtlpOptions = {}): Promise<FakeOtlp> {
  const records: ReceivedRecord[] = [];
  const rejected: ReceivedRecord[] = [];
  const requests: ReceivedOtlpRequest[] = [];
  let count = 0;
  let fault: OtlpFault | undefined;
  let faultLeft = Number.POSITIVE_INFINITY;
  let reject: { text: string; message: string } | undefined;
  let waiters: { n: number; resolve: () => void }[] = [];

  const takeFault = (): OtlpFault | undefined => {
    if (fault === undefined) return undefined;
    const f = fault;
    faultLeft--;
    if (faultLeft <= 0) fault = undefined;
    return f;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end(String(err));
      }
    });
  };
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer(onRequest);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/v1/logs") {
      res.statusCode = 404;
      return void res.end("404 page not found");
    }
    if (req.method !== "POST") {
      res.statusCode = 405;
      return void res.end("method not allowed");
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY_BYTES) {
        res.statusCode = 413;
        return void res.end("request body too large");
      }
      chunks.push(c as Buffer);
    }
    const raw = Buffer.concat(chunks);
    const contentType = String(req.headers["content-type"] ?? "");
    const contentEncoding = req.headers["content-encoding"] as string | undefined;
    const encoding: "protobuf" | "json" = contentType.startsWith("application/json") ? "json" : "protobuf";
    const record = (status: number, n = 0) =>
      requests.push({
        encoding,
        ...(contentEncoding !== undefined ? { contentEncoding } : {}),
        headers: { ...req.headers },
        bytes: raw.length,
        status,
        records: n,
        at: Date.now(),
      });
    const status = (code: number, grpcCode: number, message: string, retryAfter?: string) => {
      record(code);
      if (retryAfter !== undefined) res.setHeader("retry-after", retryAfter);
      replyStatus(res, encoding, code, grpcCode, message);
    };

    const f = takeFault();
    if (f?.kind === "reset") {
      record(0);
      req.socket.destroy();
      return;
    }
    if (f?.kind === "slow") {
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
      return status(f.status, CODE_UNAVAILABLE, f.message ?? `injected ${f.status}`, f.retryAfter);
    }
    if (opts.requireAuth !== undefined && req.headers.authorization !== opts.requireAuth) {
      return status(401, CODE_UNAUTHENTICATED, "missing or invalid credentials");
    }
    if (opts.sigv4 !== undefined) {
      const why = verifySigV4(req, raw, opts.sigv4);
      if (why !== undefined) return status(403, CODE_PERMISSION_DENIED, why);
    }
    if (contentType !== "application/x-protobuf" && contentType !== "application/json") {
      record(415);
      res.statusCode = 415;
      return void res.end(`unsupported content type ${contentType}`);
    }
    let decoded: ReceivedRecord[];
    try {
      const body =
        contentEncoding === undefined || contentEncoding === "identity"
          ? raw
          : contentEncoding === "gzip"
            ? gunzipSync(raw)
            : (() => {
                throw new Error(`unsupported Content-Encoding ${contentEncoding}`);
              })();
      decoded = encoding === "json" ? decodeJsonRequest(body) : decodeProtobufRequest(body);
    } catch (err) {
      return status(400, CODE_INVALID_ARGUMENT, `failed to decode request: ${(err as Error).message}`);
    }
    const accepted: ReceivedRecord[] = [];
    let refused = 0;
    for (const r of decoded) {
      if (reject !== undefined && r.body.includes(reject.text)) {
        rejected.push(r);
        refused++;
      } else accepted.push(r);
    }
    count += accepted.length;
    if (opts.store !== "count") records.push(...accepted);
    if (waiters.length > 0) {
      const still: typeof waiters = [];
      for (const w of waiters) (count >= w.n ? w.resolve : () => still.push(w))();
      waiters = still;
    }
    record(200, decoded.length);
    res.statusCode = 200;
    if (encoding === "json") {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify(
          refused > 0
            ? { partialSuccess: { rejectedLogRecords: String(refused), errorMessage: reject?.message ?? "" } }
            : {},
        ),
      );
    } else {
      res.setHeader("content-type", "application/x-protobuf");
      const msg = ExportLogsServiceResponse.fromObject(
        refused > 0
          ? { partialSuccess: { rejectedLogRecords: refused, errorMessage: reject?.message ?? "" } }
          : {},
      );
      res.end(Buffer.from(ExportLogsServiceResponse.encode(msg).finish()));
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, opts.host ?? "127.0.0.1", () => resolve());
  });
  server.keepAliveTimeout = 60_000;
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  const base = `${opts.tls ? "https" : "http"}://${host}:${port}`;

  return {
    url: base,
    logsUrl: `${base}/v1/logs`,
    records,
    rejected,
    requests,
    get recordCount() {
      return count;
    },
    setFault(f) {
      fault = f;
      faultLeft = f?.times ?? Number.POSITIVE_INFINITY;
    },
    setReject(text, message) {
      reject =
        text === undefined ? undefined : { text, message: message ?? `refused records holding "${text}"` };
    },
    waitForRecords(n, timeoutMs = 30_000) {
      if (count >= n) return Promise.resolve();
      return new Promise<void>((resolve, rejectP) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w.resolve !== done);
          rejectP(new Error(`fake OTLP: ${count} of ${n} records after ${timeoutMs} ms`));
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
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/** A google.rpc.Status answer in the request's encoding (hand-encoded: code = 1, message = 2). */
function replyStatus(
  res: ServerResponse,
  encoding: "protobuf" | "json",
  code: number,
  grpcCode: number,
  message: string,
) {
  res.statusCode = code;
  if (encoding === "json") {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ code: grpcCode, message }));
    return;
  }
  const msg = Buffer.from(message, "utf8");
  const parts = [Buffer.from([0x08, grpcCode]), Buffer.from([0x12]), varint(msg.length), msg];
  res.setHeader("content-type", "application/x-protobuf");
  res.end(Buffer.concat(parts));
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

// --- decoding -------------------------------------------------------------------------------------

type KV = { key?: string; value?: { stringValue?: string } };

function stringAttrs(list: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (list === undefined) return out;
  if (!Array.isArray(list)) throw new Error(`${where}: attributes is not an array`);
  for (const kv of list as KV[]) {
    if (typeof kv.key !== "string" || kv.key === "") throw new Error(`${where}: attribute without key`);
    if (typeof kv.value?.stringValue !== "string")
      throw new Error(`${where}: attribute ${kv.key} is not a string value`);
    if (kv.key in out) throw new Error(`${where}: duplicate attribute ${kv.key}`);
    out[kv.key] = kv.value.stringValue;
  }
  return out;
}

/** Decode with the official generated code; throws on a body that is not an ExportLogsServiceRequest. */
export function decodeProtobufRequest(body: Uint8Array): ReceivedRecord[] {
  const msg = ExportLogsServiceRequest.decode(body);
  const obj = ExportLogsServiceRequest.toObject(msg, { longs: String, enums: Number, defaults: true });
  return fromObject(obj as RequestObject, "protobuf");
}

interface RequestObject {
  resourceLogs?: {
    resource?: { attributes?: unknown };
    scopeLogs?: {
      scope?: { name?: string };
      logRecords?: {
        timeUnixNano?: unknown;
        observedTimeUnixNano?: unknown;
        severityNumber?: unknown;
        severityText?: unknown;
        body?: { stringValue?: unknown };
        attributes?: unknown;
        traceId?: unknown;
        spanId?: unknown;
      }[];
    }[];
  }[];
}

/**
 * A trace or span id as lowercase hex ("" when absent): bytes from protobuf; in JSON the OTLP
 * mapping writes these two as hex strings (not base64), which this receiver insists on.
 */
function id(v: unknown, bytes: number, what: string, how: "protobuf" | "json"): string {
  if (v === undefined || v === null || v === "") return "";
  let hex: string;
  if (how === "json") {
    if (typeof v !== "string" || !/^[0-9a-fA-F]*$/.test(v))
      throw new Error(`${what} is not hex: ${String(v)}`);
    hex = v.toLowerCase();
  } else {
    if (!(v instanceof Uint8Array)) throw new Error(`${what} is not bytes`);
    if (v.length === 0) return "";
    hex = Buffer.from(v).toString("hex");
  }
  if (hex.length !== bytes * 2) throw new Error(`${what} is not ${bytes} bytes: ${hex}`);
  return hex;
}

function ids(trace: unknown, span: unknown, how: "protobuf" | "json"): { traceId?: string; spanId?: string } {
  const traceId = id(trace, 16, "traceId", how);
  const spanId = id(span, 8, "spanId", how);
  return { ...(traceId !== "" ? { traceId } : {}), ...(spanId !== "" ? { spanId } : {}) };
}

function fromObject(doc: RequestObject, how: "protobuf" | "json"): ReceivedRecord[] {
  if (!Array.isArray(doc.resourceLogs)) throw new Error("resourceLogs missing");
  const out: ReceivedRecord[] = [];
  const nanos = (v: unknown, what: string): bigint => {
    // The JSON mapping writes 64-bit integers as decimal strings; this receiver insists on it.
    if (typeof v !== "string" || !/^\d+$/.test(v))
      throw new Error(`${what} is not a decimal string: ${JSON.stringify(v)}`);
    const n = BigInt(v);
    if (n >= 1n << 64n) throw new Error(`${what} out of range`);
    return n;
  };
  for (const rl of doc.resourceLogs) {
    const resource = stringAttrs(rl.resource?.attributes, "resource");
    for (const sl of rl.scopeLogs ?? []) {
      const scope = sl.scope?.name ?? "";
      for (const r of sl.logRecords ?? []) {
        const sev = r.severityNumber ?? 0;
        if (typeof sev !== "number" || !Number.isInteger(sev) || sev < 0 || sev > 24)
          throw new Error(`severityNumber ${JSON.stringify(sev)} is not an enum number`);
        if (typeof r.body?.stringValue !== "string") throw new Error("record body is not a string value");
        out.push({
          resource,
          scope,
          timeUnixNano: nanos(r.timeUnixNano ?? (how === "json" ? undefined : "0"), "timeUnixNano"),
          observedTimeUnixNano: nanos(
            r.observedTimeUnixNano ?? (how === "json" ? undefined : "0"),
            "observedTimeUnixNano",
          ),
          severityNumber: sev,
          severityText: typeof r.severityText === "string" ? r.severityText : "",
          body: r.body.stringValue,
          attributes: stringAttrs(r.attributes, "record"),
          ...ids(r.traceId, r.spanId, how),
        });
      }
    }
  }
  return out;
}

/** Decode an OTLP/JSON body strictly per the JSON mapping. */
export function decodeJsonRequest(body: Buffer): ReceivedRecord[] {
  const doc = JSON.parse(body.toString("utf8")) as RequestObject;
  for (const k of Object.keys(doc)) if (k.includes("_")) throw new Error(`field ${k} is not lowerCamelCase`);
  return fromObject(doc, "json");
}

// --- SigV4 verification (independent of @smithy/signature-v4) -------------------------------------

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** RFC 3986 percent-encoding as SigV4 wants it (unreserved characters kept). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Undefined when the request's SigV4 signature is right; else why not. */
export function verifySigV4(
  req: Pick<IncomingMessage, "headers" | "method" | "url">,
  body: Buffer,
  creds: SigV4Check,
  nowMs = Date.now(),
  /** Headers that must be signed (AWS's logs service wants the payload hash signed too). */
  requireSigned: readonly string[] = ["host", "x-amz-date", "x-amz-content-sha256"],
): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth !== "string") return "missing Authorization header";
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (m === null) return `malformed Authorization header: ${auth}`;
  const [, keyId, date, region, service, signedList, signature] = m as unknown as string[];
  if (keyId !== creds.accessKeyId) return `unknown access key ${keyId}`;
  if (region !== creds.region) return `credential scope region ${region}, expected ${creds.region}`;
  if (service !== creds.service) return `credential scope service ${service}, expected ${creds.service}`;
  const amzDate = req.headers["x-amz-date"];
  if (typeof amzDate !== "string" || !/^\d{8}T\d{6}Z$/.test(amzDate))
    return "missing or malformed X-Amz-Date";
  if (amzDate.slice(0, 8) !== date) return "X-Amz-Date does not match the credential scope date";
  const t = Date.UTC(
    Number(amzDate.slice(0, 4)),
    Number(amzDate.slice(4, 6)) - 1,
    Number(amzDate.slice(6, 8)),
    Number(amzDate.slice(9, 11)),
    Number(amzDate.slice(11, 13)),
    Number(amzDate.slice(13, 15)),
  );
  if (Math.abs(nowMs - t) > 15 * 60 * 1000) return "Signature expired (X-Amz-Date more than 15 min off)";
  const signed = (signedList as string).split(";");
  const sorted = [...signed].sort();
  if (signed.join(";") !== sorted.join(";")) return "SignedHeaders not sorted";
  for (const required of requireSigned) {
    if (!signed.includes(required)) return `${required} is not signed`;
  }
  const payloadHash = sha256Hex(body);
  const claimed = req.headers["x-amz-content-sha256"];
  if (claimed !== undefined && claimed !== payloadHash)
    return "x-amz-content-sha256 does not match the body received";
  if (creds.sessionToken !== undefined) {
    if (req.headers["x-amz-security-token"] !== creds.sessionToken)
      return "missing or wrong X-Amz-Security-Token";
    if (!signed.includes("x-amz-security-token")) return "x-amz-security-token is not signed";
  }
  for (const name of signed) if (req.headers[name] === undefined) return `signed header ${name} not present`;
  const canonicalHeaders = signed
    .map((name) => {
      const v = req.headers[name] as string | string[];
      const value = (Array.isArray(v) ? v.join(",") : v).trim().replace(/\s+/g, " ");
      return `${name}:${value}\n`;
    })
    .join("");
  const [rawPath, rawQuery = ""] = (req.url ?? "/").split("?") as [string, string?];
  const canonicalUri = uriEncode(rawPath).replace(/%2F/g, "/");
  const canonicalQuery = rawQuery
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const eq = p.indexOf("=");
      const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq));
      const v = eq < 0 ? "" : decodeURIComponent(p.slice(eq + 1));
      return `${uriEncode(k)}=${uriEncode(v)}`;
    })
    .sort()
    .join("&");
  const canonicalRequest = [
    req.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedList,
    payloadHash,
  ].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const kDate = hmac(`AWS4${creds.secretAccessKey}`, date as string);
  const kRegion = hmac(kDate, region as string);
  const kService = hmac(kRegion, service as string);
  const kSigning = hmac(kService, "aws4_request");
  const expected = createHmac("sha256", kSigning).update(stringToSign, "utf8").digest();
  const got = Buffer.from(signature as string, "hex");
  if (got.length !== expected.length || !timingSafeEqual(got, expected))
    return "The request signature we calculated does not match the signature you provided.";
  return undefined;
}
