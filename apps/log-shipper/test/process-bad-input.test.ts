// Process tests on the BUILT shipper (dist/main.js) for bad input and odd state (issues 14 and 15):
// a line whose own time Loki cannot take, a positions file that cannot be saved, the shutdown
// deadline's exit code, a positions file or secret file that is not a regular file.
import { appendFileSync } from "node:fs";
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
      expect(metrics).toMatch(/^log_shipper_timestamps_replaced_total 1$/m);
      expect(metrics).not.toMatch(/^log_shipper_dropped_lines_total\{/m);
      s.child.kill("SIGTERM");
      expect((await s.exited).code).toBe(0);
      expect(loki.entries).toHaveLength(101);
    });
  }
});
