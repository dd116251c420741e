// Docker CLI helpers for the container test. Always asynchronous: the test's Loki receiver runs in
// this same process and must keep answering while docker commands run.
import { spawn } from "node:child_process";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function docker(args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString("utf8");
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString("utf8");
    });
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill("SIGKILL");
          }, opts.timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(
        (err as NodeJS.ErrnoException).code === "ENOENT" ? new Error("the docker CLI is not installed") : err,
      );
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like docker(), but throws with the command's output when it fails. */
export async function dockerOk(
  args: string[],
  opts: { timeoutMs?: number; cwd?: string } = {},
): Promise<string> {
  const r = await docker(args, opts);
  if (r.code !== 0) {
    throw new Error(
      `docker ${args.join(" ")} exited ${r.code}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-4000)}`,
    );
  }
  return r.stdout;
}
