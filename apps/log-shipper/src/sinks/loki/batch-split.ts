// Splitting a rejected batch. When Loki answers a push with a 4xx that condemns the request as a
// whole without saying which entries were bad (a decode error: one entry's timestamp or string
// it cannot read fails the entire push), dropping the batch would lose every good line in it.
// The pipeline instead sends the two halves again, and halves of the halves, until only the
// offending entries are left to drop. Queued batches are kept only encoded and compressed (to
// keep memory low), so this rare path reads the request body back into entries: protobuf
// (snappy) or JSON (gzip or not), whichever the encoder wrote.

import { isoTimeRange, snappyUncompress } from "@sidecar/shared";
import { formatLabels } from "../../labels.js";
import { encodeMetadata } from "../../processing/fields.js";
import { isoNanos } from "../dry-run/dry-run.js";
import { zlib } from "../zlib.js";
import {
  appendEntry,
  type BatchStream,
  type EncodedBody,
  forEachEntry,
  GrowableBuffer,
} from "./encode-protobuf.js";

/** One entry of a decoded body: its stream and its bytes in wire form (see appendEntry). */
export interface SplitEntry {
  stream: number;
  wire: Buffer;
  lineBytes: number;
}

export interface DecodedBatch {
  streams: { labels: Readonly<Record<string, string>>; labelBytes: Buffer }[];
  entries: SplitEntry[];
}

/** A half of a split batch, ready for the encoder. */
export interface BatchPart {
  streams: BatchStream[];
  lines: number;
  lineBytes: number;
}

/** Read an encoded push body back into its streams and entries (in order). */
export function decodeBody(body: EncodedBody): DecodedBatch {
  if (body.contentType.includes("json")) return decodeJson(body);
  return decodeProtobuf(snappyUncompress(body.body));
}

/** The entries [from, to) of a decoded batch as streams (entries of one stream kept in order). */
export function part(batch: DecodedBatch, from: number, to: number): BatchPart {
  const streams: BatchStream[] = [];
  let lineBytes = 0;
  let i = from;
  while (i < to) {
    const first = batch.entries[i] as SplitEntry;
    const wires: Buffer[] = [];
    // Entries of one stream are contiguous in a body (the encoders write stream by stream).
    while (i < to && (batch.entries[i] as SplitEntry).stream === first.stream) {
      const e = batch.entries[i] as SplitEntry;
      wires.push(e.wire);
      lineBytes += e.lineBytes;
      i++;
    }
    const s = batch.streams[first.stream] as DecodedBatch["streams"][number];
    streams.push({
      labels: s.labels,
      labelBytes: s.labelBytes,
      entries: Buffer.concat(wires),
      count: wires.length,
    });
  }
  return { streams, lines: to - from, lineBytes };
}

/** The timestamp (RFC 3339, ns) and the head of the line of a one-entry part, for the drop log. */
export function describeEntry(e: SplitEntry, maxChars = 200): { timestamp: string; line: string } {
  let out = { timestamp: "", line: "" };
  forEachEntry(e.wire, (sec, nanos, line) => {
    const text = line.toString("utf8");
    const iso = isoTimeRange(sec * 1000) ? isoNanos(sec, nanos) : `${sec}s+${nanos}ns`;
    out = { timestamp: iso, line: text.length > maxChars ? `${text.slice(0, maxChars)}…` : text };
  });
  return out;
}

// --- protobuf -------------------------------------------------------------------------------

function decodeProtobuf(buf: Buffer): DecodedBatch {
  const out: DecodedBatch = { streams: [], entries: [] };
  const r = { p: 0 };
  while (r.p < buf.length) {
    const tag = varint(buf, r);
    const len = varint(buf, r);
    const end = r.p + len;
    if (tag === 0x0a) decodeStream(buf, r.p, end, out);
    r.p = end;
  }
  return out;
}

function decodeStream(buf: Buffer, start: number, end: number, out: DecodedBatch): void {
  const r = { p: start };
  const index = out.streams.length;
  let labelBytes: Buffer = Buffer.alloc(0);
  while (r.p < end) {
    const at = r.p;
    const tag = varint(buf, r);
    const len = varint(buf, r);
    const fieldEnd = r.p + len;
    if (tag === 0x0a) labelBytes = buf.subarray(r.p, fieldEnd);
    else if (tag === 0x12) {
      const wire = buf.subarray(at, fieldEnd);
      let lineBytes = 0;
      forEachEntry(wire, (_s, _n, line) => {
        lineBytes = line.length;
      });
      out.entries.push({ stream: index, wire, lineBytes });
    }
    r.p = fieldEnd;
  }
  // The protobuf encoder uses only `labelBytes`; the object form is not needed to re-encode.
  out.streams.push({ labels: {}, labelBytes });
}

function varint(buf: Buffer, r: { p: number }): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    const b = buf[r.p++];
    if (b === undefined) throw new Error("truncated protobuf body");
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 128;
  }
}

// --- JSON -----------------------------------------------------------------------------------

function decodeJson(body: EncodedBody): DecodedBatch {
  const json = body.contentEncoding === "gzip" ? zlib().gunzipSync(body.body) : body.body;
  const doc = JSON.parse(json.toString("utf8")) as {
    streams: { stream: Record<string, string>; values: [string, string, Record<string, string>?][] }[];
  };
  const out: DecodedBatch = { streams: [], entries: [] };
  const scratch = new GrowableBuffer(1024);
  for (const s of doc.streams) {
    const index = out.streams.length;
    out.streams.push({ labels: s.stream, labelBytes: Buffer.from(formatLabels(s.stream), "utf8") });
    for (const [ts, line, metadata] of s.values) {
      // Decimal nanoseconds as the JSON encoder wrote them (unixNanosString).
      const sec = ts.length > 9 ? Number(ts.slice(0, -9)) : 0;
      const nanos = Number(ts.length > 9 ? ts.slice(-9) : ts);
      const bytes = Buffer.from(line, "utf8");
      scratch.len = 0;
      appendEntry(
        scratch,
        sec,
        nanos,
        bytes,
        metadata !== undefined ? encodeMetadata(Object.entries(metadata)) : undefined,
      );
      out.entries.push({ stream: index, wire: Buffer.from(scratch.view()), lineBytes: bytes.length });
    }
  }
  return out;
}
