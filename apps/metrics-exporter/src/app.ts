// Builds the exporter apart from listening: collector on a schedule → exposition cache → /metrics,
// plus the optional outputs (Pushgateway, StatsD, remote-write; src/outputs/). `start()` listens, then collects once (readiness waits for
// that first collection); `close()` stops the schedule, stops serving, collects a last time and
// sends it through every output, all within the shutdown deadline.

import type { Log } from "@sidecar/shared";
import { Registry } from "@sidecar/shared";
import { Collector } from "./collector.js";
import type { Config } from "./config.js";
import { Exposition } from "./exposition.js";
import { metricsHandler } from "./http.js";
import type { Output, Snapshot } from "./outputs/output.js";
import { ScheduledOutput } from "./outputs/output.js";
import { Pusher } from "./outputs/pushgateway.js";
import { RemoteWriteSender } from "./outputs/remote-write.js";
import { StatsdSender } from "./outputs/statsd.js";
import { createReclaimer } from "./reclaim.js";
import { createSelfMetrics, ownFamilyNames } from "./self-metrics.js";
import { createHttpServer, type HttpServer } from "./server.js";

const RECLAIM_SLACK_BYTES = 8 * 1024 * 1024;
// A typical pod serves a few hundred kB of lines: tolerating 8 MiB of dead buffers there would be
// most of its memory beyond Node's own (issue 10.5: ≤ 64 MiB with ≈ 2k series).
const RECLAIM_MIN_SLACK_BYTES = 1024 * 1024;

export interface AppDeps {
  readonly logger: Log;
  /** A fresh Registry per app unless a test hands one in. */
  readonly registry?: Registry;
  readonly now?: () => number;
}

export interface App {
  readonly server: HttpServer;
  readonly registry: Registry;
  readonly pusher: Pusher | undefined;
  /** Every enabled output (Pushgateway, StatsD, remote-write). */
  readonly outputs: readonly Output[];
  /** Run one collection now (tests; the schedule calls it too). */
  collect(): Promise<void>;
  /** Listen, collect once, start the schedules; resolves with the listening address. */
  start(): Promise<string>;
  /** Idempotent; `deadline` is epoch ms. */
  close(deadline?: number): Promise<void>;
}

