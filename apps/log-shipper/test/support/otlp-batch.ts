// A sealed batch's streams for OTLP tests: one stream of the given lines, in the batcher's wire form.
import { formatLabels } from "../../src/labels.js";
import { appendEntry, type BatchStream, GrowableBuffer } from "../../src/sinks/loki/encode-protobuf.js";

const labels = { job: "sample-app", filename: "/shared/logs/app.log", level: "info" };

export function batch(lines: string[], sec = 1_700_000_000): BatchStream[] {
  const g = new GrowableBuffer(256);
  for (const [i, l] of lines.entries()) appendEntry(g, sec, i, Buffer.from(l, "utf8"));
  return [{ labels, labelBytes: Buffer.from(formatLabels(labels)), entries: g.view(), count: lines.length }];
}
