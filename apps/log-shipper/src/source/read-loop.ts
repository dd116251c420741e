// The read loop: the one serial loop on which everything that touches readers runs, so identity
// decisions never race with reads. It wakes on hints, on the poll timer and when the sink drains,
// and then does, in this order: the tailer's housekeeping (path hints, released copies, a rescan),
// the poll of open files, or one chunk of the next ready file. Reads share one chunk buffer, one
// file at a time, round-robin; before each chunk the loop asks the sink whether it may read
// (back-pressure) and otherwise sleeps until the sink drains. What a step does with a file is the
// tailer's (LoopSteps); the loop owns the order, the ready queue, and the chunk read itself.
//
// Invariants: a reader is in the ready queue at most once (`queued` says whether), and never when
// it is closed, retired or held (copy-holding.ts); a chunk is only read when the sink can accept;
// `paused` is true exactly while a ready file waits for the sink.
import type { Log as Logger } from "@sidecar/shared";
import type { LineSink } from "../contracts.js";
import type { CopyHolding } from "./copy-holding.js";
import type { ResyncReason } from "./file-events.js";
import { ANCHOR_BYTES } from "./fingerprint.js";
import { LineSplitter } from "./line-splitter.js";
import type { FileReader } from "./reader.js";
import type { SourceMetrics } from "./source-metrics.js";

const DEFAULT_CHUNK = 1024 * 1024;
/**
 * A file hinted again within this time after its last read waits for the rest of it: a writer
 * that writes every few milliseconds would otherwise cost a read cycle (fstat, identity check,
 * read) per write. At most this much latency is added, and only under a steady stream. 100 ms,
 * not 50: a read cycle's fixed cost is most of the CPU at moderate rates (25k lines/s: 1.52–1.66
 * against 1.90–2.04 CPU s per million lines), for ~20 ms more median latency (Grafana Alloy looks
 * at its files every 250 ms).
 */
const READ_COALESCE_MS = 100;
/**
 * A hint this close to the end of its file's coalescing window is read at once instead of after
 * a timer of a few milliseconds (one wake-up less): a busy directory is looked at every 100 ms
 * (discovery.ts), so its hints arrive just before the window of the last read ends.
 */
const READ_COALESCE_SLACK_MS = 10;
/**
 * Housekeeping (hints, rescans, polls) over many files never starves reading: after this many
 * files examined, reconciled or polled, one chunk is read (see yieldToReads).
 */
const HOUSEKEEPING_SLICE = 32;

/** What the loop asks the tailer to do. */
export interface LoopSteps {
  /** Whether housekeeping is pending (asked before every step: must be cheap). */
  housekeepingDue(): boolean;
  housekeep(): Promise<void>;
  /** The periodic look at open files (every pollIntervalMs). */
  poll(): Promise<void>;
  /**
   * Whether the next poll has anything to look at every pollIntervalMs (an open file, a path
   * waiting to be opened); when not, polls come every quietPollIntervalMs until pollSoon.
   */
  pollNeeded(): boolean;
  /** Before readToEnd's waiters are told that everything was read. */
  finish(): Promise<void>;
  /** `r`'s file was truncated or rewritten under it (`reason`: a resync, not a truncation). */
  restart(r: FileReader, reason?: ResyncReason): Promise<void>;
  /** A chunk was read (a descriptor may have become closable: the open-file bound). */
  chunkRead(): void;
}

export interface ReadLoopOptions {
  sink: Pick<LineSink, "canAccept" | "onDrain">;
  steps: LoopSteps;
  copies: Pick<CopyHolding, "holding" | "isHolding" | "catchUp" | "recheckCopiesOf">;
  logger: Logger;
  metrics?: SourceMetrics;
  maxLineBytes: number;
  /** Read chunk size (default 1 MiB, at least what one maximal line needs). */
  chunkBytes?: number;
  pollIntervalMs: number;
  /**
   * The poll's period while steps.pollNeeded() says there is nothing to look at that often
   * (default pollIntervalMs; never shorter than it).
   */
  quietPollIntervalMs?: number;
  now: () => number;
  /** FINGERPRINT_BYTES for FileReader.verify, lent by the tailer (its steps run one at a time). */
  scratch: Buffer;
}

