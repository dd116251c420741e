/// <reference path="./types/prom-client-lib.d.ts" />
// The parts of prom-client the sidecars use, imported from their own files. prom-client's index
// also loads its Pushgateway client, which requires node:https: TLS and OpenSSL's start-up, ≈ 4-6 MiB
// of peak RSS on Node 24 (the image's Node) that neither sidecar needs unless it talks to an
// https:// URL (the exporter, issue 10.5; the log shipper, issue 12).
import type * as PromClient from "prom-client";
import CounterClass from "prom-client/lib/counter.js";
import collectDefaults from "prom-client/lib/defaultMetrics.js";
import GaugeClass from "prom-client/lib/gauge.js";
import HistogramClass from "prom-client/lib/histogram.js";
import RegistryClass from "prom-client/lib/registry.js";

export type Counter<T extends string = string> = PromClient.Counter<T>;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export type Registry = PromClient.Registry;
export const Counter: typeof PromClient.Counter = CounterClass;
export const Gauge: typeof PromClient.Gauge = GaugeClass;
export const Histogram: typeof PromClient.Histogram = HistogramClass;
export const Registry: typeof PromClient.Registry = RegistryClass;
export const collectDefaultMetrics: typeof PromClient.collectDefaultMetrics = collectDefaults;
