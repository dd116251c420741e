import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createLifecycle } from "../src/lifecycle.js";
import { createLogger } from "../src/logger.js";

const fixture = fileURLToPath(new URL("./fixtures/lifecycle-child.ts", import.meta.url));

function startChild(stepMs: number, timeoutMs: number, mode = "", arg = "") {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fixture, String(stepMs), String(timeoutMs), mode, arg],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child not ready: ${out}`)), 30_000);
    child.stdout.on("data", () => {
      if (out.includes("READY")) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, ready, exited, ended, output: () => out };
}

function kill(child: ChildProcess, signal: NodeJS.Signals) {
  if (child.pid) process.kill(child.pid, signal);
}

describe("lifecycle in a real process", () => {
  it("runs every step once, in order, on SIGTERM and exits 0", async () => {
    const c = startChild(50, 5000);
    await c.ready;
    kill(c.child, "SIGTERM");
    expect(await c.exited).toBe(0);
    const out = c.output();
    expect(out.indexOf("STEP first")).toBeGreaterThan(-1);
    expect(out.indexOf("STEP second")).toBeGreaterThan(out.indexOf("STEP first"));
    expect(out.match(/STEP first/g)).toHaveLength(1);
    expect(out).toContain('"msg":"shutdown complete"');
  });

  it("forces exit 130 on a second signal", async () => {
    const c = startChild(20_000, 30_000);
    await c.ready;
    kill(c.child, "SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    kill(c.child, "SIGINT");
    expect(await c.exited).toBe(130);
    expect(c.output()).toContain("second signal during shutdown");
  });

  it("exits 1 at the deadline even when a step hangs with no handle left open", async () => {
    const c = startChild(0, 800, "hang");
    await c.ready;
    kill(c.child, "SIGTERM");
    expect(await c.exited).toBe(1);
    expect(c.output()).toContain("shutdown deadline passed");
  });

  // process.exit() waits for libuv's threadpool; a thread blocked in open() of a FIFO held the
  // process forever after "forcing exit" (issue 15.3).
  describe("with a threadpool thread stuck in open() of a FIFO nobody writes to", () => {
    const fifo = () => {
      const dir = mkdtempSync(join(tmpdir(), "lifecycle-fifo-"));
      const path = join(dir, "fifo");
      execFileSync("mkfifo", [path]);
      return path;
    };
    /** The child's end, or null if it is still running after `ms` (then it is killed). */
    async function endWithin(c: ReturnType<typeof startChild>, ms: number) {
      const timer = new Promise<null>((r) => setTimeout(() => r(null), ms));
      const r = await Promise.race([c.ended, timer]);
      if (r === null) kill(c.child, "SIGKILL");
      return r;
    }

    it("a second signal really exits, as 130", async () => {
      const c = startChild(20_000, 30_000, "fifo", fifo());
      await c.ready;
      kill(c.child, "SIGTERM");
      await new Promise((r) => setTimeout(r, 1500));
      kill(c.child, "SIGINT");
      const r = await endWithin(c, 10_000);
      expect(r, `still running after "forcing exit": ${c.output()}`).not.toBeNull();
      // Exit code 130, or (threadpool still stuck) ended by SIGINT's default action: 128 + 2.
      expect(r?.code === 130 || r?.signal === "SIGINT", JSON.stringify(r)).toBe(true);
      expect(c.output()).toContain("second signal during shutdown");
    });

    it("the shutdown deadline really exits", async () => {
      const c = startChild(20_000, 800, "fifo", fifo());
      await c.ready;
      kill(c.child, "SIGTERM");
      const r = await endWithin(c, 10_000);
      expect(r, `still running after the deadline: ${c.output()}`).not.toBeNull();
      expect(r?.code === 1 || r?.signal === "SIGKILL", JSON.stringify(r)).toBe(true);
      expect(c.output()).toContain("shutdown deadline passed");
    });

    it("a clean shutdown is not held either", async () => {
      const c = startChild(0, 5000, "fifo", fifo());
      await c.ready;
      kill(c.child, "SIGTERM");
      const r = await endWithin(c, 10_000);
      expect(r, `still running after shutdown complete: ${c.output()}`).not.toBeNull();
      expect(c.output()).toContain('"msg":"shutdown complete"');
    });
  });

  it("takes a signal repeated at once (process-group delivery) as the same stop request", async () => {
    const c = startChild(1500, 30_000);
    await c.ready;
    kill(c.child, "SIGTERM");
    kill(c.child, "SIGTERM");
    kill(c.child, "SIGINT");
    expect(await c.exited).toBe(0);
    expect(c.output()).toContain("repeated stop signal ignored");
    expect(c.output()).toContain("STEP second");
  });

  it("forces exit 1 at the deadline and says why", async () => {
    const c = startChild(20_000, 500);
    await c.ready;
    kill(c.child, "SIGTERM");
    expect(await c.exited).toBe(1);
    expect(c.output()).toContain("shutdown deadline passed");
    expect(c.output()).not.toContain("STEP second");
  });
});

describe("lifecycle.shutdown", () => {
  it("after a forced exit, steps that finish late log no contradicting 'shutdown complete'", async () => {
    const codes: number[] = [];
    const msgs: string[] = [];
    const logger = pino({ level: "info" }, { write: (l: string) => msgs.push(JSON.parse(l).msg) });
    // The injected exit does not end this process: the step goes on past the deadline.
    const lc = createLifecycle({ logger, timeoutMs: 50, exit: (c) => codes.push(c) });
    lc.onShutdown("slow", () => new Promise<void>((r) => setTimeout(r, 300)));
    await lc.shutdown("test");
    expect(codes).toEqual([1]);
    expect(msgs.at(-1)).toBe("shutdown deadline passed; forcing exit");
    expect(msgs).not.toContain("shutdown complete");
  });

  it("exits with a step's non-zero code, and the last line says that code", async () => {
    const codes: number[] = [];
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: "info" },
      {
        write: (l: string) => {
          lines.push(JSON.parse(l));
        },
      },
    );
    const lc = createLifecycle({ logger, timeoutMs: 1000, exit: (c) => codes.push(c) });
    lc.onShutdown("drain", async () => 1);
    lc.onShutdown("after", () => {});
    expect(await lc.shutdown("test")).toBe(1);
    expect(codes).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({ msg: "shutdown complete", code: 1 });
  });

  it("runs once even when called repeatedly, and a failing step makes the code non-zero", async () => {
    const codes: number[] = [];
    const logger = createLogger({ service: "t", level: "silent" });
    const lc = createLifecycle({ logger, timeoutMs: 1000, exit: (c) => codes.push(c) });
    const calls: string[] = [];
    lc.onShutdown("a", () => {
      calls.push("a");
      throw new Error("boom");
    });
    lc.onShutdown("b", () => {
      calls.push("b");
    });
    const [c1, c2] = await Promise.all([lc.shutdown("test"), lc.shutdown("again")]);
    expect(calls).toEqual(["a", "b"]);
    expect(c1).toBe(1);
    expect(c2).toBe(1);
    expect(codes).toEqual([1]);
    expect(lc.shuttingDown).toBe(true);
  });
});
