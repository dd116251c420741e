// Process tests on the BUILT shipper (dist/main.js) for bad input and odd state (issues 14 and 15):
// a line whose own time Loki cannot take, a positions file that cannot be saved, the shutdown
// deadline's exit code, a positions file or secret file that is not a regular file.
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Dirs, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { assertBuilt, type Shipper, spawnShipper } from "./support/process.js";

function baseEnv(dirs: Dirs, loki?: FakeLoki): Record<string, string> {
  return {
    LOG_PATHS: `${dirs.logs}/*.log`,
    POSITIONS_FILE: dirs.positionsFile,
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: "0",
    BATCH_WAIT_MS: "1000",
    RETRY_MIN_MS: "50",
    RETRY_MAX_MS: "500",
    ...(loki ? { LOKI_ENDPOINT: loki.url } : {}),
  };
}

const started = (l: Record<string, unknown>) => l.msg === "log shipper started";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mkfifo(path: string): string {
  execFileSync("mkfifo", [path]);
  return path;
}

/** How the process ended, or null if it still runs after `ms` (then it is killed). */
async function endWithin(s: Shipper, ms: number) {
  const r = await Promise.race([s.exited, sleep(ms).then(() => null)]);
  if (r === null) s.child.kill("SIGKILL");
  return r;
}

