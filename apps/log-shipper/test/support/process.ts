// Spawning the BUILT shipper (apps/log-shipper/dist/main.js) as the image runs it, for process
// tests and the benchmark: env in, JSON log lines out, RSS from /proc.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const MAIN_JS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "main.js");

export function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) {
    throw new Error(
      `${MAIN_JS} is missing: run \`pnpm build\` (pnpm test builds first) before the process tests`,
    );
  }
}

export interface Shipper {
  child: ChildProcess;
  pid: number;
  /** Parsed JSON log lines from stdout (non-JSON lines kept as { raw }). */
  logs: Record<string, unknown>[];
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(match: (l: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<void>;
}

/** `node`: the binary to run it with (the memory tests take MEMORY_TEST_NODE, say the image's Node 24). */
export function spawnShipper(
  env: Record<string, string>,
  extraArgs: string[] = [],
  node: string = process.execPath,
): Shipper {
  assertBuilt();
  const child = spawn(node, [...extraArgs, MAIN_JS], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let partial = "";
  const logs: Record<string, unknown>[] = [];
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (d: string) => {
    out += d.length < 100_000 ? d : "";
    partial += d;
    let nl = partial.indexOf("\n");
    while (nl !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ raw: line });
      }
      nl = partial.indexOf("\n");
    }
  });
  child.stderr?.on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    pid: child.pid as number,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForLog(match, what, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while (!logs.some(match)) {
        if (child.exitCode !== null)
          throw new Error(`shipper exited (${child.exitCode}) before ${what}: ${err}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** Resident set size of a process in bytes (VmRSS), or peak (VmHWM). */
export function memoryOf(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** The environment every process test starts from: the temp dirs, loopback, short batches and retries. */
export function shipperEnv(
  dirs: { logs: string; positionsFile: string },
  lokiUrl?: string,
): Record<string, string> {
  return {
    LOG_PATHS: `${dirs.logs}/*.log,${dirs.logs}/*.log.*`,
    POSITIONS_FILE: dirs.positionsFile,
    HTTP_HOST: "127.0.0.1",
    HTTP_PORT: "0",
    BATCH_WAIT_MS: "100",
    RETRY_MIN_MS: "50",
    RETRY_MAX_MS: "500",
    ...(lokiUrl !== undefined ? { LOKI_ENDPOINT: lokiUrl } : {}),
  };
}

/** Spawned shippers of one test file, all killed after each test (afterEach: `killAll`). */
export function shipperTracker(): { spawn: (env: Record<string, string>) => Shipper; killAll: () => void } {
  const shippers: Shipper[] = [];
  return {
    spawn(env) {
      const s = spawnShipper(env);
      shippers.push(s);
      return s;
    },
    killAll() {
      for (const s of shippers.splice(0))
        if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    },
  };
}
