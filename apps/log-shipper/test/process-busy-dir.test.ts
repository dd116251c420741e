// Process tests on the BUILT shipper (dist/main.js) for a busy directory: one whose files are
// written to so often that the shipper looks at it every 50 ms instead of waking on every fs.watch
// event (discovery.ts, goBusy). Rotations, copytruncate, new and deleted files while
// it is looked at, and a SIGTERM while it is, with the default poll and rescan intervals (the
// model test polls every 50 ms and never writes often enough to make its directory busy).
import { appendFileSync, copyFileSync, renameSync, truncateSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Dirs, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { assertBuilt, type Shipper, shipperEnv, shipperTracker } from "./support/process.js";
import { waitFor } from "./support/source-harness.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = (l: Record<string, unknown>) => l.msg === "log shipper started";
const BUSY_MSG = "directory written to often: looking at it periodically instead of waking on every write";
const QUIET_MSG = "directory quiet again: watching it";

/** Lines written by the test, each unique, and a writer appending one line at a time. */
class Writer {
  readonly written: string[] = [];
  private seq = 0;
  private running: Promise<void> | null = null;
  private stopNow = false;

  constructor(private readonly file: string) {}

  write(file: string = this.file, tag = "app"): void {
    const l = `${tag} line ${this.seq++} ${"x".repeat(40)}`;
    appendFileSync(file, `${l}\n`);
    this.written.push(l);
  }

  /** One line every millisecond or so (one fs.watch event each) until stop(). */
  start(): void {
    this.stopNow = false;
    this.running = (async () => {
      while (!this.stopNow) {
        this.write();
        await sleep(1);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopNow = true;
    await this.running;
    this.running = null;
  }
}

function counts(loki: FakeLoki): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of loki.entries) m.set(e.line, (m.get(e.line) ?? 0) + 1);
  return m;
}

/** Every line written so far arrived (the writer may go on meanwhile); none twice. */
async function allOnce(loki: FakeLoki, writtenNow: readonly string[], what: string): Promise<void> {
  const written = [...writtenNow];
  await waitFor(
    () => {
      const c = counts(loki);
      return written.every((l) => c.has(l));
    },
    what,
    90_000,
  );
  const c = counts(loki);
  const twice = written.filter((l) => (c.get(l) ?? 0) > 1);
  expect(twice.slice(0, 5), `${twice.length} lines arrived more than once`).toEqual([]);
}

describe("log shipper process (dist/main.js): a busy directory", () => {
  let loki: FakeLoki | undefined;
  const shippers = shipperTracker();
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    shippers.killAll();
    await loki?.close();
    loki = undefined;
  });

  /**
   * The rescan and the poll of open files are an hour and a minute away: whatever the shipper finds
   * while the test runs, the looks at the busy directory (or fs.watch) reported.
   */
  async function startBusy(prefix: string): Promise<{ dirs: Dirs; s: Shipper; w: Writer; app: string }> {
    const dirs = tempDirs(prefix);
    loki = await startFakeLoki({ store: "lines", dedup: false });
    const s = shippers.spawn({
      ...shipperEnv(dirs, loki.url),
      LOG_LEVEL: "debug",
      RESCAN_INTERVAL_MS: "3600000",
      POLL_INTERVAL_MS: "60000",
    });
    await s.waitForLog(started, "start");
    const app = join(dirs.logs, "app.log");
    const w = new Writer(app);
    w.start();
    await s.waitForLog((l) => l.msg === BUSY_MSG, "the directory to be looked at instead of watched", 60_000);
    return { dirs, s, w, app };
  }

  it("rotations, copytruncate, new and deleted files while busy: every line once", {
    timeout: 240_000,
  }, async () => {
    const { dirs, s, w, app } = await startBusy("proc-busy-");
    const l = loki as FakeLoki;
    const other = join(dirs.logs, "other.log");
    const quiet = () => s.logs.filter((x) => x.msg === QUIET_MSG).length;
    const quietBefore = quiet();

    // Rename rotation; the app writes one last line to the renamed file, then to a new app.log.
    await sleep(100);
    renameSync(app, `${app}.1`);
    w.write(`${app}.1`);
    await sleep(200);
    // A new file.
    for (let i = 0; i < 20; i++) {
      w.write(other, "other");
      await sleep(5);
    }
    // copytruncate of the live file (the copy is recognised as read up to where app.log stood).
    await sleep(200);
    copyFileSync(app, `${app}.2`);
    truncateSync(app, 0);
    await sleep(200);
    // A second rename rotation, then the oldest rotated file deleted once all of it arrived.
    renameSync(app, `${app}.3`);
    await sleep(300);
    await allOnce(l, w.written, "every line so far (before a delete)");
    unlinkSync(`${app}.1`);
    for (let i = 0; i < 20; i++) {
      w.write(other, "other");
      await sleep(5);
    }
    await sleep(300);

    // Quiet: watched again; lines written then arrive too.
    await w.stop();
    await s.waitForLog(() => quiet() > quietBefore, "the directory watched again", 60_000);
    w.write();
    w.write(other, "other");
    await allOnce(l, w.written, "every line");
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
    const summary = s.logs.find((x) => typeof x.msg === "string" && x.msg.startsWith("shutdown summary"));
    expect(summary?.clean).toBe(true);
    await allOnce(l, w.written, "every line after the shutdown");
  });

  it("SIGTERM while busy, just after a rotation and a new file: everything written before it is shipped", {
    timeout: 240_000,
  }, async () => {
    const { dirs, s, w, app } = await startBusy("proc-busy-term-");
    await sleep(300);
    // Whatever the last look saw, these happen after it: found by the shutdown's own look.
    renameSync(app, `${app}.1`);
    w.write(`${app}.1`);
    await w.stop();
    w.write();
    w.write(join(dirs.logs, "late.log"), "late");
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
    const summary = s.logs.find((x) => typeof x.msg === "string" && x.msg.startsWith("shutdown summary"));
    expect(summary?.clean).toBe(true);
    await allOnce(loki as FakeLoki, w.written, "every line written before SIGTERM");
  });
});
