// Configuration: every variable of the architecture's log-shipper table with its exact default,
// the bare-URL rule for LOKI_ENDPOINT, and one error naming every bad variable.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@sidecar/shared";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

describe("loadConfig", () => {
  it("has the contract's defaults", () => {
    const c = loadConfig({});
    expect(c.lokiEndpoint).toBeUndefined(); // dry run
    expect(c.logPaths).toEqual(["/shared/logs/*.log", "/shared/logs/*.log.*"]);
    expect(c.excludePaths).toEqual(["*.gz", "*.zip", "*.tmp"]);
    expect(c.positionsFile).toBe("/var/lib/log-shipper/positions.json");
    expect(c.staticLabels).toEqual({ job: "sample-app" });
    expect(c.batchWaitMs).toBe(1000);
    expect(c.batchMaxBytes).toBe(1048576);
    expect(c.maxLineBytes).toBe(262144);
    expect(c.lokiEncoding).toBe("protobuf");
    expect(c.lokiCompression).toBe("gzip");
    expect(c.lokiTenantId).toBeUndefined();
    expect(c.lokiUsername).toBeUndefined();
    expect(c.lokiPassword).toBeUndefined();
    expect(c.lokiBearerToken).toBeUndefined();
    expect(c.lokiCa).toBeUndefined();
    expect(c.lokiTimeoutMs).toBe(10000);
    expect(c.retryMinMs).toBe(500);
    expect(c.retryMaxMs).toBe(300000);
    expect(c.maxBufferBytes).toBe(16777216);
    expect(c.shutdownTimeoutMs).toBe(25000);
    expect(c.httpHost).toBe("0.0.0.0");
    expect(c.httpPort).toBe(9080);
    expect(c.logLevel).toBe("info");
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("appends Loki's push path to a bare base URL only", () => {
    expect(loadConfig({ LOKI_ENDPOINT: "http://loki:3100" }).lokiEndpoint?.href).toBe(
      "http://loki:3100/loki/api/v1/push",
    );
    expect(loadConfig({ LOKI_ENDPOINT: "https://loki.example/" }).lokiEndpoint?.href).toBe(
      "https://loki.example/loki/api/v1/push",
    );
    expect(loadConfig({ LOKI_ENDPOINT: "http://gw/custom/push" }).lokiEndpoint?.href).toBe(
      "http://gw/custom/push",
    );
  });

  it("reads secrets from files and checks the CA is PEM", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    writeFileSync(join(dir, "pw"), "s3cret\n");
    writeFileSync(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n");
    const c = loadConfig({
      LOKI_USERNAME: "u",
      LOKI_PASSWORD_FILE: join(dir, "pw"),
      LOKI_CA_FILE: join(dir, "ca.pem"),
      STATIC_LABELS: "job=x,team=y",
    });
    expect(c.lokiPassword).toBe("s3cret");
    expect(c.lokiCa).toContain("BEGIN CERTIFICATE");
    expect(c.staticLabels).toEqual({ job: "x", team: "y" });
    expect(() => loadConfig({ LOKI_CA_FILE: join(dir, "pw") })).toThrow(/LOKI_CA_FILE/);
  });

  it("names every bad variable in one error", () => {
    let err: unknown;
    try {
      loadConfig({
        LOKI_ENDPOINT: "ftp://x",
        BATCH_WAIT_MS: "soon",
        HTTP_PORT: "70000",
        LOKI_ENCODING: "xml",
        STATIC_LABELS: "9bad=x",
        LOKI_PASSWORD_FILE: "/nonexistent/pw",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const names = (err as ConfigError).problems.map((p) => p.name).sort();
    expect(names).toEqual(
      [
        "BATCH_WAIT_MS",
        "HTTP_PORT",
        "LOKI_ENCODING",
        "LOKI_ENDPOINT",
        "LOKI_PASSWORD_FILE",
        "STATIC_LABELS",
      ].sort(),
    );
  });

  it("cross-checks related variables", () => {
    expect(() => loadConfig({ RETRY_MIN_MS: "5000", RETRY_MAX_MS: "1000" })).toThrow(/RETRY_MIN_MS/);
    expect(() => loadConfig({ MAX_BUFFER_BYTES: "100000", BATCH_MAX_BYTES: "200000" })).toThrow(
      /MAX_BUFFER_BYTES/,
    );
  });
});
