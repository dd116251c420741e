// The log shipper assembled: positions, discovery, tailer (the source side) feeding the pipeline
// (the sink side), whose acknowledgements flow back into positions; one prom-client Registry for
// both sides, served with /healthz and /readyz. buildApp() wires, start() begins, close() drains
// within a deadline — no process-level concerns here (those are in main.ts).

import type { Log as Logger } from "@sidecar/shared";
import { collectDefaultMetrics, type Readiness, Registry, StartupError } from "@sidecar/shared";
import { type Config, describeConfig } from "./config.js";
import { FanOut } from "./fanout.js";
import { HealthServer } from "./http-server.js";
import { Pipeline } from "./pipeline.js";
import { multilineRule, redactRules } from "./processing/config.js";
import { ProcessingStage, processingEnabled } from "./processing/stage.js";
import { createSinkMetrics } from "./sink-metrics.js";
import { createDestinations, type Destination } from "./sinks/index.js";
import type { Transport } from "./sinks/loki/loki-client.js";
import { Discovery } from "./source/discovery.js";
import { Positions } from "./source/positions.js";
import { createSourceMetrics } from "./source/source-metrics.js";
import { Tailer, type TailerOptions } from "./source/tailer.js";
import { Summary } from "./summary.js";

/**
 * The read loop's shared chunk buffer (raised to MAX_LINE_BYTES + 2 when that is larger, so a
 * line of the maximum length always fits). The loop's own default, 1 MiB, stays resident once a
 * backlog has filled it; 256 KiB holds what a writer at 50k lines/s appends within the loop's
 * 50 ms read coalescing (≈ 500 KB arrive in two reads instead of one).
 */
const READ_CHUNK_BYTES = 256 * 1024;

export interface AppDeps {
  logger: Logger;
  /** Replaces the Loki client (tests, benchmarks). */
  transport?: Transport;
  /** Replaces the destinations the configuration enables (tests). */
  destinations?: Destination[];
  /** Where the dry run prints batches (stdout by default). */
  dryRunOut?: NodeJS.WritableStream;
  /** Process metrics (off in tests that build several apps in one process). */
  processMetrics?: boolean;
  /** Whether to listen on HTTP_HOST/HTTP_PORT (tests can use `server.inject`). */
  listen?: boolean;
  /**
   * The tailer's clocks for closing quiet files and polling while none is open (tests: the model
   * closes and reopens files within a run; the defaults are a minute and five seconds).
   */
  tailerClocks?: Pick<TailerOptions, "idleCloseMs" | "quietPollMs">;
}

export interface ShutdownReport {
  /** Everything read to its end, sent and acknowledged, positions saved. */
  clean: boolean;
  /** The final positions write succeeded (false: the next start re-sends what was delivered since the last good write). */
  positionsSaved: boolean;
  /** Bytes on disk not yet acknowledged: what the next start will (re)send. */
  remainingBytes: number;
}

export interface App {
  readonly registry: Registry;
  readonly server: HealthServer;
  readonly positions: Positions;
  readonly tailer: Tailer;
  readonly pipeline: FanOut;
  /** Listening address once started (when listening). */
  address: string | null;
  start(): Promise<void>;
  close(deadline?: number): Promise<ShutdownReport>;
}

