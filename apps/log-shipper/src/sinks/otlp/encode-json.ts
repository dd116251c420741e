// OTLP/HTTP logs in JSON (`OTLP_ENCODING=json`): the same ExportLogsServiceRequest as the protobuf
// encoder, in the OTLP JSON mapping — lowerCamelCase field names, 64-bit integers (the
// nanosecond times) as decimal strings, enums (severityNumber) as integers, default values
// omitted. Not the default and not on the hot path: entries are read back with forEachEntry and
// each line is escaped by JSON.stringify. trace_id / span_id are hex strings, as the OTLP JSON
// mapping has them (not base64 as for other bytes).
import { compactBody } from "../compact.js";
import { unixNanosString } from "../loki/encode-json.js";
import {
  type BatchEncoder,
  type BatchStream,
  type EncodedBody,
  forEachEntry,
} from "../loki/encode-protobuf.js";
import { zlib } from "../zlib.js";
import {
  metadataParts,
  type OtlpEncoderOptions,
  recordParts,
  resourceAttributes,
  SCOPE_NAME,
} from "./encode-protobuf.js";

function keyValues(pairs: readonly [string, string][]): string {
  return `[${pairs.map(([k, v]) => `{"key":${JSON.stringify(k)},"value":{"stringValue":${JSON.stringify(v)}}}`).join(",")}]`;
}

export class OtlpJsonEncoder implements BatchEncoder {
  /** `{"resourceLogs":[{"resource":{…},"scopeLogs":[{"scope":{…},"logRecords":[` */
  private readonly head: string;
  private readonly compression: "gzip" | "none";
  private readonly now: () => number;
  /** Per label set: the record's JSON before the body and after it (without the observed time). */
  private readonly parts = new WeakMap<object, { before: string; after: string }>();

  constructor(opts: OtlpEncoderOptions) {
    const resource = `{"attributes":${keyValues(resourceAttributes(opts.staticLabels, opts.podLabels))}}`;
    this.head = `{"resourceLogs":[{"resource":${resource},"scopeLogs":[{"scope":{"name":${JSON.stringify(SCOPE_NAME)}},"logRecords":[`;
    this.compression = opts.compression;
    this.now = opts.now ?? Date.now;
  }

  private partsOf(
    labels: Readonly<Record<string, string>>,
    promoted: Readonly<Record<string, string>> | undefined,
  ): { before: string; after: string } {
    let p = this.parts.get(labels);
    if (p === undefined) {
      const r = recordParts(labels, promoted);
      let before = "";
      if (r.severityNumber > 0) before += `,"severityNumber":${r.severityNumber}`;
      if (r.severityText !== undefined) before += `,"severityText":${JSON.stringify(r.severityText)}`;
      const after = r.attributes.length > 0 ? `,"attributes":${keyValues(r.attributes)}` : "";
      p = { before, after };
      this.parts.set(labels, p);
    }
    return p;
  }

  encode(streams: readonly BatchStream[]): EncodedBody {
    const nowMs = this.now();
    const obsSec = Math.floor(nowMs / 1000);
    const observed = unixNanosString(obsSec, Math.round((nowMs - obsSec * 1000) * 1e6));
    const records: string[] = [];
    for (const s of streams) {
      const { before, after } = this.partsOf(s.labels, s.promoted);
      const r = recordParts(s.labels, s.promoted);
      forEachEntry(s.entries, (sec, nanos, line, metadata) => {
        let rest = after;
        if (metadata !== undefined) {
          // The line's metadata: its attributes join the stream's; the ids are the record's own.
          const m = metadataParts(metadata);
          const attrs = [...r.attributes, ...m.attributes];
          rest = attrs.length > 0 ? `,"attributes":${keyValues(attrs)}` : "";
          if (m.traceId !== undefined) rest += `,"traceId":"${m.traceId}"`;
          if (m.spanId !== undefined) rest += `,"spanId":"${m.spanId}"`;
        }
        records.push(
          `{"timeUnixNano":"${unixNanosString(sec, nanos)}","observedTimeUnixNano":"${observed}"${before},"body":{"stringValue":${JSON.stringify(line.toString("utf8"))}}${rest}}`,
        );
      });
    }
    const json = Buffer.from(`${this.head}${records.join(",")}]}]}]}`, "utf8");
    if (this.compression === "gzip") {
      return {
        body: compactBody(zlib().gzipSync(json, { level: 1 })),
        contentType: "application/json",
        contentEncoding: "gzip",
      };
    }
    return { body: json, contentType: "application/json" };
  }
}
