// The local pod as users run it (`pnpm pod` = build + node scripts/pod.mjs): the three built
// programs on a .pod-like folder, the shipper in dry run printing the app's lines; SIGTERM stops
// them in pod order (app, metrics-exporter, log-shipper) and the script exits 0 with every line
// of the app's log files shipped.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDryRunLine } from "../apps/log-shipper/src/sinks/dry-run/dry-run.js";
import { APPS } from "./support/config-names.js";
import { freePorts } from "./support/free-port.js";

const ROOT = resolve(import.meta.dirname, "..");

/** One entry the shipper printed in dry run: `<time> <labels> <line>` (apps/log-shipper/src/sinks/dry-run/dry-run.ts). */
interface DryRunEntry {
  ts: string;
  labels: Record<string, string>;
  line: string;
}

describe("scripts/pod.mjs (pnpm pod)", () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let out = "";
  const outputLines = () => out.split("\n");

  beforeAll(() => {
    for (const app of APPS) {
      const main = join(ROOT, "apps", app, "dist/main.js");
      if (!existsSync(main)) throw new Error(`${main} is missing: run \`pnpm build\` first (pnpm test does)`);
    }
    dir = mkdtempSync(join(tmpdir(), "pod-"));
  });
  afterAll(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (child?.exitCode !== null && child?.exitCode !== undefined) {
        throw new Error(
          `pod exited (${child.exitCode}) while waiting for ${what}; output:\n${out.slice(-4000)}`,
        );
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; output:\n${out.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The dry-run entries the shipper printed, parsed from its prefixed output lines. */
  function entries(): DryRunEntry[] {
    return outputLines()
      .filter((l) => l.startsWith("log-shipper"))
      .map((l) => parseDryRunLine(l.slice(l.indexOf("|") + 2)))
      .filter((e) => e !== null);
  }

  it("starts the sidecars before the app, ships the app's lines in dry run, and stops in pod order with exit 0", async () => {
    const [app, shipper, exporter] = await freePorts(3);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      POD_DIR: dir,
      POD_APP_PORT: String(app),
      POD_SHIPPER_PORT: String(shipper),
      POD_EXPORTER_PORT: String(exporter),
      TRAFFIC_RPS: "20",
      NO_COLOR: "1",
    };
    delete env.LOKI_ENDPOINT;
    child = spawn(process.execPath, [join(ROOT, "scripts/pod.mjs")], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString("utf8");
    });
    child.stderr?.on("data", (b: Buffer) => {
      out += b.toString("utf8");
    });
    const exited = new Promise<number | null>((r) => child?.on("exit", (code) => r(code)));

    // The pod's folder has the emptyDir's subdirectories.
    await until("the pod to run", () => out.includes("pod running"), 45_000);
    for (const sub of ["logs", "metrics", "state"]) expect(existsSync(join(dir, sub)), sub).toBe(true);
    const started = outputLines()
      .filter((l) => l.startsWith("pod") && l.includes("| starting "))
      .map((l) => l.split("| starting ")[1]?.split(" ")[0]);
    expect(started).toEqual(["log-shipper", "metrics-exporter", "sample-app"]);

    // The shipper (dry run) prints the app's own lines with the stream labels.
    await until(
      "the shipper's dry run to print the app's lines",
      () => entries().some((e) => e.labels.job === "sample-app"),
      45_000,
    );
    const stream = entries()[0];
    expect(stream?.labels).toMatchObject({ job: "sample-app", filename: join(dir, "logs", "app.log") });
    expect(stream?.labels.level).toBeDefined();
    // Let it run a little, so the stop has a tail to ship.
    const lines = entries().length;
    await until("more lines", () => entries().length > lines, 30_000);

    child.kill("SIGTERM");
    const code = await exited;
    expect(code, out.slice(-4000)).toBe(0);

    const exitedOrder = outputLines()
      .filter((l) => l.startsWith("pod") && / exited \(/.test(l))
      .map((l) => /\| (\S+) exited \(code (\d+)\)/.exec(l)?.slice(1, 3));
    expect(exitedOrder).toEqual([
      ["sample-app", "0"],
      ["metrics-exporter", "0"],
      ["log-shipper", "0"],
    ]);
    // Each program was signalled only after the previous one had exited.
    const events = outputLines().filter((l) => l.startsWith("pod") && /(stopping|exited)/.test(l));
    const idx = (s: string) => events.findIndex((l) => l.includes(s));
    expect(idx("sample-app exited")).toBeLessThan(idx("stopping metrics-exporter"));
    expect(idx("metrics-exporter exited")).toBeLessThan(idx("stopping log-shipper"));

    // Every line the app wrote, up to its exit, was shipped before the shipper exited.
    const shipped = new Set(entries().map((e) => e.line));
    const logDir = join(dir, "logs");
    const written = readdirSync(logDir)
      .filter((f) => /^app\.log(\.\d+)?$/.test(f))
      .flatMap((f) =>
        readFileSync(join(logDir, f), "utf8")
          .split("\n")
          .filter((l) => l !== ""),
      );
    expect(written.length).toBeGreaterThan(0);
    const missing = written.filter((l) => !shipped.has(l));
    expect(missing.length, `unshipped lines, e.g. ${missing[0]}`).toBe(0);
  }, 120_000);
});
