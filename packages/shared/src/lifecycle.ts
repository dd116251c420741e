// Process lifecycle: SIGTERM/SIGINT run the registered shutdown steps once, in order, within a
// deadline. A second signal or the deadline forces exit with a non-zero code and says why —
// Kubernetes has no --init, so each program handles its own signals.
import type { Logger } from "pino";

export interface ShutdownStep {
  name: string;
  /**
   * Returns (or resolves to) nothing, or an exit code: a step that finished but not cleanly (a
   * drain that missed its deadline, state that could not be saved) returns non-zero, and the
   * process exits with it — the `shutdown complete` line says the same code.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: steps written as `async () => {}` (Promise<void>) must fit
  run: (deadline: number) => Promise<number | undefined | void> | number | undefined | void;
}

export interface LifecycleOptions {
  /** Only what the lifecycle writes with: a pino Logger, or any logger with these three. */
  logger: Pick<Logger, "info" | "warn" | "error">;
  /** Total time the steps may take, from the first signal. */
  timeoutMs: number;
  /** Injected for tests; defaults to exitNow (process.exit that cannot be held by a stuck thread). */
  exit?: (code: number) => void;
  /** Signals to handle; defaults to SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  /**
   * A further signal this soon after the first is taken as the same request, not as "force":
   * `timeout`, a terminal's Ctrl-C and some supervisors signal the child and then its whole
   * process group, so one stop request can arrive twice within microseconds. Default 1000 ms.
   */
  repeatGraceMs?: number;
}

export interface Lifecycle {
  /** Add a step; steps run in the order they were added. */
  onShutdown(name: string, run: ShutdownStep["run"]): void;
  /** Install the signal handlers. */
  install(): void;
  /** Start shutdown as if a signal arrived (used for fatal errors). Resolves with the exit code. */
  shutdown(reason: string, exitCode?: number): Promise<number>;
  readonly shuttingDown: boolean;
}

export function createLifecycle(opts: LifecycleOptions): Lifecycle {
  const { logger, timeoutMs } = opts;
  const exit = opts.exit ?? exitNow;
  const signals = opts.signals ?? ["SIGTERM", "SIGINT"];
  const repeatGraceMs = opts.repeatGraceMs ?? 1000;
  let firstSignalAt = 0;
  const steps: ShutdownStep[] = [];
  let running: Promise<number> | undefined;
  let exited = false;

  const finish = (code: number) => {
    if (exited) return;
    exited = true;
    exit(code);
  };

  const shutdown = (reason: string, exitCode = 0): Promise<number> => {
    if (running) return running;
    const started = Date.now();
    const deadline = started + timeoutMs;
    logger.info({ reason, timeoutMs }, "shutting down");
    const timer = setTimeout(() => {
      logger.error({ reason: "deadline", timeoutMs }, "shutdown deadline passed; forcing exit");
      finish(1);
    }, timeoutMs);
    // Not unref()ed: a step that never settles after the others closed every handle would
    // otherwise let the event loop drain and exit 0 silently. Cleared once the steps finish.
    running = (async () => {
      let code = exitCode;
      for (const step of steps) {
        try {
          const stepCode = await step.run(deadline);
          if (typeof stepCode === "number" && stepCode !== 0) code = code || stepCode;
        } catch (err) {
          code = code || 1;
          logger.error({ err, step: step.name }, "shutdown step failed");
        }
      }
      clearTimeout(timer);
      // Forced out already (deadline, second signal) with another code: a late "complete" line
      // would contradict the exit code.
      if (exited) return code;
      logger.info({ code, durationMs: Date.now() - started }, "shutdown complete");
      finish(code);
      return code;
    })();
    return running;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (running) {
      if (Date.now() - firstSignalAt < repeatGraceMs) {
        logger.info({ signal }, "repeated stop signal ignored; already shutting down");
        return;
      }
      logger.warn({ signal }, "second signal during shutdown; forcing exit");
      finish(130);
      return;
    }
    firstSignalAt = Date.now();
    void shutdown(signal);
  };

  return {
    onShutdown(name, run) {
      steps.push({ name, run });
    },
    install() {
      for (const s of signals) process.on(s, onSignal);
    },
    shutdown,
    get shuttingDown() {
      return running !== undefined;
    },
  };
}

/** libuv threadpool requests, as process.getActiveResourcesInfo() names them. */
const THREADPOOL_WORK: ReadonlySet<string> = new Set([
  "FSReqCallback",
  "FSReqPromise",
  "FileHandleCloseReq",
  "GetAddrInfoReqWrap",
  "GetNameInfoReqWrap",
  "ZlibWork",
]);
/** How long exitNow lets pending threadpool work finish before it ends the process by a signal. */
export const EXIT_GRACE_MS = 200;

/**
 * Exit with `code`, for certain. Node's exit waits for libuv's threadpool to finish its work, so a
 * worker stuck in the kernel — open() of a FIFO nobody writes to, a hung network mount — would
 * hold process.exit() (and process.reallyExit()) forever. Pending threadpool work gets
 * EXIT_GRACE_MS to finish; if some is still pending then, the process ends itself by a signal:
 * SIGINT for 130 (shells and Kubernetes report 128 + 2 = 130, as for an exit 130), SIGKILL
 * otherwise (reported as 137).
 */
export function exitNow(code: number): void {
  const pending = () => process.getActiveResourcesInfo().some((r) => THREADPOOL_WORK.has(r));
  if (!pending()) process.exit(code);
  const giveUpAt = Date.now() + EXIT_GRACE_MS;
  const poll = setInterval(() => {
    if (!pending()) process.exit(code);
    if (Date.now() < giveUpAt) return;
    clearInterval(poll);
    if (code === 130) {
      // Without listeners the signal's default action applies: the process ends at once.
      process.removeAllListeners("SIGINT");
      process.kill(process.pid, "SIGINT");
    }
    process.kill(process.pid, "SIGKILL");
  }, 10);
}
