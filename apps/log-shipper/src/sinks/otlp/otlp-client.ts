// The OTLP/HTTP logs client: one POST of an encoded ExportLogsServiceRequest to `/v1/logs` over a
// keep-alive pool of Node's http client (sinks/http.ts; an extra CA added to the default trust), with the configured headers, a
// bearer token followed in its file, or an AWS SigV4 signature. Like the Loki client it never
// retries by itself: it classifies each attempt for the pipeline, as the OTLP specification's
// OTLP/HTTP response section says:
//
//   200            ExportLogsServiceResponse (protobuf or JSON, by the response's Content-Type):
//                  partialSuccess.rejectedLogRecords > 0 → partial (those records are refused for
//                  good — retrying the same records would be refused again — counted as dropped,
//                  errorMessage logged); otherwise success. A body that cannot be decoded still
//                  means the server took the request: success.
//   429 502 503 504, network errors, timeouts   retryable, Retry-After honoured.
//   401 403 404    retryable with a hint, NOT a drop (a deliberate deviation from the spec's "do
//                  not retry other 4xx"): they say nothing about the batch but that the
//                  credential, the permission or the URL is wrong — often only for a moment (a
//                  token or IRSA credential being rotated, a gateway being redeployed). Dropping
//                  would commit the offsets of every batch until someone notices, losing all of it;
//                  retrying keeps the lines on disk until the destination takes them.
//   other 4xx/5xx  failure: the batch is dropped (counted); the message is the google.rpc.Status
//                  message from the body when it decodes, else the body's text.
import { parseRetryAfter } from "@sidecar/shared";
import { recheckCredentials, type SecretSource, secretValue } from "../../secret-file.js";
import { HttpPool, postWithin, readBody } from "../http.js";
import type { EncodedBody } from "../loki/encode-protobuf.js";
import type { SinkResult } from "../sink.js";
import type { RequestSigner } from "./sigv4.js";

export const LOGS_PATH = "/v1/logs";
/** The server's error message is logged; a body larger than this is cut. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
const MAX_MESSAGE_CHARS = 1024;

/** The logs URL for a configured endpoint: `http://collector:4318` → `http://collector:4318/v1/logs`. */
export function logsUrl(endpoint: URL): URL {
  const u = new URL(endpoint.href);
  if (u.pathname === "/" || u.pathname === "") u.pathname = LOGS_PATH;
  return u;
}

/** Statuses the OTLP specification calls retryable (with Retry-After honoured). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** Answers about the shipper's configuration, not the batch: retried, with the likely cause. */
export const OTLP_CONFIG_HINTS: Readonly<Record<number, string>> = Object.freeze({
  401: "the OTLP endpoint refused the credentials: check OTLP_BEARER_TOKEN_FILE (re-read when the file changes), OTLP_HEADERS, or the AWS credentials when OTLP_AWS_REGION is set",
  403: "the OTLP endpoint forbids this export: check what the credentials may do (CloudWatch Logs: logs:PutLogEvents on the log group) and OTLP_AWS_REGION",
  404: "nothing takes OTLP logs at this URL: check OTLP_ENDPOINT (host, path /v1/logs), and for CloudWatch that the x-aws-log-group / x-aws-log-stream in OTLP_HEADERS exist",
});

export interface OtlpClientOptions {
  /** Logs URL; a bare base URL (path `/`) gets `/v1/logs` appended. */
  endpoint: URL;
  /** Extra headers (OTLP_HEADERS), lower-case names. */
  headers?: Readonly<Record<string, string>>;
  /** Bearer token: a string, or the OTLP_BEARER_TOKEN_FILE followed as it changes. */
  bearerToken?: SecretSource;
  /** Extra CA certificate(s), PEM — added to Node's default trust, not replacing it. */
  ca?: string;
  timeoutMs: number;
  /** SigV4 (OTLP_AWS_REGION): resolved before the first send; a failure to load is retried. */
  signer?: Promise<RequestSigner>;
  /** A keep-alive pool; when omitted the client creates (and closes) its own (sinks/http.ts). */
  pool?: HttpPool;
  userAgent?: string;
}

export class OtlpClient {
  readonly url: URL;
  private readonly pool: HttpPool;
  private readonly ownPool: boolean;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly bearerToken: SecretSource | undefined;
  private readonly signer: Promise<RequestSigner> | undefined;

