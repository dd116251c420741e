// The environment contract: names and defaults exactly as the architecture document gives them,
// and one error naming every bad variable.

import { resolve } from "node:path";
import { ConfigError } from "@sidecar/shared";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

describe("loadConfig", () => {
  it("has the documented defaults", () => {
    expect(loadConfig({})).toEqual({
      host: "0.0.0.0",
      port: 8080,
      logLevel: "info",
      logDir: "/app/logs",
      logFile: "app.log",
      logMaxBytes: 10485760,
      logMaxFiles: 5,
      metricsDir: "/app/metrics",
      metricsIntervalMs: 5000,
      trafficRps: 5,
      workMaxMs: 5000,
      shutdownTimeoutMs: 10000,
    });
  });

  it("reads every variable", () => {
    const c = loadConfig({
      HOST: "127.0.0.1",
      PORT: "9000",
      LOG_LEVEL: "debug",
      LOG_DIR: "/tmp/l",
      LOG_FILE: "x.log",
      LOG_MAX_BYTES: "2048",
      LOG_MAX_FILES: "2",
      METRICS_DIR: "/tmp/m",
      METRICS_INTERVAL_MS: "250",
      TRAFFIC_RPS: "0",
      WORK_MAX_MS: "100",
      SHUTDOWN_TIMEOUT_MS: "3000",
    });
    expect(c).toMatchObject({
      port: 9000,
      logFile: "x.log",
      logMaxBytes: 2048,
      logMaxFiles: 2,
      trafficRps: 0,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("names every bad variable, its value and what is expected", () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: "http",
        LOG_MAX_FILES: "0",
        TRAFFIC_RPS: "-1",
        LOG_FILE: "../etc/x",
        LOG_LEVEL: "loud",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    for (const part of [
      'PORT="http"',
      'LOG_MAX_FILES="0"',
      'TRAFFIC_RPS="-1"',
      'LOG_FILE="../etc/x"',
      'LOG_LEVEL="loud"',
      "an integer from 0 to 65535",
      "a file name without a directory part",
    ]) {
      expect(msg).toContain(part);
    }
    expect((err as ConfigError).problems).toHaveLength(5);
  });

  it.each([
    ["LOG_MAX_BYTES", "100"],
    ["METRICS_INTERVAL_MS", "0"],
    ["TRAFFIC_RPS", "1.5"],
    ["PORT", "70000"],
  ])("rejects %s=%s", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it("caps METRICS_INTERVAL_MS at the exporter's staleness window (300 s)", () => {
    expect(loadConfig({ METRICS_INTERVAL_MS: "300000" }).metricsIntervalMs).toBe(300_000);
    // Slower than STALE_AFTER_MS (300 s) and the exporter would drop the file as stale between writes.
    expect(() => loadConfig({ METRICS_INTERVAL_MS: "300001" })).toThrow(
      /METRICS_INTERVAL_MS="300001".*100 to 300000/,
    );
  });

  it("rejects WORK_MAX_MS that does not fit inside SHUTDOWN_TIMEOUT_MS, naming both", () => {
    let err: unknown;
    try {
      loadConfig({ WORK_MAX_MS: "10000", SHUTDOWN_TIMEOUT_MS: "10000" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('WORK_MAX_MS="10000"');
    expect((err as Error).message).toContain("less than SHUTDOWN_TIMEOUT_MS (10000)");
    // The default SHUTDOWN_TIMEOUT_MS counts too.
    expect(() => loadConfig({ WORK_MAX_MS: "20000" })).toThrow("WORK_MAX_MS");
    expect(loadConfig({ WORK_MAX_MS: "9999" }).workMaxMs).toBe(9999);
  });

  it("rejects a whitespace-only LOG_DIR / METRICS_DIR and resolves relative ones to absolute paths", () => {
    expect(() => loadConfig({ LOG_DIR: "   " })).toThrow('LOG_DIR="   "');
    expect(() => loadConfig({ METRICS_DIR: "\t" })).toThrow("METRICS_DIR");
    const c = loadConfig({ LOG_DIR: "logs", METRICS_DIR: "./m/../metrics" });
    expect(c.logDir).toBe(resolve("logs"));
    expect(c.metricsDir).toBe(resolve("metrics"));
  });
});
