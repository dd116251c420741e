// Dry run (no destination set): each entry is printed to stdout as one line a person can read —
// `<time> <labels> <line>`, like `logcli` prints query results, with the entry's structured
// metadata (METADATA_FIELDS) as a second `{…}` after the labels when it has some — instead of
// being sent, and each
// batch is acknowledged right away, so positions advance exactly as they would against a real Loki.

import { isoTime } from "@sidecar/shared";
import { MAX_ENCODABLE_SEC } from "../../batcher.js";
import { escapeLabelValue, formatLabels } from "../../labels.js";
import {
  type BatchEncoder,
  type BatchStream,
  type EncodedBody,
  forEachEntry,
} from "../loki/encode-protobuf.js";
import type { SendResult, Transport } from "../loki/loki-client.js";
import type { Sink, SinkResult } from "../sink.js";

/** RFC 3339 with nanoseconds: `2024-01-31T12:00:00.123456789Z`. */
export function isoNanos(sec: number, nanos: number): string {
  const iso = isoTime(sec * 1000); // …:SS.000Z
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, "0")}Z`;
}

/**
 * Renders a batch as one line per entry: `2024-01-31T12:00:00.123000000Z {filename="…", job="…",
 * level="info"} the line`, or with metadata `… level="info"} {trace_id="…"} the line` (metadata
 * in the order it was read). A line's own newline-free bytes are printed as they are.
 */
export class DryRunEncoder implements BatchEncoder {
  encode(streams: readonly BatchStream[]): EncodedBody {
    let out = "";
    for (const s of streams) {
      const labels = formatLabels(s.labels);
      forEachEntry(s.entries, (sec, nanos, line, metadata) => {
        const meta = metadata === undefined ? "" : ` ${formatPairs(metadata)}`;
        out += `${isoNanos(sec, nanos)} ${labels}${meta} ${line.toString("utf8")}\n`;
      });
    }
    return { body: Buffer.from(out, "utf8"), contentType: "text/plain" };
  }
}

/** Metadata pairs in their own order, written as labels are: `{trace_id="…", span_id="…"}`. */
function formatPairs(pairs: readonly (readonly [string, string])[]): string {
  return `{${pairs.map(([n, v]) => `${n}="${escapeLabelValue(v)}"`).join(", ")}}`;
}

const UNESCAPE: Record<string, string> = { n: "\n", r: "\r", t: "\t" };

function parsePairs(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
    out[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => UNESCAPE[c] ?? c);
  }
  return out;
}

/**
 * One printed dry-run line, parsed (for tests and tools): null when `text` is not one. A second
 * `{name="…", …}` after the labels is the entry's metadata (a JSON line's `{"` never matches it).
 */
export function parseDryRunLine(text: string): {
  ts: string;
  labels: Record<string, string>;
  metadata?: Record<string, string>;
  line: string;
} | null {
  const pairs = String.raw`\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\}`;
  const m = new RegExp(
    String.raw`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) ${pairs}(?: (?=\{\w+=")${pairs})? (.*)$`,
    "s",
  ).exec(text);
  if (m === null) return null;
  const parsed = { ts: m[1] as string, labels: parsePairs(m[2] as string), line: m[4] as string };
  return m[3] === undefined ? parsed : { ...parsed, metadata: parsePairs(m[3]) };
}

/** Writes each body to `out` (stdout by default) and reports success. */
export class DryRunTransport implements Transport {
  constructor(private readonly out: NodeJS.WritableStream) {}

  async send(batch: EncodedBody): Promise<SendResult> {
    const out = this.out;
    return new Promise<SendResult>((resolve) => {
      out.write(batch.body, (err) =>
        resolve(
          err
            ? { kind: "retryable", reason: "output", message: err.message }
            : { kind: "success", status: 0 },
        ),
      );
    });
  }

  async close(): Promise<void> {}
}

/** The dry run as a Sink: prints, then acknowledges. */
export class DryRunSink implements Sink {
  readonly name = "dry-run" as const;
  readonly title = "the dry run";
  readonly maxOwnSec = MAX_ENCODABLE_SEC.protobuf;
  private readonly encoder = new DryRunEncoder();
  private readonly transport: DryRunTransport;

  constructor(out: NodeJS.WritableStream) {
    this.transport = new DryRunTransport(out);
  }

  encode(streams: readonly BatchStream[]): EncodedBody {
    return this.encoder.encode(streams);
  }

  send(body: EncodedBody): Promise<SinkResult> {
    return this.transport.send(body);
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
