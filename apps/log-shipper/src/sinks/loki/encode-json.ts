// Loki's JSON push body (`LOKI_ENCODING=json`), optionally gzip-compressed:
//   {"streams":[{"stream":{"k":"v"},"values":[["<unix ns>","line"], ...]}]}
// An entry with structured metadata (METADATA_FIELDS) has it as a third element:
//   ["<unix ns>","line",{"trace_id":"…"}]
// Not the default and not on the hot path: it reads the batch's protobuf-form entries back and
// builds the document with JSON.stringify, which escapes the labels and lines correctly.
import { compactBody } from "../compact.js";
import { zlib } from "../zlib.js";
import { type BatchEncoder, type BatchStream, type EncodedBody, forEachEntry } from "./encode-protobuf.js";

/** Nanoseconds since the epoch as the decimal string Loki's JSON push expects. */
export function unixNanosString(sec: number, nanos: number): string {
  if (sec === 0) return String(nanos);
  return `${sec}${String(nanos).padStart(9, "0")}`;
}

export class JsonEncoder implements BatchEncoder {
  constructor(private readonly compression: "gzip" | "none") {}

  encode(streams: readonly BatchStream[]): EncodedBody {
    const doc = {
      streams: streams.map((s) => {
        const values: ([string, string] | [string, string, Record<string, string>])[] = [];
        forEachEntry(s.entries, (sec, nanos, line, metadata) => {
          if (metadata === undefined) values.push([unixNanosString(sec, nanos), line.toString("utf8")]);
          else
            values.push([unixNanosString(sec, nanos), line.toString("utf8"), Object.fromEntries(metadata)]);
        });
        return { stream: s.labels, values };
      }),
    };
    const json = Buffer.from(JSON.stringify(doc), "utf8");
    if (this.compression === "gzip") {
      // Level 1: the body is sent once over a fast link; most of gzip's gain comes at low levels.
      // compactBody: a small result would otherwise keep zlib's 16 KiB chunk while queued.
      return {
        body: compactBody(zlib().gzipSync(json, { level: 1 })),
        contentType: "application/json",
        contentEncoding: "gzip",
      };
    }
    return { body: json, contentType: "application/json" };
  }
}