export class ReadLoop {
  /**
   * The chunk buffer every read uses, one at a time (the tailer also reads a new file's head into
   * it: see Tailer.identify).
   */
  readonly buf: Buffer;
  /** True while reading waits for acknowledgements. */
  paused = false;
  /** Running totals for the periodic summary line (the metrics hold the same counts). */
  readonly totals = { lines: 0, bytes: 0, truncated: 0 };
  private ready: FileReader[] = [];
  private wakeFn: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  private pollDue = false;
  private stopped = false;
  private loopDone: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  /** The period pollTimer was set to: pollIntervalMs, or the quiet one (see setPollPeriod). */
  private pollPeriodMs = 0;
  private finalFlush = false;
  private readonly deferred = new Set<FileReader>();
  private deferTimer: NodeJS.Timeout | null = null;
  private housekeeping = 0;
  private readonly steps: LoopSteps;
  private readonly copies: ReadLoopOptions["copies"];

  constructor(private readonly opts: ReadLoopOptions) {
    this.steps = opts.steps;
    this.copies = opts.copies;
    const chunk = Math.max(opts.chunkBytes ?? DEFAULT_CHUNK, LineSplitter.minChunkBytes(opts.maxLineBytes));
    // Each read also fetches the ≤ ANCHOR_BYTES before its offset (see FileReader.readChunk).
    this.buf = Buffer.allocUnsafe(chunk + ANCHOR_BYTES);
  }

  start(): void {
    if (this.loopDone) return;
    this.opts.sink.onDrain(() => this.wake());
    this.loopDone = this.loop();
    this.setPollPeriod(this.opts.pollIntervalMs);
  }

  /** Poll every pollIntervalMs again from now on (a file was opened, a path waits). */
  pollSoon(): void {
    this.setPollPeriod(this.opts.pollIntervalMs);
  }

  /**
   * (Re)start the poll timer with period `ms` unless it runs with it already. While nothing is
   * open the poll has nothing to do but the quiet rounds, so the timer runs at the quiet period:
   * a shipper beside quiet, closed files wakes for it every few seconds, not twice a second.
   */
  private setPollPeriod(ms: number): void {
    if (this.stopped || this.loopDone === null || ms === this.pollPeriodMs) return;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.pollPeriodMs = ms;
    this.pollTimer = setInterval(() => {
      this.pollDue = true;
      this.wake();
    }, ms);
    this.pollTimer.unref();
  }

  /** Stop the loop (the step in progress finishes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.deferTimer) clearTimeout(this.deferTimer);
    this.deferTimer = null;
    this.wake();
    await this.loopDone;
  }

  /**
   * From now on the loop reads everything (rotated files' last partial lines too: see
   * LoopSteps.finish); hints held back to coalesce reads are dropped, the caller queues every
   * open file itself.
   */
  startFinalFlush(): void {
    this.finalFlush = true;
    this.deferred.clear();
  }

