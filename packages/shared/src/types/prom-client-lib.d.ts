// prom-client's own files (../prom.ts imports them one by one, not through its index): each
// CommonJS module exports the class or function its index re-exports.
declare module "prom-client/lib/counter.js" {
  const Counter: typeof import("prom-client").Counter;
  export default Counter;
}
declare module "prom-client/lib/gauge.js" {
  const Gauge: typeof import("prom-client").Gauge;
  export default Gauge;
}
declare module "prom-client/lib/histogram.js" {
  const Histogram: typeof import("prom-client").Histogram;
  export default Histogram;
}
declare module "prom-client/lib/registry.js" {
  const Registry: typeof import("prom-client").Registry;
  export default Registry;
}
// One default metric each (lib/defaultMetrics.js calls them all in turn).
declare module "prom-client/lib/metrics/*.js" {
  const metric: (
    // biome-ignore lint/suspicious/noExplicitAny: any content type, as prom-client's own calls
    registry: import("prom-client").Registry<any> | undefined,
    config: import("prom-client").DefaultMetricsCollectorConfiguration<
      import("prom-client").RegistryContentType
    >,
  ) => void;
  export default metric;
}
