// Prometheus remote-write 1.0 `WriteRequest`, hand-encoded (a few fields of three messages; no
// protobuf library). From prometheus/prompb remote.proto and types.proto:
//
//   WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; repeated MetricMetadata metadata = 3; }
//   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//   Label        { string name = 1; string value = 2; }
//   Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms
//
// The body is then snappy-compressed (block format) by the caller.

/** The NaN bit pattern Prometheus reads as "this series ended" (value.StaleNaN). */
export const STALE_NAN_HI = 0x7ff00000;
export const STALE_NAN_LO = 0x00000002;

/** A growable byte writer with protobuf primitives. */
export class ProtoWriter {
  buf = Buffer.allocUnsafe(4096);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** An unsigned varint of a non-negative safe integer (timestamps in ms need more than 32 bits). */
  varint(n: number): void {
    this.reserve(10);
    while (n >= 0x80) {
      this.buf[this.len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.len++] = n;
  }

  tag(field: number, wire: 0 | 1 | 2): void {
    this.varint((field << 3) | wire);
  }

  bytes(field: number, b: Buffer | Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  string(field: number, s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.tag(field, 2);
    this.varint(n);
    this.reserve(n);
    this.len += this.buf.write(s, this.len, "utf8");
  }

  double(field: number, v: number): void {
    this.tag(field, 1);
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }

  /** The StaleNaN marker as a double field, bit for bit (a JS NaN would not keep the payload). */
  staleNaN(field: number): void {
    this.tag(field, 1);
    this.reserve(8);
    this.buf.writeUInt32LE(STALE_NAN_LO, this.len);
    this.buf.writeUInt32LE(STALE_NAN_HI, this.len + 4);
    this.len += 8;
  }

  /** Bytes already in wire form. */
  raw(b: Buffer | Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  take(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  reset(): void {
    this.len = 0;
  }
}

// Scratch writers reused for every label set (one series at a time; never re-entered).
const labelsScratch = new ProtoWriter();
const labelScratch = new ProtoWriter();

/**
 * The encoded `labels` fields of one TimeSeries (labels must already be sorted by name), as a view
 * into a scratch buffer that the next call overwrites.
 */
export function encodeLabels(labels: readonly (readonly [string, string])[]): Buffer {
  const w = labelsScratch;
  const label = labelScratch;
  w.reset();
  for (const [name, value] of labels) {
    label.reset();
    label.string(1, name);
    label.string(2, value);
    w.bytes(1, label.take());
  }
  return w.take();
}

/**
 * Append one TimeSeries (pre-encoded labels, one sample) to a WriteRequest being written.
 * `value` undefined writes the staleness marker.
 */
export function writeSeries(
  req: ProtoWriter,
  labels: Buffer,
  value: number | undefined,
  timestampMs: number,
): void {
  // Sample: field 1 double (1 tag byte + 8), field 2 varint timestamp.
  const sampleLen = 1 + 8 + 1 + varintSize(timestampMs);
  const seriesLen = labels.length + 1 + varintSize(sampleLen) + sampleLen;
  req.tag(1, 2);
  req.varint(seriesLen);
  req.raw(labels);
  req.tag(2, 2);
  req.varint(sampleLen);
  if (value === undefined) req.staleNaN(1);
  else req.double(1, value);
  req.tag(2, 0);
  req.varint(timestampMs);
}

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}
