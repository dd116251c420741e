// What the destinations' HTTP clients (Loki, OTLP, Elasticsearch) share: the keep-alive connection
// pool they POST through, reading a bounded part of an answer, and classifying a request that got
// no answer at all.
//
// Plain http: goes through sinks/http1.ts (a small HTTP/1.1 client: Node's costs ~0.3 ms of CPU per
// request, see there); https: through Node's own https client (its HTTP parser is llhttp compiled
// into the binary). Not undici: importing undici alone costs ~18 MiB of resident memory at start (its module graph
// pulls in Node's bundled fetch, http2, worker_threads …), and its parser is WebAssembly that V8
// compiles at the first request — a sidecar with a 128Mi limit sending one request at a time
// gains nothing from either (bench/log-shipper.mjs, apps/log-shipper/PERFORMANCE.md).
import type { ClientRequest, IncomingHttpHeaders, RequestOptions } from "node:http";
import type { Agent as HttpsAgent } from "node:https";
import type { Readable } from "node:stream";
import { urlToHttpOptions } from "node:url";
import { Http1Pool } from "./http1.js";
import type { SendResult } from "./loki/loki-client.js";

/** An answer's status line and headers; `body` must be read (readBody/readText) or resumed. */
export interface HttpAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

export interface HttpPoolOptions {
  /** Extra CA certificate(s), PEM — added to Node's default trust, not replacing it. */
  ca?: string;
  /** Connections kept per host (one request is in flight at a time; a spare covers a reconnect race). */
  connections?: number;
  /** An idle connection is closed after this long (or the server's `Keep-Alive: timeout` hint, if shorter). */
  idleMs?: number;
}

/** A keep-alive pool for POSTs to one destination. */
/** A POST under way: its answer, and how to break it off. */
export interface PendingPost {
  answer: Promise<HttpAnswer>;
  cancel(reason: Error): void;
}

export class HttpPool {
  /** Plain http: written and read by sinks/http1.ts (see there why not Node's client). */
  private readonly plain: Http1Pool;
  private https: HttpsAgent | undefined;
  private readonly common: { keepAlive: true; maxSockets: number; maxFreeSockets: number; timeout: number };
  private lastUrl: URL | undefined;
  private lastTarget: RequestOptions = {};

  constructor(private readonly opts: HttpPoolOptions = {}) {
    const connections = opts.connections ?? 2;
    this.common = {
      keepAlive: true,
      maxSockets: connections,
      maxFreeSockets: connections,
      timeout: opts.idleMs ?? 30_000,
    };
    this.plain = new Http1Pool(connections, this.common.timeout);
  }

  /**
   * node:https (with node:tls and OpenSSL's TLS set-up) is loaded at the first https:// request,
   * not at start: ≈ 4–5 MiB of resident memory on Node 24 that an http:// destination never needs
   * (issue 12, PERFORMANCE.md).
   */
  private httpsAgent(): HttpsAgent {
    if (this.https === undefined) {
      const { Agent } = process.getBuiltinModule("node:https");
      const { rootCertificates } = process.getBuiltinModule("node:tls");
      this.https = new Agent({
        ...this.common,
        ...(this.opts.ca !== undefined ? { ca: [...rootCertificates, this.opts.ca] } : {}),
      });
    }
    return this.https;
  }

  /**
   * POST `body`. `answer` resolves with the answer once its head arrived and rejects on a network
   * error or when `cancel(reason)` is called before that (a cancel later breaks the body off).
   * Cancelling is a plain call, not an AbortSignal handed to the request: a signal costs an
   * AbortController and event-target listeners per request (see postWithin).
   */
  post(url: URL, headers: Record<string, string>, body: Buffer): PendingPost {
    if (url.protocol !== "https:") return this.plain.post(url, headers, body);
    let req: ClientRequest | undefined;
    const answer = new Promise<HttpAnswer>((resolve, reject) => {
      req = process.getBuiltinModule("node:https").request(
        {
          ...this.target(url),
          method: "POST",
          headers: { ...headers, "content-length": String(body.length) },
          agent: this.httpsAgent(),
        },
        (res) => {
          // A body broken off later is seen by its reader; unread, it must not throw.
          res.on("error", () => {});
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
        },
      );
      // Stays attached: an error after the answer arrived (cancel, reset) must not throw either.
      req.on("error", reject);
      req.end(body);
    });
    return { answer, cancel: (reason) => req?.destroy(reason) };
  }

  /** The request options of `url` (host, port, path, auth), worked out once per URL object. */
  private target(url: URL): RequestOptions {
    if (url !== this.lastUrl) {
      this.lastUrl = url;
      this.lastTarget = urlToHttpOptions(url);
    }
    return this.lastTarget;
  }

  /** Close the idle connections and refuse to keep new ones. */
  async close(): Promise<void> {
    this.plain.close();
    this.https?.destroy();
  }
}

/**
 * At most `max` bytes of a response body; the rest is discarded (leaving the loop destroys it,
 * and the socket with it). `cut`: there was more than `max`; `failed`: the body broke off.
 */
export async function readBody(
  body: AsyncIterable<unknown>,
  max: number,
): Promise<{ bytes: Buffer; cut: boolean; failed: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      chunks.push(b);
      size += b.length;
      if (size > max) break;
    }
  } catch {
    // A body cut off mid-way still leaves us the status; the rest is best effort.
    return { bytes: Buffer.concat(chunks).subarray(0, max), cut: size > max, failed: true };
  }
  return { bytes: Buffer.concat(chunks).subarray(0, max), cut: size > max, failed: false };
}

/** At most `max` bytes of a response body as trimmed text, `…` marking a cut. */
export async function readText(
  body: AsyncIterable<unknown>,
  max: number,
): Promise<{ text: string; truncated: boolean }> {
  const { bytes, cut } = await readBody(body, max);
  const text = bytes.toString("utf8").trim();
  return cut ? { text: `${text}…`, truncated: true } : { text, truncated: false };
}

/** Read and discard the rest of an answer (the connection goes back to the pool at its end). */
export function discard(body: Readable): void {
  body.resume();
}

/**
 * POST `body` through `pool` and hand the answer to `answer`, all within `timeoutMs` (reading the
 * answer included); `signal` (drain deadline, close) aborts it too. A request that got no answer
 * — timed out, aborted, a network error, an answer broken off — is classified by noAnswer.
 */
export async function postWithin<T>(
  pool: HttpPool,
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
  opts: { signal: AbortSignal; timeoutMs: number; destination: string },
  answer: (res: HttpAnswer) => Promise<T> | T,
): Promise<T | Extract<SendResult, { kind: "retryable" }>> {
  const { signal, timeoutMs } = opts;
  const post = pool.post(url, headers, body);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    post.cancel(new Error(`no answer from ${opts.destination} within ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = () => post.cancel(abortError(signal));
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await answer(await post.answer);
  } catch (err) {
    return noAnswer(err, { timedOut, aborted: signal.aborted, timeoutMs });
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(`aborted: ${String(r)}`);
}

/** A request that got no answer: timed out, aborted (drain deadline, close) or a network error. */
export function noAnswer(
  err: unknown,
  how: { timedOut: boolean; aborted: boolean; timeoutMs: number },
): Extract<SendResult, { kind: "retryable" }> {
  if (how.timedOut)
    return { kind: "retryable", reason: "timeout", message: `timeout after ${how.timeoutMs} ms` };
  if (how.aborted) return { kind: "retryable", reason: "aborted" };
  const e = err as NodeJS.ErrnoException;
  return { kind: "retryable", reason: "network", message: e.code ? `${e.code}: ${e.message}` : String(e) };
}