/** A tiny tmpfs can be mounted here (root, and mount allowed): the honest way to get ENOSPC. */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = join("/tmp", `ls-tmpfs-probe-${process.pid}`);
  try {
    mkdirSync(probe, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const TMPFS = canMountTmpfs();
/**
 * How this machine can make positions writes fail for real: a full tmpfs (ENOSPC) where one can
 * be mounted, else — not root — a directory made read-only (EACCES; root would write anyway).
 */
const SAVE_FAILURE: "ENOSPC" | "EACCES" | undefined = TMPFS
  ? "ENOSPC"
  : process.getuid?.() !== 0
    ? "EACCES"
    : undefined;
if (SAVE_FAILURE === undefined)
  console.warn("process-bad-input: root without mount: no honest way to fail a write; that test is skipped");

async function fetchFrom(s: Shipper, path: string): Promise<{ status: number; text: string }> {
  const listening = s.logs.find(started) as { address?: string } | undefined;
  const res = await fetch(`${listening?.address}${path}`);
  return { status: res.status, text: await res.text() };
}

describe("log shipper process: bad input (dist/main.js)", () => {
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

  for (const [encoding, time] of [
    ["json", "2300-01-01T00:00:00Z"],
    ["protobuf", "9999-12-31T23:30:00-01:00"],
  ] as const) {
    it(`LOKI_ENCODING=${encoding}, one line with "time":"${time}": every line of both files arrives, the bad one at its read time`, async () => {
      const dirs = tempDirs("proc-badtime-");
      loki = await startFakeLoki({ dedup: false });
      const s = spawnTracked({ ...baseEnv(dirs, loki), LOKI_ENCODING: encoding });
      await s.waitForLog(started, "start");
      const now = Date.now();
      const good = (f: string) =>
        Array.from({ length: 50 }, (_, i) => `{"level":30,"time":${now + i},"msg":"${f} ${i}"}\n`).join("");
      const bad = `{"level":30,"time":"${time}","msg":"bad time"}`;
      // Written together: one batch (BATCH_WAIT_MS=1000).
      appendFileSync(join(dirs.logs, "a.log"), `${good("a")}${bad}\n`);
      appendFileSync(join(dirs.logs, "b.log"), good("b"));
      await loki.waitForEntries(101, 20_000);
      const sent = loki.entries.find((e) => e.line === bad);
      expect(sent).toBeDefined();
      const sentMs = Number((sent?.tsNs ?? 0n) / 1_000_000n);
      expect(sentMs).toBeGreaterThanOrEqual(now - 1000);
      expect(sentMs).toBeLessThanOrEqual(Date.now());
      const metrics = (await fetchFrom(s, "/metrics")).text;
      expect(metrics).toMatch(/^log_shipper_timestamps_replaced_total{destination="loki"} 1$/m);
      expect(metrics).not.toMatch(/^log_shipper_dropped_lines_total\{/m);
      s.child.kill("SIGTERM");
      expect((await s.exited).code).toBe(0);
      expect(loki.entries).toHaveLength(101);
    });
  }

  it("a line cut at MAX_LINE_BYTES inside a character, among valid lines of one chunk, arrives repaired (valid UTF-8); invalid bytes too", async () => {
    // The reader checks a chunk's lines for UTF-8 at once; a line cut short is not covered by that
    // check (its cut may split a character) and must be checked on its own.
    const dirs = tempDirs("proc-utf8cut-");
    loki = await startFakeLoki();
    const s = spawnTracked({ ...baseEnv(dirs, loki), MAX_LINE_BYTES: "1001" });
    await s.waitForLog(started, "start");
    const long = "é".repeat(1000); // 2000 bytes: the cut at 1001 splits the 501st é
    const bad = Buffer.from([0x6f, 0x6b, 0x20, 0xff, 0x0a]); // "ok \xff"
    appendFileSync(join(dirs.logs, "a.log"), `before é\n${long}\nafter é\n`);
    appendFileSync(join(dirs.logs, "b.log"), bad); // a file of its own: its chunk is not valid as a whole
    await loki.waitForEntries(4, 20_000);
    const lines = (f: string) =>
      loki?.entries.filter((e) => e.labels.filename?.endsWith(f)).map((e) => e.line);
    expect(lines("a.log")).toEqual(["before é", `${"é".repeat(500)}\ufffd`, "after é"]);
    expect(lines("b.log")).toEqual(["ok \ufffd"]);
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  it.skipIf(SAVE_FAILURE === undefined)(
    `positions on a full filesystem (here ${SAVE_FAILURE}): failing saves shown while running; at SIGTERM the summary says positions were not saved, exit 1`,
    async () => {
      const dirs = tempDirs("proc-enospc-");
      const fsDir = join(dirs.root, "full-fs");
      mkdirSync(fsDir);
      if (SAVE_FAILURE === "ENOSPC") execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", fsDir]);
      let s: Shipper | undefined;
      try {
        loki = await startFakeLoki();
        const positionsFile = join(fsDir, "positions.json");
        s = spawnTracked({ ...baseEnv(dirs, loki), POSITIONS_FILE: positionsFile, BATCH_WAIT_MS: "100" });
        await s.waitForLog(started, "start");
        const log = join(dirs.logs, "a.log");
        appendFileSync(log, "one\n");
        await loki.waitForEntries(1, 15_000);
        const savedOffset = () => {
          try {
            return JSON.parse(readFileSync(positionsFile, "utf8")).files[0]?.offset as number;
          } catch {
            return -1;
          }
        };
        const until = Date.now() + 15_000;
        while (savedOffset() !== 4 && Date.now() < until) await sleep(20);
        expect(savedOffset()).toBe(4);
        if (SAVE_FAILURE === "ENOSPC") {
          // Fill the filesystem: the write stops at ENOSPC.
          expect(() => writeFileSync(join(fsDir, "filler"), Buffer.alloc(1024 * 1024))).toThrow(/ENOSPC/);
        } else {
          chmodSync(fsDir, 0o555);
        }
        appendFileSync(log, "two\n");
        await loki.waitForEntries(2, 15_000);
        await s.waitForLog(
          (l) =>
            l.msg === "cannot save positions; will retry" &&
            (l.err as { code?: string })?.code === SAVE_FAILURE,
          "a failed save",
        );
        const metrics = (await fetchFrom(s, "/metrics")).text;
        expect(metrics).toMatch(/^log_shipper_positions_saves_total\{result="error"\} [1-9]/m);
        expect(metrics).toMatch(/^log_shipper_positions_save_errors_total [1-9]/m);
        expect(metrics).toMatch(/^log_shipper_positions_save_failing 1$/m);
        s.child.kill("SIGTERM");
        const { code } = await s.exited;
        expect(code).toBe(1);
        const summary = s.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("shutdown summary"));
        expect(summary).toMatchObject({ clean: false, positionsSaved: false, positionsError: SAVE_FAILURE });
        expect(summary?.msg).toMatch(/positions were NOT saved/);
        expect(s.logs.at(-1)).toMatchObject({ msg: "shutdown complete", code: 1 });
        expect(savedOffset()).toBe(4); // what the next start would resume from
      } finally {
        if (s && s.child.exitCode === null && s.child.signalCode === null) {
          s.child.kill("SIGKILL");
          await s.exited;
        }
        if (SAVE_FAILURE === "ENOSPC") execFileSync("umount", [fsDir]);
        else chmodSync(fsDir, 0o755);
      }
    },
  );

  it("past SHUTDOWN_TIMEOUT_MS the last line says the real exit code (1)", async () => {
    const dirs = tempDirs("proc-deadline-code-");
    loki = await startFakeLoki();
    loki.setFault({ kind: "status", status: 503 });
    const s = spawnTracked({ ...baseEnv(dirs, loki), BATCH_WAIT_MS: "100", SHUTDOWN_TIMEOUT_MS: "1500" });
    await s.waitForLog(started, "start");
    appendFileSync(join(dirs.logs, "a.log"), "stuck\n");
    await s.waitForLog((l) => l.msg === "push to Loki failed; retrying", "a failing push");
    s.child.kill("SIGTERM");
    const { code } = await s.exited;
    expect(code).toBe(1);
    expect(s.logs.at(-1)).toMatchObject({ msg: "shutdown complete", code: 1 });
  });

  describe("a file a variable names that is a FIFO", () => {
    it("POSITIONS_FILE: refused at start, exit 2 (it blocked the start for good)", async () => {
      const dirs = tempDirs("proc-fifo-pos-");
      mkfifo(dirs.positionsFile);
      const s = spawnTracked(baseEnv(dirs));
      const r = await endWithin(s, 15_000);
      expect(r, "still starting after 15 s").not.toBeNull();
      expect(r?.code).toBe(2);
      expect(s.stderr()).toMatch(/POSITIONS_FILE=".*positions\.json" is a FIFO/);
    });

    for (const variable of ["LOKI_PASSWORD_FILE", "LOKI_BEARER_TOKEN_FILE", "LOKI_CA_FILE"]) {
      it(`${variable}: refused at start, exit 2`, async () => {
        const dirs = tempDirs("proc-fifo-secret-");
        const fifo = mkfifo(join(dirs.root, "secret"));
        const s = spawnTracked({
          ...baseEnv(dirs),
          LOKI_ENDPOINT: "http://127.0.0.1:9/loki/api/v1/push",
          ...(variable === "LOKI_PASSWORD_FILE" ? { LOKI_USERNAME: "u" } : {}),
          [variable]: fifo,
        });
        const r = await endWithin(s, 15_000);
        expect(r, "still starting after 15 s").not.toBeNull();
        expect(r?.code).toBe(2);
        expect(s.stderr()).toContain(variable);
        expect(s.stderr()).toMatch(/not a regular file: a FIFO/);
      });
    }

    it("LOKI_BEARER_TOKEN_FILE swapped for a FIFO while running: the re-read does not block; /healthz answers, SIGTERM exits", async () => {
      const dirs = tempDirs("proc-fifo-swap-");
      loki = await startFakeLoki({ requireAuth: "Bearer right" });
      const token = join(dirs.root, "token");
      writeFileSync(token, "wrong\n");
      const s = spawnTracked({
        ...baseEnv(dirs, loki),
        BATCH_WAIT_MS: "100",
        LOKI_BEARER_TOKEN_FILE: token,
        SHUTDOWN_TIMEOUT_MS: "1500",
      });
      await s.waitForLog(started, "start");
      // Kubernetes swaps such files by rename; here the new one is a FIFO nobody writes to.
      const fifo = mkfifo(join(dirs.root, "token.new"));
      renameSync(fifo, token);
      appendFileSync(join(dirs.logs, "a.log"), "line\n");
      // 401 → the client re-reads the file at once.
      await s.waitForLog(
        (l) => l.status === 401 && typeof l.hint === "string",
        "a 401 with its hint",
        15_000,
      );
      // The request after the 401 was built with a fresh read of the file (the FIFO).
      const until = Date.now() + 15_000;
      while (loki.requests.length < 2 && Date.now() < until) await sleep(20);
      expect(loki.requests.length).toBeGreaterThanOrEqual(2);
      const health = await Promise.race([fetchFrom(s, "/healthz"), sleep(5000).then(() => null)]);
      expect(health?.status, "/healthz did not answer").toBe(200);
      s.child.kill("SIGTERM");
      const r = await endWithin(s, 15_000);
      expect(r, "SIGTERM did not end it").not.toBeNull();
      expect(r?.code).toBe(1); // Loki never took the line: not clean
    });
  });
});
