import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter, sleep } from "../src/backoff.js";

describe("backoffDelay", () => {
  const opts = { minMs: 500, maxMs: 300_000 };

  it("doubles per attempt with half of each step jittered", () => {
    expect(backoffDelay(1, { ...opts, random: () => 0 })).toBe(250);
    expect(backoffDelay(1, { ...opts, random: () => 1 })).toBe(500);
    expect(backoffDelay(2, { ...opts, random: () => 0 })).toBe(500);
    expect(backoffDelay(2, { ...opts, random: () => 1 })).toBe(1000);
    expect(backoffDelay(4, { ...opts, random: () => 0.5 })).toBe(3000);
  });

  it("never exceeds the maximum, even for huge attempt numbers", () => {
    for (const attempt of [20, 100, 5000]) {
      const d = backoffDelay(attempt, { ...opts, random: () => 1 });
      expect(d).toBeLessThanOrEqual(300_000);
      expect(d).toBeGreaterThanOrEqual(150_000);
    }
  });

  it("spreads delays between half and the full step", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, opts);
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(2000);
      seen.add(d);
    }
    expect(seen.size).toBeGreaterThan(20);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-11-26T10:00:00Z");

  it("parses delay-seconds", () => {
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter("7", now)).toBe(7000);
    expect(parseRetryAfter(" 120 ", now)).toBe(120_000);
    expect(parseRetryAfter(["3", "9"], now)).toBe(3000);
  });

  it("parses an HTTP-date relative to now, clamping the past to zero", () => {
    expect(parseRetryAfter("Thu, 26 Nov 2026 10:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Thu, 26 Nov 2026 09:00:00 GMT", now)).toBe(0);
  });

  it("accepts the two obsolete HTTP-date forms, always as GMT", () => {
    expect(parseRetryAfter("Thursday, 26-Nov-26 10:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Thu Nov 26 10:00:30 2026", now)).toBe(30_000);
    expect(parseRetryAfter("Thu Nov  6 10:00:30 2026", now)).toBe(0);
  });

  it("returns undefined for absent or garbage values", () => {
    expect(parseRetryAfter("Sun garbage 12", now)).toBeUndefined();
    expect(parseRetryAfter("Thu, 31 Feb 2026 10:00:00 GMT", now)).toBeUndefined();
    expect(parseRetryAfter("Thu, 26 Nov 2026 10:00:30 PST", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
  });
});

describe("sleep", () => {
  it("resolves early when aborted", async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = sleep(10_000, ac.signal);
    ac.abort();
    await p;
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
