// Process tests on the BUILT shipper for odd file systems: a file name that is not valid UTF-8,
// and many files at once.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Dirs, tempDirs } from "./support/app-harness.js";
import { type FakeLoki, startFakeLoki } from "./support/fake-loki.js";
import { assertBuilt, type Shipper, spawnShipper } from "./support/process.js";
import { waitFor } from "./support/source-harness.js";

function baseEnv(dirs: Dirs, loki: FakeLoki): Record<string, string> {
  return {
    LOG_PATHS: `${dirs.logs}/*.log,${dirs.logs}/*.log.*`,
    POSITIONS_FILE: dirs.positionsFile,
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: "0",
    BATCH_WAIT_MS: "100",
    RETRY_MIN_MS: "50",
    RETRY_MAX_MS: "500",
    LOKI_ENDPOINT: loki.url,
  };
}

describe("log shipper process (dist/main.js): odd file names, many files", () => {
  let loki: FakeLoki | undefined;
  const shippers: Shipper[] = [];
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    for (const s of shippers.splice(0))
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
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
    const s = spawnShipper(baseEnv(dirs, loki));
    shippers.push(s);
    await waitFor(() => (loki?.entries.length ?? 0) >= 3, "3 lines", 30_000);
    // Lines written later to the same file arrive too (it is tailed, not only read once).
    writeFileSync(name, "latin one\nlatin two\nlatin three\n");
    await waitFor(() => (loki?.entries.length ?? 0) >= 4, "the 4th line", 30_000);
    const latin = loki.entries.filter((e) => e.line.startsWith("latin"));
    expect(latin.map((e) => e.line)).toEqual(["latin one", "latin two", "latin three"]);
    expect(new Set(latin.map((e) => e.labels.filename))).toEqual(new Set([`${dirs.logs}/lat\\xe9.log`]));
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);
  });
});
