// The processing stage (issue 13, items 2, 3 and 5): drop by level and pattern, keep-only
// patterns, redaction (user patterns and presets) before any destination sees a line, dropped
// lines still moving offsets; user patterns that cannot stall the shipper — checked at start
// (exit 2 naming the variable), and a pathological pattern against a hostile line on the built
// program.
import "../src/v8-flags.js"; // as main.ts: the linear-time engine must be on before patterns compile
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@sidecar/shared";
import { afterEach, describe, expect, it } from "vitest";
import type { App } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { safeRegExp, UnsafePatternError } from "../src/processing/regex.js";
import { REDACT_PRESETS, REDACTED } from "../src/processing/stage.js";
import { buildTestApp, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { metric, until } from "./support/loki-harness.js";
import { shipperEnv, shipperTracker } from "./support/process.js";

describe("safe user patterns", () => {
  it("refuses backreferences and lookaround, accepts the rest", () => {
    expect(() => safeRegExp("(a)\\1")).toThrow(UnsafePatternError);
    expect(() => safeRegExp("(?<=user=)\\w+")).toThrow(/linear time/);
    expect(() => safeRegExp("(?!x)y")).toThrow(/linear time/);
    expect(() => safeRegExp("(?:ab|cd){12,18}")).toThrow(/linear time/);
    expect(() => safeRegExp("([a-z")).toThrow(/not a valid regular expression/);
    expect(safeRegExp("user=\\w+", "g").flags).toBe("g");
  });

  it("a pattern that backtracks exponentially finishes on a hostile line (V8 falls back to the linear engine)", () => {
    const re = safeRegExp("(a+)+$");
    // With backtracking alone this would not finish in the lifetime of the machine.
    expect(re.test(`${"a".repeat(100_000)}!`)).toBe(false);
    expect(re.test("aaa")).toBe(true);
  });

  it("a bad setting stops the program at start, naming the variable", () => {
    const base = { LOG_PATHS: "/tmp/x/*.log" };
    const bad = (env: Record<string, string>, name: string) => {
      let err: unknown;
      try {
        loadConfig({ ...base, ...env });
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(name);
    };
    bad({ DROP_LEVELS: "debug,verbose" }, "DROP_LEVELS");
    bad({ REDACT: "password=\\w+\n(\\w)\\1" }, "REDACT");
    bad({ DROP_MATCHING: "(?<=x)y" }, "DROP_MATCHING");
    bad({ KEEP_MATCHING: "[" }, "KEEP_MATCHING");
    bad({ REDACT_PRESETS: "bearer,ssn" }, "REDACT_PRESETS");
    const ok = loadConfig({ ...base, REDACT: "a,b{1,2}\nc", DROP_LEVELS: "DEBUG, trace" });
    expect(ok.redactPatterns).toHaveLength(2);
    expect(ok.dropLevels).toEqual(["debug", "trace"]);
  });
});

describe("redaction presets", () => {
  const redact = (name: string, text: string) => {
    const rule = (
      REDACT_PRESETS[name] as () => { re: RegExp; replace: string | ((...a: string[]) => string) }
    )();
    return text.replace(rule.re, rule.replace as string);
  };
  it("replaces what each preset names and leaves look-alikes alone", () => {
    expect(redact("bearer", "Authorization: Bearer eyabc.def-ghi_jk== ok")).toBe(
      `Authorization: Bearer ${REDACTED} ok`,
    );
    expect(redact("aws-keys", "key AKIAIOSFODNN7EXAMPLE used")).toBe(`key ${REDACTED} used`);
    expect(redact("aws-keys", 'aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"')).toBe(
      `aws_secret_access_key="${REDACTED}"`,
    );
    expect(redact("jwt", "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_-x end")).toBe(`t=${REDACTED} end`);
    expect(redact("credit-card", "card 4111 1111 1111 1111 ok")).toBe(`card ${REDACTED} ok`);
    expect(redact("credit-card", "card 4111-1111-1111-1111")).toBe(`card ${REDACTED}`);
    // Not Luhn-valid, or an epoch-millisecond time: left alone.
    expect(redact("credit-card", "card 4111 1111 1111 1112")).toBe("card 4111 1111 1111 1112");
    expect(redact("credit-card", '"time":1700000000000')).toBe('"time":1700000000000');
    expect(redact("email", "from ops.team+alerts@example.co.uk at")).toBe(`from ${REDACTED} at`);
  });
});

describe("the processing stage in the assembled shipper", () => {
  let app: App | undefined;
  let loki: FakeLoki | undefined;
  afterEach(async () => {
    await app?.close(Date.now() + 2000);
    await loki?.close();
    app = undefined;
    loki = undefined;
  });

  it("drops by level and pattern, keeps, redacts before sending; dropped lines still move the offset to the end", async () => {
    const dirs = tempDirs();
    loki = await startFakeLoki();
    const file = join(dirs.logs, "app.log");
    const lines = [
      '{"level":20,"msg":"debug noise"}',
      '{"level":30,"msg":"GET /healthz 200"}',
      '{"level":30,"msg":"login","auth":"Bearer abc.def","user":"jane@example.com","pin":"secret=1234"}',
      '{"level":50,"msg":"payment failed","card":"4111111111111111"}',
      "plain text line",
      '{"level":10,"msg":"trace noise at the end"}',
    ];
    writeFileSync(file, lines.map((l) => `${l}\n`).join(""));
    app = buildTestApp(dirs, {
      LOKI_ENDPOINT: loki.url,
      DROP_LEVELS: "trace,debug",
      DROP_MATCHING: "/healthz",
      REDACT: "secret=\\d+",
      REDACT_PRESETS: "bearer,email,credit-card",
    });
    await app.start();
    await until(() => (loki as FakeLoki).entries.length >= 3, "the kept lines", 30_000);
    const size = Buffer.byteLength(lines.map((l) => `${l}\n`).join(""));
    // The file ends with a dropped line: its offset is acknowledged all the same.
    await until(() => app?.tailer.files()[0]?.acked === size, "the offset to reach the end", 30_000);
    const got = loki.entries.map((e) => e.line);
    expect(got).toEqual([
      `{"level":30,"msg":"login","auth":"Bearer ${REDACTED}","user":"${REDACTED}","pin":"${REDACTED}"}`,
      `{"level":50,"msg":"payment failed","card":"${REDACTED}"}`,
      "plain text line",
    ]);
    expect(await metric(app.registry, "log_shipper_lines_dropped_total", { reason: "level" })).toBe(2);
    expect(await metric(app.registry, "log_shipper_lines_dropped_total", { reason: "drop_matching" })).toBe(
      1,
    );
    expect(await metric(app.registry, "log_shipper_redactions_total", { rule: "bearer" })).toBe(1);
    expect(await metric(app.registry, "log_shipper_redactions_total", { rule: "email" })).toBe(1);
    expect(await metric(app.registry, "log_shipper_redactions_total", { rule: "credit-card" })).toBe(1);
    expect(await metric(app.registry, "log_shipper_redactions_total", { rule: "REDACT#1" })).toBe(1);
    const report = await app.close(Date.now() + 5000);
    app = undefined;
    expect(report).toEqual({ clean: true, positionsSaved: true, remainingBytes: 0 });
    expect(JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0].offset).toBe(size);
  });

  it("KEEP_MATCHING keeps only matching lines", async () => {
    const dirs = tempDirs();
    loki = await startFakeLoki();
    const file = join(dirs.logs, "app.log");
    appendFileSync(file, "audit: a\nnoise\naudit: b\nnoise\n");
    app = buildTestApp(dirs, { LOKI_ENDPOINT: loki.url, KEEP_MATCHING: "^audit:" });
    await app.start();
    await until(() => app?.tailer.files()[0]?.acked === 30, "the offset to reach the end", 30_000);
    expect(loki.entries.map((e) => e.line)).toEqual(["audit: a", "audit: b"]);
    expect(await metric(app.registry, "log_shipper_lines_dropped_total", { reason: "keep_matching" })).toBe(
      2,
    );
  });
});

describe("dist/main.js with a pathological pattern", () => {
  const shippers = shipperTracker();
  afterEach(() => shippers.killAll());

  it("a hostile line against DROP_MATCHING='(a+)+$' does not stall it: /healthz answers, the line is shipped, SIGTERM exits 0", async () => {
    const dirs = tempDirs();
    const loki = await startFakeLoki();
    try {
      writeFileSync(join(dirs.logs, "app.log"), `${"a".repeat(200_000)}!\nafter\n`);
      const s = shippers.spawn({ ...shipperEnv(dirs, loki.url), DROP_MATCHING: "(a+)+$" });
      await loki.waitForEntries(2, 60_000);
      expect(loki.entries.map((e) => e.line.length)).toEqual([200_001, 5]);
      await s.waitForLog((l) => l.msg === "log shipper started", "start");
      const address = String(s.logs.find((l) => l.msg === "log shipper started")?.address ?? "");
      const port = address.split(":").pop();
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
      s.child.kill("SIGTERM");
      expect((await s.exited).code).toBe(0);
    } finally {
      await loki.close();
    }
  });

  it("REDACT with a backreference: exit 2 naming REDACT", async () => {
    const dirs = tempDirs();
    const s = shippers.spawn({ ...shipperEnv(dirs), REDACT: "(\\w+)=\\1" });
    const { code } = await s.exited;
    expect(code).toBe(2);
    expect(s.stdout() + s.stderr()).toContain("REDACT");
  });
});
