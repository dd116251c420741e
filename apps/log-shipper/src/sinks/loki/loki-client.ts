// The Loki HTTP client: one POST of an encoded batch to the push endpoint over a keep-alive pool
// of Node's http client (handed in or created here, sinks/http.ts), with tenant and auth headers, an extra CA added to the
// default trust and a per-request timeout. It does not retry by itself: it classifies the outcome
// into a typed result (success / retryable with an optional delay hint / failure) and the
// pipeline decides what to do — errors are values at this boundary, never exceptions.
//
// Credentials from files are followed (secret-file.ts): a rotated token or password is picked up
// within seconds, and at once after a 401/403. 401, 403 and 404 are retryable, not drops: they
// say nothing about the batch — the credential, the tenant or the URL is wrong (often only for
// a moment: a token being rotated, a gateway being redeployed) — and dropping would commit the
// offsets of every batch until someone notices, losing all of it. They carry a `hint` naming the
// likely cause for the pipeline's error log.
import { parseRetryAfter } from "@sidecar/shared";
import { recheckCredentials, type SecretSource, secretValue } from "../../secret-file.js";
import { discard, HttpPool, postWithin, readText } from "../http.js";
import type { EncodedBody } from "./encode-protobuf.js";

export const PUSH_PATH = "/loki/api/v1/push";
/** Loki's error message is logged; a body larger than this is cut (and the socket discarded). */
export const MAX_ERROR_BODY_BYTES = 1024;

export type SendResult =
  /** 2xx: Loki stored the batch. `status` 0 means "no HTTP involved" (dry run). */
  | { kind: "success"; status: number }
  /** 429, 5xx, network error or timeout: send the same batch again later. */
  | {
      kind: "retryable";
      status?: number;
      reason: string;
      retryAfterMs?: number;
      message?: string;
      /** The likely cause when it is not Loki being away (401/403/404: configuration). */
      hint?: string;
    }
  /** Other 4xx: Loki will never take this batch; drop it. `message` is Loki's (truncated) answer. */
  | { kind: "failure"; status: number; reason: string; message: string };

/** Where batches go: the Loki client, the dry run, or a test/benchmark fake. */
export interface Transport {
  send(batch: EncodedBody, signal: AbortSignal): Promise<SendResult>;
  close(): Promise<void>;
}

export interface LokiClientOptions {
  /** Push URL; a bare base URL (path `/`) gets `/loki/api/v1/push` appended. */
  endpoint: URL;
  tenantId?: string;
  username?: string;
  /** Password (basic auth): a string, or the LOKI_PASSWORD_FILE followed as it changes. */
  password?: SecretSource;
  /** Bearer token: a string, or the LOKI_BEARER_TOKEN_FILE followed as it changes. */
  bearerToken?: SecretSource;
  /** Extra CA certificate(s), PEM — added to Node's default trust, not replacing it. */
  ca?: string;
  timeoutMs: number;
  /**
   * A keep-alive pool; when omitted the client creates (and closes) its own. A pool handed in
   * carries its own TLS settings: `ca` only applies to the client's own pool.
   */
  pool?: HttpPool;
  userAgent?: string;
}

/** The push URL for a configured endpoint: `http://loki:3100` → `http://loki:3100/loki/api/v1/push`. */
export function pushUrl(endpoint: URL): URL {
  const u = new URL(endpoint.href);
  if (u.pathname === "/" || u.pathname === "") u.pathname = PUSH_PATH;
  return u;
}

/**
 * A status that condemns the batch itself, so retrying cannot help: 4xx except 408 (Request
 * Timeout), 429 (rate limited) and the configuration answers in `CONFIG_STATUS_HINTS`.
 */
export function isPermanentStatus(status: number): boolean {
  return (
    status >= 400 &&
    status < 500 &&
    status !== 429 &&
    status !== 408 &&
    CONFIG_STATUS_HINTS[status] === undefined
  );
}

/** Answers about the shipper's configuration, not the batch: retried, with the likely cause. */
export const CONFIG_STATUS_HINTS: Readonly<Record<number, string>> = Object.freeze({
  401: "Loki refused the credentials: check LOKI_BEARER_TOKEN_FILE or LOKI_USERNAME/LOKI_PASSWORD_FILE (re-read when the file changes) and LOKI_TENANT_ID",
  403: "Loki (or its gateway) forbids this push: check the tenant (LOKI_TENANT_ID) and what the credentials may do",
  404: "nothing takes pushes at this URL: check LOKI_ENDPOINT (host, path /loki/api/v1/push, gateway routing)",
});

export class LokiClient implements Transport {
  readonly url: URL;
  private readonly pool: HttpPool;
  private readonly ownPool: boolean;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly username: string | undefined;
  private readonly password: SecretSource | undefined;
  private readonly bearerToken: SecretSource | undefined;
  /** The credential the current `authorization` header was built from. */
  private authFrom: string | undefined;

  constructor(opts: LokiClientOptions) {
    this.url = pushUrl(opts.endpoint);
    this.timeoutMs = opts.timeoutMs;
    this.ownPool = opts.pool === undefined;
    // One request is in flight at a time; a spare connection covers a reconnect race.
    this.pool =
      opts.pool ?? new HttpPool({ connections: 2, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) });
    const headers: Record<string, string> = { "user-agent": opts.userAgent ?? "sidecar-log-shipper" };
    if (opts.tenantId) headers["x-scope-orgid"] = opts.tenantId;
    this.headers = headers;
    this.username = opts.username;
    this.password = opts.password;
    this.bearerToken = opts.bearerToken;
    this.refreshAuth();
  }

  /** Rebuild the authorization header when the credential (file) changed. Cheap when it did not. */
  private refreshAuth(): void {
    let cred: string;
    let scheme: string;
    if (this.bearerToken !== undefined) {
      cred = secretValue(this.bearerToken);
      scheme = "Bearer";
    } else if (this.username !== undefined) {
      cred = `${this.username}:${this.password !== undefined ? secretValue(this.password) : ""}`;
      scheme = "Basic";
    } else {
      return;
    }
    if (cred === this.authFrom) return;
    this.authFrom = cred;
    this.headers.authorization =
      scheme === "Bearer" ? `Bearer ${cred}` : `Basic ${Buffer.from(cred, "utf8").toString("base64")}`;
  }

  async send(batch: EncodedBody, signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) return { kind: "retryable", reason: "aborted" };
    this.refreshAuth();
    const headers: Record<string, string> = { ...this.headers, "content-type": batch.contentType };
    if (batch.contentEncoding) headers["content-encoding"] = batch.contentEncoding;
    const within = { signal, timeoutMs: this.timeoutMs, destination: "Loki" };
    return postWithin(this.pool, this.url, headers, batch.body, within, async (res) => {
      const status = res.statusCode;
      if (status >= 200 && status < 300) {
        discard(res.body);
        return { kind: "success", status };
      }
      const { text: message } = await readText(res.body, MAX_ERROR_BODY_BYTES);
      const reason = `http_${status}`;
      if (isPermanentStatus(status)) return { kind: "failure", status, reason, message };
      let hint = CONFIG_STATUS_HINTS[status];
      if (status === 401 || status === 403)
        hint = recheckCredentials(hint, [this.bearerToken, this.password]);
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
