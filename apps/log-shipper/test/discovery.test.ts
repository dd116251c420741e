// Discovery: globs and excludes, the directories watched, symlinks leaving the watched
// directories refused, and the rescan finding files that events did not report.
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Discovery, pathMatcher, rootsOf } from "../src/source/discovery.js";
import { silentLogger } from "./support/logger.js";
import { waitFor } from "./support/source-harness.js";

describe("pathMatcher", () => {
  const m = pathMatcher(["/shared/logs/*.log", "/shared/logs/*.log.*"], ["*.gz", "*.zip", "*.tmp"]);
  it.each([
    ["/shared/logs/app.log", true],
    ["/shared/logs/app.log.1", true],
    ["/shared/logs/app.log.2024-01-31", true],
    ["/shared/logs/app.log.1.gz", false],
    ["/shared/logs/app.log.zip", false],
    ["/shared/logs/app.log.tmp", false],
    ["/shared/logs/.app.log.123.tmp", false],
    ["/shared/logs/.hidden.log", false],
    ["/shared/logs/app.txt", false],
    ["/shared/logs/sub/app.log", false],
    ["/shared/other/app.log", false],
  ])("%s → %s", (path, expected) => {
    expect(m(path)).toBe(expected);
  });

  it("matches exclude patterns with a slash against the whole path", () => {
    const m2 = pathMatcher(["/l/**/*.log"], ["/l/private/**"]);
    expect(m2("/l/a/b.log")).toBe(true);
    expect(m2("/l/private/b.log")).toBe(false);
  });
});

describe("rootsOf", () => {
  it("watches each glob's base directory, as deep as the glob reaches", () => {
    expect(rootsOf(["/shared/logs/*.log", "/shared/logs/*.log.*"])).toEqual([
      { dir: "/shared/logs", depth: 0 },
    ]);
    expect(rootsOf(["/a/*/x.log", "/b/**/*.log", "/c/plain.log"])).toEqual([
      { dir: "/a", depth: 1 },
      { dir: "/b", depth: Number.POSITIVE_INFINITY },
      { dir: "/c", depth: 0 },
    ]);
  });
});

