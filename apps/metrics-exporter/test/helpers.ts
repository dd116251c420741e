// Shared test helpers: temp metrics directories, atomic writes as producers do them, polling with
// generous deadlines, and starting real Prometheus-ecosystem binaries on free loopback ports.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, writeFileAtomic } from "@sidecar/shared";
import type { Logger } from "pino";

export async function tempDir(
  prefix = "mx-",
  base = tmpdir(),
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(base, prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Write a .prom file the way producers must: temp file + rename. */
export async function writeProm(dir: string, name: string, text: string, mtimeMs?: number): Promise<void> {
  await writeFileAtomic(join(dir, name), text);
  if (mtimeMs !== undefined) await utimes(join(dir, name), mtimeMs / 1000, mtimeMs / 1000);
}

export function silentLogger(): Logger {
  return createLogger({ service: "metrics-exporter-test", level: "silent" });
}

/** A logger that keeps its JSON lines, for asserting on warnings. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = createLogger({
    service: "metrics-exporter-test",
    level: "debug",
    destination: { write: (s: string) => out.push(s) },
  });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** Fail (never skip) when a binary the test needs is missing. */
export function requireBinary(path: string, pkg: string): void {
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: install the Debian package "${pkg}" (CI installs it); this test does not skip`,
    );
  }
}

export interface Started {
  readonly proc: ChildProcess;
  readonly port: number;
  output(): string;
  stop(): Promise<void>;
}

/** Start a binary with `args(port)` and wait until `readyPath` on that port answers 200. */
export async function startBinary(
  path: string,
  args: (port: number) => string[],
  readyPath: string,
): Promise<Started> {
  const port = await freePort();
  const proc = spawn(path, args(port), { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout?.on("data", (d) => {
    output = (output + String(d)).slice(-20_000);
  });
  proc.stderr?.on("data", (d) => {
    output = (output + String(d)).slice(-20_000);
  });
  const started: Started = {
    proc,
    port,
    output: () => output,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await waitFor(`${path} on port ${port}`, async () => {
      if (proc.exitCode !== null) throw new Error(`${path} exited with ${proc.exitCode}: ${output}`);
      const res = await fetch(`http://127.0.0.1:${port}${readyPath}`);
      return res.ok;
    });
  } catch (err) {
    await started.stop();
    throw err;
  }
  return started;
}

/** The built program (`node dist/main.js`, as the image runs it), with its output kept for asserts. */
export function runExporter(
  env: Record<string, string>,
  base: Record<string, string> = { HTTP_HOST: "127.0.0.1", HTTP_PORT: "0" },
) {
  const main = join(import.meta.dirname, "../dist/main.js");
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH ?? "", ...base, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d: unknown) => {
    out = (out + String(d)).slice(-100_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exit, out: () => out };
}