  /** Poll now, then resolve true once nothing is left to read — or false at `deadline`. */
  whenIdle(deadline: number): Promise<boolean> {
    this.pollDue = true;
    this.wake();
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      t.unref();
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
      this.wake();
    });
  }

  /** Tell whoever waits in whenIdle that reading is over. */
  resolveIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  wake(): void {
    const w = this.wakeFn;
    if (w) {
      this.wakeFn = null;
      w();
    }
  }

  enqueue(r: FileReader): void {
    if (r.queued || r.fd === null || r.retired || r.holdFor !== null) return;
    r.queued = true;
    this.ready.push(r);
    this.wake();
  }

  unqueue(r: FileReader): void {
    r.queued = false;
    this.ready = this.ready.filter((x) => x !== r);
  }

  /** Take `r` out of the queue to read it right away (it was queued last: looked for from the end). */
  takeQueued(r: FileReader): void {
    const i = this.ready.lastIndexOf(r);
    if (i !== -1) this.ready.splice(i, 1);
    r.queued = false;
  }

  /** A file grew: read it now, or with the next batch of hints if it was read a moment ago. */
  hinted(r: FileReader): void {
    if (r.queued) return;
    const since = this.opts.now() - r.lastReadAt;
    if (since >= READ_COALESCE_MS - READ_COALESCE_SLACK_MS) {
      this.enqueue(r);
      return;
    }
    this.deferred.add(r);
    if (this.deferTimer !== null) return;
    this.deferTimer = setTimeout(() => {
      this.deferTimer = null;
      for (const d of this.deferred) this.enqueue(d);
      this.deferred.clear();
    }, READ_COALESCE_MS - since);
    this.deferTimer.unref();
  }

  /**
   * Called once per file by long housekeeping passes: every HOUSEKEEPING_SLICE files, read one
   * chunk if a file is ready and the sink takes it — thousands of files appearing at once, or a
   * poll over many files, then delay reading a little instead of stopping it.
   */
  async yieldToReads(): Promise<void> {
    if (++this.housekeeping < HOUSEKEEPING_SLICE) return;
    this.housekeeping = 0;
    const r = this.ready[0];
    if (r === undefined || !this.opts.sink.canAccept()) return;
    this.ready.shift();
    r.queued = false;
    await this.read(r);
  }

  /**
   * Read one chunk of `r` and hand its lines to the sink. `head`: the file's first `head` bytes
   * are in `buf` already (a new file's, read to identify it).
   */
  async read(r: FileReader, head?: number): Promise<void> {
    if (r.fd === null || r.retired || r.holdFor !== null) return;
    r.lastReadAt = this.opts.now();
    // Verified before every chunk, not only at the end of the file: a file truncated and written
    // again while reading paused (back-pressure) or lagged behind may already be longer than our
    // offset, and reading on would ship the new content from the middle (fstat + two 1 KiB reads).
    // The bytes just before the offset are compared in the read itself (readChunk), so this check
    // leaves them out; at offset 0 the read compares the fingerprint itself, and nothing is left
    // to check (a file found a moment ago is read without two more syscalls).
    const start = r.readPos;
    if (start > 0) {
      const v = await r.verify(this.opts.scratch, false);
      if (v === "truncated" || v === "rewritten") {
        await this.steps.restart(r);
        return;
      }
      if (v === "gone") return;
    }
    if (this.copies.holding && this.copies.isHolding(r)) {
      if (!(await this.copies.catchUp(r, this.buf))) return;
      head = undefined; // `buf` was used meanwhile
    }
    const res = await r.readChunk(this.buf, head);
    this.steps.chunkRead();
    if (res.changed) {
      // At 0: another first line, i.e. rewritten (what verify reports as truncated).
      await this.steps.restart(r, start === 0 ? undefined : "changed");
      return;
    }
    const consumed = res.consumed;
    if (consumed > 0) this.count(r, consumed);
    if (res.full) this.enqueue(r);
    // Copies held for this file (copytruncate in progress, rare) are compared again right away.
    if (consumed > 0 && this.copies.holding) await this.copies.recheckCopiesOf(r);
  }

  /** Ship `r`'s last partial line (its writer is gone), if the sink takes it. */
  async flushPartial(r: FileReader): Promise<void> {
    if (!this.opts.sink.canAccept()) return;
    const consumed = await r.flushPartial(this.buf);
    if (consumed === null) {
      await this.steps.restart(r, "changed");
      return;
    }
    if (consumed > 0 || r.splitter.lines > 0) this.count(r, consumed);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.steps.housekeepingDue()) {
          await this.steps.housekeep();
          continue;
        }
        if (this.pollDue) {
          this.pollDue = false;
          await this.steps.poll();
          const quietMs = Math.max(this.opts.pollIntervalMs, this.opts.quietPollIntervalMs ?? 0);
          this.setPollPeriod(this.steps.pollNeeded() ? this.opts.pollIntervalMs : quietMs);
          continue;
        }
        const r = this.ready[0];
        if (r !== undefined) {
          if (!this.opts.sink.canAccept()) {
            if (!this.paused) this.opts.metrics?.backpressureWaits.inc();
            this.paused = true;
            await this.sleep();
            continue;
          }
          this.paused = false;
          this.ready.shift();
          r.queued = false;
          await this.read(r);
          continue;
        }
        if (this.idleWaiters.length > 0) {
          if (this.finalFlush) await this.steps.finish();
          this.resolveIdle();
        }
        await this.sleep();
      } catch (err) {
        this.opts.logger.error({ err }, "file tailing step failed; continuing");
      }
    }
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      this.wakeFn = resolve;
    });
  }

  /** Once per chunk: move the splitter's line counts into the totals and metrics. */
  private count(r: FileReader, consumed: number): void {
    const c = r.splitter.takeCounts();
    const t = this.totals;
    t.lines += c.lines;
    t.bytes += consumed;
    t.truncated += c.truncated;
    const m = this.opts.metrics;
    if (m !== undefined) {
      if (c.lines > 0) m.linesRead.inc(c.lines);
      if (consumed > 0) m.bytesRead.inc(consumed);
      if (c.truncated > 0) m.linesTruncated.inc(c.truncated);
    }
  }
}
