// Process tests on the BUILT shipper (dist/main.js, exactly what the image runs) with real files,
// the fake Loki and real signals: kill -9 mid-stream, Loki down then back, SIGTERM right after a
// burst, a 20 MiB line without a newline, bad configuration, and the dry run.
import { appendFileSync, closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseDryRunLine } from "../src/sinks/dry-run/dry-run.js";
import { type Dirs, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { assertBuilt, memoryOf, type Shipper, shipperEnv, spawnShipper } from "./support/process.js";
import { waitFor } from "./support/source-harness.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function baseEnv(dirs: Dirs, loki?: FakeLoki): Record<string, string> {
  return shipperEnv(dirs, loki?.url);
}

function line(i: number): string {
  return `{"level":30,"time":${Date.now()},"seq":${i},"msg":"process test line ${i} ${"p".repeat(60)}"}`;
}

/** seq → number of arrivals. */
function arrivals(loki: FakeLoki): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of loki.entries) {
    const s = /"seq":(\d+)/.exec(e.line);
    if (s) m.set(Number(s[1]), (m.get(Number(s[1])) ?? 0) + 1);
  }
  return m;
}

const started = (l: Record<string, unknown>) => l.msg === "log shipper started";

describe("log shipper process (dist/main.js)", () => {
  let loki: FakeLoki | undefined;
  const shippers: Shipper[] = [];
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    for (const s of shippers.splice(0))
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await loki?.close();
    loki = undefined;
  });
  const spawnTracked = (env: Record<string, string>) => {
    const s = spawnShipper(env);
    shippers.push(s);
    return s;
  };

  it("kill -9 mid-stream and restart: nothing lost, duplicates only past the saved offset", async () => {
    const dirs = tempDirs("proc-kill-");
    // Loki's own duplicate drop off: every line sent twice must be counted here.
    loki = await startFakeLoki({ store: "lines", dedup: false });
    const env = baseEnv(dirs, loki); // default BATCH_MAX_BYTES: 1 MiB
    const p = join(dirs.logs, "app.log");
    const total = 30_000;
    const offsets: number[] = []; // file offset after each line
    let size = 0;
    let written = 0;
    const write = (n: number) => {
      let chunk = "";
      for (let i = 0; i < n && written < total; i++, written++) {
        const l = `${line(written)}\n`;
        size += Buffer.byteLength(l);
        offsets.push(size);
        chunk += l;
      }
      appendFileSync(p, chunk);
    };
    const first = spawnTracked(env);
    await first.waitForLog(started, "start");
    while (loki.entryCount < total / 3) {
      write(500);
      await sleep(10);
    }
    first.child.kill("SIGKILL");
    await first.exited;
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0].offset as number;
    const firstRunLines = loki.entryCount;
    // Lines whose end lies at or before the saved offset must never come again.
    const savedLines = offsets.filter((o) => o <= saved).length;
    write(2000);
    const second = spawnTracked(env);
    await second.waitForLog(started, "restart");
    while (written < total) {
      write(1000);
      await sleep(10);
    }
    const seen = arrivals(loki);
    await waitFor(() => arrivals(loki as FakeLoki).size === total, `all ${total} lines`, 30_000);
    await sleep(300);
    const final = arrivals(loki);
    const missing = [...Array(total).keys()].filter((i) => !final.has(i));
    expect(missing).toEqual([]);
    const dups = [...final].filter(([, n]) => n > 1).map(([s]) => s);
    expect(
      dups.filter((s) => s < savedLines),
      "a line before the saved offset came twice",
    ).toEqual([]);
    // What comes twice is at most one batch: the next batch is sent only once the positions of
    // the last acknowledged one are written, so only the batch in flight at the kill (or the one
    // whose positions were being written) can come again — and never more than what the first
    // run delivered past the saved offset.
    expect(dups.length).toBeLessThanOrEqual(firstRunLines - savedLines);
    const linesPerBatch = Math.ceil((1024 * 1024) / Buffer.byteLength(`${line(0)}\n`));
    expect(dups.length).toBeLessThanOrEqual(linesPerBatch);
    console.log(
      `kill -9: ${firstRunLines} delivered before the kill, saved offset covered ${savedLines}, ${dups.length} duplicated`,
    );
    expect(seen.size).toBeGreaterThan(0);
    second.child.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);
  });

  it("Loki down (503) then back: memory flat while down, then everything once", async () => {
    const dirs = tempDirs("proc-down-");
    loki = await startFakeLoki({ store: "lines" });
    loki.setFault({ kind: "status", status: 503 });
    const env = {
      ...baseEnv(dirs, loki),
      MAX_BUFFER_BYTES: "2097152",
      RETRY_MAX_MS: "300",
      SUMMARY_INTERVAL_MS: "1000",
    };
    const s = spawnTracked(env);
    await s.waitForLog(started, "start");
    const p = join(dirs.logs, "app.log");
    const total = 200_000; // ~26 MiB while Loki refuses everything
    const samples: number[] = [];
    for (let i = 0; i < total; ) {
      let chunk = "";
      for (let k = 0; k < 10_000; k++, i++) chunk += `${line(i)}\n`;
      appendFileSync(p, chunk);
      await sleep(50);
      samples.push(memoryOf(s.pid));
    }
    for (let k = 0; k < 10; k++) {
      await sleep(100);
      samples.push(memoryOf(s.pid));
    }
    expect(loki.entryCount).toBe(0);
    const early = Math.max(...samples.slice(0, 5));
    const late = Math.max(...samples.slice(-10));
    // The files are the buffer: memory does not grow with what Loki has not taken.
    expect(late).toBeLessThan(early + 24 * 1024 * 1024);
    expect(late).toBeLessThan(160 * 1024 * 1024);
    loki.setFault(undefined);
    await loki.waitForEntries(total, 30_000).catch((err) => {
      throw new Error(`${err.message}; last logs: ${JSON.stringify(s.logs.slice(-5))}`);
    });
    await sleep(500);
    const a = arrivals(loki);
    expect(a.size).toBe(total);
    expect([...a.values()].every((n) => n === 1)).toBe(true);
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  it("SIGTERM right after a burst: everything delivered before exit, exit 0", async () => {
    const dirs = tempDirs("proc-term-");
    loki = await startFakeLoki({ store: "lines" });
    const s = spawnTracked({ ...baseEnv(dirs, loki), BATCH_WAIT_MS: "1000" });
    await s.waitForLog(started, "start");
    const total = 50_000;
    let chunk = "";
    for (let i = 0; i < total; i++) chunk += `${line(i)}\n`;
    appendFileSync(join(dirs.logs, "app.log"), chunk);
    s.child.kill("SIGTERM");
    const { code } = await s.exited;
    expect(code).toBe(0);
    expect(loki.entryCount).toBe(total);
    expect(arrivals(loki).size).toBe(total);
    expect(
      s.logs.some((l) => typeof l.msg === "string" && l.msg.startsWith("shutdown summary") && l.clean),
    ).toBe(true);
    const saved = JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0];
    expect(saved.offset).toBe(Buffer.byteLength(chunk));
  });

  it("SIGTERM with Loki down: past SHUTDOWN_TIMEOUT_MS it saves what was acknowledged, says what remains, exits 1", async () => {
    const dirs = tempDirs("proc-deadline-");
    loki = await startFakeLoki({ store: "lines" });
    // 4 s: the summary and the positions write must fit in the deadline with both cores busy.
    const s = spawnTracked({ ...baseEnv(dirs, loki), SHUTDOWN_TIMEOUT_MS: "4000" });
    await s.waitForLog(started, "start");
    const p = join(dirs.logs, "app.log");
    appendFileSync(p, "delivered 1\ndelivered 2\n");
    await loki.waitForEntries(2, 15_000);
    await waitFor(() => {
      try {
        return JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0].offset === 24;
      } catch {
        return false;
      }
    }, "the first offset saved");
    loki.setFault({ kind: "status", status: 503 });
    appendFileSync(p, "stuck 3\nstuck 4\n");
    await s.waitForLog((l) => l.msg === "push to Loki failed; retrying", "a failing push");
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    const { code } = await s.exited;
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const summary = s.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("shutdown summary"));
    expect(summary).toMatchObject({ clean: false, remainingBytes: 16 });
    expect(JSON.parse(readFileSync(dirs.positionsFile, "utf8")).files[0].offset).toBe(24);
    // The next start sends what remained.
    loki.setFault(undefined);
    const again = spawnTracked(baseEnv(dirs, loki));
    await loki.waitForEntries(4, 15_000);
    expect(loki.entries.map((e) => e.line)).toEqual(["delivered 1", "delivered 2", "stuck 3", "stuck 4"]);
    again.child.kill("SIGTERM");
    expect((await again.exited).code).toBe(0);
  });

  it("a 20 MiB line without newline: the process lives, memory stays bounded, later lines arrive", async () => {
    const dirs = tempDirs("proc-long-");
    loki = await startFakeLoki({ store: "lines" });
    const s = spawnTracked(baseEnv(dirs, loki));
    await s.waitForLog(started, "start");
    const p = join(dirs.logs, "app.log");
    appendFileSync(p, "before\n");
    await loki.waitForEntries(1, 15_000);
    const fd = openSync(p, "a");
    const mib = Buffer.alloc(1024 * 1024, 0x78);
    const rss: number[] = [];
    for (let i = 0; i < 20; i++) {
      writeSync(fd, mib);
      await sleep(50);
      rss.push(memoryOf(s.pid));
    }
    await sleep(1000);
    rss.push(memoryOf(s.pid));
    expect(s.child.exitCode).toBeNull();
    expect(loki.entryCount).toBe(1); // the line is not complete yet: nothing shipped
    writeSync(fd, "\nafter 1\nafter 2\n");
    closeSync(fd);
    await loki.waitForEntries(4, 15_000);
    const lines = loki.entries.map((e) => e.line);
    expect(lines[0]).toBe("before");
    expect(lines[1]?.length).toBe(262_144);
    expect(lines.slice(2)).toEqual(["after 1", "after 2"]);
    expect(Math.max(...rss)).toBeLessThan(128 * 1024 * 1024);
    expect(memoryOf(s.pid, "VmHWM")).toBeLessThan(128 * 1024 * 1024);
    const metrics = await fetchMetrics(s);
    expect(metrics).toMatch(/^log_shipper_lines_truncated_total 1$/m);
    // prom-client's default metrics, but not nodejs_gc_duration_seconds (its observer's garbage,
    // shared prom.ts): heap sizes per space are there to watch memory with.
    expect(metrics).toMatch(/^process_cpu_seconds_total /m);
    expect(metrics).toMatch(/^nodejs_heap_space_size_used_bytes\{space="old"\} /m);
    expect(metrics).not.toContain("nodejs_gc_duration_seconds");
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  it("bad configuration: exit 2 with one message naming the variable", async () => {
    const dirs = tempDirs("proc-bad-");
    const bad = spawnShipper({ ...baseEnv(dirs), BATCH_WAIT_MS: "soon", LOKI_ENCODING: "xml" });
    const r = await bad.exited;
    expect(r.code).toBe(2);
    expect(bad.stderr()).toMatch(/BATCH_WAIT_MS="soon"/);
    expect(bad.stderr()).toMatch(/LOKI_ENCODING="xml"/);
    expect(bad.stderr().trim().split("\n")).toHaveLength(1);
    // A directory that cannot be created: its parent is a regular file.
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dirs.root, "plain-file"), "");
    const unwritable = spawnShipper({
      ...baseEnv(dirs),
      POSITIONS_FILE: join(dirs.root, "plain-file", "state", "positions.json"),
    });
    expect((await unwritable.exited).code).toBe(2);
    expect(unwritable.stderr()).toMatch(/POSITIONS_FILE/);
  });

  it("dry run: says so at start and prints batches to stdout", async () => {
    const dirs = tempDirs("proc-dry-");
    const s = spawnTracked(baseEnv(dirs));
    await s.waitForLog(started, "start");
    expect(s.logs.some((l) => typeof l.msg === "string" && l.msg.includes("dry run"))).toBe(true);
    appendFileSync(join(dirs.logs, "app.log"), `{"level":40,"msg":"dry one"}\nplain two\n`);
    // One readable line per entry (`<time> <labels> <line>`), among the shipper's own JSON logs.
    const printed = () =>
      s
        .stdout()
        .split("\n")
        .map((l) => parseDryRunLine(l))
        .filter((e) => e !== null);
    await waitFor(() => printed().length >= 2, "two printed entries");
    const lines = printed().map((e) => e.line);
    expect(printed()[0]?.labels).toMatchObject({ job: "sample-app", filename: join(dirs.logs, "app.log") });
    expect(lines.sort()).toEqual([`{"level":40,"msg":"dry one"}`, "plain two"].sort());
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });
});

async function fetchMetrics(s: Shipper): Promise<string> {
  const listening = s.logs.find((l) => l.msg === "log shipper started") as { address?: string } | undefined;
  const res = await fetch(`${listening?.address}/metrics`);
  return res.text();
}