export function buildApp(config: Config, deps: AppDeps): App {
  const logger = deps.logger;
  const registry = deps.registry ?? new Registry();
  const metrics = createSelfMetrics(registry);
  const exposition = new Exposition();
  // Dead collections (and parsing's working buffers) are returned to the system after each parsed
  // file and each collection (reclaim.ts); this much dead buffer memory is tolerated before a
  // full GC.
  const reclaimer = createReclaimer({
    slackBytes: RECLAIM_SLACK_BYTES,
    minSlackBytes: RECLAIM_MIN_SLACK_BYTES,
    liveBytes: () => {
      const live = new Set<ArrayBufferLike>();
      collector.retainedMemory(live);
      exposition.retainedMemory(live);
      let n = 0;
      for (const b of live) n += b.byteLength;
      return n;
    },
  });
  const reclaim = () => {
    if (!reclaimer.check()) return;
    metrics.memoryReclaims.inc();
    logger.debug({ runs: reclaimer.runs }, "freed superseded collections");
  };

  const collector = new Collector({
    dir: config.metricsDir,
    maxFileBytes: config.maxFileBytes,
    maxSeriesPerFile: config.maxSeriesPerFile,
    maxTotalSeries: config.maxTotalSeries,
    maxFiles: config.maxFiles,
    maxLabelsPerSeries: config.maxLabelsPerSeries,
    maxFamilies: config.maxFamilies,
    maxTotalBytes: config.maxTotalBytes,
    staleAfterMs: config.staleAfterMs,
    logger,
    metrics,
    ownFamilies: () => ownFamilyNames(registry),
    now: deps.now,
    afterParse: reclaim,
  });

  let collectedOnce = false;
  const server = createHttpServer({
    logger,
    readiness: () =>
      collectedOnce ? { ready: true } : { ready: false, reason: "first collection not finished" },
    metrics: metricsHandler({ exposition, registry, metrics }),
  });

  const pusher = config.pushgatewayUrl
    ? new Pusher({
        url: config.pushgatewayUrl,
        job: config.pushJob,
        instance: config.pushInstance,
        intervalMs: config.pushIntervalMs,
        timeoutMs: config.pushTimeoutMs,
        retryMinMs: config.pushRetryMinMs,
        retryMaxMs: config.pushRetryMaxMs,
        body: () => exposition.push(),
        logger,
        metrics,
      })
    : undefined;

  // What the outputs send: the collected families as of the last collection, stamped with its time.
  let snapshot: Snapshot = { families: [], timestampMs: Date.now() };
  const scheduled = (
    sender: ConstructorParameters<typeof ScheduledOutput>[0],
    intervalMs: number,
    timeoutMs: number,
  ) =>
    new ScheduledOutput(sender, {
      intervalMs,
      timeoutMs,
      retryMinMs: config.pushRetryMinMs,
      retryMaxMs: config.pushRetryMaxMs,
      snapshot: () => snapshot,
      logger,
      metrics,
    });
  const outputs: Output[] = [];
  if (pusher) outputs.push(pusher);
  if (config.statsdAddress) {
    outputs.push(
      scheduled(
        new StatsdSender({
          address: config.statsdAddress,
          prefix: config.statsdPrefix,
          tags: config.statsdTags,
          mtu: config.statsdMtu,
          metrics,
        }),
        config.statsdIntervalMs,
        config.pushTimeoutMs,
      ),
    );
  }
  if (config.remoteWriteUrl) {
    outputs.push(
      scheduled(
        new RemoteWriteSender({
          url: config.remoteWriteUrl,
          externalLabels: {
            job: config.remoteWriteJob || config.pushJob,
            pod: config.podName,
            namespace: config.podNamespace,
          },
          username: config.remoteWriteUsername,
          passwordFile: config.remoteWritePasswordFile,
          bearerTokenFile: config.remoteWriteBearerTokenFile,
          headers: config.remoteWriteHeaders,
          ca: config.remoteWriteCa,
          metrics,
        }),
        config.remoteWriteIntervalMs,
        config.remoteWriteTimeoutMs,
      ),
    );
  }

  let running: Promise<void> | undefined;
  const collect = (): Promise<void> => {
    // Never two collections at once: a slow one (a big file changed) delays the next tick instead.
    running ??= (async () => {
      try {
        const result = await collector.collect();
        if (result.changed) {
          exposition.update(result.families);
          exposition.warm();
          metrics.expositionBytes.set(exposition.sampleBytes);
        }
        snapshot = { families: result.families, timestampMs: Date.now() };
        collectedOnce = true;
        // At shutdown the last collection is sent by each output's close(), not by its schedule.
        if (!closed) for (const o of outputs) o.collected();
        reclaim();
      } catch (err) {
        // Bad input is handled as values inside the collector; reaching here is a bug. Keep serving.
        logger.error({ err }, "collection failed");
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      void collect().then(schedule);
    }, config.collectIntervalMs);
  };

  let closing: Promise<void> | undefined;
  return {
    server,
    registry,
    pusher,
    outputs,
    collect,
    async start() {
      // Listen first: /healthz must answer while a big first collection is parsed (a liveness
      // probe would otherwise kill it mid-parse, and every restart would parse the same files
      // again); /readyz says "not ready" until the first collection finished.
      const address = await server.listen({ host: config.httpHost, port: config.httpPort });
      await collect();
      schedule();
      for (const o of outputs) o.start();
      logger.info(
        {
          address,
          dir: config.metricsDir,
          collectIntervalMs: config.collectIntervalMs,
          staleAfterMs: config.staleAfterMs,
          outputs: Object.fromEntries(outputs.map((o) => [o.name, o.target])),
        },
        "metrics-exporter listening",
      );
      return address;
    },
    close(deadline = Date.now() + config.shutdownTimeoutMs) {
      closing ??= (async () => {
        closed = true;
        if (timer) clearTimeout(timer);
        await server.close();
        if (outputs.length > 0) {
          // The app container has already stopped: pick up the last file it wrote, then send it
          // through every output at once, all within the deadline.
          await collect();
          await Promise.all(outputs.map((o) => o.close(deadline)));
        }
      })();
      return closing;
    },
  };
}
