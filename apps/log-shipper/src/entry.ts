// Entry metadata from a raw log line, read straight from its bytes: the timestamp (`time`, epoch
// number or RFC 3339 string) and the level (pino number or name) of a JSON line. This is the hot
// path — it runs once per shipped line — so it never builds a string, never calls JSON.parse and
// stops as soon as both keys were seen or the scan window is exhausted. Anything it does not
// understand simply falls back (read time, no level label): a log line is shipped as is, always.

/**
 * A source that checks a whole chunk for valid UTF-8 at once (source/reader.ts) instead of the
 * batcher checking each line: while it hands over that chunk's lines, `checkedBuf` is the buffer
 * they are in and `checkedEnd` the end of its part that is valid UTF-8; otherwise null.
 */
export interface CheckedChunk {
  checkedBuf: Uint8Array | null;
  checkedEnd: number;
}

/**
 * Whether `buf[start, end)`, a line from `source`, is known to be valid UTF-8 without looking:
 * it lies in the checked part of the chunk, and both its ends are character boundaries (no
 * continuation byte there) — a piece of valid UTF-8 cut at boundaries is valid. A line cut short
 * (MAX_LINE_BYTES) may end inside a character: that shows, and it is checked on its own.
 */
export function knownUtf8(source: object, buf: Uint8Array, start: number, end: number): boolean {
  const c = source as Partial<CheckedChunk>;
  if (c.checkedBuf !== buf) return false;
  const checkedEnd = c.checkedEnd as number;
  return (
    end <= checkedEnd &&
    ((buf[start] as number) & 0xc0) !== 0x80 &&
    (end === checkedEnd || ((buf[end] as number) & 0xc0) !== 0x80)
  );
}

/** Level label values, indexed by the level code `scan` reports (0 = no level label). */
export const LEVEL_NAMES = ["", "trace", "debug", "info", "warn", "error", "fatal"] as const;
export const LEVEL_NONE = 0;
export type LevelCode = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/**
 * Only the head of a line is scanned for `time` and `level`: pino writes them first, bunyan-style
 * loggers within the first few hundred bytes. Bounding the scan keeps lines without those keys
 * (or huge lines) at a fixed cost.
 */
export const SCAN_WINDOW_BYTES = 1024;

/** JSON's structural bytes, for the scanners here and in processing/fields.ts. */
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;
export const LBRACKET = 0x5b;
export const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const D0 = 0x30;
const D9 = 0x39;

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}
function isDigit(c: number): boolean {
  return c >= D0 && c <= D9;
}

/**
 * Reusable scanner: `scan()` fills `sec`/`nanos` (when a usable `time` was found) and `level`,
 * so the caller reads fields instead of receiving an allocated result object per line.
 */
export class EntryScanner {
  /** Whole seconds since the epoch of the line's own timestamp (valid when `scan` returned true). */
  sec = 0;
  /** Nanoseconds within `sec`, 0 ≤ nanos < 1e9. */
  nanos = 0;
  /** Level code (index into LEVEL_NAMES), LEVEL_NONE when the line has no recognised level. */
  level: LevelCode = LEVEL_NONE;

