// Dry run (LOKI_ENDPOINT unset): each batch is printed to stdout as one readable JSON line —
// its streams' labels and their entries with ISO-8601 timestamps — instead of being sent, and is
// acknowledged right away, so positions advance exactly as they would against a real Loki.
import { type BatchEncoder, type BatchStream, type EncodedBody, forEachEntry } from "./encode-protobuf.js";
import type { SendResult, Transport } from "./loki-client.js";

/** RFC 3339 with nanoseconds: `2024-01-31T12:00:00.123456789Z`. */
export function isoNanos(sec: number, nanos: number): string {
  const iso = new Date(sec * 1000).toISOString(); // …:SS.000Z
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, "0")}Z`;
}

/** Renders a batch as `{"dry_run":true,"streams":[{"labels":{..},"entries":[{"ts":..,"line":..}]}]}`. */
export class DryRunEncoder implements BatchEncoder {
  encode(streams: readonly BatchStream[]): EncodedBody {
    const doc = {
      dry_run: true,
      streams: streams.map((s) => {
        const entries: { ts: string; line: string }[] = [];
        forEachEntry(s.entries, (sec, nanos, line) => {
          entries.push({ ts: isoNanos(sec, nanos), line: line.toString("utf8") });
        });
        return { labels: s.labels, entries };
      }),
    };
    return { body: Buffer.from(`${JSON.stringify(doc)}\n`, "utf8"), contentType: "application/json" };
  }
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
