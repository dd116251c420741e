// Repeated failures are logged once per kind and interval, with the count of what was held back;
// a new kind of failure, or the first one after a recovery, is logged at once.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LogLimiter } from "../src/log-limiter.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { harness, lines, until } from "./support/loki-harness.js";

describe("LogLimiter", () => {
  it("logs the first of a kind, counts repeats within the interval, reports them with the next line", () => {
    let now = 0;
    const l = new LogLimiter(1000, () => now);
    expect(l.shouldLog("a")).toBe(true);
    expect(l.take()).toBe(0);
    now = 10;
    expect(l.shouldLog("a")).toBe(false);
    expect(l.shouldLog("a")).toBe(false);
    now = 1000;
    expect(l.shouldLog("a")).toBe(true);
    expect(l.take()).toBe(2);
    expect(l.shouldLog("b")).toBe(true); // a different kind: at once
    expect(l.shouldLog("b")).toBe(false);
    l.reset();
    expect(l.shouldLog("b")).toBe(true);
  });
});

describe("pipeline logging under repeated failures", () => {
  let loki: FakeLoki;
  beforeEach(async () => {
    loki = await startFakeLoki();
  });
  afterEach(async () => {
    await loki.close();
  });

  it("logs one retry line for many identical failures, then the recovery", async () => {
    loki.setFault({ kind: "status", status: 503, times: 8 });
    const h = harness(loki, { retryMinMs: 5, retryMaxMs: 10 });
    h.pipeline.start();
    h.write({ id: "f", path: "/l/a.log" }, lines("x", 3));
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    const retries = h.logs.filter((l) => l.msg === "push to Loki failed; retrying");
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ status: 503, attempt: 1 });
    expect(h.logs).toContainEqual(
      expect.objectContaining({ msg: "Loki accepts batches again", failedAttempts: 8 }),
    );
    expect(h.pipeline.stats().retries).toBe(8);
  });

  it("logs a drop with a new message at once, identical drops once", async () => {
    const h = harness(loki);
    h.pipeline.start();
    const f = { id: "f", path: "/l/a.log" };
    for (const body of ["bad one", "bad one", "bad two"]) {
      loki.setFault({ kind: "status", status: 400, body, times: 1 });
      h.write(f, lines(body, 1));
      h.pipeline.flush();
      await until(() => h.pipeline.stats().queuedBatches === 0 && loki.requests.length > 0, "the drop");
      expect(await h.pipeline.drain(Date.now() + 5000)).toBe(true);
    }
    await h.pipeline.close();
    const drops = h.logs.filter((l) => l.msg === "Loki rejected a batch for good; dropped it");
    expect(drops.map((d) => d.lokiMessage)).toEqual(["bad one", "bad two"]);
    expect(h.pipeline.stats().batchesDropped).toBe(3);
  });
});
