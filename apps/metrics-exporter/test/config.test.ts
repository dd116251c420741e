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

  it("reads the outputs' variables and refuses bad ones (issue 10)", async () => {
    const c = loadConfig({
      STATSD_ADDRESS: "tcp://10.1.2.3:8125",
      STATSD_TAGS: "Influx",
      REMOTE_WRITE_URL: "https://mimir.example/api/v1/push",
      REMOTE_WRITE_HEADERS: "X-Scope-OrgID=team-a, X-Extra=a=b",
      POD_NAMESPACE: "ns",
    });
    expect(c.statsdAddress).toEqual({ protocol: "tcp", host: "10.1.2.3", port: 8125 });
    expect(c.statsdTags).toBe("influx");
    expect(c.statsdMtu).toBe(1432);
    expect(c.statsdIntervalMs).toBe(0);
    expect(c.remoteWriteHeaders).toEqual({ "x-scope-orgid": "team-a", "x-extra": "a=b" });
    expect(c.podNamespace).toBe("ns");
    let err: unknown;
    try {
      loadConfig({
        STATSD_ADDRESS: "statsd",
        STATSD_TAGS: "json",
        STATSD_MTU: "10",
        REMOTE_WRITE_URL: "mimir:9009",
        REMOTE_WRITE_PASSWORD_FILE: "/nonexistent/password",
        REMOTE_WRITE_HEADERS: "bad header=1",
        REMOTE_WRITE_CA_FILE: "/nonexistent/ca.pem",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.name).sort()).toEqual([
      "REMOTE_WRITE_CA_FILE",
      "REMOTE_WRITE_HEADERS",
      "REMOTE_WRITE_PASSWORD_FILE",
      "REMOTE_WRITE_URL",
      "STATSD_ADDRESS",
      "STATSD_MTU",
      "STATSD_TAGS",
    ]);
    const { tempDir } = await import("./helpers.js");
    const t = await tempDir("mx-cfg-");
    try {
      const { writeFile } = await import("node:fs/promises");
      const token = `${t.dir}/token`;
      await writeFile(token, "t\n");
      expect(() => loadConfig({ REMOTE_WRITE_BEARER_TOKEN_FILE: token, REMOTE_WRITE_USERNAME: "u" })).toThrow(
        /REMOTE_WRITE_BEARER_TOKEN_FILE/,
      );
      expect(() => loadConfig({ REMOTE_WRITE_PASSWORD_FILE: token })).toThrow(/REMOTE_WRITE_USERNAME/);
      expect(loadConfig({ REMOTE_WRITE_BEARER_TOKEN_FILE: token }).remoteWriteBearerTokenFile).toBe(token);
    } finally {
      await t.cleanup();
    }
  });
});
