// Process tests on the BUILT shipper for odd file systems: a file name that is not valid UTF-8,
// and many files at once.
import { appendFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Dirs, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { assertBuilt, shipperEnv, shipperTracker } from "./support/process.js";
import { waitFor } from "./support/source-harness.js";

function baseEnv(dirs: Dirs, loki?: FakeLoki): Record<string, string> {
  return shipperEnv(dirs, loki?.url);
}

describe("log shipper process (dist/main.js): odd file names, many files", () => {
  let loki: FakeLoki | undefined;
  const shippers = shipperTracker();
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    shippers.killAll();
    await loki?.close();
    loki = undefined;
  });

  it("a file whose name is not valid UTF-8 is shipped; its filename label shows the byte as \\xNN", async () => {
    const dirs = tempDirs("proc-latin1-");
    loki = await startFakeLoki({ store: "full" });
    // `lat\xe9.log`, as an app writing Latin-1 names would create it: bytes, not a JS string.
    const name = Buffer.concat([Buffer.from(`${dirs.logs}/lat`), Buffer.of(0xe9), Buffer.from(".log")]);
    writeFileSync(name, "latin one\nlatin two\n");
    writeFileSync(join(dirs.logs, "plain.log"), "plain one\n");
    const s = shippers.spawn(baseEnv(dirs, loki));
    await waitFor(() => (loki?.entries.length ?? 0) >= 3, "3 lines", 30_000);
    // Lines written later to the same file arrive too (it is tailed, not only read once). Appended:
    // rewriting the file (open with O_TRUNC, then write) lets a read in between see it truncated,
    // and a truncated file is read again from its start — its first lines twice, as documented.
    appendFileSync(name, "latin three\n");
    await waitFor(() => (loki?.entries.length ?? 0) >= 4, "the 4th line", 30_000);
    const latin = loki.entries.filter((e) => e.line.startsWith("latin"));
    expect(latin.map((e) => e.line)).toEqual(["latin one", "latin two", "latin three"]);
    expect(new Set(latin.map((e) => e.labels.filename))).toEqual(new Set([`${dirs.logs}/lat\\xe9.log`]));
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });

  // Minutes, not seconds, when both cores are busy: only conditions are waited for, nothing is timed.
  it("2,000 files appearing at once are all shipped with at most MAX_OPEN_FILES of them open", {
    timeout: 300_000,
  }, async () => {
    const dirs = tempDirs("proc-many-");
    loki = await startFakeLoki({ store: "lines" });
    const s = shippers.spawn({ ...baseEnv(dirs, loki), MAX_OPEN_FILES: "50" });
    await s.waitForLog((l) => l.msg === "log shipper started", "start");
    const n = 2000;
    for (let i = 0; i < n; i++) writeFileSync(join(dirs.logs, `f${i}.log`), `line of file ${i}\n`);
    /** Descriptors the shipper holds on files in the logs directory. */
    const openLogs = () => {
      let k = 0;
      for (const fd of readdirSync(`/proc/${s.pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${s.pid}/fd/${fd}`).startsWith(dirs.logs)) k++;
        } catch {
          /* closed meanwhile */
        }
      }
      return k;
    };
    let maxOpen = 0;
    const distinct = new Set<string>();
    await waitFor(
      () => {
        maxOpen = Math.max(maxOpen, openLogs());
        for (const e of loki?.entries ?? []) distinct.add(e.line);
        return distinct.size === n;
      },
      `all ${n} files' lines`,
      240_000,
    );
    // The bound is on files being read; one more may be open for a moment while a path is identified.
    expect(maxOpen).toBeLessThanOrEqual(51);
    expect(loki.entries.length).toBe(n); // none twice
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });
});
