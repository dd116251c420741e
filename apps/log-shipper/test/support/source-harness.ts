// Test harness for the source side alone: a real Discovery, Positions and Tailer on a temp
// directory, feeding an in-memory LineSink that records every line and acknowledges on demand
// (or at once), with back-pressure that tests can switch on.

import { Registry } from "prom-client";
import type { AckListener, LineSink, SourceFile } from "../../src/contracts.js";
import { Discovery } from "../../src/source/discovery.js";
import { Positions } from "../../src/source/positions.js";
import { createSourceMetrics, type SourceMetrics } from "../../src/source/source-metrics.js";
import { Tailer } from "../../src/source/tailer.js";
import { silentLogger } from "./logger.js";

export interface RecordedLine {
  id: string;
  path: string;
  text: string;
  offset: number;
  truncated: boolean;
}

/** An in-memory LineSink: records lines; acknowledges them at once or when told. */
export class RecordingSink implements LineSink {
  readonly lines: RecordedLine[] = [];
  private unacked: RecordedLine[] = [];
  private readonly drainListeners: (() => void)[] = [];
  ack: AckListener | null = null;
  autoAck = true;
  /** Back-pressure bound on unacknowledged line bytes (Infinity = never pause). */
  maxPending = Number.POSITIVE_INFINITY;
  pendingBytes = 0;

  private ackScheduled = false;

  writeLine(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
  ): void {
    const rec = { id: file.id, path: file.path, text: buf.toString("utf8", start, end), offset, truncated };
    this.lines.push(rec);
    this.unacked.push(rec);
    this.pendingBytes += end - start + 1;
    if (this.autoAck && !this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => {
        this.ackScheduled = false;
        this.ackAll();
      });
    }
  }

  canAccept(): boolean {
    return this.pendingBytes < this.maxPending;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  flush(): void {}

  /** Ids of the readers the tailer told that they are over (LineSink.end). */
  readonly ended: string[] = [];

  end(file: SourceFile): void {
    this.ended.push(file.id);
  }

  /** Acknowledge every line written so far (per file in offset order, as the real sink does). */
  ackAll(): void {
    const lines = this.unacked;
    this.unacked = [];
    this.pendingBytes = 0;
    for (const l of lines) this.ack?.acknowledged(l.id, l.offset);
    for (const d of this.drainListeners) d();
  }

  texts(): string[] {
    return this.lines.map((l) => l.text);
  }
}

export interface Source {
  sink: RecordingSink;
  positions: Positions;
  discovery: Discovery;
  tailer: Tailer;
  /** The source's metrics, in a registry of its own. */
  metrics: SourceMetrics;
  registry: Registry;
  close(): Promise<void>;
}

const EMPTY_STATS = { filesWatched: 0, filesOpen: 0, lag: [], readPaused: false };

export async function startSource(opts: {
  include: string[];
  exclude?: string[];
  positionsFile: string;
  sink?: RecordingSink;
  maxLineBytes?: number;
  rescanIntervalMs?: number;
  pollIntervalMs?: number;
  rotatedIdleMs?: number;
  idleCloseMs?: number;
  quietPollMs?: number;
}): Promise<Source> {
  const logger = silentLogger();
  const sink = opts.sink ?? new RecordingSink();
  const positions = new Positions({ file: opts.positionsFile, logger });
  await positions.load();
  let tailer: Tailer | undefined;
  const discovery = new Discovery({
    include: opts.include,
    exclude: opts.exclude ?? ["*.gz", "*.tmp"],
    rescanIntervalMs: opts.rescanIntervalMs ?? 200,
    logger,
    onPath: (p, ev) => tailer?.notePath(p, ev),
    onScan: (paths, changed) => tailer?.noteScan(paths, changed),
  });
  const registry = new Registry();
  const metrics = createSourceMetrics(registry, () => tailer?.stats() ?? EMPTY_STATS);
  tailer = new Tailer({
    sink,
    positions,
    opener: discovery,
    logger,
    metrics,
    maxLineBytes: opts.maxLineBytes ?? 262_144,
    pollIntervalMs: opts.pollIntervalMs ?? 50,
    rotatedIdleMs: opts.rotatedIdleMs ?? 300,
    ...(opts.idleCloseMs !== undefined ? { idleCloseMs: opts.idleCloseMs } : {}),
    ...(opts.quietPollMs !== undefined ? { quietPollMs: opts.quietPollMs } : {}),
  });
  sink.ack = tailer;
  tailer.start();
  await discovery.start();
  const t = tailer;
  return {
    sink,
    positions,
    discovery,
    tailer: t,
    metrics,
    registry,
    async close() {
      await discovery.close();
      await t.close();
      await positions.save(true);
    },
  };
}

/** Poll `cond` until true or fail after `timeoutMs` with `what` in the message. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
