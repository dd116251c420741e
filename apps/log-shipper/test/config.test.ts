// Configuration: every variable of the architecture's log-shipper table with its exact default,
// the bare-URL rule for LOKI_ENDPOINT, and one error naming every bad variable.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { ConfigError } from "@sidecar/shared";
import { describe, expect, it } from "vitest";
import { describeConfig, loadConfig } from "../src/config.js";
import { FileSecret } from "../src/secret-file.js";

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
    expect(c.lokiPassword?.value()).toBe("s3cret");
    expect(c.lokiPassword?.path).toBe(join(dir, "pw"));
    // The secret never shows in the config as logged, stringified or inspected.
    for (const shown of [JSON.stringify(c), JSON.stringify(describeConfig(c)), inspect(c, { depth: 5 })]) {
      expect(shown).not.toContain("s3cret");
    }
    expect(c.lokiCa).toContain("BEGIN CERTIFICATE");
    expect(c.staticLabels).toEqual({ job: "x", team: "y" });
    expect(() => loadConfig({ LOKI_CA_FILE: join(dir, "pw") })).toThrow(/LOKI_CA_FILE/);
  });

  it("credential files are followed: re-read when replaced or rewritten, checked at most every interval", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    // Kubernetes' layout: the file is a symlink through ..data, swapped atomically on update.
    const v1 = join(dir, "..2024_01");
    const v2 = join(dir, "..2024_02");
    for (const [d, tok] of [
      [v1, "tok-1\n"],
      [v2, "tok-2\n"],
    ] as const) {
      mkdirSync(d);
      writeFileSync(join(d, "token"), tok);
    }
    symlinkSync("..2024_01", join(dir, "..data"));
    symlinkSync("..data/token", join(dir, "token"));
    let now = 1_000_000;
    const s = new FileSecret("LOKI_BEARER_TOKEN_FILE", join(dir, "token"), {
      checkIntervalMs: 5000,
      now: () => now,
    });
    expect(s.value()).toBe("tok-1");
    symlinkSync("..2024_02", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    expect(s.value()).toBe("tok-1"); // not looked at again within the interval
    now += 5000;
    expect(s.value()).toBe("tok-2");
    // Rewritten in place (same inode, new size); recheck() skips the interval (after a 401).
    writeFileSync(join(v2, "token"), "tok-three\n");
    s.recheck();
    expect(s.value()).toBe("tok-three");
    // Same size, possibly the same coarse mtime: after recheck() it is read regardless.
    writeFileSync(join(v2, "token"), "tok-3hree\n");
    s.recheck();
    expect(s.value()).toBe("tok-3hree");
    // Briefly missing: the last value stays in use and the error is known (never the content).
    rmSync(join(v2, "token"));
    now += 5000;
    expect(s.value()).toBe("tok-3hree");
    expect(s.error).toBe("ENOENT");
    expect(JSON.stringify(s)).not.toContain("tok-");
    expect(String(s)).not.toContain("tok-");
    expect(inspect(s)).not.toContain("tok-");
    expect(() => new FileSecret("LOKI_PASSWORD_FILE", join(dir, "missing"))).toThrow("cannot read: ENOENT");
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