describe("Discovery", () => {
  let d: Discovery | undefined;
  afterEach(async () => {
    await d?.close();
    d = undefined;
  });

  function setup(rescanIntervalMs: number) {
    const root = mkdtempSync(join(tmpdir(), "disc-"));
    const logs = join(root, "logs");
    mkdirSync(logs);
    const scans: Set<string>[] = [];
    const changes: Set<string>[] = [];
    const events: string[] = [];
    d = new Discovery({
      include: [join(logs, "*.log"), join(logs, "*.log.*")],
      exclude: ["*.gz"],
      rescanIntervalMs,
      logger: silentLogger(),
      onPath: (p, ev) => events.push(`${ev} ${p}`),
      onScan: (paths, changed) => {
        scans.push(new Set(paths));
        changes.push(new Set(changed));
      },
    });
    return { root, logs, scans, changes, events, d };
  }

  it("reports matching files on the initial scan and through events", async () => {
    const { logs, scans, events, d } = setup(60_000);
    writeFileSync(join(logs, "app.log"), "a\n");
    writeFileSync(join(logs, "app.log.1.gz"), "zipped\n");
    await d.start();
    expect([...(scans[0] ?? [])]).toEqual([join(logs, "app.log")]);
    writeFileSync(join(logs, "app.log.1"), "b\n");
    await waitFor(() => events.includes(`add ${join(logs, "app.log.1")}`), "an add event");
    expect(events.some((e) => e.endsWith(".gz"))).toBe(false);
  });

  it("finds on the periodic rescan what events did not report", async () => {
    const { logs, scans, d } = setup(100);
    await d.start();
    // Created before the watcher was told nothing: the scan result is what counts here.
    writeFileSync(join(logs, "late.log"), "x\n");
    await waitFor(() => scans.some((s) => s.has(join(logs, "late.log"))), "a rescan listing late.log");
  });

  it("tells which paths are in a directory whose names changed since the last rescan", async () => {
    const { logs, scans, changes, d } = setup(100);
    writeFileSync(join(logs, "a.log"), "a\n");
    writeFileSync(join(logs, "b.log"), "b\n");
    await d.start();
    expect(changes[0]).toEqual(new Set([join(logs, "a.log"), join(logs, "b.log")]));
    // Once the directory has been quiet for a while, a rescan lists both and calls neither changed.
    await waitFor(
      () => scans.some((s, i) => s.size === 2 && changes[i]?.size === 0),
      "a rescan with nothing changed",
      30_000,
    );
    // A rename over a.log: the same names, but another inode at a.log.
    const seen = scans.length;
    renameSync(join(logs, "b.log"), join(logs, "a.log"));
    await waitFor(
      () => changes.slice(seen).some((c) => c.has(join(logs, "a.log"))),
      "a rescan calling a.log changed",
    );
    expect(scans[scans.length - 1]).toEqual(new Set([join(logs, "a.log")]));
  });

  /** Append to `file` a write at a time (one fs.watch event each) until `logs` is busy. */
  async function makeBusy(d: Discovery, logs: string, file: string): Promise<number> {
    const until = Date.now() + 20_000;
    let writes = 0;
    while (!d.busyDirs.includes(logs)) {
      if (Date.now() > until) throw new Error(`${logs} not busy after ${writes} writes`);
      appendFileSync(file, `line ${writes++}\n`);
      await new Promise((r) => setTimeout(r, 1));
    }
    return writes;
  }

  it("looks at a directory written to often instead of waking on every write, and reports what changed as fs.watch does", async () => {
    const { logs, events, d } = setup(600_000);
    const app = join(logs, "app.log");
    const quiet = join(logs, "quiet.log");
    writeFileSync(app, "first\n");
    writeFileSync(quiet, "quiet\n");
    await d.start();
    await makeBusy(d, logs, app);
    expect(d.busyDirs).toEqual([logs]);

    // Growth: a "change" for the file.
    events.length = 0;
    appendFileSync(app, "more\n");
    await waitFor(() => events.includes(`change ${app}`), "a change event while busy");
    // A file quiet until now (not stat'ed by every look) is found growing too. The busy file is
    // kept busy meanwhile: a quiet second would end the looking.
    const keepBusy = setInterval(() => appendFileSync(app, "busy\n"), 100);
    try {
      await new Promise((r) => setTimeout(r, 1200));
      events.length = 0;
      appendFileSync(quiet, "grown\n");
      let busyWhenSeen: string[] = [];
      await waitFor(() => {
        busyWhenSeen = d.busyDirs;
        return events.includes(`change ${quiet}`);
      }, "a change event for the quiet file");
      expect(busyWhenSeen).toEqual([logs]);
    } finally {
      clearInterval(keepBusy);
    }
    // Rotation by rename: both names hold other files now.
    events.length = 0;
    renameSync(app, join(logs, "app.log.1"));
    writeFileSync(app, "new file\n");
    await waitFor(
      () => events.includes(`add ${app}`) && events.includes(`add ${join(logs, "app.log.1")}`),
      "add events for both names of the rotation",
    );
    // A new file (the rescan is ten minutes away: only a look can find it), and a deletion.
    events.length = 0;
    writeFileSync(join(logs, "other.log"), "x\n");
    unlinkSync(join(logs, "app.log.1"));
    await waitFor(
      () =>
        events.includes(`add ${join(logs, "other.log")}`) &&
        events.includes(`add ${join(logs, "app.log.1")}`),
      "add events for a new and a deleted file",
    );
    // Not matching: never reported.
    writeFileSync(join(logs, "skip.gz"), "z\n");

    // Quiet: watched again, and a single write is reported by fs.watch.
    await waitFor(() => d.busyDirs.length === 0, "the directory watched again after a quiet second");
    events.length = 0;
    appendFileSync(app, "after\n");
    await waitFor(() => events.includes(`change ${app}`), "a change event from fs.watch again");
    expect(events.some((e) => e.endsWith(".gz"))).toBe(false);
  });

  it("reports every file of a directory as it goes busy: events still queued for the watcher it closes are lost", async () => {
    const { logs, events, d } = setup(600_000);
    const a = join(logs, "a.log");
    const b = join(logs, "b.log");
    const c = join(logs, "c.log");
    for (const f of [a, b, c]) writeFileSync(f, "first\n");
    await d.start();
    // One batch of events (nothing here awaits: the watcher reads them all at once): writes to
    // two files alternating (no two events alike, so the kernel merges none), enough to make the
    // directory busy in the middle of the batch, then a last write to a third file, whose writer
    // then pauses. Its event comes after the one that closes the watcher.
    for (let i = 0; i < 60; i++) {
      appendFileSync(a, `a ${i}\n`);
      appendFileSync(b, `b ${i}\n`);
    }
    appendFileSync(c, "the last line before a pause\n");
    await waitFor(() => d.busyDirs.includes(logs), "the directory to be busy");
    await waitFor(
      () => events.includes(`add ${c}`) || events.includes(`change ${c}`),
      "an event for the file written last",
    );
  });

  it("reports what changed in a busy directory since its last look when it is closed (the shutdown reads it)", async () => {
    const { logs, events, d } = setup(600_000);
    const app = join(logs, "app.log");
    writeFileSync(app, "first\n");
    await d.start();
    await makeBusy(d, logs, app);
    events.length = 0;
    // A rename rotation between two looks: nothing here awaits before close() runs, so no look
    // (and no fs.watch: closed while busy) can have seen it.
    renameSync(app, `${app}.1`);
    writeFileSync(app, "new file\n");
    writeFileSync(join(logs, "late.log"), "late\n");
    await d.close();
    expect(new Set(events)).toEqual(new Set([`add ${app}`, `add ${app}.1`, `add ${join(logs, "late.log")}`]));
  });

  it("a busy directory's look sees a symlink made or removed, not its target written (as fs.watch)", async () => {
    const { root, logs, events, d } = setup(600_000);
    const app = join(logs, "app.log");
    const outside = join(root, "outside.log");
    writeFileSync(app, "first\n");
    writeFileSync(outside, "o\n");
    await d.start();
    await makeBusy(d, logs, app);
    const keepBusy = setInterval(() => appendFileSync(app, "busy\n"), 20);
    try {
      events.length = 0;
      symlinkSync(outside, join(logs, "link.log"));
      await waitFor(() => events.includes(`add ${join(logs, "link.log")}`), "the new symlink reported");
      events.length = 0;
      for (let i = 0; i < 10; i++) {
        appendFileSync(outside, `o ${i}\n`);
        await new Promise((r) => setTimeout(r, 30));
      }
      await waitFor(() => events.filter((e) => e === `change ${app}`).length >= 3, "looks going on");
      expect(d.busyDirs).toEqual([logs]);
      expect(events.filter((e) => e.includes("link.log"))).toEqual([]);
      unlinkSync(join(logs, "link.log"));
      await waitFor(() => events.includes(`add ${join(logs, "link.log")}`), "the removed symlink reported");
    } finally {
      clearInterval(keepBusy);
    }
  });

  it("keeps watching a busy directory that holds too many entries to look at often", async () => {
    const { logs, events, d } = setup(600_000);
    for (let i = 0; i < 300; i++) writeFileSync(join(logs, `other-${i}.txt`), "");
    const app = join(logs, "app.log");
    writeFileSync(app, "first\n");
    await d.start();
    for (let i = 0; i < 200; i++) {
      appendFileSync(app, `line ${i}\n`);
      await new Promise((r) => setTimeout(r, 1));
    }
    await waitFor(() => events.filter((e) => e === `change ${app}`).length >= 50, "change events");
    expect(d.busyDirs).toEqual([]);
  });

  it("never opens a symlink whose target is outside the watched directories", async () => {
    const { root, logs, d } = setup(60_000);
    const secret = join(root, "secret.txt");
    writeFileSync(secret, "password\n");
    writeFileSync(join(logs, "real.log"), "fine\n");
    symlinkSync(secret, join(logs, "evil.log"));
    symlinkSync(join(logs, "real.log"), join(logs, "alias.log"));
    symlinkSync("/etc/hostname", join(logs, "etc.log"));
    await d.start();
    expect(await d.openAllowed(join(logs, "evil.log"))).toBeNull();
    expect(await d.openAllowed(join(logs, "etc.log"))).toBeNull();
    const ok = await d.openAllowed(join(logs, "alias.log"));
    expect(ok?.realPath).toBe(join(logs, "real.log"));
    const plain = await d.openAllowed(join(logs, "real.log"));
    expect(plain).not.toBeNull();
    const { closeSync } = await import("node:fs");
    if (ok) closeSync(ok.fd);
    if (plain) closeSync(plain.fd);
  });

  it("refuses a file reached through a directory swapped for an outside symlink while opening", async () => {
    const root = mkdtempSync(join(tmpdir(), "disc-"));
    const logs = join(root, "logs");
    const secrets = join(root, "secrets");
    mkdirSync(logs);
    mkdirSync(secrets);
    writeFileSync(join(logs, "app.log"), "fine\n");
    writeFileSync(join(secrets, "app.log"), "password\n");
    // A raw descriptor, not a FileHandle: Discovery closes the fd itself, and a FileHandle would
    // close it again when garbage-collected (EBADF, or worse, someone else's descriptor).
    const { openSync } = await import("node:fs");
    d = new Discovery({
      include: [join(logs, "*.log")],
      exclude: [],
      rescanIntervalMs: 60_000,
      logger: silentLogger(),
      onPath: () => {},
      onScan: () => {},
      // The race: after the path was resolved and checked, the directory becomes a symlink.
      openFile: async (path, flags) => {
        renameSync(logs, `${logs}-old`);
        symlinkSync(secrets, logs);
        return openSync(path, flags);
      },
    });
    await d.start();
    expect(await d.openAllowed(join(logs, "app.log"))).toBeNull();
  });

  it("remembers a bounded number of refused paths", async () => {
    const { root, logs, d } = setup(60_000);
    const secret = join(root, "secret.txt");
    writeFileSync(secret, "password\n");
    await d.start();
    for (let i = 0; i < 1100; i++) {
      symlinkSync(secret, join(logs, `evil-${i}.log`));
      expect(await d.openAllowed(join(logs, `evil-${i}.log`))).toBeNull();
    }
    expect((d as unknown as { refusedOnce: Set<string> }).refusedOnce.size).toBeLessThanOrEqual(1000);
  });

  it("does not open directories or FIFOs", async () => {
    const { logs, d } = setup(60_000);
    mkdirSync(join(logs, "dir.log"));
    const { execFileSync } = await import("node:child_process");
    execFileSync("mkfifo", [join(logs, "fifo.log")]);
    await d.start();
    expect(await d.openAllowed(join(logs, "dir.log"))).toBeNull();
    expect(await d.openAllowed(join(logs, "fifo.log"))).toBeNull();
  });
});