  /**
   * Scan bytes [start, end) of `buf`. Returns true when the line carried a usable timestamp
   * (then `sec`/`nanos` hold it); `level` is set either way. Only top-level keys of a line that
   * starts with `{` count — a `"time":` inside a message string or nested object is ignored.
   */
  scan(buf: Uint8Array, start: number, end: number): boolean {
    this.level = LEVEL_NONE;
    if (buf[start] === LBRACE && this.scanPino(buf, start, end)) return true;
    let i = start;
    while (i < end && isSpace(buf[i] as number)) i++;
    if (i >= end || buf[i] !== LBRACE) return false;
    const limit = Math.min(end, i + SCAN_WINDOW_BYTES);
    i++;
    let depth = 1;
    let expectKey = true;
    let haveTime = false;
    let seenTime = false;
    let seenLevel = false;
    while (i < limit) {
      const c = buf[i] as number;
      if (c === QUOTE) {
        const strStart = i + 1;
        const strEnd = skipString(buf, strStart, limit);
        if (strEnd < 0) return haveTime; // string runs past the window
        i = strEnd + 1;
        if (depth !== 1 || !expectKey) continue;
        expectKey = false;
        // A key: find its colon, then look at the value when it is one we want.
        while (i < limit && isSpace(buf[i] as number)) i++;
        if (i >= limit || buf[i] !== COLON) return haveTime;
        i++;
        while (i < limit && isSpace(buf[i] as number)) i++;
        if (i >= limit) return haveTime;
        const keyLen = strEnd - strStart;
        if (!seenTime && keyLen === 4 && isKey(buf, strStart, KEY_TIME)) {
          // Only the first top-level `time` counts, usable or not.
          seenTime = true;
          haveTime = this.parseTime(buf, i, limit);
        } else if (!seenLevel && keyLen === 5 && isKey(buf, strStart, KEY_LEVEL)) {
          seenLevel = true;
          this.level = parseLevel(buf, i, limit);
        }
        if (seenTime && seenLevel) return haveTime;
        continue;
      }
      if (c === COMMA) {
        if (depth === 1) expectKey = true;
      } else if (c === LBRACE || c === LBRACKET) {
        depth++;
      } else if (c === RBRACE || c === RBRACKET) {
        depth--;
        if (depth === 0) return haveTime;
      }
      i++;
    }
    return haveTime;
  }

  /**
   * pino's own layout, `{"level":<number>,"time":<epoch ms>,...`, matched at fixed positions:
   * most lines this shipper sees come from pino, and this is several times cheaper than the
   * general scan. Anything that deviates returns false and takes the general path.
   */
  private scanPino(buf: Uint8Array, start: number, end: number): boolean {
    // `{"level":` then two digits then `,"time":` — compared byte by byte, no loops or arrays.
    const s = start;
    if (
      end - s < 34 ||
      buf[s + 1] !== QUOTE ||
      buf[s + 2] !== 0x6c || // l
      buf[s + 3] !== 0x65 || // e
      buf[s + 4] !== 0x76 || // v
      buf[s + 5] !== 0x65 || // e
      buf[s + 6] !== 0x6c || // l
      buf[s + 7] !== QUOTE ||
      buf[s + 8] !== COLON ||
      buf[s + 11] !== COMMA ||
      buf[s + 12] !== QUOTE ||
      buf[s + 13] !== 0x74 || // t
      buf[s + 14] !== 0x69 || // i
      buf[s + 15] !== 0x6d || // m
      buf[s + 16] !== 0x65 || // e
      buf[s + 17] !== QUOTE ||
      buf[s + 18] !== COLON
    ) {
      return false;
    }
    const d1 = (buf[s + 9] as number) - D0;
    const d2 = (buf[s + 10] as number) - D0;
    if (d1 < 1 || d1 > 6 || d2 !== 0) return false; // pino's 10…60; others take the general path
    let i = s + 19;
    let ms = 0;
    for (; i < end; i++) {
      const c = buf[i] as number;
      if (c < D0 || c > D9) break;
      ms = ms * 10 + (c - D0);
    }
    // 11–13 digits: epoch milliseconds from 1973 to 2286; then the end of the value.
    const n = i - s - 19;
    if (n < 11 || n > 13 || (buf[i] !== COMMA && buf[i] !== RBRACE)) return false;
    this.level = d1 as LevelCode;
    const sec = Math.floor(ms / 1000);
    this.sec = sec;
    this.nanos = (ms - sec * 1000) * 1e6;
    return true;
  }

  /** Parse a `time` value at `i`: a JSON number (epoch) or a string (RFC 3339 or digits). */
  private parseTime(buf: Uint8Array, i: number, limit: number): boolean {
    const c = buf[i] as number;
    if (c === QUOTE) {
      const s = i + 1;
      const e = skipString(buf, s, limit);
      if (e < 0) return false;
      if (e > s && isDigit(buf[s] as number) && e - s <= 20 && allDigitsOrDot(buf, s, e)) {
        return this.parseEpoch(buf, s, e);
      }
      return this.parseRfc3339(buf, s, e);
    }
    if (isDigit(c)) {
      let e = i;
      while (e < limit && (isDigit(buf[e] as number) || buf[e] === DOT)) e++;
      if (e < limit) {
        // A number followed by an exponent or garbage is not a plain epoch value.
        const n = buf[e] as number;
        if (n === 0x65 || n === 0x45) return false;
      }
      return this.parseEpoch(buf, i, e);
    }
    return false;
  }

