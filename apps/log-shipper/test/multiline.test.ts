// Multiline records (issue 13, item 1): stack traces of Java, Python, Go and indented text are one
// record; MULTILINE_START; the timeout; cuts at MULTILINE_MAX_LINES; a kill -9 in the middle of a
// record neither splits nor doubles it (its offset is acknowledged only with the whole record).
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { App } from "../src/app.js";
import { buildTestApp, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { metric, until } from "./support/loki-harness.js";
import { shipperEnv, shipperTracker } from "./support/process.js";

const JAVA = [
  "2026-12-06 10:00:00 ERROR request failed",
  "java.lang.IllegalStateException: boom",
  "\tat com.example.Service.run(Service.java:42)",
  "\tat com.example.Main.main(Main.java:7)",
  "Caused by: java.io.IOException: disk",
  "\tat com.example.Disk.write(Disk.java:9)",
  "\t... 2 more",
];
const PYTHON = [
  "Traceback (most recent call last):",
  '  File "app.py", line 3, in <module>',
  "    main()",
  '  File "app.py", line 2, in main',
  "    raise ValueError('bad')",
  "ValueError: bad",
];
const GO = [
  "panic: runtime error: index out of range [3] with length 2",
  "",
  "goroutine 1 [running]:",
  "main.main()",
  "\t/app/main.go:5 +0x1d",
  "exit status 2",
];

describe("multiline records in the assembled shipper", () => {
  let app: App | undefined;
  let loki: FakeLoki | undefined;
  afterEach(async () => {
    await app?.close(Date.now() + 2000);
    await loki?.close();
    app = undefined;
    loki = undefined;
  });

  const run = async (env: Record<string, string>, lines: string[], expected: number) => {
    const dirs = tempDirs();
    loki = await startFakeLoki();
    writeFileSync(join(dirs.logs, "app.log"), lines.map((l) => `${l}\n`).join(""));
    app = buildTestApp(dirs, { LOKI_ENDPOINT: loki.url, MULTILINE_TIMEOUT_MS: "200", ...env });
    await app.start();
    await until(() => (loki as FakeLoki).entries.length >= expected, `${expected} records`, 30_000);
    const size = Buffer.byteLength(lines.map((l) => `${l}\n`).join(""));
    await until(() => app?.tailer.files()[0]?.acked === size, "the whole file acknowledged", 30_000);
    return loki.entries.map((e) => e.line);
  };

  it("java: a trace with its causes is one record, between ordinary lines", async () => {
    const got = await run({ MULTILINE_PRESET: "java" }, ["before", ...JAVA, "after"], 3);
    expect(got).toEqual(["before", JAVA.join("\n"), "after"]);
    expect(await metric((app as App).registry, "log_shipper_multiline_records_total")).toBe(1);
  });

  it("python: the traceback up to its exception line is one record", async () => {
    const got = await run({ MULTILINE_PRESET: "python" }, ["start", ...PYTHON, "next line"], 3);
    expect(got).toEqual(["start", PYTHON.join("\n"), "next line"]);
  });

  it("go: a panic with its goroutine dump is one record", async () => {
    const got = await run({ MULTILINE_PRESET: "go" }, ["serving", ...GO, "restarted"], 3);
    expect(got).toEqual(["serving", GO.join("\n"), "restarted"]);
  });

  it("MULTILINE_START: lines not matching it continue the record; the last record goes out after the timeout", async () => {
    const lines = ["[10:00] a", "  detail 1", "detail 2", "[10:01] b", "tail of b"];
    const got = await run({ MULTILINE_START: "^\\[\\d\\d:\\d\\d\\]" }, lines, 2);
    expect(got).toEqual(["[10:00] a\n  detail 1\ndetail 2", "[10:01] b\ntail of b"]);
  });

  it("MULTILINE_MAX_LINES cuts a record (counted); the rest starts the next one", async () => {
    const lines = ["head", ...Array.from({ length: 5 }, (_, i) => ` cont ${i}`)];
    const got = await run({ MULTILINE_PRESET: "indented", MULTILINE_MAX_LINES: "4" }, lines, 2);
    expect(got).toEqual(["head\n cont 0\n cont 1\n cont 2", " cont 3\n cont 4"]);
    expect(await metric((app as App).registry, "log_shipper_multiline_cut_total", { reason: "lines" })).toBe(
      1,
    );
  });

  it("MULTILINE_START and MULTILINE_PRESET together: a configuration error", () => {
    expect(() => buildTestApp(tempDirs(), { MULTILINE_START: "^x", MULTILINE_PRESET: "java" })).toThrow(
      /MULTILINE_PRESET/,
    );
  });
});

describe("dist/main.js: kill -9 in the middle of a record", () => {
  const shippers = shipperTracker();
  afterEach(() => shippers.killAll());

  it("the record is neither split nor doubled: after the restart it arrives once, whole", {
    timeout: 90_000,
  }, async () => {
    const dirs = tempDirs();
    const loki = await startFakeLoki();
    try {
      // The kill comes well within the timeout (10 s); after the restart "last" goes out by it.
      const env = { ...shipperEnv(dirs, loki.url), MULTILINE_PRESET: "java", MULTILINE_TIMEOUT_MS: "10000" };
      const file = join(dirs.logs, "app.log");
      writeFileSync(file, `first\n${JAVA.slice(0, 3).join("\n")}\n`);
      const s = shippers.spawn(env);
      // "first" is sent once the trace starts; the trace waits for more lines (or 10 s).
      await loki.waitForEntries(1, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      s.child.kill("SIGKILL");
      await s.exited;
      appendFileSync(file, `${JAVA.slice(3).join("\n")}\nlast\n`);
      const again = shippers.spawn(env);
      await loki.waitForEntries(3, 60_000);
      again.child.kill("SIGTERM");
      expect((await again.exited).code).toBe(0);
      expect(loki.entries.map((e) => e.line)).toEqual(["first", JAVA.join("\n"), "last"]);
    } finally {
      await loki.close();
    }
  });
});
