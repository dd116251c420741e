// Helpers for the tests that run the built program (`node dist/main.js`) as a user would: spawn
// it with its own environment and temporary directories, read its stdout/stderr, signal it.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export const MAIN = resolve(import.meta.dirname, "../dist/main.js");
export const PROMTOOL = "/usr/bin/promtool";

/** Fail (never skip) when the bundle has not been built. */
export function requireBuilt(): void {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: run "pnpm build" (or "cd apps/sample-app && pnpm build") first`);
  }
}

export function requirePromtool(): void {
  if (!existsSync(PROMTOOL)) {
    throw new Error(`${PROMTOOL} is missing: install the Debian package "prometheus" (CI installs it)`);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Running {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
}

export function startProcess(env: Record<string, string>): Omit<Running, "port"> {
  // Only PATH from the outside: the test decides every variable the app sees.
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<Exit>((r) => child.on("exit", (code, signal) => r({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Start the app and wait for its "started" line on stdout, which carries the real port. */
export async function spawnApp(env: Record<string, string>): Promise<Running> {
  const p = startProcess({ HOST: "127.0.0.1", PORT: "0", ...env });
  let exit: Exit | undefined;
  void p.exited.then((e) => {
    exit = e;
  });
  await until(
    () => {
      if (exit) throw new Error(`app exited early (${JSON.stringify(exit)}): ${p.stderr()}${p.stdout()}`);
      return p.stdout().includes('"msg":"sample-app started"');
    },
    "the app to start",
    30_000,
  );
  const line = p
    .stdout()
    .split("\n")
    .find((l) => l.includes('"msg":"sample-app started"')) as string;
  return { ...p, port: JSON.parse(line).port as number };
}

/** Run the app to completion (for start-up failures). */
export async function runToExit(
  env: Record<string, string>,
): Promise<Exit & { stdout: string; stderr: string }> {
  const p = startProcess(env);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 30_000);
  const e = await p.exited;
  clearTimeout(timer);
  return { ...e, stdout: p.stdout(), stderr: p.stderr() };
}

export async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGTERM the process and wait for it to exit (SIGKILL after a generous deadline). */
export async function stop(p: Running): Promise<Exit> {
  p.child.kill("SIGTERM");
  return exitOf(p);
}

/** Wait for the process to exit on its own (SIGKILL after a generous deadline). */
export async function exitOf(p: Pick<Running, "child" | "exited">): Promise<Exit> {
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 30_000);
  const e = await p.exited;
  clearTimeout(timer);
  return e;
}
