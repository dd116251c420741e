// The fan-out: one read of the files, every destination its own pipeline (batcher, queue, retry
// loop, request in flight, metrics labelled `destination`), and per file and destination the
// offset that destination acknowledged.
//
// - Every line goes to every destination's pipeline, except (a) a destination that already has
//   it — after a restart a destination that was ahead resumes from its own saved offset, so it
//   gets nothing twice — and (b) a best-effort destination (`<DEST>_WHEN_FULL=drop`) whose buffer
//   is full: the line is dropped for it alone (counted, logged).
// - A file's offset is committed (and its reading released) only up to what every destination
//   has: the minimum over destinations of what each acknowledged. A destination with nothing of
//   the file in flight counts as having everything written so far (it skipped or dropped the
//   rest), or its saved offset when reading resumed behind it. The offsets of destinations that are further on travel with the commit (`ahead`) into
//   the positions file; the tailer hands them back on restart (`begin`). A file's state is kept
//   while it is written to (its committed offset is the base of the others' `ahead`); files
//   with nothing in flight are forgotten once MAX_IDLE_FILES are known.
// - Back-pressure: reading pauses while any lossless destination is at MAX_BUFFER_BYTES (the
//   default: a destination that is down holds its own backlog, the others keep shipping until
//   that backlog reaches the bound). A best-effort destination never holds reading back.
// - One destination: lines and acknowledgements pass straight through (no per-file state) —
//   unless a processing stage may skip lines (`tracked`): a skipped line's offset is acknowledged
//   once nothing before it is in flight.
import type { Logger } from "pino";
import { ScannedLine } from "./batcher.js";
import type { AckListener, LineSink, SourceFile } from "./contracts.js";
import { LogLimiter } from "./log-limiter.js";
import type { Pipeline, PipelineStats } from "./pipeline.js";
import type { LineFields } from "./processing/fields.js";
import type { SinkMetrics } from "./sink-metrics.js";

export type WhenFull = "block" | "drop";

/** Past this many files known, those with nothing in flight are forgotten. */
const MAX_IDLE_FILES = 4096;

export interface FanOutOptions {
  /** The source side: told what every destination has, and asked to persist. */
  ack: AckListener;
  logger: Logger;
  metrics: SinkMetrics;
  /**
   * Keep per-file state even with one destination: lines may be skipped (the processing stage
   * dropped them) and their offsets must still be acknowledged in order.
   */
  tracked?: boolean;
}

/** Per destination, as the summary line and the shutdown summary show it. */
export interface DestinationStats extends PipelineStats {
  destination: string;
  whenFull: WhenFull;
  /** Lines dropped because this best-effort destination's buffer was full. */
  linesDroppedFull: number;
}

interface Dest {
  readonly name: string;
  readonly pipeline: Pipeline;
  readonly drop: boolean;
  droppedFull: number;
}

/** What the fan-out knows of one file (SourceFile id). */
class FileAcks {
  /** Offset past the last line handed to each destination; -1: none. */
  readonly written: number[];
  /**
   * Offset each destination acknowledged (-1: none) — for one that was ahead when reading resumed,
   * the saved offset it had acknowledged before.
   */
  readonly acked: number[];
  /** Per destination, the offset it already had when reading resumed (lines up to it skipped). */
  skip: number[] | null = null;
  /** Offset past the last line written to the fan-out. */
  last = -1;
  /** Offset reported to the source side. */
  committed = -1;
  /** Per destination, the `ahead` offset last reported (-1: not ahead), to report changes only. */
  readonly reported: number[];
  /** Nothing in flight, nothing to skip, everything committed. */
  idle = false;
  constructor(n: number) {
    this.written = new Array<number>(n).fill(-1);
    this.acked = new Array<number>(n).fill(-1);
    this.reported = new Array<number>(n).fill(-1);
  }
}

export class FanOut implements LineSink {
  private readonly dests: Dest[] = [];
  private blocking: Pipeline[] = [];
  /** One lossless destination and nothing skipped: lines and acknowledgements pass straight through. */
  private passthrough = false;
  private readonly files = new Map<string, FileAcks>();
  private lastFile: SourceFile | undefined;
  private lastState: FileAcks | undefined;
  private readonly fullLog = new LogLimiter(30_000);
  private readonly scanned = new ScannedLine();

  constructor(private readonly opts: FanOutOptions) {}

  /** The acknowledgement listener for destination `name`'s pipeline (build it with this). */
  listenerFor(name: string): AckListener {
    return {
      acknowledged: (fileId, offset) => this.onAck(name, fileId, offset),
      persisted: () => this.opts.ack.persisted?.() ?? Promise.resolve(),
    };
  }

  add(pipeline: Pipeline, whenFull: WhenFull): void {
    this.dests.push({ name: pipeline.sink.name, pipeline, drop: whenFull === "drop", droppedFull: 0 });
    this.blocking = this.dests.filter((d) => !d.drop).map((d) => d.pipeline);
    this.passthrough = this.dests.length === 1 && !(this.dests[0] as Dest).drop && this.opts.tracked !== true;
  }

