// The batcher: size and age limits, per-file order across batches, acknowledgement offsets per
// batch, streams per (filename, level) that survive a rotation, UTF-8 repair and read-time
// fallback — observed through the batches it seals, decoded as Loki would decode them.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Batcher, type SealedBatch } from "../src/batcher.js";
import type { SourceFile } from "../src/contracts.js";
import { forEachEntry, ProtobufEncoder } from "../src/sinks/loki/encode-protobuf.js";
import { decodeProtobufPush, type ReceivedEntry } from "./support/fake-loki.js";

const READ_TIME_MS = 1_800_000_000_000;

interface Sealed {
  batch: Omit<SealedBatch, "streams">;
  entries: ReceivedEntry[];
}

function setup(opts: { batchMaxBytes?: number; batchWaitMs?: number } = {}) {
  const sealed: Sealed[] = [];
  const encoder = new ProtobufEncoder();
  const batcher = new Batcher({
    baseLabels: { job: "test" },
    batchMaxBytes: opts.batchMaxBytes ?? 1 << 20,
    batchWaitMs: opts.batchWaitMs ?? 60_000,
    onSeal: (b) => {
      // Encode inside the callback, as the pipeline does: stream buffers are reused afterwards.
      const { streams, ...rest } = b;
      sealed.push({ batch: rest, entries: decodeProtobufPush(encoder.encode(streams).body) });
    },
  });
  const offsets = new Map<SourceFile, number>();
  /**
   * Write lines as a reader would: one chunk, each line a slice of it. The default read time
   * (2027) lies after the lines' own times, as it does for real lines.
   */
  const write = (file: SourceFile, lines: string[], readTimeMs = READ_TIME_MS) => {
    const chunk = Buffer.from(lines.map((l) => `${l}\n`).join(""));
    let pos = 0;
    let total = 0;
    for (const l of lines) {
      const len = Buffer.byteLength(l);
      const offset = (offsets.get(file) ?? 0) + len + 1;
      offsets.set(file, offset);
      total += batcher.add(file, chunk, pos, pos + len, offset, readTimeMs);
      pos += len + 1;
    }
    return total;
  };
  return { batcher, sealed, write };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("Batcher", () => {
  it("seals by size: no batch over the limit, every line once, in order per file", () => {
    const { batcher, sealed, write } = setup({ batchMaxBytes: 4096 });
    const a: SourceFile = { id: "a", path: "/logs/a.log" };
    const b: SourceFile = { id: "b", path: "/logs/b.log" };
    for (let i = 0; i < 500; i++) {
      write(a, [`a-${i} ${"x".repeat(i % 50)}`]);
      if (i % 3 === 0) write(b, [`b-${i}`]);
    }
    batcher.flush();
    expect(sealed.length).toBeGreaterThan(5);
    const lines = sealed.flatMap((s) => s.entries.map((e) => e.line));
    const aLines = lines.filter((l) => l.startsWith("a-")).map((l) => Number(l.slice(2).split(" ")[0]));
    const bLines = lines.filter((l) => l.startsWith("b-")).map((l) => Number(l.slice(2)));
    expect(aLines).toEqual([...Array(500).keys()]);
    expect(bLines).toEqual([...Array(500).keys()].filter((i) => i % 3 === 0));
    for (const s of sealed) {
      const bytes = s.entries.reduce((n, e) => n + Buffer.byteLength(e.line), 0);
      expect(bytes).toBeLessThanOrEqual(4096);
      expect(s.batch.lines).toBe(s.entries.length);
    }
  });

  it("acknowledges, per batch and file, the offset just past the batch's last line of that file", () => {
    const { batcher, sealed, write } = setup({ batchMaxBytes: 200 });
    const a: SourceFile = { id: "a", path: "/logs/a.log" };
    const b: SourceFile = { id: "b", path: "/logs/b.log" };
    write(a, ["0123456789".repeat(5), "second"]); // offsets 51, 58
    write(b, ["b1"]); // 3
    write(a, ["0123456789".repeat(15)]); // 209: does not fit, seals the first batch
    batcher.flush();
    expect(sealed.map((s) => s.batch.acks)).toEqual([
      [
        { fileId: "a", offset: 58 },
        { fileId: "b", offset: 3 },
      ],
      [{ fileId: "a", offset: 209 }],
    ]);
    expect(sealed.map((s) => s.batch.pendingBytes)).toEqual([58 + 3, 151]);
  });

  it("seals by age with its timer, and not before", () => {
    vi.useFakeTimers();
    const { sealed, write } = setup({ batchWaitMs: 1000 });
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    write(f, ["one"]);
    vi.advanceTimersByTime(600);
    write(f, ["two"]); // a later line does not restart the clock
    vi.advanceTimersByTime(399);
    expect(sealed).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(sealed).toHaveLength(1);
    expect(sealed[0]?.entries.map((e) => e.line)).toEqual(["one", "two"]);
    vi.advanceTimersByTime(5000);
    expect(sealed).toHaveLength(1); // no empty batches
  });

  it("splits streams by level, strips the rotation suffix, and keeps the stream across a rename", () => {
    const { batcher, sealed, write } = setup();
    const f = { id: "f", path: "/logs/app.log" };
    write(f, ['{"level":30,"time":1700000000000}', '{"level":50,"time":1700000000001}', "plain"]);
    f.path = "/logs/app.log.1"; // rotated by rename: same identity, new path
    write(f, ['{"level":30,"time":1700000000002}']);
    batcher.flush();
    const entries = sealed[0]?.entries ?? [];
    const labelSets = new Set(entries.map((e) => JSON.stringify(e.labels)));
    expect(labelSets.size).toBe(3);
    expect(entries.map((e) => e.labels)).toContainEqual({
      job: "test",
      filename: "/logs/app.log",
      level: "info",
    });
    expect(entries.map((e) => e.labels)).toContainEqual({ job: "test", filename: "/logs/app.log" });
    const info = entries.filter((e) => e.labels.level === "info").map((e) => e.tsNs);
    expect(info).toEqual([1700000000000000000n, 1700000000002000000n]);
  });

  it("uses the read time when the line has no timestamp, and repairs invalid UTF-8", () => {
    const { batcher, sealed } = setup();
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    // Two bytes that are never valid UTF-8, then a multi-byte character cut in half (as truncation does).
    const chunk = Buffer.concat([
      Buffer.from("ok "),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(" bad"),
      Buffer.from([0xc3]),
    ]);
    batcher.add(f, chunk, 0, chunk.length, chunk.length + 1, 1_700_000_000_123.5);
    batcher.flush();
    expect(sealed[0]?.entries[0]?.line).toBe("ok \ufffd\ufffd bad\ufffd");
    expect(sealed[0]?.entries[0]?.tsNs).toBe(1_700_000_000_123_500_000n);
    expect(sealed[0]?.batch.repairedLines).toBe(1);
  });

  it("gives read-time entries of a stream strictly increasing timestamps (Loki drops equal ts + line)", () => {
    const { batcher, sealed, write } = setup({ batchMaxBytes: 1024 });
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    const g: SourceFile = { id: "g", path: "/logs/g.log" };
    // One chunk of repeated plain lines and blank lines, all at the same read time, over several
    // batches; then a read time that went backwards (clock step).
    const same = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? "" : "same line"));
    write(f, same, 1_700_000_000_000);
    write(f, ["after", "after"], 1_699_999_999_000);
    write(g, ["same line", "same line"], 1_700_000_000_000);
    batcher.flush();
    expect(sealed.length).toBeGreaterThan(1);
    const entries = sealed.flatMap((s) => s.entries);
    const fTs = entries.filter((e) => e.labels.filename === "/logs/f.log").map((e) => e.tsNs);
    expect(fTs).toHaveLength(202);
    expect(fTs[0]).toBe(1_700_000_000_000_000_000n);
    for (let i = 1; i < fTs.length; i++) expect(fTs[i], `entry ${i}`).toBe((fTs[i - 1] as bigint) + 1n);
    // Another stream has its own sequence, starting at the read time.
    const gTs = entries.filter((e) => e.labels.filename === "/logs/g.log").map((e) => e.tsNs);
    expect(gTs).toEqual([1_700_000_000_000_000_000n, 1_700_000_000_000_000_001n]);
    // A later read time is used as is.
    write(f, ["later"], 1_700_000_001_000);
    batcher.flush();
    expect(sealed.at(-1)?.entries[0]?.tsNs).toBe(1_700_000_001_000_000_000n);
  });

  it("keeps lines' own times, spreading only runs of equal times 1 ns apart, never reordering", () => {
    const { batcher, sealed, write } = setup({ batchMaxBytes: 1024 });
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    const at = (ms: number, msg: string) => `{"level":30,"time":${ms},"msg":"${msg}"}`;
    const T = 1_700_000_000_000;
    write(f, [at(T, "a"), at(T, "a"), at(T, "b"), at(T, "a")]); // the app wrote "a" twice in 1 ms
    write(f, [at(T + 1, "c"), at(T - 5, "early"), at(T - 5, "early"), at(T + 2, "d")]);
    // A run split over two batches continues where it left off.
    write(
      f,
      Array.from({ length: 30 }, (_, i) => at(T + 3, `run ${"x".repeat(40)} ${i}`)),
    );
    batcher.flush();
    expect(sealed.length).toBeGreaterThan(1);
    const ts = sealed.flatMap((s) => s.entries).map((e) => e.tsNs - BigInt(T) * 1_000_000n);
    expect(ts.slice(0, 8)).toEqual([0n, 1n, 2n, 3n, 1_000_000n, -5_000_000n, -4_999_999n, 2_000_000n]);
    expect(ts.slice(8)).toEqual(Array.from({ length: 30 }, (_, i) => 3_000_000n + BigInt(i)));
  });

  it("carries a spread across a second boundary", () => {
    const { batcher, sealed } = setup();
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    const line = Buffer.from('{"time":"2024-01-01T00:00:00.999999999Z"}');
    batcher.add(f, line, 0, line.length, line.length + 1, READ_TIME_MS);
    batcher.add(f, line, 0, line.length, 2 * (line.length + 1), READ_TIME_MS);
    batcher.flush();
    expect(sealed[0]?.entries.map((e) => e.tsNs)).toEqual([1704067200999999999n, 1704067201000000000n]);
  });

  it("copies line bytes: a reader reusing its chunk does not change sealed lines", () => {
    const { batcher, sealed } = setup();
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    const chunk = Buffer.from("first");
    batcher.add(f, chunk, 0, 5, 6, 0);
    chunk.write("XXXXX");
    batcher.add(f, chunk, 0, 5, 12, 0);
    batcher.flush();
    expect(sealed[0]?.entries.map((e) => e.line)).toEqual(["first", "XXXXX"]);
  });

  it("counts pending bytes by file offsets, terminators and truncated tails included", () => {
    const { batcher } = setup();
    const f: SourceFile = { id: "f", path: "/logs/f.log" };
    const chunk = Buffer.from("abc");
    expect(batcher.add(f, chunk, 0, 3, 5, 0)).toBe(4); // first line seen: length + 1
    expect(batcher.add(f, chunk, 0, 3, 10, 0)).toBe(5); // "abc\r\n"
    expect(batcher.add(f, chunk, 0, 3, 1_000_010, 0)).toBe(1_000_000); // truncated long line
    expect(batcher.openPendingBytes).toBe(1_000_009);
  });
});

