// The Elasticsearch / OpenSearch destination as a module for config.ts and app.ts to wire (see the
// module shape in ../sink.ts): its variables, their cross-checks, the Sink and its start-up
// description. Enabled by ES_ENDPOINT; the encoder is encode-bulk.ts, the client bulk-client.ts.
import { type ConfigProblem, type Env, type Field, int, oneOf, optionalStr, str, url } from "@sidecar/shared";
import { MAX_ENCODABLE_SEC } from "../../batcher.js";
import { caFile, credentialFile } from "../../config-fields.js";
import type { BatchStream, BodyPart, EncodedBody, Sink, SinkContext, SinkResult } from "../sink.js";
import { BulkClient, indexInPath } from "./bulk-client.js";
import { BulkEncoder, bulkLineBytes, firstItem, isBulkBody, selectItems } from "./encode-bulk.js";
import { IndexName } from "./index-name.js";

export const DEFAULT_ES_INDEX = "logs-sidecar-default";

/** ES_INDEX: a fixed name or a strftime-style date pattern, checked against the index naming rules. */
function indexField(name: string): Field<IndexName> {
  return {
    name,
    expected:
      'an index or data stream name (lowercase, no \\ / * ? " < > | , # : or space), optionally with %Y %m %d %H date placeholders',
    default: () => new IndexName(DEFAULT_ES_INDEX),
    parse: (raw) => new IndexName(raw.trim()),
  };
}

/** An optional integer: unset means "use the shared default" (LOKI_TIMEOUT_MS's). */
function optionalInt(name: string, min: number, max: number): Field<number | undefined> {
  const inner = int(name, { default: 0, min, max });
  return { ...inner, default: () => undefined };
}

export const elasticsearchSchema = {
  esEndpoint: url("ES_ENDPOINT"),
  esIndex: indexField("ES_INDEX"),
  esUsername: optionalStr("ES_USERNAME", "a user name"),
  esPassword: credentialFile("ES_PASSWORD_FILE"),
  esApiKey: credentialFile("ES_API_KEY_FILE"),
  esCa: caFile("ES_CA_FILE"),
  esPipeline: str("ES_PIPELINE", { default: "", expected: "an ingest pipeline name" }),
  esTimeoutMs: optionalInt("ES_TIMEOUT_MS", 1, 600_000),
  // `none` by default: Elasticsearch has accepted gzip request bodies since 5.0, but OpenSearch
  // has broken them in several releases (2.11.0, 2.17.0) and its reactor-netty transport did not
  // decompress them at all — uncompressed works everywhere.
  esCompression: oneOf("ES_COMPRESSION", ["none", "gzip"] as const, { default: "none" }),
  // block: reading pauses while Elasticsearch's unacknowledged bytes are at MAX_BUFFER_BYTES
  // (lossless); drop: best-effort, what it cannot hold is dropped for it alone.
  esWhenFull: oneOf("ES_WHEN_FULL", ["block", "drop"] as const, { default: "block" }),
};

export type ElasticsearchConfig = {
  readonly [K in keyof typeof elasticsearchSchema]: (typeof elasticsearchSchema)[K] extends Field<infer T>
    ? T
    : never;
};

