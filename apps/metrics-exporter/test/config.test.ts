// Configuration: the contract's defaults, bounds and one error naming every bad variable.
import { hostname } from "node:os";
import { ConfigError } from "@sidecar/shared";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

describe("loadConfig", () => {
  it("has the architecture contract's defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      metricsDir: "/shared/metrics",
      collectIntervalMs: 5000,
      staleAfterMs: 300_000,
      httpHost: "0.0.0.0",
      httpPort: 9100,
      pushgatewayUrl: undefined,
      pushIntervalMs: 15_000,
      pushJob: "sidecar",
      pushInstance: hostname(),
      maxFileBytes: 8 * 1024 * 1024,
      maxSeriesPerFile: 50_000,
      maxTotalSeries: 100_000,
      maxFiles: 1000,
      maxLabelsPerSeries: 128,
      maxFamilies: 20_000,
      maxTotalBytes: 12 * 1024 * 1024,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("takes the push instance from PUSH_INSTANCE, else POD_NAME", () => {
    expect(loadConfig({ POD_NAME: "pod-1" }).pushInstance).toBe("pod-1");
    expect(loadConfig({ POD_NAME: "pod-1", PUSH_INSTANCE: "x" }).pushInstance).toBe("x");
  });

  it("names every bad variable in one error", () => {
    let err: unknown;
    try {
      loadConfig({
        COLLECT_INTERVAL_MS: "5s",
        MAX_FILE_BYTES: "10",
        PUSHGATEWAY_URL: "gw:9091",
        LOG_LEVEL: "loud",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const names = (err as ConfigError).problems.map((p) => p.name).sort();
    expect(names).toEqual(["COLLECT_INTERVAL_MS", "LOG_LEVEL", "MAX_FILE_BYTES", "PUSHGATEWAY_URL"]);
  });

  it("checks bounds that depend on each other", () => {
    expect(() => loadConfig({ PUSH_RETRY_MIN_MS: "5000", PUSH_RETRY_MAX_MS: "1000" })).toThrow(
      /PUSH_RETRY_MIN_MS/,
    );
    expect(() => loadConfig({ MAX_SERIES_PER_FILE: "150000" })).toThrow(/MAX_SERIES_PER_FILE/);
  });
});
