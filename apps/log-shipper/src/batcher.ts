// The batcher: turns lines into Loki entries and groups them into batches sealed by size
// (BATCH_MAX_BYTES) or age (BATCH_WAIT_MS, an unref()ed timer from the batch's first line).
//
// This is the hot path. Per line it: finds the file's state (last-file fast path, else a WeakMap
// on the SourceFile object), scans the line head for `time`/`level` (entry.ts), picks the stream
// for (filename, level) from a small per-file array — or, for a line whose fields the processing
// stage promoted to labels (LABEL_FIELDS), for (filename, level, promoted values) from a map —
// checks UTF-8 with simdutf (`isUtf8`), and appends the protobuf-encoded entry (with the line's
// structured metadata, METADATA_FIELDS) to that stream's reusable buffer. No per-line string,
// object or promise. With several destinations the fan-out does the scan and the UTF-8 check once
// per line (ScannedLine) and every destination's batcher takes that result. A sealed batch is
// handed to `onSeal` synchronously, which must encode it
// before returning; then the stream buffers are reused for the next batch.
//
// Per-file order holds because a file's lines enter streams in read order and batches are sealed
// (and later sent and acknowledged) in order. Each batch records, per file, the offset just past
// its last line: the offset to acknowledge once Loki accepted the batch.
import { isUtf8 } from "node:buffer";
import { SNAPPY_FRAGMENT, SnappyCompressor } from "@sidecar/shared";
import type { SourceFile } from "./contracts.js";
import { EntryScanner, knownUtf8, LEVEL_NAMES, type LevelCode } from "./entry.js";
import { formatLabels, streamLabels, stripRotationSuffix } from "./labels.js";
import type { LineFields } from "./processing/fields.js";
import { appendEntry, type BatchStream, GrowableBuffer } from "./sinks/loki/encode-protobuf.js";
import { displayPath } from "./source/path-bytes.js";

export const DEFAULT_BATCH_WAIT_MS = 1000;
export const DEFAULT_BATCH_MAX_BYTES = 1024 * 1024;
/** Stream buffers start small; most streams (levels) of a file carry few lines. */
const STREAM_INITIAL_BYTES = 1024;
/** After a burst, a stream buffer shrinks back to this much (or twice its last use). */
const STREAM_KEEP_BYTES = 64 * 1024;
/** A (filename) stream group unused for this many batches is forgotten (rotated-away names). */
const GROUP_IDLE_BATCHES = 600;
/**
 * A line's own time more than this far ahead of its read time is not used: Loki refuses entries
 * beyond its `creation_grace_period` (default 10 min) with a 400. Such a time is a wrong clock
 * or a hostile line, and the entry gets its read time instead (counted).
 */
export const MAX_FUTURE_MS = 10 * 60 * 1000;
/**
 * Latest second each encoding can carry: protobuf's google.protobuf.Timestamp ends at
 * 9999-12-31T23:59:59Z; the JSON push carries nanoseconds as an int64 (2262-04-11T23:47:16Z).
 * A later time makes Loki fail to decode the whole push.
 */
export const MAX_ENCODABLE_SEC = { protobuf: 253_402_300_799, json: 9_223_372_035 } as const;
/** At most this much of a line is kept as the example of a replaced timestamp. */
const EXAMPLE_BYTES = 200;

/**
 * What the batcher learns of a line before encoding it: the line's bytes as a view (its invalid
 * UTF-8 replaced), and its own time and level (entry.ts). The fan-out scans each line once and
 * hands the same result to every destination's batcher (`Batcher.add`'s `scanned`): the scan,
 * the UTF-8 check and the view are per line, not per line and destination.
 */
export class ScannedLine {
  line: Uint8Array = new Uint8Array(0);
  /** The line had invalid UTF-8, replaced with U+FFFD in `line`. */
  repaired = false;
  /** The line carries its own time (`sec`, `nanos`). */
  ownTime = false;
  sec = 0;
  nanos = 0;
  level: LevelCode = 0;
  /**
   * The line's promoted labels and structured metadata (processing stage, LABEL_FIELDS /
   * METADATA_FIELDS), set by the fan-out after `scan`; undefined without them.
   */
  fields: LineFields | undefined = undefined;
  private readonly scanner = new EntryScanner();
  /** The buffer the last line came from, and its memory (see scan). */
  private viewOf: Buffer | undefined;
  private viewBuffer: ArrayBufferLike = new ArrayBuffer(0);
  private viewOffset = 0;

