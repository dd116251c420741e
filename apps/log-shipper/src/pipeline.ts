// The sink side of the log shipper: a LineSink that readers write lines into, which batches them
// (batcher.ts), encodes each sealed batch (protobuf+snappy, JSON, or the dry-run rendering), sends
// the batches to Loki in order, retries what may be retried, and acknowledges file offsets back
// to the source side once Loki has taken the batch that contains them.
//
// API decisions:
// - `new Pipeline(opts)` builds everything; `start()` begins sending (lines written before it are
//   batched and queued); `flush()` seals the open batch; `drain(deadline)` resolves true once
//   every line written so far is acknowledged, or false at `deadline` (epoch ms) — and then stops
//   retrying and aborts the request in flight; `close()` is idempotent and stops everything
//   without acknowledging anything more.
// - Shared batching (several destinations, fanout.ts): the fan-out may batch lines once for every
//   destination and hand each sealed batch to each pipeline's `enqueue` (what the pipeline's own
//   batcher's seal does: encode now, or copy for Sink.encodeLate; queue; count pending bytes).
//   `shareBatch(batcher)` makes the pipeline count that batcher's open batch in its pending
//   bytes and open-batch gauge, as it counts its own.
// - One request in flight, batches sent in the order they were sealed: per-file order holds in
//   Loki and acknowledgements arrive in increasing offset order per file, as AckListener needs.
//   The next batch goes out only once the acknowledgements of the last one are persisted
//   (AckListener.persisted, asked when there is a next batch to send: with nothing queued the
//   write is left to the positions' group commit), so a kill -9 re-sends at most one batch.
// - Back-pressure: `pendingBytes` counts file bytes read but not yet acknowledged (open batch
//   plus queued batches). `canAccept()` is false at MAX_BUFFER_BYTES; the queue of sealed
//   batches is bounded by the same count, because readers stop feeding it. Sealed batches are
//   kept encoded and compressed, so the bound in memory is well under MAX_BUFFER_BYTES — or, for
//   a sink whose encoding is larger than the lines (Sink.encodeLate: uncompressed Elasticsearch
//   NDJSON), as a copy of their entries, encoded only when next to send (a batch sealed with
//   nothing queued or in flight is encoded at once, without the copy): about MAX_BUFFER_BYTES.
// - Outcomes: 2xx → acknowledged. 429/5xx/408/network/timeout, and 401/403/404 (credentials,
//   tenant or URL — logged as errors with the likely cause) → the same batch is retried after
//   a jittered exponential backoff (RETRY_MIN_MS…RETRY_MAX_MS), or after Retry-After when Loki
//   sends one (honoured in full — at least RETRY_MIN_MS, at most RETRY_AFTER_MAX_MS, not clamped
//   to RETRY_MAX_MS), for as long as it takes. Other 4xx: when Loki's answer is its per-entry
//   verdict ("entry for stream … has timestamp too old", "N errors like: …"), Loki stored every
//   other entry of the push, so the batch is done and the entries it names are counted as
//   dropped. Any other 4xx (a decode error fails the whole push for one bad entry) never costs
//   good lines: the batch is split in halves that are sent again (batch-split.ts), until the
//   entries still refused are single ones — those are dropped, counted by reason, logged with
//   an example. A batch's offsets are acknowledged once its last part is done, so commits move
//   on only after the rest was acknowledged.
// - Logs: one line per retry, per drop and on recovery — never per line; repeats of the same
//   retry reason or drop message within REPEAT_LOG_INTERVAL_MS are counted into the next line
//   (`suppressed`) instead of flooding the log during a long outage or a misconfiguration.
//   `stats()` gives plain counters for the app's periodic summary line.
// - Lines written after close() are ignored (the source side stops reading before closing).
import { readFileSync } from "node:fs";
import type { Registry } from "@sidecar/shared";
import { backoffDelay, type Log as Logger, StartupError, sleep } from "@sidecar/shared";
import { Batcher, type ScannedLine, type SealedBatch } from "./batcher.js";
import type { AckListener, LineSink, SourceFile } from "./contracts.js";
import { baseLabels } from "./labels.js";
import { LogLimiter } from "./log-limiter.js";
import type { SecretSource } from "./secret-file.js";
import { createSinkMetrics, type SinkMetrics } from "./sink-metrics.js";
import { DryRunSink } from "./sinks/dry-run/dry-run.js";
import type { EncodedBody } from "./sinks/loki/encode-protobuf.js";
import { LokiClient, type SendResult, type Transport } from "./sinks/loki/loki-client.js";
import { LokiSink } from "./sinks/loki/loki-sink.js";
import type { BatchStream, PartialResult, Sink, SinkResult } from "./sinks/sink.js";