describe("Batcher entry refs (Sink.entryRefs)", () => {
  it("records each entry's file id and end offset, in entry order, only when asked", () => {
    const seen: { refs: [string, number][]; lines: string[] }[] = [];
    for (const entryRefs of [true, false]) {
      const batcher = new Batcher({
        baseLabels: { job: "test" },
        batchMaxBytes: 1 << 20,
        batchWaitMs: 60_000,
        entryRefs,
        onSeal: (b) => {
          for (const s of b.streams) {
            const lines: string[] = [];
            forEachEntry(s.entries, (_sec, _nanos, line) => lines.push(line.toString()));
            const refs: [string, number][] = (s.fileIds ?? []).map((id, i) => [id, s.offsets?.[i] as number]);
            seen.push({ refs, lines });
          }
        },
      });
      const a: SourceFile = { id: "a/1", path: "/logs/a.log" };
      const b: SourceFile = { id: "b/1", path: "/logs/a.log.1" }; // same stream as a (rotation)
      const chunk = Buffer.from("one\ntwo\nthree\n");
      batcher.add(a, chunk, 0, 3, 4, READ_TIME_MS);
      batcher.add(b, chunk, 4, 7, 100, READ_TIME_MS);
      batcher.add(a, chunk, 8, 13, 10, READ_TIME_MS);
      batcher.flush();
      // A second batch starts with empty refs.
      batcher.add(b, chunk, 0, 3, 104, READ_TIME_MS);
      batcher.flush();
    }
    expect(seen).toEqual([
      {
        refs: [
          ["a/1", 4],
          ["b/1", 100],
          ["a/1", 10],
        ],
        lines: ["one", "two", "three"],
      },
      { refs: [["b/1", 104]], lines: ["one"] },
      { refs: [], lines: ["one", "two", "three"] },
      { refs: [], lines: ["one"] },
    ]);
  });

  it("packs streams as lines arrive (Sink.packedEntries): the same bodies, a fragment of entries held", () => {
    // Two batchers fed the same lines, one packing: every sealed body must be byte for byte the
    // same, while the packing one never holds more than a fragment (plus one entry) unpacked.
    const bodies: Buffer[][] = [[], []];
    let maxHeld = 0;
    let packedSeen = 0;
    const batchers = [false, true].map(
      (pack, i) =>
        new Batcher({
          baseLabels: { job: "test" },
          batchMaxBytes: 700_000,
          batchWaitMs: 60_000,
          ...(pack ? { pack: true } : {}),
          onSeal: (b) => {
            if (pack) {
              for (const s of b.streams) {
                maxHeld = Math.max(maxHeld, s.entries.length);
                if ((s.packedBytes ?? 0) > 0) packedSeen++;
                expect((s.packedBytes ?? 0) % 65_536).toBe(0);
              }
            }
            bodies[i]?.push(Buffer.from(new ProtobufEncoder().encode(b.streams).body));
          },
        }),
    );
    const files: SourceFile[] = [
      { id: "a", path: "/logs/a.log" },
      { id: "b", path: "/logs/b.log" },
    ];
    // Seeded lines: three levels (streams) per file, lengths from 0 to 100 KB (longer than a
    // fragment), text that compresses and text that does not.
    let x = 0x9e3779b9;
    const rnd = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    const levels = [30, 40, 50];
    const offsets = [0, 0];
    for (let i = 0; i < 12_000; i++) {
      const f = i % 7 === 0 ? 1 : 0;
      const level = levels[Math.floor(rnd() * 3)];
      const len = rnd() < 0.002 ? 70_000 + Math.floor(rnd() * 30_000) : Math.floor(rnd() * 400);
      let body = "";
      while (body.length < len)
        body += rnd() < 0.5 ? "request completed " : Math.floor(rnd() * 1e9).toString(36);
      const line = `{"level":${level},"time":${1_700_000_000_000 + i},"msg":"${body.slice(0, len)}"}`;
      const chunk = Buffer.from(`${line}\n`);
      offsets[f] = (offsets[f] as number) + chunk.length;
      for (const b of batchers)
        b.add(files[f] as SourceFile, chunk, 0, chunk.length - 1, offsets[f] as number, READ_TIME_MS);
    }
    for (const b of batchers) b.flush();
    const [plain, packed] = bodies as [Buffer[], Buffer[]];
    expect(plain.length).toBeGreaterThan(3);
    expect(packed.length).toBe(plain.length);
    for (let i = 0; i < plain.length; i++) expect(packed[i]?.equals(plain[i] as Buffer)).toBe(true);
    expect(packedSeen).toBeGreaterThan(0);
    // A fragment plus the longest entry (~100 KB line).
    expect(maxHeld).toBeLessThan(65_536 + 100_100);
    expect(decodeProtobufPush(packed[0] as Buffer).length).toBeGreaterThan(0);
    // A stream that packed and then carries little: the next batch packs nothing, the one after
    // it seals without a packed buffer (a quiet stream does not keep one).
    const quiet: (Buffer | undefined)[] = [];
    const small = new Batcher({
      baseLabels: { job: "test" },
      batchMaxBytes: 700_000,
      batchWaitMs: 60_000,
      pack: true,
      onSeal: (b) => quiet.push(b.streams[0]?.packed),
    });
    const f = files[0] as SourceFile;
    const big = Buffer.from(`${"y".repeat(100_000)}\n`);
    small.add(f, big, 0, big.length - 1, big.length, READ_TIME_MS);
    small.flush();
    for (let i = 1; i <= 2; i++) {
      small.add(f, big, 0, 10, big.length + i * 11, READ_TIME_MS);
      small.flush();
    }
    expect(quiet.map((p) => p?.length ?? -1)).toEqual([expect.any(Number), 0, -1]);
    expect(quiet[0]?.length).toBeGreaterThan(0);
  });
});