  /**
   * Scan `buf[start, end)` into this object (overwriting the previous line's result). `utf8`: the
   * line is known to be valid UTF-8 already (entry.ts knownUtf8), no need to check it again.
   */
  scan(buf: Buffer, start: number, end: number, utf8 = false): this {
    // One view per line, used for the UTF-8 check and the copy (each view is an allocation).
    // A plain Uint8Array view is markedly cheaper to create than Buffer#subarray's FastBuffer.
    // `buf.buffer` is a call into the runtime, not a field load: asked once per chunk buffer (the
    // lines of a chunk share it), not once per line — a buffer's memory never moves.
    if (buf !== this.viewOf) {
      this.viewOf = buf;
      this.viewBuffer = buf.buffer;
      this.viewOffset = buf.byteOffset;
    }
    let line: Uint8Array = new Uint8Array(this.viewBuffer, this.viewOffset + start, end - start);
    this.repaired = false;
    this.fields = undefined;
    if (!utf8 && !isUtf8(line)) {
      // Rare: replace invalid sequences with U+FFFD (protobuf strings must be valid UTF-8).
      line = Buffer.from(buf.toString("utf8", start, end), "utf8");
      this.repaired = true;
    }
    this.line = line;
    const scanner = this.scanner;
    this.ownTime = scanner.scan(buf, start, end);
    this.sec = scanner.sec;
    this.nanos = scanner.nanos;
    this.level = scanner.level;
    return this;
  }
}

/** One Loki stream: a label set and the entries encoded for the open batch. */
class Stream {
  readonly group: StreamGroup;
  readonly labels: Record<string, string>;
  /** The labels promoted from the lines' own fields (LABEL_FIELDS), when any. */
  readonly promoted: Readonly<Record<string, string>> | undefined;
  readonly labelBytes: Buffer;
  readonly entries = new GrowableBuffer(STREAM_INITIAL_BYTES);
  /** Packing batcher only: snappy elements of the first `packedBytes` bytes of entries. */
  packed: GrowableBuffer | undefined;
  packedBytes = 0;
  count = 0;
  /** Per entry (only with BatcherOptions.entryRefs): its file's id and the offset past it. */
  fileIds: string[] = [];
  offsets: number[] = [];
  /** Sequence number of the batch this stream last joined (to list it once per batch). */
  seq = -1;
  // Timestamps are kept distinct per stream because Loki drops an entry whose timestamp and
  // line equal one it already holds for the stream. Read-time entries (no `time` of their own:
  // blank lines, plain text, stack traces) share the read time of their whole chunk, so each is
  // made strictly later than the stream's previous one: max(read time, previous + 1 ns).
  // Entries with their own `time` keep it, except that a run of equal (or, after such a spread,
  // overtaken) times is spread 1 ns apart in read order — otherwise a line the app wrote twice
  // in the same millisecond would be dropped as a duplicate. Entries earlier than the previous
  // own time are left exactly as they are (no reordering). A read-time line never equals an
  // own-time line byte for byte, so the two kinds need no common clock.
  /** Last read-time timestamp emitted. */
  readSec = 0;
  readNanos = -1;
  /** Last own timestamp as the line carried it, and as emitted. */
  origSec = 0;
  origNanos = -1;
  ownSec = 0;
  ownNanos = -1;
  constructor(group: StreamGroup, labels: Record<string, string>, promoted?: Record<string, string>) {
    this.group = group;
    this.labels = labels;
    this.promoted = promoted;
    this.labelBytes = Buffer.from(formatLabels(labels), "utf8");
  }
}

