// isoTime / utcParts against Date: the same text and fields for every millisecond they are asked
// about, years 0–9999, and Date's own answer outside them.
import { describe, expect, it } from "vitest";
import { ISO_TIME_MAX_MS, ISO_TIME_MIN_MS, isoTime, isoTimeRange, utcParts } from "../src/iso-time.js";

/** utcParts(ms) has the UTC fields of `d` (= new Date(ms)). */
function expectDateFields(ms: number, d: Date): void {
  const t = utcParts(ms);
  expect([t.year, t.month, t.day, t.hour, t.minute, t.second, t.millisecond]).toEqual([
    d.getUTCFullYear(),
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    d.getUTCMilliseconds(),
  ]);
}

describe("isoTime", () => {
  it("equals Date#toISOString at the edges of days, months, leap years and centuries", () => {
    const days = [
      "1970-01-01",
      "1969-12-31",
      "2000-02-28",
      "2000-02-29",
      "2000-03-01",
      "1900-02-28",
      "1900-03-01",
      "2024-02-29",
      "2100-03-01",
      "0000-01-01",
      "0001-12-31",
      "0400-02-29",
      "9999-12-31",
      "2026-12-07",
    ];
    for (const day of days) {
      const start = Date.parse(`${day}T00:00:00.000Z`);
      for (const off of [0, 1, 999, 1000, 59_999, 3_599_999, 43_200_000, 86_399_999]) {
        const ms = start + off;
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }
    }
  });

  it("equals Date#toISOString and Date's UTC fields for 200k seeded times across years 0–9999", () => {
    let x = 0x2545f491;
    const next = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < 200_000; i++) {
      const ms = Math.floor(ISO_TIME_MIN_MS + next() * (ISO_TIME_MAX_MS - ISO_TIME_MIN_MS));
      const d = new Date(ms);
      expect(isoTime(ms)).toBe(d.toISOString());
      expectDateFields(ms, d);
    }
  });

  it("outside years 0–9999, or for a fraction, is Date's own answer (extended years, UTC fields, RangeError)", () => {
    for (const ms of [ISO_TIME_MAX_MS + 1, ISO_TIME_MIN_MS - 1, 8.64e15, -8.64e15, 1.5]) {
      expect(isoTimeRange(ms)).toBe(false);
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      const d = new Date(ms);
      expectDateFields(ms, d);
    }
    expect(utcParts(Number.NaN).year).toBeNaN();
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(isoTime()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
