// collectDefaultMetrics: prom-client's default metrics, called module by module (not through its
// index), must give exactly what prom-client's own collectDefaultMetrics gives — and without
// nodejs_gc_duration_seconds only when asked.
import * as PromClient from "prom-client";
import { describe, expect, it } from "vitest";
import { collectDefaultMetrics, Registry } from "../src/prom.js";

async function names(r: PromClient.Registry): Promise<string[]> {
  return (await r.getMetricsAsJSON()).map((m) => m.name).sort();
}

describe("collectDefaultMetrics", () => {
  it("registers exactly prom-client's default metrics, with their prefix and labels", async () => {
    const theirs = new PromClient.Registry();
    PromClient.collectDefaultMetrics({ register: theirs, prefix: "p_", labels: { pod: "x" } });
    const ours = new Registry();
    collectDefaultMetrics({ register: ours, prefix: "p_", labels: { pod: "x" } });
    const expected = await names(theirs);
    expect(expected).toContain("p_nodejs_gc_duration_seconds");
    expect(expected.length).toBeGreaterThan(15);
    expect(await names(ours)).toEqual(expected);
    // Same help, type and label values: the text of one metric that does not change between calls.
    const start = (r: PromClient.Registry) => r.getSingleMetricAsString("p_process_start_time_seconds");
    expect(await start(ours)).toEqual(await start(theirs));
    expect(await start(ours)).toContain('pod="x"');
  });

  it("leaves out nodejs_gc_duration_seconds (and only it) when gcDuration is false", async () => {
    const all = new Registry();
    collectDefaultMetrics({ register: all });
    const noGc = new Registry();
    collectDefaultMetrics({ register: noGc, gcDuration: false });
    expect(await names(noGc)).toEqual((await names(all)).filter((n) => n !== "nodejs_gc_duration_seconds"));
  });
});
