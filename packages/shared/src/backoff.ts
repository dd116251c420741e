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

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MON = `(${MONTHS.join("|")})`;
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
// RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms a recipient must still accept.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MON} (\\d{4}) ${TIME} GMT$`);
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MON}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MON} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/** An HTTP-date in any of its three forms, as epoch ms (always GMT), or undefined. */
export function parseHttpDate(value: string, now = Date.now()): number | undefined {
  let day: string | undefined;
  let mon: string | undefined;
  let year: number;
  let hms: (string | undefined)[];
  const imf = IMF_FIXDATE.exec(value);
  const rfc850 = imf ? null : RFC850.exec(value);
  const asctime = imf || rfc850 ? null : ASCTIME.exec(value);
  if (imf) {
    [, day, mon] = imf;
    year = Number(imf[3]);
    hms = [imf[4], imf[5], imf[6]];
  } else if (rfc850) {
    [, day, mon] = rfc850;
    // A two-digit year more than 50 years in the future means the most recent past such year.
    const nowYear = new Date(now).getUTCFullYear();
    year = Math.floor(nowYear / 100) * 100 + Number(rfc850[3]);
    if (year > nowYear + 50) year -= 100;
    hms = [rfc850[4], rfc850[5], rfc850[6]];
  } else if (asctime) {
    mon = asctime[1];
    day = asctime[2]?.trim();
    hms = [asctime[3], asctime[4], asctime[5]];
    year = Number(asctime[6]);
  } else {
    return undefined;
  }
  const [h, min, sec] = hms.map(Number) as [number, number, number];
  const month = MONTHS.indexOf(mon ?? "");
  const d = Number(day);
  if (d < 1 || d > 31 || h > 23 || min > 59 || sec > 60) return undefined;
  const t = Date.UTC(year, month, d, h, min, Math.min(sec, 59));
  // Reject dates that do not exist (31 Feb rolls over into March in Date.UTC).
  if (new Date(t).getUTCDate() !== d) return undefined;
  return t;
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
  // Not RFC 9110, but some proxies send fractional seconds; honour them rather than ignore.
  if (/^\d+\.\d+$/.test(v)) return Math.round(Number(v) * 1000);
  const date = parseHttpDate(v, now);
  if (date === undefined) return undefined;
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
