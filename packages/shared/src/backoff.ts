// Retry timing: jittered exponential backoff and the HTTP Retry-After header.

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  /** Injected for tests; Math.random by default. */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): "equal jitter" — half of the exponential
 * step is fixed, half random — so retries spread out but never collapse to zero.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  const exp = Math.min(opts.maxMs, opts.minMs * 2 ** Math.max(0, attempt - 1));
  const half = exp / 2;
  return Math.round(Math.min(opts.maxMs, half + random() * half));
}

/**
 * Parse a Retry-After header value (RFC 9110: delay-seconds or an HTTP-date) into milliseconds
 * from `now`. Returns undefined when absent or unparseable; a date in the past gives 0.
 */
export function parseRetryAfter(
  value: string | readonly string[] | undefined,
  now = Date.now(),
): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (typeof raw !== "string") return undefined;
  const v = raw.trim();
  if (v === "") return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (/^\d+\.\d+$/.test(v)) return Math.round(Number(v) * 1000);
  // HTTP-date in any of RFC 9110's three forms starts with a day name; anything else ("-5",
  // "2026") is garbage that Date.parse would still accept.
  if (!/^[A-Za-z]{3}/.test(v)) return undefined;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** A promise that resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
