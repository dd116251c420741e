// The reclaimer's decision (a full GC only when dead buffer memory exceeds the slack) with injected
// measurements, and the real thing: V8's gc obtained without --expose-gc frees dead buffers.
import { describe, expect, it } from "vitest";
import { createReclaimer } from "../src/reclaim.js";

describe("createReclaimer", () => {
  it("runs a full GC only when ArrayBuffer memory exceeds the live bytes by more than the slack", () => {
    let total = 10_000;
    let gcs = 0;
    const r = createReclaimer({
      liveBytes: () => 4_000,
      slackBytes: 6_000,
      arrayBufferBytes: () => total,
      gc: () => {
        gcs++;
        total = 4_000;
      },
    });
    expect(r.check()).toBe(false); // 6000 dead: within the slack
    expect(gcs).toBe(0);
    total = 10_001;
    expect(r.check()).toBe(true);
    expect(gcs).toBe(1);
    expect(r.runs).toBe(1);
    expect(r.check()).toBe(false);
    expect(r.runs).toBe(1);
  });

  it("frees dead buffers for real (V8's gc, without --expose-gc on the command line)", async () => {
    const live: Buffer[] = [];
    const r = createReclaimer({
      liveBytes: () => live.reduce((n, b) => n + b.buffer.byteLength, 0),
      slackBytes: 16 * 1024 * 1024,
    });
    let dead: Buffer[] | undefined = [];
    for (let i = 0; i < 48; i++) dead.push(Buffer.allocUnsafeSlow(1024 * 1024).fill(i));
    live.push(Buffer.allocUnsafeSlow(1024 * 1024));
    const before = process.memoryUsage().arrayBuffers;
    expect(dead.length).toBe(48);
    dead = undefined;
    expect(r.check()).toBe(true);
    // V8 hands the backing stores back on its sweeper task, just after the GC.
    let after = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 50 && before - after < 40 * 1024 * 1024; i++) {
      await new Promise((res) => setTimeout(res, 20));
      after = process.memoryUsage().arrayBuffers;
    }
    expect(before - after).toBeGreaterThanOrEqual(40 * 1024 * 1024);
  });
});
