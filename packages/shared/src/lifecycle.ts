// Process lifecycle: SIGTERM/SIGINT run the registered shutdown steps once, in order, within a
// deadline. A second signal or the deadline forces exit with a non-zero code and says why —
// Kubernetes has no --init, so each program handles its own signals.
import type { Logger } from "pino";

export interface ShutdownStep {
  name: string;
  run: (deadline: number) => Promise<void> | void;
}

export interface LifecycleOptions {
  logger: Logger;
  /** Total time the steps may take, from the first signal. */
  timeoutMs: number;
  /** Injected for tests; defaults to process.exit. */
  exit?: (code: number) => void;
  /** Signals to handle; defaults to SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
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
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? ["SIGTERM", "SIGINT"];
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
    timer.unref();
    running = (async () => {
      let code = exitCode;
      for (const step of steps) {
        try {
          await step.run(deadline);
        } catch (err) {
          code = code || 1;
          logger.error({ err, step: step.name }, "shutdown step failed");
        }
      }
      clearTimeout(timer);
      logger.info({ code, durationMs: Date.now() - started }, "shutdown complete");
      finish(code);
      return code;
    })();
    return running;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (running) {
      logger.warn({ signal }, "second signal during shutdown; forcing exit");
      finish(130);
      return;
    }
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
