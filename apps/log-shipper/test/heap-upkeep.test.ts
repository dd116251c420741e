// Old-generation upkeep (heap-upkeep.ts): the policy with a scripted heap, and the real thing —
// the gc() it reaches through a vm context collects old-generation garbage at once.
import { constants, PerformanceObserver } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { exposeMajorGc, HeapUpkeep, oldGenerationUsed, UPKEEP_GROWTH_BYTES } from "../src/heap-upkeep.js";

const MiB = 1024 * 1024;

/** A HeapUpkeep over a scripted old generation of `start` bytes; `heap.gcs` counts the GCs asked for. */
function scripted(start: number) {
  const heap = { used: start, gcs: 0 };
  const upkeep = new HeapUpkeep(
    () => heap.used,
    () => heap.gcs++,
  );
  return { heap, upkeep };
}

describe("HeapUpkeep policy", () => {
  it("asks for a major GC once per MiB of growth, and takes the size after it as the new baseline", () => {
    const { heap, upkeep: u } = scripted(10 * MiB);
    u.check(); // baseline 10 MiB
    heap.used += UPKEEP_GROWTH_BYTES - 1;
    u.check();
    expect(heap.gcs).toBe(0);
    heap.used += 1;
    u.check();
    expect(heap.gcs).toBe(1);
    // The collection freed 0.7 MiB: that is the new baseline, whatever it is.
    heap.used -= 0.7 * MiB;
    u.check();
    expect(heap.gcs).toBe(1);
    heap.used += 0.9 * MiB;
    u.check();
    expect(heap.gcs).toBe(1);
    heap.used += 0.1 * MiB;
    u.check();
    expect(heap.gcs).toBe(2);
    expect(u.collections).toBe(2);
  });

  it("a heap that grows because it holds more costs one GC per MiB, not one per check", () => {
    const { heap, upkeep: u } = scripted(8 * MiB);
    u.check();
    for (let i = 0; i < 40; i++) {
      heap.used += 0.25 * MiB; // live data: a GC frees nothing
      u.check();
    }
    // 10 MiB of growth: about one GC per MiB (the check after each GC only sets the baseline).
    expect(heap.gcs).toBeGreaterThanOrEqual(7);
    expect(heap.gcs).toBeLessThanOrEqual(10);
  });

  it("V8's own major GCs lower the baseline too", () => {
    const { heap, upkeep: u } = scripted(12 * MiB);
    u.check();
    heap.used = 9 * MiB; // V8 collected on its own
    u.check();
    heap.used = 9.9 * MiB;
    u.check();
    expect(heap.gcs).toBe(0); // 0.9 MiB above the new baseline, 2.1 below the old one
    heap.used = 10 * MiB;
    u.check();
    expect(heap.gcs).toBe(1);
  });
});

describe("exposeMajorGc", () => {
  it("collects old-generation garbage at once, without exposing gc() globally", async () => {
    const gc = exposeMajorGc();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    const majors: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as { detail?: { kind?: number } }).detail?.kind;
        if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors.push(e.startTime);
      }
    });
    obs.observe({ entryTypes: ["gc"] });
    try {
      // Garbage in the old generation: objects held across scavenges (so promoted), then dropped.
      let held: { n: number; s: string }[][] = [];
      for (let round = 0; round < 20; round++) {
        held.push(Array.from({ length: 20_000 }, (_, n) => ({ n, s: `x${n}` })));
        await new Promise((r) => setImmediate(r));
      }
      const before = oldGenerationUsed();
      held = [];
      expect(held.length).toBe(0);
      const asked = performance.now();
      gc();
      // Incremental: marking proceeds in V8's tasks; well within 3 s on a busy machine.
      const deadline = Date.now() + 3000;
      while (
        Date.now() < deadline &&
        !(majors.some((t) => t >= asked) && oldGenerationUsed() < before - 8 * MiB)
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(majors.some((t) => t >= asked)).toBe(true);
      expect(oldGenerationUsed()).toBeLessThan(before - 8 * MiB);
    } finally {
      obs.disconnect();
    }
  });
});