/** Cross-checks of the ES_* variables (exit 2 at start). */
export function elasticsearchProblems(cfg: ElasticsearchConfig, env: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (cfg.esPassword !== undefined && cfg.esUsername === undefined) {
    problems.push({
      name: "ES_USERNAME",
      value: undefined,
      expected: "a user name whenever ES_PASSWORD_FILE is set",
    });
  }
  if (cfg.esApiKey !== undefined && cfg.esUsername !== undefined) {
    problems.push({
      name: "ES_API_KEY_FILE",
      value: env.ES_API_KEY_FILE,
      expected: "unset when basic auth (ES_USERNAME) is used — choose one",
    });
  }
  if (cfg.esEndpoint === undefined) {
    for (const name of [
      "ES_USERNAME",
      "ES_PASSWORD_FILE",
      "ES_API_KEY_FILE",
      "ES_CA_FILE",
      "ES_PIPELINE",
      "ES_WHEN_FULL",
    ]) {
      if (env[name] !== undefined && env[name] !== "")
        problems.push({ name, value: env[name], expected: "unset unless ES_ENDPOINT is set" });
    }
  }
  if (cfg.esPipeline !== "" && /[\s/?#&]/.test(cfg.esPipeline)) {
    problems.push({
      name: "ES_PIPELINE",
      value: cfg.esPipeline,
      expected: "an ingest pipeline name (no whitespace, /, ?, # or &)",
    });
  }
  return problems;
}

/** The Elasticsearch destination: `_bulk` NDJSON with stable `_id`s, per-item outcomes. */
export class ElasticsearchSink implements Sink {
  readonly name = "elasticsearch" as const;
  readonly title = "Elasticsearch";
  /**
   * `@timestamp` may be mapped as `date_nanos` (a signed 64-bit nanosecond count), which ends in
   * 2262; `date` reaches much further, so the stricter limit serves both.
   */
  readonly maxOwnSec = MAX_ENCODABLE_SEC.json;
  readonly entryRefs = true;
  /** Uncompressed bulk bodies are ~3× the lines: queued batches wait as entries, not as NDJSON. */
  readonly encodeLate: boolean;
  private readonly encoder: BulkEncoder;
  private readonly client: BulkClient;

  constructor(cfg: ElasticsearchConfig & { esEndpoint: URL }, ctx: SinkContext) {
    this.encodeLate = cfg.esCompression === "none";
    // A fixed index goes in the request's path, not in every action (32 bytes a line for the default).
    const inPath = indexInPath(cfg.esEndpoint, cfg.esIndex.fixed);
    this.encoder = new BulkEncoder({
      index: cfg.esIndex,
      indexInPath: inPath,
      compression: cfg.esCompression,
      // Encoded late (one body alive at a time): the body can be the encoder's own buffer.
      reuseBody: this.encodeLate,
      staticLabels: ctx.staticLabels,
      podLabels: ctx.podLabels,
    });
    this.client = new BulkClient({
      endpoint: cfg.esEndpoint,
      ...(cfg.esPipeline !== "" ? { pipeline: cfg.esPipeline } : {}),
      ...(inPath ? { index: cfg.esIndex.format(0) } : {}),
      ...(cfg.esUsername !== undefined ? { username: cfg.esUsername } : {}),
      ...(cfg.esPassword !== undefined ? { password: cfg.esPassword } : {}),
      ...(cfg.esApiKey !== undefined ? { apiKey: cfg.esApiKey } : {}),
      ...(cfg.esCa !== undefined ? { ca: cfg.esCa } : {}),
      timeoutMs: cfg.esTimeoutMs ?? ctx.timeoutMs,
    });
  }

  get url(): URL {
    return this.client.url;
  }

  encode(streams: readonly BatchStream[]): EncodedBody {
    return this.encoder.encode(streams);
  }

  send(body: EncodedBody, signal: AbortSignal): Promise<SinkResult> {
    return this.client.send(body, signal);
  }

  close(): Promise<void> {
    return this.client.close();
  }

  /**
   * Halves of a body the cluster refused whole (the pipeline asks on a `failure`): a 413 — the
   * NDJSON is ~3× the lines, so a large BATCH_MAX_BYTES can exceed `http.max_content_length`
   * (100 MB by default) — then fits, and a body it cannot parse is narrowed down to the one item
   * at fault instead of costing all of them.
   */
  split(body: EncodedBody): [BodyPart, BodyPart] | undefined {
    if (!isBulkBody(body) || body.itemEnds.length < 2) return undefined;
    const n = body.itemEnds.length;
    const mid = Math.ceil(n / 2);
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    const part = (idx: number[]): BodyPart => {
      const b = selectItems(body, idx);
      return { body: b, lines: idx.length, lineBytes: bulkLineBytes(b) };
    };
    return [part(range(0, mid)), part(range(mid, n))];
  }

  example(body: EncodedBody): unknown {
    return isBulkBody(body) ? firstItem(body) : undefined;
  }
}

/** The Sink, or undefined when ES_ENDPOINT is not set. */
export function createElasticsearchSink(cfg: ElasticsearchConfig, ctx: SinkContext): Sink | undefined {
  const endpoint = cfg.esEndpoint;
  if (endpoint === undefined) return undefined;
  return new ElasticsearchSink({ ...cfg, esEndpoint: endpoint }, ctx);
}

/** What the start-up log shows (no secrets). */
export function describeElasticsearch(cfg: ElasticsearchConfig): Record<string, unknown> {
  if (cfg.esEndpoint === undefined) return { enabled: false };
  const u = new URL(cfg.esEndpoint.href);
  if (u.password) u.password = "***";
  return {
    endpoint: u.href,
    index: cfg.esIndex.pattern,
    dataStream: cfg.esIndex.dataStream !== undefined,
    pipeline: cfg.esPipeline || undefined,
    compression: cfg.esCompression,
    whenFull: cfg.esWhenFull,
    auth: cfg.esApiKey ? "apikey" : cfg.esUsername ? "basic" : "none",
    extraCa: cfg.esCa !== undefined,
    timeoutMs: cfg.esTimeoutMs,
  };
}
