// The one contract every destination implements. The fan-out (fanout.ts) gives each destination
// its own pipeline (pipeline.ts: batcher, queue, retry loop, one request in flight, metrics with
// the `destination` label); the pipeline asks the destination's Sink only three things:
//
//   encode(streams)     a sealed batch → a request body (synchronously, at seal time: the
//                       streams' entry bytes are reused afterwards). Sealed bodies are kept until
//                       acknowledged, so encode compactly (compressed).
//   send(body, signal)  one attempt, classified — errors are values here, never exceptions:
//                         success    the destination took every entry
//                         retryable  send the same body again later (429, 5xx, network, timeout;
//                                    credentials/URL answers that say nothing about the batch)
//                         failure    the destination will never take this body: dropped, counted
//                         partial    it took some entries and answered per entry: `dropped`
//                                    entries are refused for good (counted, `message` logged),
//                                    `retry` (when present) is a body of only the entries to send
//                                    again (e.g. Elasticsearch items that got 429) — the pipeline
//                                    sends it after a backoff and acknowledges the batch's offsets
//                                    once nothing of it is left to retry.
//   release(body)       (optional) the pipeline is done with a body — acknowledged or dropped,
//                       never sent again: the sink may reuse its memory for a later body.
//   close()             release connections.
//
// A batch's stream labels are the Loki view of a line (static labels, pod labels, `filename`,
// `level`, and those promoted from the line's fields, `BatchStream.promoted`), and each entry may
// carry structured metadata (METADATA_FIELDS); each destination maps them onto its own model (OTLP
// resource/record attributes and trace/span ids, ECS fields). `podLabelKeys` tells which keys came
// from the downward API.
import type { Log as Logger } from "@sidecar/shared";
import type { BatchStream, EncodedBody } from "./loki/encode-protobuf.js";
import type { SendResult } from "./loki/loki-client.js";

export type { BatchStream, EncodedBody };

/** A destination's name: its `destination` metric label and its key in the positions file. */
export type SinkName = "loki" | "otlp" | "elasticsearch" | "dry-run";

/** Some entries taken, some refused for good, some to send again. */
export interface PartialResult {
  kind: "partial";
  status: number;
  /** Entries refused for good (counted as dropped). */
  dropped: number;
  /** Why, as a metric label value (e.g. `mapper_parsing_exception`, `rejected`). */
  reason: string;
  /** The destination's first message about the refused entries (logged once, cut to ~1 KiB). */
  message?: string;
  /** Only the entries to send again, and how many they are. Absent: nothing to retry. */
  retry?: { body: EncodedBody; lines: number };
  /** A delay the destination asked for before the retry (Retry-After), in ms. */
  retryAfterMs?: number;
}

export type SinkResult = SendResult | PartialResult;

export interface Sink {
  readonly name: SinkName;
  /**
   * Latest own time (epoch seconds) this destination can carry; a line's later time is replaced
   * by its read time (counted). Loki protobuf: year 9999; nanosecond int64 encodings: 2262.
   */
  readonly maxOwnSec: number;
  /**
   * When true, each sealed stream carries `fileIds`/`offsets` per entry (what a destination needs
   * to give each line a stable id, e.g. Elasticsearch `_id`). Off by default: it costs per line.
   */
  readonly entryRefs?: boolean;
  /**
   * When true, a sealed batch is kept as a copy of its entries (about the size of the lines) and
   * encoded only when it is next to send: for an encoding much larger than the lines (uncompressed
   * Elasticsearch NDJSON is ~3× the line bytes), so a backlog of MAX_BUFFER_BYTES holds about
   * MAX_BUFFER_BYTES in memory, not several times that. Off: encoded at seal time.
   * With it on, encode() is called for a batch only once the previous batch's body is done with
   * (sent and acknowledged, dropped, or replaced by its split halves or retry body): the sink may
   * build successive bodies in one reused buffer.
   */
  readonly encodeLate?: boolean;
  /**
   * When true, the sink's own batcher compresses each stream's entries with snappy as they
   * arrive, one SNAPPY_FRAGMENT at a time (BatchStream.packed), keeping only the uncompressed
   * rest: a batch then holds about its compressed size instead of BATCH_MAX_BYTES of entries,
   * and the compression is spread over the reads instead of done at seal. For an encoder that
   * writes a stream's entries as one snappy run (Loki protobuf). A batch shared by several
   * destinations (the fan-out's) is never packed: encode() must take both kinds of stream.
   */
  readonly packedEntries?: boolean;
  /** How logs name it: "Loki", "OTLP", "Elasticsearch", "the dry run". */
  readonly title: string;
  encode(streams: readonly BatchStream[]): EncodedBody;
  send(body: EncodedBody, signal: AbortSignal): Promise<SinkResult>;
  /**
   * Optional: the pipeline is done with `body` (its batch acknowledged or dropped; it is never
   * sent again): its memory may serve a later body. Not called for a body replaced by split
   * halves or a retry body, nor for batches left queued at stop: those are left to the GC.
   */
  release?(body: EncodedBody): void;
  close(): Promise<void>;
  /**
   * Optional, for a destination whose 4xx does not say which entries were bad (Loki: a decode
   * error fails the whole push): the body in two halves, each sent again, so one bad entry never
   * costs the good ones. Undefined when it cannot be split.
   */
  split?(body: EncodedBody): [BodyPart, BodyPart] | undefined;
  /**
   * Optional: when a `failure` message is a per-entry verdict (the destination stored every other
   * entry of the body), how many entries it refused; undefined otherwise.
   */
  refusedEntries?(message: string): number | undefined;
  /** Optional: the one entry of a single-entry body, for the drop log's example. */
  example?(body: EncodedBody): unknown;
}

/** One half of a split body. */
export interface BodyPart {
  body: EncodedBody;
  lines: number;
  lineBytes: number;
}

/** The identity part of a SourceFile id (`dev:ino:fingerprint`), without the reader generation. */
export function fileIdentity(fileId: string): string {
  const slash = fileId.lastIndexOf("/");
  return slash < 0 ? fileId : fileId.slice(0, slash);
}

/** What every destination is built with (besides its own settings). */
export interface SinkContext {
  /** STATIC_LABELS (e.g. `job`). */
  readonly staticLabels: Readonly<Record<string, string>>;
  /** From the downward API when set: `namespace`, `pod`, `container`, `node`. */
  readonly podLabels: Readonly<Record<string, string>>;
  /** Per-request timeout (the destination's own, or LOKI_TIMEOUT_MS's default). */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

// Each destination's module (src/sinks/<name>/) exports, for config.ts and app.ts to wire:
//   <name>Schema                    its environment variables (Field objects, as config.ts)
//   <name>Problems(cfg, env)        cross-checks → ConfigProblem[] (exit 2 at start)
//   create<Name>Sink(cfg, ctx)      the Sink, or undefined when its endpoint is not set
//   describe<Name>(cfg)             what the start-up log shows (no secrets)