/** The same retry reason or drop message is logged at most once per this interval (counted between). */
export const REPEAT_LOG_INTERVAL_MS = 30_000;
/** A Retry-After beyond this (1 h) is taken as this: a sanity bound against absurd values. */
export const RETRY_AFTER_MAX_MS = 3_600_000;

export interface PipelineOptions {
  /**
   * The destination. When omitted it is built from the Loki settings below: Loki when `endpoint`
   * (or `transport`) is given, else the dry run.
   */
  sink?: Sink;
  /** Loki push URL (a bare base URL gets /loki/api/v1/push). Unset = dry run. */
  endpoint?: URL;
  encoding?: "protobuf" | "json";
  /** For JSON only (protobuf is always snappy). */
  compression?: "gzip" | "none";
  tenantId?: string;
  username?: string;
  /** Password: the LOKI_PASSWORD_FILE (followed as it changes), or the password itself. */
  password?: SecretSource;
  /** Bearer token: the LOKI_BEARER_TOKEN_FILE (followed as it changes), or the token itself. */
  bearerToken?: SecretSource;
  /** Path of an extra CA (PEM) added to the default trust. */
  caFile?: string;
  /** Extra CA contents (PEM), when the caller already read the file. */
  ca?: string;
  timeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  batchWaitMs: number;
  batchMaxBytes: number;
  maxBufferBytes: number;
  staticLabels: Readonly<Record<string, string>>;
  /** namespace/pod/container/node — see labels.podLabelsFromEnv. */
  podLabels?: Readonly<Record<string, string>>;
  registry: Registry;
  logger: Logger;
  ack: AckListener;
  /** Dry-run output; process.stdout by default. */
  dryRunOut?: NodeJS.WritableStream;
  /** Replaces the Loki client / dry run (tests, benchmarks). */
  transport?: Transport;
  /** Shared metrics (one set per registry, labelled by destination); created when omitted. */
  metrics?: SinkMetrics;
  /** Backoff jitter source (tests). */
  random?: () => number;
}

export interface PipelineStats {
  /** Lines / line bytes acknowledged by Loki. */
  linesSent: number;
  bytesSent: number;
  batchesSent: number;
  /** Push attempts that failed and were retried. */
  retries: number;
  batchesDropped: number;
  linesDropped: number;
  /** Rejected batches sent again as halves. */
  batchesSplit: number;
  /** Lines sent with their read time because their own time was out of range. */
  timestampsReplaced: number;
  /** Lines whose invalid UTF-8 was replaced. */
  linesRepaired: number;
  pendingBytes: number;
  queuedBatches: number;
  /** Failed attempts since the last success (0 when Loki is fine). */
  consecutiveFailures: number;
  /** Epoch ms of the last acknowledged batch, 0 if none yet. */
  lastSuccessMs: number;
}

interface QueuedBatch {
  /** The request body; undefined until the batch is next to send when the sink encodes late. */
  body: EncodedBody | undefined;
  /** The batch's streams, entries copied, while `body` is not made yet (Sink.encodeLate). */
  held?: readonly BatchStream[];
  /** The buffer `held`'s entries are in (given back to the pool once encoded). */
  holdBuf?: Buffer;
  readonly acks: SealedBatch["acks"];
  readonly lines: number;
  readonly lineBytes: number;
  readonly pendingBytes: number;
}