  get destinations(): readonly string[] {
    return this.dests.map((d) => d.name);
  }

  get dryRun(): boolean {
    return this.dests.length === 1 && (this.dests[0] as Dest).pipeline.dryRun;
  }

  // --- LineSink -------------------------------------------------------------------------------

  writeLine(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
    readTimeMs: number,
    /** The line's LABEL_FIELDS / METADATA_FIELDS (the processing stage), when it had any. */
    fields?: LineFields,
  ): void {
    const dests = this.dests;
    if (this.passthrough) {
      (dests[0] as Dest).pipeline.writeLine(file, buf, start, end, offset, truncated, readTimeMs);
      return;
    }
    let st: FileAcks;
    if (file === this.lastFile) {
      st = this.lastState as FileAcks;
    } else {
      st = this.stateOf(file.id);
      this.lastFile = file;
      this.lastState = st;
    }
    st.last = offset;
    let all = true;
    const skip = st.skip;
    // Scanned once here (UTF-8 check, time, level), not once per destination's batcher.
    const scanned = this.scanned.scan(buf, start, end);
    scanned.fields = fields;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i] as Dest;
      if (skip !== null && offset <= (skip[i] as number)) {
        all = false;
        continue;
      }
      if (d.drop && !d.pipeline.canAccept()) {
        all = false;
        this.droppedFull(d);
        continue;
      }
      d.pipeline.writeLine(file, buf, start, end, offset, truncated, readTimeMs, scanned);
      st.written[i] = offset;
    }
    if (skip !== null && offset >= Math.max(...skip)) st.skip = null;
    if (!all) this.report(file.id, st);
  }

  /** A line no destination gets (dropped by the processing stage): its offset still moves on. */
  skipLine(file: SourceFile, offset: number): void {
    if (this.passthrough) throw new Error("skipLine needs a FanOut built with tracked: true");
    let st: FileAcks;
    if (file === this.lastFile) {
      st = this.lastState as FileAcks;
    } else {
      st = this.stateOf(file.id);
      this.lastFile = file;
      this.lastState = st;
    }
    st.last = offset;
    if (st.skip !== null && offset >= Math.max(...st.skip)) st.skip = null;
    this.report(file.id, st);
  }

  get pendingBytes(): number {
    let max = 0;
    for (const p of this.blocking) max = Math.max(max, p.pendingBytes);
    return max;
  }

  canAccept(): boolean {
    for (const p of this.blocking) if (!p.canAccept()) return false;
    return true;
  }

  onDrain(listener: () => void): void {
    for (const p of this.blocking) p.onDrain(listener);
  }

  flush(): void {
    for (const d of this.dests) d.pipeline.flush();
  }

  /**
   * A reader of `file` starts at `offset` (acknowledged before it). `ahead`: destinations that
   * already had more of it (saved offsets) — lines up to those are not sent to them again.
   */
  begin(file: SourceFile, offset: number, ahead?: Readonly<Record<string, number>>): void {
    const n = this.dests.length;
    if (this.passthrough) return;
    if (this.files.size >= MAX_IDLE_FILES) this.prune();
    const st = new FileAcks(n);
    st.written.fill(offset);
    st.acked.fill(offset);
    st.last = offset;
    st.committed = offset;
    if (ahead !== undefined) {
      const skip = this.dests.map((d) => ahead[d.name] ?? -1);
      if (skip.some((o) => o > offset)) {
        st.skip = skip;
        // What such a destination has is its saved offset, not only what was read since: it is
        // reported as such (`ahead`) while the others catch up, instead of moving line by line
        // from the resumed offset — which cost a report per skipped line, and told the positions
        // file less than the destination had (lines again after a crash in between).
        for (let i = 0; i < n; i++) {
          const o = skip[i] as number;
          if (o > offset) {
            st.written[i] = o;
            st.acked[i] = o;
          }
        }
      }
    }
    this.files.set(file.id, st);
    if (this.lastFile === file) this.lastState = st;
  }

  // --- lifecycle ------------------------------------------------------------------------------

  start(): void {
    for (const d of this.dests) d.pipeline.start();
  }

  /** True once every destination has everything written so far; false at the deadline. */
  async drain(deadline: number): Promise<boolean> {
    const done = await Promise.all(this.dests.map((d) => d.pipeline.drain(deadline)));
    return done.every(Boolean);
  }

  async close(): Promise<void> {
    await Promise.all(this.dests.map((d) => d.pipeline.close()));
  }

  /** Totals over destinations (sent: the least any destination acknowledged). */
  stats(): PipelineStats {
    const all = this.dests.map((d) => d.pipeline.stats());
    const sum = (k: keyof PipelineStats) => all.reduce((n, s) => n + (s[k] as number), 0);
    const min = (k: keyof PipelineStats) => Math.min(...all.map((s) => s[k] as number));
    const max = (k: keyof PipelineStats) => Math.max(...all.map((s) => s[k] as number));
    const dropsFull = this.dests.reduce((n, d) => n + d.droppedFull, 0);
    return {
      linesSent: min("linesSent"),
      bytesSent: min("bytesSent"),
      batchesSent: min("batchesSent"),
      retries: sum("retries"),
      batchesDropped: sum("batchesDropped"),
      linesDropped: sum("linesDropped") + dropsFull,
      batchesSplit: sum("batchesSplit"),
      timestampsReplaced: max("timestampsReplaced"),
      linesRepaired: max("linesRepaired"),
      pendingBytes: this.pendingBytes,
      queuedBatches: sum("queuedBatches"),
      consecutiveFailures: max("consecutiveFailures"),
      lastSuccessMs: min("lastSuccessMs"),
    };
  }

  destinationStats(): DestinationStats[] {
    return this.dests.map((d) => ({
      destination: d.name,
      whenFull: d.drop ? "drop" : "block",
      linesDroppedFull: d.droppedFull,
      ...d.pipeline.stats(),
    }));
  }

  // --- internals ------------------------------------------------------------------------------

  private stateOf(id: string): FileAcks {
    let st = this.files.get(id);
    if (st === undefined) {
      if (this.files.size >= MAX_IDLE_FILES) this.prune();
      st = new FileAcks(this.dests.length);
      this.files.set(id, st);
    }
    return st;
  }

  private onAck(name: string, fileId: string, offset: number): void {
    const dests = this.dests;
    if (this.passthrough) {
      this.opts.ack.acknowledged(fileId, offset);
      return;
    }
    const st = this.files.get(fileId);
    if (st === undefined) return; // acknowledgements only follow lines written through here
    const i = dests.findIndex((d) => d.name === name);
    if (i < 0) return;
    if (offset > (st.acked[i] as number)) st.acked[i] = offset;
    this.report(fileId, st);
  }

  /**
   * Tell the source side what every destination has of this file (the minimum), with the offsets
   * of those further on; forget the file's state once nothing of it is in flight anywhere.
   */
  private report(fileId: string, st: FileAcks): void {
    const n = this.dests.length;
    const written = st.written;
    const acked = st.acked;
    const last = st.last;
    // What each destination has: what it acknowledged while lines are in flight to it; else
    // everything written so far (it skipped or dropped the rest), or its saved offset when that is
    // further on. No allocation unless something is reported: this runs for every skipped line.
    let min = Number.POSITIVE_INFINITY;
    let idle = true;
    for (let i = 0; i < n; i++) {
      const a = acked[i] as number;
      const inFlight = (written[i] as number) > a;
      if (inFlight) idle = false;
      const h = inFlight ? a : Math.max(a, last);
      if (h < min) min = h;
    }
    // Never past what was read (when every destination was ahead — one that held them back was
    // removed — the commit follows reading, as before, and their offsets travel as `ahead`).
    if (min > last) min = last;
    let aheadMoved = false;
    for (let i = 0; i < n; i++) {
      const a = acked[i] as number;
      const h = (written[i] as number) > a ? a : Math.max(a, last);
      if ((h > min ? h : -1) !== st.reported[i]) aheadMoved = true;
    }
    if (min >= 0 && (min > st.committed || aheadMoved)) {
      st.committed = Math.max(st.committed, min);
      let ahead: Record<string, number> | undefined;
      for (let i = 0; i < n; i++) {
        const a = acked[i] as number;
        const h = (written[i] as number) > a ? a : Math.max(a, last);
        st.reported[i] = h > min ? h : -1;
        if (h > min) {
          ahead ??= {};
          ahead[(this.dests[i] as Dest).name] = h;
        }
      }
      try {
        this.opts.ack.acknowledged(fileId, st.committed, ahead ?? {});
      } catch (err) {
        this.opts.logger.error({ err, fileId }, "acknowledgement listener failed");
      }
    }
    st.idle = idle && st.skip === null && st.committed === st.last;
  }

  /**
   * Forget files with nothing in flight once there are many (rotated away long ago). The state of
   * a file still written to is kept: its committed offset is the base the others' `ahead` needs.
   */
  private prune(): void {
    for (const [id, st] of this.files) {
      if (st.idle) this.files.delete(id);
    }
    this.lastFile = undefined;
    this.lastState = undefined;
  }

  private droppedFull(d: Dest): void {
    d.droppedFull++;
    this.opts.metrics.droppedLines.inc({ destination: d.name, reason: "buffer_full" });
    if (this.fullLog.shouldLog(d.name)) {
      const suppressed = this.fullLog.take();
      this.opts.logger.warn(
        {
          destination: d.name,
          pendingBytes: d.pipeline.pendingBytes,
          droppedLines: d.droppedFull,
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        `${d.pipeline.sink.title} is best-effort (WHEN_FULL=drop) and its buffer is full (MAX_BUFFER_BYTES): dropping lines for it alone; the other destinations are not held back`,
      );
    }
  }
}
