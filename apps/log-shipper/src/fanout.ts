// The fan-out: one read of the files, every destination its own pipeline (queue, retry loop,
// request in flight, metrics labelled `destination`), and per file and destination the offset
// that destination acknowledged.
//
// - Every line goes to every destination, except (a) a destination that already has it — after a
//   restart a destination that was ahead resumes from its own saved offset, so it gets nothing
//   twice — and (b) a best-effort destination (`<DEST>_WHEN_FULL=drop`) whose buffer is full: the
//   line is dropped for it alone (counted, logged).
// - Shared batching (issue 9, fan-out CPU): batch settings are global, so lines are batched once
//   — one Batcher here, owned by the fan-out — and each sealed batch is handed to every
//   destination's pipeline (Pipeline.enqueue: encoded or copied there, queued). A best-effort
//   destination that cannot accept takes none of a sealed batch (its lines counted as dropped);
//   the offsets each destination was handed move per sealed batch (its `acks`), not per line.
//   The shared batcher replaces a line's own time that any destination cannot carry (the least
//   Sink.maxOwnSec): with Loki protobuf next to OTLP or Elasticsearch, a time between 2262 and
//   9999 reaches Loki too at its read time. While a destination is ahead in some file (skip, (a)
//   above), lines go through each destination's own batcher instead, which can leave lines out
//   for one destination; switching between the two modes first seals the other mode's open
//   batches, so every destination's queue keeps per-file order.
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
import type { Log as Logger } from "@sidecar/shared";
import { Batcher, ScannedLine, type SealedBatch } from "./batcher.js";
import type { AckListener, LineSink, SourceFile } from "./contracts.js";
import { knownUtf8 } from "./entry.js";
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
  /**
   * Shared batching: offset past the file's last line in the shared open batch, and past its last
   * line in a sealed one. Lines are in the open batch while `openTo > sealedTo`; no destination
   * has more of the file than `openFrom` (the offset before the first of them) until it is sealed.
   */
  openTo = -1;
  sealedTo = -1;
  openFrom = -1;
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
  /** The batcher shared by every destination (undefined: passthrough, or settings that differ). */
  private batcher: Batcher | undefined;
  /** Lines go to the shared batcher (else to each destination's pipeline). */
  private sharing = false;
  /** Files with lines still to skip for some destination (`FileAcks.skip`): sharing waits for 0. */
  private skipping = 0;
  /** Per destination, whether it took the batch being sealed (reused). */
  private took: boolean[] = [];
  private closed = false;

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
    this.took = new Array<boolean>(this.dests.length).fill(false);
    this.shareBatcher();
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
    st.idle = false;
    // Scanned once here (UTF-8 check, time, level), not once per destination's batcher.
    const scanned = this.scanned.scan(buf, start, end, knownUtf8(file, buf, start, end));
    scanned.fields = fields;
    if (this.sharing) {
      const prev = st.last;
      // Can seal (onSharedSeal) before or after taking the line; `last` moves after, so what a
      // seal reports never covers a line not in a sealed batch yet.
      (this.batcher as Batcher).add(file, buf, start, end, offset, readTimeMs, scanned);
      if (st.openTo <= st.sealedTo) st.openFrom = prev;
      st.openTo = offset;
      st.last = offset;
      for (const p of this.blocking) {
        if (p.stalled()) {
          (this.batcher as Batcher).flush();
          break;
        }
      }
      return;
    }
    st.last = offset;
    let all = true;
    const skip = st.skip;
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
    if (skip !== null && offset >= Math.max(...skip)) this.skipDone(st);
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
    if (st.skip !== null && offset >= Math.max(...st.skip)) this.skipDone(st);
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
    this.batcher?.flush();
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
    const old = this.files.get(file.id);
    if (old !== undefined) {
      // Its lines still in the shared open batch are handed on under the state they were written with.
      if (old.openTo > old.sealedTo) this.batcher?.flush();
      if (old.skip !== null) this.skipDone(old);
    }
    const st = new FileAcks(n);
    st.written.fill(offset);
    st.acked.fill(offset);
    st.last = offset;
    st.committed = offset;
    if (ahead !== undefined) {
      const skip = this.dests.map((d) => ahead[d.name] ?? -1);
      if (skip.some((o) => o > offset)) {
        st.skip = skip;
        this.skipStarts();
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

  /**
   * The reader of `file` writes no more lines (retired or forgotten). A destination that was ahead
   * in it has nothing left to skip: without this, a reader replaced before it caught up (the file
   * truncated or rewritten meanwhile) would keep every line on the per-destination path until a
   * restart.
   */
  end(file: SourceFile): void {
    if (this.passthrough) return;
    const st = this.files.get(file.id);
    if (st !== undefined && st.skip !== null) this.skipDone(st);
  }

  // --- lifecycle ------------------------------------------------------------------------------

  start(): void {
    for (const d of this.dests) d.pipeline.start();
  }

  /** True once every destination has everything written so far; false at the deadline. */
  async drain(deadline: number): Promise<boolean> {
    for (;;) {
      this.batcher?.flush();
      const done = await Promise.all(this.dests.map((d) => d.pipeline.drain(deadline)));
      if (!done.every(Boolean)) return false;
      // Lines written while the pipelines drained wait in the shared open batch: again with those.
      if (this.batcher === undefined || this.batcher.openBytes === 0) return true;
      if (Date.now() >= deadline || this.closed) return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.batcher?.close();
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

  /**
   * (Re)build the shared batcher for the destinations added so far: not for the passthrough, nor
   * when the pipelines' batch settings differ (tests build such; the configuration cannot).
   */
  private shareBatcher(): void {
    const dests = this.dests;
    let sharable = !this.passthrough && dests.length > 0;
    const first = (dests[0] as Dest | undefined)?.pipeline.batchSettings;
    const key = (b: NonNullable<typeof first>) =>
      JSON.stringify([b.baseLabels, b.batchMaxBytes, b.batchWaitMs]);
    if (sharable && first !== undefined) {
      for (const d of dests) if (key(d.pipeline.batchSettings) !== key(first)) sharable = false;
    }
    if (!sharable || first === undefined) {
      this.batcher = undefined;
    } else {
      // The least any destination can carry; entry refs when any destination needs them.
      let maxOwnSec = Number.POSITIVE_INFINITY;
      for (const d of dests) maxOwnSec = Math.min(maxOwnSec, d.pipeline.sink.maxOwnSec);
      this.batcher = new Batcher({
        ...first,
        maxOwnSec,
        ...(dests.some((d) => d.pipeline.sink.entryRefs === true) ? { entryRefs: true } : {}),
        onSeal: (b) => this.onSharedSeal(b),
      });
    }
    for (const d of dests) d.pipeline.shareBatch(this.batcher);
    this.sharing = this.batcher !== undefined && this.skipping === 0;
  }

  /**
   * A shared batch sealed: to every destination that can take it; a best-effort one that is full
   * takes none of it. Then what each destination was handed, per file, from the batch's acks.
   */
  private onSharedSeal(batch: SealedBatch): void {
    const dests = this.dests;
    const took = this.took;
    let all = true;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i] as Dest;
      if (d.drop && !d.pipeline.canAccept()) {
        took[i] = false;
        all = false;
        this.droppedFull(d, batch.lines);
      } else {
        took[i] = true;
        d.pipeline.enqueue(batch);
      }
    }
    for (const a of batch.acks) {
      const st = this.files.get(a.fileId);
      if (st === undefined) continue; // its state was replaced (begin) after its lines were handed on
      if (a.offset > st.sealedTo) st.sealedTo = a.offset;
      for (let i = 0; i < dests.length; i++) if (took[i]) st.written[i] = a.offset;
      if (!all) this.report(a.fileId, st);
    }
  }

  /** A file has lines to skip for some destination: lines go through each one's own batcher. */
  private skipStarts(): void {
    if (this.skipping++ === 0 && this.sharing) {
      // What the shared batch holds goes to the queues first, so per-file order holds.
      const shared = this.batcher as Batcher;
      shared.flush();
      for (const d of this.dests) d.pipeline.continueTimes(shared, false);
      this.sharing = false;
    }
  }

  /** A file's skipping is over; with no file left skipping, lines are batched once again. */
  private skipDone(st: FileAcks): void {
    st.skip = null;
    if (--this.skipping === 0 && this.batcher !== undefined && !this.sharing) {
      // What the destinations' own batchers hold goes to the queues first, so per-file order holds.
      for (const d of this.dests) {
        d.pipeline.flush();
        d.pipeline.continueTimes(this.batcher, true);
      }
      this.sharing = true;
    }
  }

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
    // With lines of the file in the shared open batch, no destination has more than what came
    // before them (they are in flight to every destination, just not handed on yet).
    const last = st.openTo > st.sealedTo ? st.openFrom : st.last;
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

  private droppedFull(d: Dest, lines = 1): void {
    d.droppedFull += lines;
    this.opts.metrics.droppedLines.inc({ destination: d.name, reason: "buffer_full" }, lines);
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