export class Pipeline implements LineSink {
  readonly dryRun: boolean;
  readonly sink: Sink;
  private readonly opts: PipelineOptions;
  private readonly log: Logger;
  private readonly batcher: Batcher;
  /** The fan-out's batcher whose sealed batches this pipeline is given (enqueue), if any. */
  private shared: Batcher | undefined;
  /** `{ destination }`, the label every metric of this pipeline carries. */
  private readonly dest: { destination: string };
  private readonly metrics: SinkMetrics;
  private readonly queue: QueuedBatch[] = [];
  private readonly drainListeners: (() => void)[] = [];
  private idleWaiters: ((idle: boolean) => void)[] = [];
  private readonly abort = new AbortController();
  private pending = 0;
  private started = false;
  private stopped = false;
  private closing: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private attempt = 0;
  /** Acknowledgements were made that the next send must wait to see durable (persisted). */
  private unpersisted = false;
  /** Repeats of the same retry reason / drop message are logged at most this often. */
  private readonly retryLog = new LogLimiter(REPEAT_LOG_INTERVAL_MS);
  private readonly dropLog = new LogLimiter(REPEAT_LOG_INTERVAL_MS);
  /** Buffers of held batches already encoded, for the next batches to hold (Sink.encodeLate). */
  private readonly holdPool = new HoldPool();
  private readonly replacedLog = new LogLimiter(REPEAT_LOG_INTERVAL_MS);
  private outageStartMs = 0;
  private readonly counters = {
    linesSent: 0,
    bytesSent: 0,
    batchesSent: 0,
    retries: 0,
    batchesDropped: 0,
    linesDropped: 0,
    batchesSplit: 0,
    timestampsReplaced: 0,
    linesRepaired: 0,
    lastSuccessMs: 0,
  };

  constructor(opts: PipelineOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.sink = opts.sink ?? lokiOrDryRun(opts);
    this.dryRun = this.sink.name === "dry-run";
    this.dest = { destination: this.sink.name };
    this.batcher = new Batcher({
      baseLabels: baseLabels(opts.staticLabels, opts.podLabels),
      batchMaxBytes: opts.batchMaxBytes,
      batchWaitMs: opts.batchWaitMs,
      maxOwnSec: this.sink.maxOwnSec,
      ...(this.sink.entryRefs === true ? { entryRefs: true } : {}),
      ...(this.sink.packedEntries === true ? { pack: true } : {}),
      onSeal: (b) => this.onSeal(b),
    });
    this.metrics = opts.metrics ?? createSinkMetrics(opts.registry);
    this.metrics.watch(this.sink.name, () => ({
      pendingBytes: this.pendingBytes,
      queuedBatches: this.queue.length,
      openBatchBytes: this.batcher.openBytes + (this.shared?.openBytes ?? 0),
    }));
  }

  // --- LineSink -------------------------------------------------------------------------------

  writeLine(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    _truncated: boolean,
    readTimeMs: number,
    /** The line already scanned (the fan-out scans once for every destination). */
    scanned?: ScannedLine,
  ): void {
    if (this.stopped) return;
    this.pending += this.batcher.add(file, buf, start, end, offset, readTimeMs, scanned);
    // At the bound readers stop. If nothing is queued, no acknowledgement is coming to make room
    // but the open batch's own: seal it now rather than after its age. (With batches queued, their
    // acknowledgements make room; sealing here would only cut batches small.)
    if (this.stalled()) this.batcher.flush();
  }

  /**
   * A batch sealed by the fan-out's shared batcher (see `shareBatch`), for this destination:
   * encoded (or copied, Sink.encodeLate) before returning, queued, its bytes counted as pending.
   */
  enqueue(batch: SealedBatch): void {
    if (this.stopped) return;
    this.pending += batch.pendingBytes;
    this.onSeal(batch);
  }