  constructor(opts: OtlpClientOptions) {
    this.url = logsUrl(opts.endpoint);
    this.timeoutMs = opts.timeoutMs;
    this.ownPool = opts.pool === undefined;
    this.pool =
      opts.pool ?? new HttpPool({ connections: 2, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) });
    this.headers = { "user-agent": opts.userAgent ?? "sidecar-log-shipper", ...(opts.headers ?? {}) };
    this.bearerToken = opts.bearerToken;
    this.signer = opts.signer;
    // A rejected load is reported by send(); do not let it surface as an unhandled rejection.
    this.signer?.catch(() => {});
  }

  async send(batch: EncodedBody, signal: AbortSignal): Promise<SinkResult> {
    if (signal.aborted) return { kind: "retryable", reason: "aborted" };
    const headers: Record<string, string> = { ...this.headers, "content-type": batch.contentType };
    if (batch.contentEncoding) headers["content-encoding"] = batch.contentEncoding;
    if (this.bearerToken !== undefined) headers.authorization = `Bearer ${secretValue(this.bearerToken)}`;
    if (this.signer !== undefined) {
      try {
        const signer = await this.signer;
        headers["content-length"] = String(batch.body.length);
        Object.assign(
          headers,
          await signer.sign({ url: this.url, method: "POST", headers, body: batch.body }),
        );
      } catch (err) {
        // No credentials yet (the web identity token not mounted, metadata unreachable): a
        // configuration or environment problem, not the batch's — keep it and try again.
        return {
          kind: "retryable",
          reason: "sigv4",
          message: err instanceof Error ? err.message : String(err),
          hint: "cannot sign the request for AWS: check the credentials the default chain finds (AWS_* variables, IRSA token file, EKS Pod Identity, instance metadata) and OTLP_AWS_REGION",
        };
      }
    }
    const within = { signal, timeoutMs: this.timeoutMs, destination: "the OTLP endpoint" };
    return postWithin(this.pool, this.url, headers, batch.body, within, async (res): Promise<SinkResult> => {
      const status = res.statusCode;
      const contentType = String(res.headers["content-type"] ?? "");
      const { bytes, cut: over, failed } = await readBody(res.body, MAX_RESPONSE_BYTES);
      const cut = over || failed;
      if (status >= 200 && status < 300) {
        const partial = cut ? undefined : decodeExportResponse(bytes, contentType);
        if (partial !== undefined && partial.rejected > 0) {
          return {
            kind: "partial",
            status,
            dropped: partial.rejected,
            reason: "rejected",
            ...(partial.message !== "" ? { message: clip(partial.message) } : {}),
          };
        }
        return { kind: "success", status };
      }
      const message = clip(decodeStatusMessage(bytes, contentType) ?? bytes.toString("utf8").trim());
      const reason = `http_${status}`;
      const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
      const retry = { ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
      if (RETRYABLE_STATUSES.has(status)) return { kind: "retryable", status, reason, message, ...retry };
      let hint = OTLP_CONFIG_HINTS[status];
      if (hint !== undefined) {
        if (status === 401 || status === 403) hint = recheckCredentials(hint, [this.bearerToken]);
        return { kind: "retryable", status, reason, message, hint, ...retry };
      }
      return { kind: "failure", status, reason, message };
    });
  }

  async close(): Promise<void> {
    if (this.ownPool) await this.pool.close();
  }
}

function clip(s: string): string {
  return s.length > MAX_MESSAGE_CHARS ? `${s.slice(0, MAX_MESSAGE_CHARS)}…` : s;
}

// --- responses ----------------------------------------------------------------------------------
// Hand-decoded (two small messages), so the client needs no protobuf library:
//   ExportLogsServiceResponse { ExportLogsPartialSuccess partial_success = 1; }
//   ExportLogsPartialSuccess  { int64 rejected_log_records = 1; string error_message = 2; }
//   google.rpc.Status         { int32 code = 1; string message = 2; repeated Any details = 3; }

/** partialSuccess of a 200's body, or undefined when there is none or it cannot be decoded. */
export function decodeExportResponse(
  body: Buffer,
  contentType: string,
): { rejected: number; message: string } | undefined {
  if (body.length === 0) return undefined;
  try {
    if (contentType.includes("json")) {
      const doc = JSON.parse(body.toString("utf8")) as {
        partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string };
      };
      const ps = doc.partialSuccess;
      if (ps === undefined || ps === null) return undefined;
      return { rejected: Number(ps.rejectedLogRecords ?? 0) || 0, message: String(ps.errorMessage ?? "") };
    }
    const r = new WireReader(body, 0, body.length);
    let out: { rejected: number; message: string } | undefined;
    while (!r.done()) {
      const tag = r.varint();
      if (tag === 0x0a) {
        const ps = r.sub();
        out = { rejected: 0, message: "" };
        while (!ps.done()) {
          const t = ps.varint();
          if (t === 0x08) out.rejected = ps.varint();
          else if (t === 0x12) out.message = ps.bytes().toString("utf8");
          else ps.skip(t & 7);
        }
      } else r.skip(tag & 7);
    }
    return out;
  } catch {
    return undefined;
  }
}

/** The message of a google.rpc.Status body (protobuf or JSON), or undefined. */
export function decodeStatusMessage(body: Buffer, contentType: string): string | undefined {
  if (body.length === 0) return undefined;
  try {
    if (contentType.includes("json")) {
      const doc = JSON.parse(body.toString("utf8")) as { message?: unknown };
      return typeof doc.message === "string" ? doc.message : undefined;
    }
    if (!contentType.includes("protobuf")) return undefined;
    const r = new WireReader(body, 0, body.length);
    let message: string | undefined;
    while (!r.done()) {
      const tag = r.varint();
      if (tag === 0x12) message = r.bytes().toString("utf8");
      else r.skip(tag & 7);
    }
    return message;
  } catch {
    return undefined;
  }
}

class WireReader {
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
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw new Error("varint too long");
  }
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error("length past end");
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  sub(): WireReader {
    const b = this.bytes();
    return new WireReader(
      this.buf,
      b.byteOffset - this.buf.byteOffset,
      b.byteOffset - this.buf.byteOffset + b.length,
    );
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}