  /**
   * An epoch number. pino writes milliseconds; the unit is inferred from the magnitude so that
   * seconds (Python, Go zap's float seconds), microseconds and nanoseconds work too:
   * < 1e11 → seconds (1e11 ms would be 1973), < 1e14 → ms, < 1e17 → µs, else ns.
   */
  private parseEpoch(buf: Uint8Array, s: number, e: number): boolean {
    let intPart = 0;
    let intDigits = 0;
    let i = s;
    while (i < e && isDigit(buf[i] as number)) {
      intPart = intPart * 10 + ((buf[i] as number) - D0);
      intDigits++;
      i++;
    }
    if (intDigits === 0 || intDigits > 19) return false;
    // Fractional digits, as nanoseconds of the integer unit (only the first 9 matter).
    let frac = 0;
    let fracScale = 1e9;
    if (i < e && buf[i] === DOT) {
      i++;
      let digits = 0;
      while (i < e && isDigit(buf[i] as number)) {
        if (digits < 9) {
          fracScale /= 10;
          frac += ((buf[i] as number) - D0) * fracScale;
          digits++;
        }
        i++;
      }
    }
    if (i !== e) return false;
    let sec: number;
    let nanos: number;
    if (intPart < 1e11) {
      sec = intPart;
      nanos = Math.round(frac);
    } else if (intPart < 1e14) {
      sec = Math.floor(intPart / 1e3);
      nanos = (intPart - sec * 1e3) * 1e6 + Math.round(frac / 1e3);
    } else if (intPart < 1e17) {
      sec = Math.floor(intPart / 1e6);
      nanos = (intPart - sec * 1e6) * 1e3 + Math.round(frac / 1e6);
    } else {
      // Nanoseconds exceed 2^53: recompute from the digits to keep the sub-second part exact.
      return this.parseEpochNanos(buf, s, e);
    }
    if (nanos >= 1e9) {
      sec += 1;
      nanos -= 1e9;
    }
    this.sec = sec;
    this.nanos = nanos;
    return true;
  }

  /** Integer nanoseconds since the epoch (≥ 1e17): split the digits into seconds and nanos. */
  private parseEpochNanos(buf: Uint8Array, s: number, e: number): boolean {
    let end = s;
    while (end < e && isDigit(buf[end] as number)) end++;
    const secEnd = end - 9;
    let sec = 0;
    for (let i = s; i < secEnd; i++) sec = sec * 10 + ((buf[i] as number) - D0);
    let nanos = 0;
    for (let i = secEnd; i < end; i++) nanos = nanos * 10 + ((buf[i] as number) - D0);
    this.sec = sec;
    this.nanos = nanos;
    return true;
  }

  /**
   * RFC 3339 / ISO 8601 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`; `t`, `z`
   * and a space separator are accepted as RFC 3339 allows. No zone means UTC.
   */
  private parseRfc3339(buf: Uint8Array, s: number, e: number): boolean {
    if (e - s < 19) return false;
    const year = digits(buf, s, 4);
    const month = digits(buf, s + 5, 2);
    const day = digits(buf, s + 8, 2);
    const hour = digits(buf, s + 11, 2);
    const minute = digits(buf, s + 14, 2);
    let second = digits(buf, s + 17, 2);
    if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31) return false;
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return false;
    if (buf[s + 4] !== MINUS || buf[s + 7] !== MINUS || buf[s + 13] !== COLON || buf[s + 16] !== COLON) {
      return false;
    }
    const sep = buf[s + 10];
    if (sep !== 0x54 && sep !== 0x74 && sep !== 0x20) return false;
    if (day > daysInMonth(year, month)) return false;
    if (second === 60) second = 59; // a leap second is kept within its minute
    let i = s + 19;
    let nanos = 0;
    if (i < e && (buf[i] === DOT || buf[i] === COMMA)) {
      i++;
      let scale = 1e8;
      const fracStart = i;
      while (i < e && isDigit(buf[i] as number)) {
        if (scale >= 1) {
          nanos += ((buf[i] as number) - D0) * scale;
          scale /= 10;
        }
        i++;
      }
      if (i === fracStart) return false;
    }
    let offsetSec = 0;
    if (i < e) {
      const z = buf[i] as number;
      if (z === 0x5a || z === 0x7a) {
        i++;
      } else if (z === PLUS || z === MINUS) {
        const oh = digits(buf, i + 1, 2);
        let om: number;
        let next: number;
        if (buf[i + 3] === COLON) {
          om = digits(buf, i + 4, 2);
          next = i + 6;
        } else {
          om = digits(buf, i + 3, 2);
          next = i + 5;
        }
        if (oh < 0 || oh > 23 || om < 0 || om > 59 || next > e) return false;
        offsetSec = (oh * 3600 + om * 60) * (z === MINUS ? -1 : 1);
        i = next;
      } else {
        return false;
      }
    }
    if (i !== e) return false;
    this.sec = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetSec;
    this.nanos = nanos;
    return true;
  }
}