  /**
   * Count `batcher`'s open batch (the fan-out's, shared by every destination) in this pipeline's
   * pending bytes and open-batch gauge; its sealed batches come through `enqueue`.
   */
  shareBatch(batcher: Batcher | undefined): void {
    this.shared = batcher;
  }

  /**
   * Lines move between this pipeline's own batcher and `shared` (`toShared`: to it, else from it):
   * the batcher they move to continues the other's per-stream timestamps (Batcher.continueTimes).
   */
  continueTimes(shared: Batcher, toShared: boolean): void {
    if (toShared) shared.continueTimes(this.batcher);
    else this.batcher.continueTimes(shared);
  }

  /** The settings a batcher shared with this pipeline must have (they are global). */
  get batchSettings(): {
    baseLabels: Readonly<Record<string, string>>;
    batchMaxBytes: number;
    batchWaitMs: number;
  } {
    return {
      baseLabels: baseLabels(this.opts.staticLabels, this.opts.podLabels),
      batchMaxBytes: this.opts.batchMaxBytes,
      batchWaitMs: this.opts.batchWaitMs,
    };
  }

  get pendingBytes(): number {
    return this.pending + (this.shared?.openPendingBytes ?? 0);
  }

  canAccept(): boolean {
    return this.pendingBytes < this.opts.maxBufferBytes;
  }