export function buildApp(config: Config, deps: AppDeps): App {
  const logger = deps.logger;
  const registry = new Registry();
  // Event-loop lag sampled once a second instead of prom-client's every 10 ms: its timer wakes
  // the process whatever it is doing. At 10 ms it alone cost ~0.8 % of a core in an idle sidecar;
  // at 100 ms it still was 10 of an idle shipper's ~14 wake-ups a second and ~0.1 % of a core
  // (bench/log-shipper-many-files.mjs --files=10, Node 24: 0.25–0.30 % → 0.10–0.15 %).
  if (deps.processMetrics !== false) {
    // Without nodejs_gc_duration_seconds: its observer was most of the old generation's garbage
    // (shared prom.ts); heap sizes per space stay.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000, gcDuration: false });
  }

  let lastEvictLog = 0;
  const positions = new Positions({
    file: config.positionsFile,
    logger: logger.child({ component: "positions" }),
    maxEntries: config.maxKnownFiles,
    onEvict: (count) => {
      sourceMetrics.positionsEvicted.inc(count);
      const now = Date.now();
      if (now - lastEvictLog >= 60_000) {
        lastEvictLog = now;
        logger.warn(
          { event: "known_limit", evicted: count, maxKnownFiles: config.maxKnownFiles },
          "more files known than MAX_KNOWN_FILES: the positions of the least recently seen were dropped (they are read again from their start after a restart); raise MAX_KNOWN_FILES or narrow LOG_PATHS",
        );
      }
    },
    onSave: (ok) => {
      sourceMetrics.positionsSaves.inc({ result: ok ? "ok" : "error" });
      if (!ok) sourceMetrics.positionsSaveErrors.inc();
    },
  });

  // The tailer is both the pipeline's acknowledgement listener and its line producer; the
  // indirection lets each be built knowing the other.
  let tailer: Tailer | undefined;
  const podLabels: Record<string, string> = {};
  if (config.podNamespace) podLabels.namespace = config.podNamespace;
  if (config.podName) podLabels.pod = config.podName;
  if (config.containerName) podLabels.container = config.containerName;
  if (config.nodeName) podLabels.node = config.nodeName;
  const sinkMetrics = createSinkMetrics(registry);
  const continues = multilineRule(config);
  const processing = {
    ...(continues !== undefined
      ? {
          multiline: {
            continues,
            timeoutMs: config.multilineTimeoutMs,
            maxLines: config.multilineMaxLines,
            maxBytes: config.multilineMaxBytes,
          },
        }
      : {}),
    dropLevels: config.dropLevels,
    keepMatching: config.keepMatching,
    dropMatching: config.dropMatching,
    redact: redactRules(config),
    labelFields: config.labelFields,
    labelFieldsMaxValues: config.labelFieldsMaxValues,
    labelFieldsMaxCombinations: config.labelFieldsMaxCombinations,
    metadataFields: config.metadataFields,
  };
  const processes = processingEnabled(processing);
  const pipeline = new FanOut({
    tracked: processes,
    ack: {
      acknowledged: (id, offset, ahead) => tailer?.acknowledged(id, offset, ahead),
      // A destination about to send its next batch: written at the end of this turn, with every
      // acknowledgement made meanwhile by the others (group commit, Positions.persist).
      persisted: async () => {
        await positions.persist();
      },
    },
    logger: logger.child({ component: "fanout" }),
    metrics: sinkMetrics,
  });
  const destinations =
    deps.destinations ??
    createDestinations(
      config,
      { staticLabels: config.staticLabels, podLabels, timeoutMs: config.lokiTimeoutMs, logger },
      {
        ...(deps.transport !== undefined ? { lokiTransport: deps.transport } : {}),
        ...(deps.dryRunOut !== undefined ? { dryRunOut: deps.dryRunOut } : {}),
      },
    );
  for (const d of destinations) {
    const name = d.sink.name;
    pipeline.add(
      new Pipeline({
        sink: d.sink,
        timeoutMs: config.lokiTimeoutMs,
        retryMinMs: config.retryMinMs,
        retryMaxMs: config.retryMaxMs,
        batchWaitMs: config.batchWaitMs,
        batchMaxBytes: config.batchMaxBytes,
        maxBufferBytes: config.maxBufferBytes,
        staticLabels: config.staticLabels,
        podLabels,
        registry,
        metrics: sinkMetrics,
        // One destination: the log lines look as they always did; several: each says which.
        logger: logger.child(
          destinations.length > 1 ? { component: "pipeline", destination: name } : { component: "pipeline" },
        ),
        ack: pipeline.listenerFor(name),
      }),
      d.whenFull,
    );
  }

  const sourceMetrics = createSourceMetrics(
    registry,
    () => (tailer as Tailer).stats(),
    () => positions.lastSaveError !== null,
  );
  const discovery = new Discovery({
    include: config.logPaths,
    exclude: config.excludePaths,
    rescanIntervalMs: config.rescanIntervalMs,
    logger: logger.child({ component: "discovery" }),
    onPath: (path, event) => tailer?.notePath(path, event),
    onScan: (paths, changed) => tailer?.noteScan(paths, changed),
    onRefused: () => sourceMetrics.fileEvents.inc({ event: "refused" }),
  });
  const stage = processes
    ? new ProcessingStage(pipeline, {
        ...processing,
        registry,
        logger: logger.child({ component: "processing" }),
      })
    : undefined;
  tailer = new Tailer({
    sink: stage ?? pipeline,
    positions,
    opener: discovery,
    logger: logger.child({ component: "tailer" }),
    metrics: sourceMetrics,
    maxLineBytes: config.maxLineBytes,
    pollIntervalMs: config.pollIntervalMs,
    maxOpenFiles: config.maxOpenFiles,
    chunkBytes: READ_CHUNK_BYTES,
    ...deps.tailerClocks,
  });
  const t = tailer;

  const summary = new Summary({
    logger,
    intervalMs: config.summaryIntervalMs,
    // Several destinations: each one's progress (totals since start), so a lagging one shows.
    detail: () =>
      pipeline.destinations.length < 2
        ? {}
        : {
            destinations: Object.fromEntries(
              pipeline.destinationStats().map((d) => [
                d.destination,
                {
                  linesSent: d.linesSent,
                  linesDropped: d.linesDropped + d.linesDroppedFull,
                  retries: d.retries,
                  pendingBytes: d.pendingBytes,
                  consecutiveFailures: d.consecutiveFailures,
                },
              ]),
            ),
          },
    read: () => {
      const p = pipeline.stats();
      const s = t.stats();
      return {
        counters: {
          linesRead: t.totals.lines,
          bytesRead: t.totals.bytes,
          linesSent: p.linesSent,
          bytesSent: p.bytesSent,
          retries: p.retries,
          linesDropped: p.linesDropped,
          linesTruncated: t.totals.truncated,
        },
        gauges: {
          lagBytes: t.unacknowledgedBytes,
          pendingBytes: p.pendingBytes,
          filesWatched: s.filesWatched,
          readPaused: s.readPaused,
          consecutiveFailures: p.consecutiveFailures,
        },
      };
    },
  });

  let loaded = false;
  let closing = false;
  const readiness = (): Readiness => {
    // Deliberately independent of Loki: a Loki outage must not take the pod out of service.
    if (closing) return { ready: false, reason: "shutting down" };
    if (!loaded) return { ready: false, reason: "positions not loaded yet" };
    if (discovery.lastScanAt === 0) return { ready: false, reason: "not watching yet" };
    return { ready: true };
  };
  const server = new HealthServer({ logger, registry, readiness });

  let starting: Promise<void> | null = null;
  let closed: Promise<ShutdownReport> | null = null;

  const app: App = {
    registry,
    server,
    positions,
    tailer: t,
    pipeline,
    address: null,
    start() {
      starting ??= (async () => {
        if (pipeline.dryRun) {
          logger.warn(
            "no destination is set (LOKI_ENDPOINT, OTLP_ENDPOINT, ES_ENDPOINT): dry run — lines are printed to stdout, nothing is sent",
          );
        }
        logger.info({ config: describeConfig(config) }, "log shipper starting");
        await positions.load();
        loaded = true;
        pipeline.start();
        t.start();
        await discovery.start();
        positions.startAutoSave(config.positionsSyncMs);
        summary.start();
        if (deps.listen !== false) {
          try {
            app.address = await server.listen({ host: config.httpHost, port: config.httpPort });
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? String(err);
            throw new StartupError(
              `HTTP_HOST=${config.httpHost} HTTP_PORT=${config.httpPort}: cannot listen (${code})`,
            );
          }
        }
        logger.info(
          { watching: discovery.watchedDirs, files: t.stats().filesWatched, address: app.address },
          "log shipper started",
        );
      })();
      return starting;
    },
    close(deadline = Date.now() + config.shutdownTimeoutMs) {
      closed ??= (async () => {
        closing = true;
        await starting?.catch(() => {});
        // Leave time at the end to write positions, whatever happens before.
        // (A fifth, at least 250 ms: on a host whose cores are busy, closing the files and
        // writing positions took longer than a tenth of a 2 s deadline.)
        const margin = Math.min(1000, Math.max(250, (deadline - Date.now()) / 5));
        const workDeadline = deadline - margin;
        // One last listing, so a file created just before the signal is read too; then stop watching.
        await discovery.scan().catch(() => {});
        await discovery.close();
        const readAll = await t.readToEnd(workDeadline);
        // Records still being gathered (multiline) go out with the last batch.
        (stage ?? pipeline).flush();
        stage?.stop();
        const drained = await pipeline.drain(workDeadline);
        await t.close();
        await pipeline.close();
        summary.stop();
        positions.stopAutoSave();
        const positionsSaved = await positions.save(true);
        const remainingBytes = t.unacknowledgedBytes;
        const delivered = readAll && drained;
        const clean = delivered && positionsSaved;
        const p = pipeline.stats();
        const fields = {
          clean,
          positionsSaved,
          ...(positionsSaved
            ? {}
            : { positionsError: positions.lastSaveError, positionsFile: config.positionsFile }),
          linesRead: t.totals.lines,
          linesSent: p.linesSent,
          linesDropped: p.linesDropped,
          retries: p.retries,
          remainingBytes,
          files: t.stats().filesWatched,
        };
        if (clean) logger.info(fields, "shutdown summary: everything read was delivered; positions saved");
        else if (!positionsSaved) {
          logger.error(
            fields,
            delivered
              ? "shutdown summary: everything read was delivered, but positions were NOT saved; the next start re-sends what was delivered since the last successful save"
              : "shutdown summary: deadline passed before everything was delivered, and positions were NOT saved; the next start re-sends what was delivered since the last successful save, and the rest",
          );
        } else {
          logger.error(
            fields,
            "shutdown summary: deadline passed before everything was delivered; acknowledged positions saved, the rest is sent after the next start",
          );
        }
        await server.close();
        return { clean, positionsSaved, remainingBytes };
      })();
      return closed;
    },
  };
  return app;
}
