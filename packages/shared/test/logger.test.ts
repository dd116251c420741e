import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, stream };
}

describe("createLogger", () => {
  it("writes JSON with the service and the pod's identity", () => {
    const { lines, stream } = capture();
    const log = createLogger({
      service: "log-shipper",
      env: { POD_NAME: "p-1", POD_NAMESPACE: "ns" },
      destination: stream,
    });
    log.info({ file: "/x" }, "file found");
    const rec = JSON.parse(lines[0] ?? "{}");
    expect(rec).toMatchObject({
      service: "log-shipper",
      pod: "p-1",
      namespace: "ns",
      level: "info",
      file: "/x",
      msg: "file found",
    });
    expect(typeof rec.time).toBe("string");
  });

  it("omits pod fields outside a pod and honours the level", () => {
    const { lines, stream } = capture();
    const log = createLogger({ service: "s", level: "warn", env: {}, destination: stream });
    log.info("hidden");
    log.warn("shown");
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0] ?? "{}");
    expect(rec.pod).toBeUndefined();
    expect(rec.msg).toBe("shown");
  });
});
