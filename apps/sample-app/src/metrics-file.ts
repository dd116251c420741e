// Writes the registry to METRICS_DIR/sample-app.prom on a schedule, atomically (temp file +
// rename), in the node_exporter textfile style the metrics-exporter sidecar collects. Readers see
// the previous file or the next one, never a partial or empty one.
import { readdir, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "@sidecar/shared";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";

export interface MetricsFileOptions {
  registry: Registry;
  path: string;
  intervalMs: number;
  logger: Logger;
  /** Injected for tests; writeFileAtomic by default. */
  write?: (path: string, data: string) => Promise<void>;
  /** A failure that persists is logged again after this long (default 5 min), with a count. */
  repeatLogMs?: number;
}

/**
 * What makes two failures "the same": errno code and syscall. Never the message — writeFileAtomic's
 * messages name a random temp file, so every attempt would look new and be logged each tick.
 */
function failureKey(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code !== undefined) return `${e.code}:${e.syscall ?? ""}`;
  return String(e?.message ?? err);
}

export class MetricsFileWriter {
  private readonly opts: MetricsFileOptions;
  private readonly write: (path: string, data: string) => Promise<void>;
  private readonly writes: Counter<"result">;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private lastError: string | undefined;
  private lastLoggedAt = 0;
  private suppressed = 0;

  constructor(opts: MetricsFileOptions) {
    this.opts = opts;
    this.write = opts.write ?? writeFileAtomic;
    this.writes = new Counter({
      name: "sample_app_metrics_file_writes_total",
      help: "Writes of the metrics file, by result.",
      labelNames: ["result"] as const,
      registers: [opts.registry],
    });
  }

  /** Write once now (so the file exists as soon as the app is up), then on every interval. */
  async start(): Promise<void> {
    await this.removeStaleTemps();
    await this.writeNow();
    // unref: the schedule alone must not keep a stopping process alive.
    this.timer = setInterval(() => void this.writeNow(), this.opts.intervalMs);
    this.timer.unref();
  }

  /**
   * One write. Overlapping ticks share the write in progress instead of stacking up behind a slow
   * disk. Failures are counted, and logged once per distinct
   * error (errno code + syscall), repeated every repeatLogMs while it lasts — not every tick.
   */
  writeNow(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.inFlight = (async () => {
      try {
        const body = await this.opts.registry.metrics();
        await this.write(this.opts.path, body);
        this.writes.inc({ result: "success" });
        if (this.lastError !== undefined) {
          this.opts.logger.info({ path: this.opts.path }, "metrics file writable again");
          this.lastError = undefined;
          this.suppressed = 0;
        }
      } catch (err) {
        this.writes.inc({ result: "error" });
        const e = err as NodeJS.ErrnoException;
        const key = failureKey(err);
        const now = Date.now();
        if (key !== this.lastError || now - this.lastLoggedAt >= (this.opts.repeatLogMs ?? 300_000)) {
          this.opts.logger.error(
            {
              err,
              code: e.code,
              syscall: e.syscall,
              path: this.opts.path,
              failuresSinceLastLog: this.suppressed,
            },
            "cannot write metrics file",
          );
          this.lastError = key;
          this.lastLoggedAt = now;
          this.suppressed = 0;
        } else {
          this.suppressed++;
        }
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }

  /**
   * A crash between writeFileAtomic's open and rename leaves its temp file (`.NAME.<pid>.<hex>.tmp`)
   * behind, and nothing else would ever remove it. At start no write of ours is in flight, so every
   * such file is stale. Only our own file's temps are touched; failures here are not fatal (the
   * directory's problems show up in the first write).
   */
  private async removeStaleTemps(): Promise<void> {
    const dir = dirname(this.opts.path);
    const prefix = `.${basename(this.opts.path)}.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith(".tmp")) continue;
      await unlink(join(dir, name)).catch(() => {});
    }
  }

  /** Stop the schedule and write the file a last time, so it holds the final counts. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.inFlight) await this.inFlight;
    await this.writeNow();
  }
}
