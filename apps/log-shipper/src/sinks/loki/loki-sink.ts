// Loki as a Sink: the push body (protobuf + snappy, or JSON optionally gzip), the HTTP client,
// and Loki's two 400 answers — a per-entry verdict (Loki stored the other entries) or a decode
// error for the whole push (the body is split and sent again, batch-split.ts).
import { MAX_ENCODABLE_SEC } from "../../batcher.js";
import type { BodyPart, Sink, SinkResult } from "../sink.js";
import { decodeBody, describeEntry, part } from "./batch-split.js";
import { JsonEncoder } from "./encode-json.js";
import { type BatchEncoder, type BatchStream, type EncodedBody, ProtobufEncoder } from "./encode-protobuf.js";
import type { Transport } from "./loki-client.js";

export class LokiSink implements Sink {
  readonly name = "loki" as const;
  readonly title = "Loki";
  readonly maxOwnSec: number;
  /** Protobuf: the batcher packs each stream's entries with snappy as they arrive. */
  readonly packedEntries: boolean;
  private readonly encoder: BatchEncoder;

  constructor(
    private readonly transport: Transport,
    encoding: "protobuf" | "json",
    compression: "gzip" | "none",
  ) {
    this.encoder = encoding === "json" ? new JsonEncoder(compression) : new ProtobufEncoder();
    this.maxOwnSec = encoding === "json" ? MAX_ENCODABLE_SEC.json : MAX_ENCODABLE_SEC.protobuf;
    this.packedEntries = encoding === "protobuf";
  }

  encode(streams: readonly BatchStream[]): EncodedBody {
    return this.encoder.encode(streams);
  }

  send(body: EncodedBody, signal: AbortSignal): Promise<SinkResult> {
    return this.transport.send(body, signal);
  }

  release(body: EncodedBody): void {
    this.encoder.release?.(body);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  split(body: EncodedBody): [BodyPart, BodyPart] | undefined {
    const decoded = decodeBody(body);
    const n = decoded.entries.length;
    if (n < 2) return undefined;
    const mid = Math.ceil(n / 2);
    const a = part(decoded, 0, mid);
    const b = part(decoded, mid, n);
    return [
      { body: this.encoder.encode(a.streams), lines: a.lines, lineBytes: a.lineBytes },
      { body: this.encoder.encode(b.streams), lines: b.lines, lineBytes: b.lineBytes },
    ];
  }

  refusedEntries(message: string): number | undefined {
    return lokiEntryVerdict(message);
  }

  example(body: EncodedBody): unknown {
    const e = decodeBody(body).entries[0];
    return e === undefined ? undefined : describeEntry(e);
  }
}

/**
 * When a 4xx answer is Loki's per-entry validation verdict — `entry for stream '…' has timestamp
 * too old: …`, `Max entry size '…' bytes exceeded for stream '…'`, `stream '…' includes
 * structured metadata, but this feature is disallowed…` (METADATA_FIELDS against a Loki with
 * allow_structured_metadata off), `stream '…' has structured metadata too large…`, grouped as
 * `N errors like: …; M errors like: …` — Loki stored every other entry of the push (its distributor validates
 * entries one by one and pushes the valid ones before answering). Returns how many entries it
 * refused, or undefined when the answer is anything else (a decode error: nothing stored).
 */
export function lokiEntryVerdict(message: string): number | undefined {
  if (
    !/^(?:\d+ errors like: )?(?:entry for stream '|Max entry size '|stream '.*?' (?:includes|has) structured metadata)/.test(
      message,
    )
  )
    return undefined;
  let n = 0;
  for (const m of message.matchAll(/(?:^|; )(\d+) errors like: /g)) n += Number(m[1]);
  return n > 0 ? n : 1;
}
