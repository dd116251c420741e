// The destinations the configuration enables, in a fixed order (loki, otlp, elasticsearch). Each
// is enabled by setting its endpoint; none set = the dry run. Each destination module
// (src/sinks/<name>/) exports its schema, problems, factory and description (see sink.ts).
import type { Config } from "../config.js";
import type { WhenFull } from "../fanout.js";
import { DryRunSink } from "./dry-run/dry-run.js";
import { createElasticsearchSink, type ElasticsearchConfig } from "./elasticsearch/elasticsearch.js";
import { LokiClient, type Transport } from "./loki/loki-client.js";
import { LokiSink } from "./loki/loki-sink.js";
import { createOtlpSink, type OtlpConfig } from "./otlp/otlp.js";
import type { Sink, SinkContext } from "./sink.js";

export interface Destination {
  sink: Sink;
  whenFull: WhenFull;
}

export interface SinkDeps {
  /** Replaces the Loki client (tests, benchmarks): Loki is then enabled whatever LOKI_ENDPOINT says. */
  lokiTransport?: Transport;
  /** Where the dry run prints (stdout by default). */
  dryRunOut?: NodeJS.WritableStream;
}

/** Destinations' own settings are optional here: a Config without them enables only Loki. */
export function createDestinations(
  config: Config & Partial<OtlpConfig> & Partial<ElasticsearchConfig>,
  ctx: SinkContext,
  deps: SinkDeps = {},
): Destination[] {
  const out: Destination[] = [];
  if (config.lokiEndpoint !== undefined || deps.lokiTransport !== undefined) {
    const transport =
      deps.lokiTransport ??
      new LokiClient({
        endpoint: config.lokiEndpoint as URL,
        timeoutMs: config.lokiTimeoutMs,
        ...(config.lokiTenantId !== undefined ? { tenantId: config.lokiTenantId } : {}),
        ...(config.lokiUsername !== undefined ? { username: config.lokiUsername } : {}),
        ...(config.lokiPassword !== undefined ? { password: config.lokiPassword } : {}),
        ...(config.lokiBearerToken !== undefined ? { bearerToken: config.lokiBearerToken } : {}),
        ...(config.lokiCa !== undefined ? { ca: config.lokiCa } : {}),
      });
    out.push({
      sink: new LokiSink(transport, config.lokiEncoding, config.lokiCompression),
      whenFull: config.lokiWhenFull,
    });
  }
  if (config.otlpEndpoint !== undefined) {
    const otlp = config as Config & OtlpConfig;
    const sink = createOtlpSink(otlp, ctx);
    if (sink !== undefined) out.push({ sink, whenFull: otlp.otlpWhenFull });
  }
  if (config.esEndpoint !== undefined && config.esIndex !== undefined) {
    const es = createElasticsearchSink(config as ElasticsearchConfig, ctx);
    if (es !== undefined) out.push({ sink: es, whenFull: config.esWhenFull ?? "block" });
  }
  if (out.length === 0)
    out.push({ sink: new DryRunSink(deps.dryRunOut ?? process.stdout), whenFull: "block" });
  return out;
}
