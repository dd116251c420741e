// The sidecars' pino-free logger writes the lines @sidecar/shared's pino logger writes: the same
// calls through both, compared field by field and in order (all but the time, checked as ISO).
import { describe, expect, it } from "vitest";
import { createLineLogger, type Log } from "../src/line-logger.js";
import { createLogger } from "../src/logger.js";

type Line = Record<string, unknown>;

function both(
  level: "debug" | "info" | "silent",
  env: Record<string, string>,
  calls: (log: Log) => void,
): { ours: Line[]; pinos: Line[] } {
  const ours: string[] = [];
  const pinos: string[] = [];
  calls(createLineLogger({ service: "svc", level, env, write: (l) => ours.push(l) }));
  calls(createLogger({ service: "svc", level, env, destination: { write: (l: string) => pinos.push(l) } }));
  for (const l of ours) expect(l.endsWith("\n") && !l.slice(0, -1).includes("\n")).toBe(true);
  const parse = (lines: string[]) => lines.map((l) => JSON.parse(l) as Line);
  return { ours: parse(ours), pinos: parse(pinos) };
}

function expectSameLines(ours: Line[], pinos: Line[]): void {
  expect(ours.length).toBe(pinos.length);
  for (const [i, line] of ours.entries()) {
    const theirs = pinos[i] as Line;
    expect(Object.keys(line)).toEqual(Object.keys(theirs));
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect({ ...line, time: 0 }).toEqual({ ...theirs, time: 0 });
  }
}

describe("createLineLogger writes pino's lines", () => {
  it("fields and message, message alone, fields alone, child bindings, levels", () => {
    const { ours, pinos } = both("info", {}, (log) => {
      log.info({ file: "a.prom", series: 12 }, "file accepted again");
      log.warn("plain message");
      log.error({ reason: "deadline", timeoutMs: 5 });
      const http = log.child({ component: "http" });
      http.info({ address: "http://127.0.0.1:9100" }, "listening");
      http.child({ output: "statsd" }).warn({ target: "udp://x:1", nested: { a: [1, "b"] } }, "send failed");
      log.debug({ runs: 3 }, "below the level: not written");
      log.fatal({ code: 3 }, "fatal");
    });
    expect(ours.map((l) => l.msg)).toEqual([
      "file accepted again",
      "plain message",
      undefined,
      "listening",
      "send failed",
      "fatal",
    ]);
    expectSameLines(ours, pinos);
  });

  it("errors under err: type, message and stack with causes, own fields; an Error as the first argument", () => {
    // Made once, so both loggers see the same stacks.
    const withCode = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED", port: 9 });
    const caused = new Error("collection failed", { cause: new TypeError("bad byte") });
    const range = new RangeError("out of range");
    const { ours, pinos } = both("debug", {}, (log) => {
      log.error({ err: withCode, url: "/metrics" }, "request failed");
      log.error({ err: caused }, "collection failed");
      log.error(range);
      log.warn({ err: "a message, not an Error" }, "send failed; retrying with backoff");
      log.debug({ runs: 1 }, "freed superseded collections");
    });
    expect(ours[0]?.err).toMatchObject({ type: "Error", code: "ECONNREFUSED", port: 9 });
    expect(ours[1]?.err).toMatchObject({ type: "Error", message: "collection failed: bad byte" });
    expect(String((ours[1]?.err as Line | undefined)?.stack)).toContain("caused by: TypeError: bad byte");
    expect(ours[2]?.msg).toBe("out of range");
    expectSameLines(ours, pinos);
  });

  it("pod and namespace from the downward API; silent writes nothing", () => {
    const env = { POD_NAME: "pod-1", POD_NAMESPACE: "ns" };
    const { ours, pinos } = both("info", env, (log) => log.child({ component: "push" }).info("pushed"));
    expect(ours[0]).toMatchObject({ service: "svc", pod: "pod-1", namespace: "ns", component: "push" });
    expectSameLines(ours, pinos);
    const silent = both("silent", env, (log) => log.fatal("nothing"));
    expect(silent.ours).toEqual([]);
    expect(silent.pinos).toEqual([]);
  });
});
