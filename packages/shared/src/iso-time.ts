// ISO-8601 UTC time with milliseconds (`2026-12-07T17:09:04.055Z`, what Date#toISOString gives)
// from epoch milliseconds, by arithmetic. A Date's toISOString, though UTC, goes through V8's date
// cache, whose first use loads ICU's time-zone data: ~0.6 MiB of the node binary's ICU pages and
// ~1.3 MiB of file-backed memory in all on Node 24, resident for good in a sidecar whose log lines
// and positions file carry a time (issue 12, item 2). Days to civil date: Howard Hinnant's
// `civil_from_days` (proleptic Gregorian, as ECMAScript's).

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

/** Epoch milliseconds of 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
export const ISO_TIME_MIN_MS = -62_167_219_200_000;
export const ISO_TIME_MAX_MS = 253_402_300_799_999;

/** Whether `ms` is an integer within years 0–9999 (where utcParts and isoTime compute themselves). */
export function isoTimeRange(ms: number): boolean {
  return Number.isInteger(ms) && ms >= ISO_TIME_MIN_MS && ms <= ISO_TIME_MAX_MS;
}

/** A UTC calendar date and time. */
export interface UtcParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

/**
 * The UTC calendar date and time of `ms` (epoch milliseconds). Outside isoTimeRange (other years,
 * fractional or non-finite `ms`) Date's own UTC fields, NaN for an invalid time.
 */
export function utcParts(ms: number): UtcParts {
  if (!isoTimeRange(ms)) {
    const d = new Date(ms);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
      millisecond: d.getUTCMilliseconds(),
    };
  }
  const days = Math.floor(ms / 86_400_000);
  const inDay = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return {
    year: yoe + era * 400 + (month <= 2 ? 1 : 0),
    month,
    day,
    hour: Math.floor(inDay / 3_600_000),
    minute: Math.floor(inDay / 60_000) % 60,
    second: Math.floor(inDay / 1000) % 60,
    millisecond: inDay % 1000,
  };
}

/**
 * `new Date(ms).toISOString()` without a Date, for years 0–9999 (other years, and fractional or
 * non-finite `ms`, go to Date: its extended-year form, or its RangeError).
 */
export function isoTime(ms: number = Date.now()): string {
  if (!isoTimeRange(ms)) return new Date(ms).toISOString();
  const t = utcParts(ms);
  const y = t.year < 1000 ? String(t.year).padStart(4, "0") : String(t.year);
  return `${y}-${pad2(t.month)}-${pad2(t.day)}T${pad2(t.hour)}:${pad2(t.minute)}:${pad2(t.second)}.${pad3(t.millisecond)}Z`;
}
