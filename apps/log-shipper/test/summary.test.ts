// The periodic summary line: increases since the previous line, point-in-time gauges as they are.
import { describe, expect, it } from "vitest";
import { Summary, type SummaryCounters } from "../src/summary.js";

describe("Summary", () => {
  it("logs what changed since the previous summary, plus the gauges", () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger = { info: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) };
    const counters: SummaryCounters = {
      linesRead: 10,
      bytesRead: 1000,
      linesSent: 8,
      bytesSent: 800,
      retries: 1,
      linesDropped: 0,
      linesTruncated: 0,
    };
    const gauges = {
      lagBytes: 200,
      pendingBytes: 200,
      filesWatched: 2,
      readPaused: false,
      consecutiveFailures: 0,
    };
    const s = new Summary({
      logger: logger as never,
      intervalMs: 0,
      read: () => ({ counters: { ...counters }, gauges: { ...gauges } }),
    });
    counters.linesRead += 5;
    counters.linesSent += 7;
    counters.bytesSent += 700;
    gauges.lagBytes = 50;
    s.log();
    s.log("final");
    expect(lines[0]?.msg).toBe("summary");
    expect(lines[0]?.obj).toMatchObject({
      linesRead: 5,
      linesSent: 7,
      bytesSent: 700,
      retries: 0,
      lagBytes: 50,
    });
    expect(lines[1]?.msg).toBe("final");
    expect(lines[1]?.obj).toMatchObject({ linesRead: 0, linesSent: 0, filesWatched: 2 });
  });
});
