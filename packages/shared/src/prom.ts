/// <reference path="./types/prom-client-lib.d.ts" />
// The parts of prom-client the sidecars use, imported from their own files. prom-client's index
// also loads its Pushgateway client, which requires node:https: TLS and OpenSSL's start-up, ≈ 4-6 MiB
// of peak RSS on Node 24 (the image's Node) that neither sidecar needs unless it talks to an
// https:// URL (the exporter, issue 10.5; the log shipper, issue 12).
import type * as PromClient from "prom-client";
import CounterClass from "prom-client/lib/counter.js";
import GaugeClass from "prom-client/lib/gauge.js";
import HistogramClass from "prom-client/lib/histogram.js";
import eventLoopLag from "prom-client/lib/metrics/eventLoopLag.js";
import gcDuration from "prom-client/lib/metrics/gc.js";
import heapSizeAndUsed from "prom-client/lib/metrics/heapSizeAndUsed.js";
import heapSpacesSizeAndUsed from "prom-client/lib/metrics/heapSpacesSizeAndUsed.js";
import osMemoryHeap from "prom-client/lib/metrics/osMemoryHeap.js";
import processCpuTotal from "prom-client/lib/metrics/processCpuTotal.js";
import processHandles from "prom-client/lib/metrics/processHandles.js";
import processMaxFileDescriptors from "prom-client/lib/metrics/processMaxFileDescriptors.js";
import processOpenFileDescriptors from "prom-client/lib/metrics/processOpenFileDescriptors.js";
import processRequests from "prom-client/lib/metrics/processRequests.js";
import processResources from "prom-client/lib/metrics/processResources.js";
import processStartTime from "prom-client/lib/metrics/processStartTime.js";
import version from "prom-client/lib/metrics/version.js";
import RegistryClass from "prom-client/lib/registry.js";

export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export type Registry = PromClient.Registry;
export const Counter: typeof PromClient.Counter = CounterClass;
export const Gauge: typeof PromClient.Gauge = GaugeClass;
export const Histogram: typeof PromClient.Histogram = HistogramClass;
export const Registry: typeof PromClient.Registry = RegistryClass;

/** prom-client's default-metrics options, and whether to observe garbage collections. */
export interface DefaultMetricsConfig
  extends PromClient.DefaultMetricsCollectorConfiguration<PromClient.RegistryContentType> {
  /**
   * `nodejs_gc_duration_seconds` (default true, as prom-client). It observes every collection
   * through a PerformanceObserver on `gc` entries: JavaScript objects per collection, and on
   * Node 24 `util.deprecate` wrappers per entry whose new hidden classes V8 allocates in the old
   * generation. At the log shipper's ten scavenges a second that was 62 % of everything it left in
   * the old generation (82 → 31 KB/s, issue 12); the shipper turns it off.
   */
  gcDuration?: boolean;
}

/**
 * prom-client's default metrics, in its order and with its names and options (lib/defaultMetrics.js
 * calls the same modules), with `nodejs_gc_duration_seconds` optional.
 */
export function collectDefaultMetrics(config: DefaultMetricsConfig = {}): void {
  const { gcDuration: withGc = true, ...rest } = config;
  const c = { eventLoopMonitoringPrecision: 10, ...rest };
  const register = c.register;
  for (const metric of [
    processCpuTotal,
    processStartTime,
    osMemoryHeap,
    processOpenFileDescriptors,
    processMaxFileDescriptors,
    eventLoopLag,
    ...(typeof process.getActiveResourcesInfo === "function" ? [processResources] : []),
    processHandles,
    processRequests,
    heapSizeAndUsed,
    heapSpacesSizeAndUsed,
    version,
    ...(withGc ? [gcDuration] : []),
  ]) {
    metric(register, c);
  }
}