  /**
   * At MAX_BUFFER_BYTES with nothing queued: no acknowledgement is coming to make room but the
   * open batch's own, so it is to be sealed now rather than after its age.
   */
  stalled(): boolean {
    return this.queue.length === 0 && this.pendingBytes >= this.opts.maxBufferBytes;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  flush(): void {
    this.batcher.flush();
  }

  // --- lifecycle ------------------------------------------------------------------------------

  /** Begin sending. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.kick();
  }

  /**
   * Seal the open batch and wait until everything written so far is acknowledged (true), or
   * until `deadline` (epoch ms): then stop retrying, abort the request in flight and resolve
   * false — what was not acknowledged stays unacknowledged for the next start.
   */
  async drain(deadline: number): Promise<boolean> {
    this.flush();
    if (this.isIdle()) return true;
    if (this.stopped) return false;
    this.start();
    const done = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.idleWaiters.push((idle) => {
        clearTimeout(timer);
        resolve(idle);
      });
    });
    if (!done) this.stop();
    return done && this.isIdle();
  }

  /** Stop sending (in-flight request aborted) and release the transport. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop();
      await this.loop;
      await this.sink.close();
    })();
    return this.closing;
  }

  stats(): PipelineStats {
    return {
      ...this.counters,
      pendingBytes: this.pendingBytes,
      queuedBatches: this.queue.length,
      consecutiveFailures: this.attempt,
    };
  }

  // --- internals ------------------------------------------------------------------------------

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.batcher.close();
    this.abort.abort(new Error("log shipper pipeline stopped"));
    // A drain() still waiting learns now that it will not complete (not at its deadline).
    if (this.loop === undefined) this.wakeWaiters(false);
  }

  private wakeWaiters(idle: boolean): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w(idle);
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.batcher.openBytes === 0 && this.loop === undefined;
  }

  private onSeal(batch: SealedBatch): void {
    // Encoded late (Sink.encodeLate) only when it has to wait: with nothing queued or in flight the
    // batch is next to send and no earlier body is in use, so it is encoded now, without the copy.
    const late = this.sink.encodeLate === true && (this.queue.length > 0 || this.loop !== undefined);
    const body = late ? undefined : this.sink.encode(batch.streams);
    this.counters.linesRepaired += batch.repairedLines;
    if (batch.replacedTimestamps > 0) {
      this.counters.timestampsReplaced += batch.replacedTimestamps;
      this.metrics.timestampsReplaced.inc(this.dest, batch.replacedTimestamps);
      if (this.replacedLog.shouldLog("replaced")) {
        const suppressed = this.replacedLog.take();
        this.log.warn(
          {
            lines: batch.replacedTimestamps,
            example: batch.replacedExample,
            ...(suppressed > 0 ? { suppressed } : {}),
          },
          "lines with a time Loki cannot take (beyond what it can decode, before 1970, or more than 10 min ahead) were sent with their read time",
        );
      }
    }
    this.queue.push({
      body,
      ...(late ? this.hold(batch.streams) : {}),
      acks: batch.acks,
      lines: batch.lines,
      lineBytes: batch.lineBytes,
      pendingBytes: batch.pendingBytes,
    });
    this.kick();
  }

  private kick(): void {
    if (!this.started || this.stopped || this.loop !== undefined || this.queue.length === 0) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      // Nothing in flight: the next batch is encoded at once, not held — no spare buffer kept idle.
      if (this.queue.length === 0) this.holdPool.clear();
      if (this.isIdle()) {
        this.wakeWaiters(true);
      } else if (this.stopped) {
        this.wakeWaiters(false);
      } else {
        // A batch sealed while the loop was finishing its last await.
        this.kick();
      }
    });
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const dest = this.sink.name;
    while (this.queue.length > 0 && !this.stopped) {
      if (this.unpersisted) {
        // The last acknowledgements are made durable before anything more is sent — only now that
        // there is more to send, so with nothing queued they are written with those of the other
        // destinations (Positions.persist: group commit), not each on its own.
        this.unpersisted = false;
        await this.persisted();
        if (this.stopped) break;
      }
      const head = this.queue[0] as QueuedBatch;
      const t0 = performance.now();
      let result: SinkResult;
      try {
        result = await this.sink.send(this.bodyOf(head), signal);
      } catch (err) {
        // A sink must return values; a throw is a bug, but must not wedge the pipeline.
        result = { kind: "retryable", reason: "error", message: String(err) };
      }
      const seconds = (performance.now() - t0) / 1000;
      if (result.kind === "success") {
        this.metrics.sendDuration.observe({ destination: dest, outcome: "success" }, seconds);
        this.onSuccess(head, head.lines);
        this.complete(head);
      } else if (result.kind === "partial") {
        this.metrics.sendDuration.observe({ destination: dest, outcome: "partial" }, seconds);
        if (this.onPartial(head, result)) {
          this.complete(head);
        } else {
          if (this.stopped) break;
          await this.backoff(head, { kind: "retryable", reason: "partial", ...retryAfter(result) }, signal);
        }
      } else if (result.kind === "failure") {
        const named = this.sink.refusedEntries?.(result.message);
        if (named === undefined && head.lines > 1 && this.split(head)) {
          this.metrics.sendDuration.observe({ destination: dest, outcome: "split" }, seconds);
          continue;
        }
        this.metrics.sendDuration.observe({ destination: dest, outcome: "dropped" }, seconds);
        this.onDropped(head, result, named);
      } else {
        if (this.stopped) break; // aborted by drain's deadline or close(): not a failure to report
        this.metrics.sendDuration.observe({ destination: dest, outcome: "retry" }, seconds);
        await this.backoff(head, result, signal);
      }
    }
  }

  /**
   * A sealed batch's streams with their entries copied into one buffer of their own (the batcher
   * reuses its stream buffers for the next batch); labels and entry refs are the batch's already.
   */
  private hold(streams: readonly BatchStream[]): { held: BatchStream[]; holdBuf: Buffer } {
    let size = 0;
    for (const s of streams) size += s.entries.length;
    const all = this.holdPool.take(size);
    let p = 0;
    const held = streams.map((s) => {
      all.set(s.entries, p);
      const entries = all.subarray(p, p + s.entries.length);
      p += s.entries.length;
      return { ...s, entries };
    });
    return { held, holdBuf: all };
  }

  /** The batch's request body, encoded now if the sink encodes late (then kept for retries). */
  private bodyOf(batch: QueuedBatch): EncodedBody {
    if (batch.body === undefined) {
      batch.body = this.sink.encode(batch.held as readonly BatchStream[]);
      batch.held = undefined;
      if (batch.holdBuf !== undefined) this.holdPool.give(batch.holdBuf);
      batch.holdBuf = undefined;
    }
    return batch.body;
  }

  /** `lines` of the head batch were taken by the destination. */
  private onSuccess(head: QueuedBatch, lines: number): void {
    const now = Date.now();
    const c = this.counters;
    const d = this.dest;
    c.linesSent += lines;
    c.bytesSent += head.lineBytes;
    c.batchesSent++;
    c.lastSuccessMs = now;
    const m = this.metrics;
    m.sentLines.inc(d, lines);
    m.sentBytes.inc(d, head.lineBytes);
    m.requestBytes.inc(d, this.bodyOf(head).body.length);
    m.batches.inc({ destination: d.destination, outcome: "success" });
    m.lastSuccess.set(d, now / 1000);
    if (this.attempt > 0) {
      this.log.info(
        { failedAttempts: this.attempt, outageMs: now - this.outageStartMs },
        `${this.sink.title} accepts batches again`,
      );
      this.attempt = 0;
      this.retryLog.reset();
    }
  }

  /**
   * The destination took some entries and refused others (counted, logged). True when the batch
   * is done; false when some entries are to be sent again — the head then carries only those.
   */
  private onPartial(head: QueuedBatch, result: PartialResult): boolean {
    const c = this.counters;
    const retryLines = result.retry?.lines ?? 0;
    const dropped = Math.min(result.dropped, head.lines - retryLines);
    const taken = head.lines - retryLines - dropped;
    if (dropped > 0) {
      c.linesDropped += dropped;
      this.metrics.droppedLines.inc({ destination: this.sink.name, reason: result.reason }, dropped);
      if (this.dropLog.shouldLog(`${result.reason} ${result.message ?? ""}`)) {
        const suppressed = this.dropLog.take();
        this.log.error(
          {
            status: result.status,
            reason: result.reason,
            lines: dropped,
            stored: taken,
            ...(retryLines > 0 ? { retrying: retryLines } : {}),
            ...(result.message !== undefined ? { destinationMessage: result.message } : {}),
            ...(suppressed > 0 ? { suppressed } : {}),
          },
          `${this.sink.title} refused entries of a batch for good (it stored the others); dropped them`,
        );
      }
    }
    if (result.retry === undefined || retryLines === 0) {
      this.onSuccess(head, taken);
      return true;
    }
    // Only the entries still to send stay queued; the batch's offsets wait for them.
    if (taken > 0) {
      c.linesSent += taken;
      this.metrics.sentLines.inc(this.dest, taken);
    }
    this.queue[0] = {
      ...head,
      body: result.retry.body,
      held: undefined,
      holdBuf: undefined,
      lines: retryLines,
    };
    return false;
  }

  /**
   * Replace the head batch by its two halves (sent next, in order). The first half acknowledges
   * nothing; the second carries the batch's acknowledgements and pending bytes, so offsets move
   * only once every part is done. False when the sink cannot split it (then it is dropped).
   */
  private split(head: QueuedBatch): boolean {
    if (this.sink.split === undefined) return false;
    let halves: ReturnType<NonNullable<Sink["split"]>>;
    try {
      halves = this.sink.split(this.bodyOf(head));
    } catch (err) {
      this.log.error({ err }, "cannot read a rejected batch back to split it");
      return false;
    }
    if (halves === undefined) return false;
    const [a, b] = halves;
    const first: QueuedBatch = {
      body: a.body,
      acks: [],
      lines: a.lines,
      lineBytes: a.lineBytes,
      pendingBytes: 0,
    };
    const second: QueuedBatch = {
      body: b.body,
      acks: head.acks,
      lines: b.lines,
      lineBytes: b.lineBytes,
      pendingBytes: head.pendingBytes,
    };
    this.queue.splice(0, 1, first, second);
    this.counters.batchesSplit++;
    this.metrics.batches.inc({ destination: this.sink.name, outcome: "split" });
    return true;
  }

  private onDropped(
    head: QueuedBatch,
    result: Extract<SendResult, { kind: "failure" }>,
    /** Entries the destination's per-entry verdict names (it stored the others), when it gave one. */
    named?: number,
  ): void {
    const c = this.counters;
    const d = this.sink.name;
    const dropped = named === undefined ? head.lines : Math.min(named, head.lines);
    c.batchesDropped++;
    c.linesDropped += dropped;
    this.metrics.batches.inc({ destination: d, outcome: "dropped" });
    this.metrics.droppedLines.inc({ destination: d, reason: result.reason }, dropped);
    if (dropped < head.lines) {
      // The destination stored the rest (Loki's validation drops single entries).
      c.linesSent += head.lines - dropped;
      this.metrics.sentLines.inc(this.dest, head.lines - dropped);
    }
    if (this.dropLog.shouldLog(`${result.status} ${result.message}`)) {
      const suppressed = this.dropLog.take();
      let example: unknown;
      if (head.lines === 1 && this.sink.example !== undefined) {
        try {
          example = this.sink.example(this.bodyOf(head));
        } catch {
          // the example is best effort
        }
      }
      const loki = this.sink.name === "loki";
      this.log.error(
        {
          status: result.status,
          reason: result.reason,
          lines: dropped,
          ...(dropped < head.lines ? { [loki ? "storedByLoki" : "stored"]: head.lines - dropped } : {}),
          [loki ? "lokiMessage" : "destinationMessage"]: result.message,
          ...(example !== undefined ? { example } : {}),
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        named !== undefined
          ? `${this.sink.title} refused entries of a batch for good (it stored the others); dropped them`
          : `${this.sink.title} rejected a batch for good; dropped it`,
      );
    }
    // A 4xx is the destination judging this batch, not being away: the outage bookkeeping resets.
    this.attempt = 0;
    this.complete(head);
  }

  private async backoff(
    head: QueuedBatch,
    result: Extract<SendResult, { kind: "retryable" }>,
    signal: AbortSignal,
  ): Promise<void> {
    const { retryMinMs, retryMaxMs } = this.opts;
    if (this.attempt === 0) this.outageStartMs = Date.now();
    this.attempt++;
    this.counters.retries++;
    this.metrics.batches.inc({ destination: this.sink.name, outcome: "retry" });
    this.metrics.retries.inc({ destination: this.sink.name, reason: result.reason });
    // The destination (or the gateway in front) said when to come back: that is honoured in
    // full, even past RETRY_MAX_MS (which bounds our own guesses, not its answer); only a sanity
    // cap applies.
    const delayMs =
      result.retryAfterMs !== undefined
        ? Math.min(RETRY_AFTER_MAX_MS, Math.max(retryMinMs, result.retryAfterMs))
        : backoffDelay(this.attempt, {
            minMs: retryMinMs,
            maxMs: retryMaxMs,
            ...(this.opts.random ? { random: this.opts.random } : {}),
          });
    if (this.retryLog.shouldLog(result.reason)) {
      const suppressed = this.retryLog.take();
      // 401/403/404 are configuration (credentials, tenant, URL), not an outage: said loudly,
      // with the likely cause, since nothing gets through until someone fixes it.
      const level = result.hint !== undefined ? "error" : "warn";
      this.log[level](
        {
          status: result.status,
          reason: result.reason,
          attempt: this.attempt,
          delayMs,
          ...(result.retryAfterMs !== undefined ? { retryAfterMs: result.retryAfterMs } : {}),
          lines: head.lines,
          ...(result.message
            ? { [this.sink.name === "loki" ? "lokiMessage" : "destinationMessage"]: result.message }
            : {}),
          ...(result.hint !== undefined ? { hint: result.hint } : {}),
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        `push to ${this.sink.title} failed; retrying`,
      );
    }
    await sleep(delayMs, signal);
  }

  /**
   * Wait until the acknowledgements just made are durable before sending the next batch — but not
   * past close() or drain's deadline (abort): a hung state volume must not hold the shutdown.
   */
  private async persisted(): Promise<void> {
    const signal = this.abort.signal;
    const pending = this.opts.ack.persisted?.();
    if (pending === undefined) return;
    const done = pending.catch((err: unknown) => {
      this.log.error({ err }, "acknowledgement listener failed to persist");
    });
    if (signal.aborted) return;
    let onAbort = () => {};
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([done, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** The head batch is done (sent or dropped): acknowledge its offsets and make room. */
  private complete(head: QueuedBatch): void {
    this.queue.shift();
    if (head.body !== undefined) this.sink.release?.(head.body);
    if (head.acks.length > 0) this.unpersisted = true;
    this.pending -= head.pendingBytes;
    for (const a of head.acks) {
      try {
        this.opts.ack.acknowledged(a.fileId, a.offset);
      } catch (err) {
        this.log.error({ err, fileId: a.fileId }, "acknowledgement listener failed");
      }
    }
    if (this.canAccept()) {
      for (const l of this.drainListeners) l();
    }
  }
}

/** The sink the Loki settings describe: Loki (or a given transport), else the dry run. */
function lokiOrDryRun(opts: PipelineOptions): Sink {
  if (opts.endpoint === undefined && opts.transport === undefined) {
    return new DryRunSink(opts.dryRunOut ?? process.stdout);
  }
  const transport =
    opts.transport ??
    new LokiClient({
      endpoint: opts.endpoint as URL,
      timeoutMs: opts.timeoutMs,
      ...(opts.tenantId !== undefined ? { tenantId: opts.tenantId } : {}),
      ...(opts.username !== undefined ? { username: opts.username } : {}),
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      ...(opts.bearerToken !== undefined ? { bearerToken: opts.bearerToken } : {}),
      ...(opts.ca !== undefined || opts.caFile !== undefined ? { ca: readCa(opts) } : {}),
    });
  return new LokiSink(transport, opts.encoding ?? "protobuf", opts.compression ?? "gzip");
}

/**
 * Buffers for held batches (Sink.encodeLate), given back once their batch is encoded. Allocating
 * a fresh one per batch — a megabyte, mmap'd and page-faulted in each time — was the largest
 * allocation of a fan-out with Elasticsearch (~100 MiB per 500k lines at 50k lines/s), enough
 * external memory to start a major GC every second or so. A buffer is reused only for a batch
 * that needs at least 3/4 of it, so a held batch never keeps much more memory than its own
 * (MAX_BUFFER_BYTES bounds the lines held, not the buffers' spare room). One is kept, and only
 * while batches are being sent: the batch held behind the one in flight takes the buffer that one
 * was encoded from; once the queue is empty the next batch is encoded at once (nothing to hold).
 */
class HoldPool {
  private spare: Buffer | undefined;

  take(size: number): Buffer {
    const b = this.spare;
    if (b !== undefined && b.length >= size && size >= b.length - (b.length >>> 2)) {
      this.spare = undefined;
      return b;
    }
    // Room for a batch a little larger next time (a batch's size varies by a line or so).
    return Buffer.allocUnsafeSlow(size + (size >>> 4));
  }

  give(b: Buffer): void {
    this.spare = b;
  }

  clear(): void {
    this.spare = undefined;
  }
}

function retryAfter(r: PartialResult): { retryAfterMs?: number } {
  return r.retryAfterMs !== undefined ? { retryAfterMs: r.retryAfterMs } : {};
}

function readCa(opts: PipelineOptions): string {
  if (opts.ca !== undefined) return opts.ca;
  const file = opts.caFile as string;
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new StartupError(`LOKI_CA_FILE=${file}: cannot read the CA file (${(err as Error).message})`);
  }
}