/** Make `s`'s last timestamps (read-time and own) the later of its own and `o`'s. */
function laterTimes(s: Stream, o: Stream): void {
  if (o.readSec > s.readSec || (o.readSec === s.readSec && o.readNanos > s.readNanos)) {
    s.readSec = o.readSec;
    s.readNanos = o.readNanos;
  }
  if (o.ownSec > s.ownSec || (o.ownSec === s.ownSec && o.ownNanos > s.ownNanos)) {
    s.ownSec = o.ownSec;
    s.ownNanos = o.ownNanos;
    s.origSec = o.origSec;
    s.origNanos = o.origNanos;
  }
}

/** The streams of one `filename` label value, one per level code (and promoted label values). */
class StreamGroup {
  readonly streams: (Stream | undefined)[] = [];
  /** Streams with promoted labels: per level code, by LineFields.labelKey. */
  keyed: (Map<string, Stream> | undefined)[] | undefined;
  lastSeq = 0;
  constructor(readonly filename: string) {}
}

/** What the batcher remembers per source file. */
class FileState {
  path = "";
  group: StreamGroup | undefined;
  /** Offset just past the last line taken; the offset to acknowledge for the open batch. */
  offset = Number.NaN;
  seq = -1;
  constructor(readonly id: string) {}
}

/** A sealed batch, as handed to `onSeal`. `streams[i].entries` is valid only during the call. */
export interface SealedBatch {
  readonly seq: number;
  readonly streams: readonly BatchStream[];
  /** Per file, the offset just past the last line of this batch. */
  readonly acks: readonly { fileId: string; offset: number }[];
  readonly lines: number;
  /** Bytes of the lines themselves (after UTF-8 repair), without terminators. */
  readonly lineBytes: number;
  /** Bytes this batch accounts for in `pendingBytes` (file bytes read, terminators included). */
  readonly pendingBytes: number;
  /** Lines whose invalid UTF-8 was replaced with U+FFFD. */
  readonly repairedLines: number;
  /** Lines whose own time was out of range and replaced by the read time. */
  readonly replacedTimestamps: number;
  /** The head of the first such line (for the log), when there was one. */
  readonly replacedExample?: string;
}

export interface BatcherOptions {
  /** Labels every stream carries (static + pod); `filename` and `level` are added per stream. */
  baseLabels: Readonly<Record<string, string>>;
  batchMaxBytes: number;
  batchWaitMs: number;
  /**
   * Latest own time (epoch seconds) the destination can decode (MAX_ENCODABLE_SEC); later times,
   * times before 1970 and times more than MAX_FUTURE_MS after the read are replaced by the read
   * time. Default: the protobuf limit.
   */
  maxOwnSec?: number;
  /** Record each entry's file id and end offset in the sealed streams (Sink.entryRefs). */
  entryRefs?: boolean;
  /**
   * Compress each stream's entries with snappy as they arrive, a SNAPPY_FRAGMENT at a time
   * (Sink.packedEntries): sealed streams carry `packed` + `packedBytes`, `entries` is the rest.
   */
  pack?: boolean;
  onSeal: (batch: SealedBatch) => void;
}

export class Batcher {
  private readonly opts: BatcherOptions;
  /** The scan of lines added without one (a single destination). */
  private readonly scanned = new ScannedLine();
  private readonly files = new WeakMap<SourceFile, FileState>();
  private readonly groups = new Map<string, StreamGroup>();
  private lastFile: SourceFile | undefined;
  private lastState: FileState | undefined;