const KEY_TIME = [0x74, 0x69, 0x6d, 0x65]; // time
const KEY_LEVEL = [0x6c, 0x65, 0x76, 0x65, 0x6c]; // level

function isKey(buf: Uint8Array, s: number, key: number[]): boolean {
  for (let k = 0; k < key.length; k++) if (buf[s + k] !== key[k]) return false;
  return true;
}

/** Index of the closing quote of a JSON string whose content starts at `i`, or -1 past `limit`. */
export function skipString(buf: Uint8Array, i: number, limit: number): number {
  while (i < limit) {
    const c = buf[i] as number;
    if (c === QUOTE) return i;
    i += c === BACKSLASH ? 2 : 1;
  }
  return -1;
}

function allDigitsOrDot(buf: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) {
    const c = buf[i] as number;
    if (!isDigit(c) && c !== DOT) return false;
  }
  return true;
}

/** `n` decimal digits at `i` as a number, or -1 when any is not a digit. */
function digits(buf: Uint8Array, i: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = buf[i + k];
    if (c === undefined || c < D0 || c > D9) return -1;
    v = v * 10 + (c - D0);
  }
  return v;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * A `level` value at `i`: pino/bunyan numbers (10 trace … 60 fatal) or a name (case-insensitive;
 * `warning`, `err`, `critical`/`crit`/`panic` folded to the canonical names). Anything else gives
 * no label, so arbitrary values cannot blow up Loki's stream cardinality.
 */
function parseLevel(buf: Uint8Array, i: number, limit: number): LevelCode {
  const c = buf[i] as number;
  if (isDigit(c)) {
    let v = 0;
    let n = 0;
    while (i < limit && isDigit(buf[i] as number) && n < 4) {
      v = v * 10 + ((buf[i] as number) - D0);
      i++;
      n++;
    }
    if (i < limit && (isDigit(buf[i] as number) || buf[i] === DOT)) return LEVEL_NONE;
    switch (v) {
      case 10:
        return 1;
      case 20:
        return 2;
      case 30:
        return 3;
      case 40:
        return 4;
      case 50:
        return 5;
      case 60:
        return 6;
      default:
        return LEVEL_NONE;
    }
  }
  if (c !== QUOTE) return LEVEL_NONE;
  const s = i + 1;
  const e = skipString(buf, s, limit);
  if (e < 0 || e - s > 11) return LEVEL_NONE;
  // Lower-case the (short, ASCII) name into a small integer key without allocating.
  let name = "";
  for (let k = s; k < e; k++) {
    let b = buf[k] as number;
    if (b >= 0x41 && b <= 0x5a) b += 0x20;
    if (b < 0x61 || b > 0x7a) return LEVEL_NONE;
    name += String.fromCharCode(b);
  }
  return LEVEL_BY_NAME.get(name) ?? LEVEL_NONE;
}

const LEVEL_BY_NAME: ReadonlyMap<string, LevelCode> = new Map<string, LevelCode>([
  ["trace", 1],
  ["debug", 2],
  ["info", 3],
  ["information", 3],
  ["warn", 4],
  ["warning", 4],
  ["error", 5],
  ["err", 5],
  ["fatal", 6],
  ["critical", 6],
  ["crit", 6],
  ["panic", 6],
]);