  private seq = 0;
  private openStreams: Stream[] = [];
  private openFiles: FileState[] = [];
  private openBytesCount = 0;
  private openLines = 0;
  private openLineBytes = 0;
  private openPending = 0;
  private openRepaired = 0;
  private openReplaced = 0;
  private openReplacedExample: string | undefined;
  private readonly maxOwnSec: number;
  private readonly entryRefs: boolean;
  /** Packs streams' entries (BatcherOptions.pack). */
  private readonly packer: SnappyCompressor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: BatcherOptions) {
    this.opts = opts;
    this.maxOwnSec = opts.maxOwnSec ?? MAX_ENCODABLE_SEC.protobuf;
    this.entryRefs = opts.entryRefs === true;
    this.packer = opts.pack === true ? new SnappyCompressor() : undefined;
  }

  /** Encoded bytes in the open batch. */
  get openBytes(): number {
    return this.openBytesCount;
  }

  /** Pending (read, unacknowledged) bytes held by the open batch. */
  get openPendingBytes(): number {
    return this.openPending;
  }

  /**
   * Add one line (see LineSink.writeLine). Returns the bytes it adds to the pending count: the
   * file bytes it covers (offset delta, so terminators and truncated tails count), or the line
   * length + 1 for a file's first line.
   */
  add(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    readTimeMs: number,
    /** The line already scanned (by the fan-out, once for every destination); else scanned here. */
    scanned?: ScannedLine,
  ): number {
    let fs: FileState;
    if (file === this.lastFile) {
      fs = this.lastState as FileState;
    } else {
      fs = this.fileState(file);
      this.lastFile = file;
      this.lastState = fs;
    }
    if (fs.path !== file.path) this.bindPath(fs, file.path);
    const group = fs.group as StreamGroup;

    const scan = scanned ?? this.scanned.scan(buf, start, end, knownUtf8(file, buf, start, end));
    const line = scan.line;
    if (scan.repaired) this.openRepaired++;
    const lineLen = line.length;

    let ownTime = scan.ownTime;
    // A time the destination cannot take would cost the whole push (a decode error) or the
    // entry (Loki's "timestamp too new"): such a line gets its read time, counted. Old times
    // that can be encoded are kept as the app wrote them (see the README: Loki's
    // reject_old_samples_max_age is the server's call, and it stores the other entries).
    if (
      ownTime &&
      (scan.sec < 0 ||
        scan.sec > this.maxOwnSec ||
        scan.sec * 1000 + scan.nanos / 1e6 > readTimeMs + MAX_FUTURE_MS)
    ) {
      ownTime = false;
      this.openReplaced++;
      this.openReplacedExample ??= Buffer.from(line.subarray(0, EXAMPLE_BYTES)).toString("utf8");
    }
    const level = scan.level;
    const fields = scan.fields;
    const stream =
      fields === undefined || fields.labelKey === ""
        ? (group.streams[level] ?? this.createStream(group, level))
        : this.keyedStream(group, level, fields);
    // Loki silently drops an entry whose stream, timestamp and line equal one it holds, so
    // entries of a stream are kept at distinct timestamps (see Stream's timestamp fields).
    let sec: number;
    let nanos: number;
    if (ownTime) {
      sec = scan.sec;
      nanos = scan.nanos;
      const origSec = stream.origSec;
      const origNanos = stream.origNanos;
      stream.origSec = sec;
      stream.origNanos = nanos;
      // In order (not before the previous own time) but not after the previous emitted one:
      // 1 ns after it. Entries before the previous own time are the app's own disorder: as is.
      if (
        (sec > origSec || (sec === origSec && nanos >= origNanos)) &&
        (sec < stream.ownSec || (sec === stream.ownSec && nanos <= stream.ownNanos))
      ) {
        sec = stream.ownSec;
        nanos = stream.ownNanos + 1;
        if (nanos === 1e9) {
          sec++;
          nanos = 0;
        }
      }
      stream.ownSec = sec;
      stream.ownNanos = nanos;
    } else {
      sec = Math.floor(readTimeMs / 1000);
      nanos = Math.round((readTimeMs - sec * 1000) * 1e6);
      if (sec < stream.readSec || (sec === stream.readSec && nanos <= stream.readNanos)) {
        sec = stream.readSec;
        nanos = stream.readNanos + 1;
        if (nanos === 1e9) {
          sec++;
          nanos = 0;
        }
      }
      stream.readSec = sec;
      stream.readNanos = nanos;
    }

    const estimate = lineLen + 32;
    if (this.openBytesCount > 0 && this.openBytesCount + estimate > this.opts.batchMaxBytes) this.seal();

    if (stream.seq !== this.seq) {
      stream.seq = this.seq;
      this.openStreams.push(stream);
    }
    if (fs.seq !== this.seq) {
      fs.seq = this.seq;
      this.openFiles.push(fs);
    }
    this.openBytesCount += appendEntry(stream.entries, sec, nanos, line, fields?.metadataWire);
    if (this.packer !== undefined && stream.entries.len > SNAPPY_FRAGMENT) this.pack(stream, this.packer);
    stream.count++;
    if (this.entryRefs) {
      stream.fileIds.push(fs.id);
      stream.offsets.push(offset);
    }

    const pending = offset > fs.offset ? offset - fs.offset : end - start + 1;
    fs.offset = offset;
    this.openLines++;
    this.openLineBytes += lineLen;
    this.openPending += pending;

    if (this.openBytesCount >= this.opts.batchMaxBytes) {
      this.seal();
    } else if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(this.onTimer, this.opts.batchWaitMs);
      this.timer.unref();
    }
    return pending;
  }

  /**
   * Continue the per-stream timestamps of `other`, a batcher whose lines went to the same
   * destination until now (the fan-out moving between its shared batcher and the destinations'
   * own): each stream's next entries are made distinct from (later than or equal-spread past) the
   * last ones either batcher gave, as within one batcher — else a line repeated with the same time
   * on both sides of the move would get the same timestamp twice, and Loki keeps only one.
   */
  continueTimes(other: Batcher): void {
    for (const [name, og] of other.groups) {
      let g = this.groups.get(name);
      if (g === undefined) {
        g = new StreamGroup(name);
        g.lastSeq = this.seq;
        this.groups.set(name, g);
      }
      for (let level = 0; level < og.streams.length; level++) {
        const os = og.streams[level];
        if (os !== undefined) laterTimes(g.streams[level] ?? this.createStream(g, level as LevelCode), os);
      }
      if (og.keyed === undefined) continue;
      g.keyed ??= [];
      for (let level = 0; level < og.keyed.length; level++) {
        const okeyed = og.keyed[level];
        if (okeyed === undefined) continue;
        let keyed = g.keyed[level];
        if (keyed === undefined) {
          keyed = new Map();
          g.keyed[level] = keyed;
        }
        for (const [key, os] of okeyed) {
          let s = keyed.get(key);
          if (s === undefined) {
            // Same settings (the fan-out shares only then): the same labels.
            s = new Stream(g, os.labels, os.promoted as Record<string, string>);
            keyed.set(key, s);
          }
          laterTimes(s, os);
        }
      }
    }
  }

  /** Seal the open batch now, if it has any line. */
  flush(): void {
    if (this.openLines > 0) this.seal();
  }

  /** Stop the age timer; lines added later are only sealed by size or flush(). */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flush();
  };

  /**
   * Compress the stream's whole fragments of entries into its `packed` elements and keep only the
   * rest (less than a fragment, or one longer entry's tail). The fragments start where the stream's
   * entries start, as the encoder's own compressInto would cut them: the body is byte for byte the
   * one an unpacked batch gives. A stream then holds about its compressed size plus one fragment
   * instead of all its entries (up to BATCH_MAX_BYTES, 1 MiB by default, resident for good once
   * a batch has filled it), and the compression happens as lines arrive instead of at seal.
   */
  private pack(stream: Stream, packer: SnappyCompressor): void {
    const e = stream.entries;
    // Room for a typical batch's compressed stream from the start (a 1 MiB batch of log lines
    // compresses to 75–300 KB, and each fragment asks for 76.5 KB of headroom): not grown from
    // 64 KiB by doubling, every step a freed buffer in glibc's heap.
    stream.packed ??= new GrowableBuffer(256 * 1024);
    let from = 0;
    while (e.len - from > SNAPPY_FRAGMENT) {
      packer.compressInto(e.buf, from, from + SNAPPY_FRAGMENT, stream.packed);
      from += SNAPPY_FRAGMENT;
    }
    e.buf.copyWithin(0, from, e.len);
    e.len -= from;
    stream.packedBytes += from;
  }

  private seal(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const streams = this.openStreams;
    const files = this.openFiles;
    const batch: SealedBatch = {
      seq: this.seq,
      streams: streams.map((s) => ({
        labels: s.labels,
        ...(s.promoted !== undefined ? { promoted: s.promoted } : {}),
        labelBytes: s.labelBytes,
        entries: s.entries.view(),
        ...(s.packed !== undefined ? { packed: s.packed.view(), packedBytes: s.packedBytes } : {}),
        count: s.count,
        ...(this.entryRefs ? { fileIds: s.fileIds, offsets: s.offsets } : {}),
      })),
      acks: files.map((f) => ({ fileId: f.id, offset: f.offset })),
      lines: this.openLines,
      lineBytes: this.openLineBytes,
      pendingBytes: this.openPending,
      repairedLines: this.openRepaired,
      replacedTimestamps: this.openReplaced,
      ...(this.openReplacedExample !== undefined ? { replacedExample: this.openReplacedExample } : {}),
    };
    this.seq++;
    this.openStreams = [];
    this.openFiles = [];
    this.openBytesCount = 0;
    this.openLines = 0;
    this.openLineBytes = 0;
    this.openPending = 0;
    this.openRepaired = 0;
    this.openReplaced = 0;
    this.openReplacedExample = undefined;
    try {
      this.opts.onSeal(batch);
    } finally {
      for (const s of streams) {
        s.group.lastSeq = batch.seq;
        const used = s.entries.len;
        s.entries.len = 0;
        s.count = 0;
        s.entries.shrink(used, STREAM_KEEP_BYTES);
        const packed = s.packed;
        if (packed !== undefined) {
          if (s.packedBytes === 0) {
            // Nothing packed in this batch: a stream gone quiet does not keep the buffer.
            s.packed = undefined;
          } else {
            const packedLen = packed.len;
            packed.len = 0;
            s.packedBytes = 0;
            packed.shrink(packedLen, STREAM_KEEP_BYTES);
          }
        }
        if (this.entryRefs) {
          s.fileIds = [];
          s.offsets = [];
        }
      }
      if (this.seq % 100 === 0) this.pruneGroups();
    }
  }

  private fileState(file: SourceFile): FileState {
    let fs = this.files.get(file);
    if (fs === undefined) {
      fs = new FileState(file.id);
      this.files.set(file, fs);
    }
    return fs;
  }

  private bindPath(fs: FileState, path: string): void {
    fs.path = path;
    const filename = stripRotationSuffix(displayPath(path));
    let group = this.groups.get(filename);
    if (group === undefined) {
      group = new StreamGroup(filename);
      this.groups.set(filename, group);
    }
    group.lastSeq = this.seq;
    fs.group = group;
  }

  private createStream(group: StreamGroup, level: LevelCode): Stream {
    const s = new Stream(group, streamLabels(this.opts.baseLabels, group.filename, LEVEL_NAMES[level]));
    group.streams[level] = s;
    return s;
  }

  /** The stream of a line with promoted labels: level + their values pick it. */
  private keyedStream(group: StreamGroup, level: LevelCode, fields: LineFields): Stream {
    if (group.keyed === undefined) group.keyed = [];
    let keyed = group.keyed[level];
    if (keyed === undefined) {
      keyed = new Map();
      group.keyed[level] = keyed;
    }
    const key = fields.labelKey;
    let s = keyed.get(key);
    if (s === undefined) {
      const promoted: Record<string, string> = {};
      for (const [name, value] of fields.labels) promoted[name] = value;
      const labels = {
        ...promoted,
        ...streamLabels(this.opts.baseLabels, group.filename, LEVEL_NAMES[level]),
      };
      s = new Stream(group, labels, promoted);
      keyed.set(key, s);
    }
    return s;
  }

  /**
   * Forget stream groups no file has used for a while (names of files long rotated away), and
   * streams of promoted label values no line had for as long.
   */
  private pruneGroups(): void {
    // A file still holding a pruned group keeps using it; it is only dropped from the lookup.
    for (const [name, g] of this.groups) {
      if (this.seq - g.lastSeq > GROUP_IDLE_BATCHES) this.groups.delete(name);
      else if (g.keyed !== undefined) {
        for (const keyed of g.keyed) {
          if (keyed === undefined) continue;
          for (const [key, s] of keyed) if (this.seq - s.seq > GROUP_IDLE_BATCHES) keyed.delete(key);
        }
      }
    }
  }
}
