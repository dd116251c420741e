// No fragment of a line, whatever the timing: reading only ever goes on at offset 0 or right after
// bytes that this reader consumed (or verified) there. Each way an offset reaches a reader is forced
// here: the race between an identity check and the read (the file truncated and written again in
// between — the model test's seed 3489316589 under CPU pressure), a saved offset, an offset
// inherited from another file (copytruncate), and an offset re-checked against a held copy.
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  ANCHOR_BYTES,
  anchorHash,
  FINGERPRINT_BYTES,
  fileId,
  fingerprintOf,
  isLineStart,
} from "../src/source/fingerprint.js";
import { FileReader } from "../src/source/reader.js";
import { RecordingSink, type Source, startSource, waitFor } from "./support/source-harness.js";

const BANNER = "=== service starting ===\n";

function lines(prefix: string, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) s += `${prefix}-${i}-${"x".repeat(20 + (i % 40))}\n`;
  return s;
}

function tempDirs() {
  const root = mkdtempSync(join(tmpdir(), "resync-"));
  const logs = join(root, "logs");
  mkdirSync(logs);
  return {
    logs,
    positionsFile: join(root, "positions.json"),
    include: [join(logs, "*.log"), join(logs, "*.log.*")],
  };
}

async function resyncs(src: Source, reason: string): Promise<number> {
  const m = await src.metrics.resyncs.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** A positions file holding one entry (what an earlier run, or another file's identity, left). */
function plantEntry(positionsFile: string, entry: Record<string, unknown>): void {
  writeFileSync(
    positionsFile,
    JSON.stringify({ version: 1, savedAt: new Date().toISOString(), files: [entry] }),
  );
}

describe("FileReader: the bytes before the read offset are checked in the read itself", () => {
  it("a file truncated and written again after the identity check is not read from the middle", async () => {
    const d = tempDirs();
    const p = join(d.logs, "app.log");
    const first = BANNER + lines("old", 0, 40);
    writeFileSync(p, first);
    const fd = openSync(p, "r");
    try {
      const st = statSync(p);
      const offset = first.length;
      const sink = new RecordingSink();
      const anchor = Buffer.from(first).subarray(offset - Math.min(offset, ANCHOR_BYTES));
      const r = new FileReader({
        id: "r/1",
        key: "r",
        path: p,
        dev: st.dev,
        ino: st.ino,
        fingerprint: fingerprintOf(Buffer.from(first), offset) ?? "",
        fd,
        offset,
        acked: offset,
        anchor,
        size: offset,
        maxLineBytes: 1024,
        sink,
        now: Date.now,
      });
      // The check before a read passes: the file is what the reader thinks.
      expect(await r.verify(Buffer.allocUnsafe(ANCHOR_BYTES))).toBe("ok");
      // … then, before the read, the app truncates it and writes more than before, with the same
      // first line (so the fingerprint stays the same).
      truncateSync(p, 0);
      const second = BANNER + lines("new", 0, 80);
      writeFileSync(p, second);
      const res = await r.readChunk(Buffer.allocUnsafe(64 * 1024 + ANCHOR_BYTES));
      expect(res.changed).toBe(true);
      expect(sink.texts()).toEqual([]);
      expect(r.readPos).toBe(offset);
    } finally {
      closeSync(fd);
    }
  });
});

describe("Tailer: an offset from elsewhere must be a line start of this content", () => {
  let src: Source | undefined;
  afterEach(async () => {
    await src?.close();
    src = undefined;
  });

  it("saved: an offset in the middle of a line is not resumed; the file is read from its start", async () => {
    const d = tempDirs();
    const p = join(d.logs, "app.log");
    const text = BANNER + lines("a", 0, 200);
    writeFileSync(p, text);
    const st = statSync(p);
    const fp = fingerprintOf(Buffer.from(text), FINGERPRINT_BYTES) ?? "";
    // An offset inside a line whose anchor (taken further on) matches this file: the anchor does
    // not cover the bytes before the offset, so only the line-start check can refuse it.
    const offset = text.indexOf("a-10-") + 3;
    const anchorOffset = offset + 3 * ANCHOR_BYTES;
    plantEntry(d.positionsFile, {
      id: fileId(st.dev, st.ino, fp),
      path: p,
      fingerprint: fp,
      offset,
      seenAt: Date.now(),
      anchorOffset,
      anchor: anchorHash(Buffer.from(text).subarray(anchorOffset - ANCHOR_BYTES, anchorOffset)),
    });
    src = await startSource(d);
    await waitFor(() => src?.sink.lines.length === 201, "every line of app.log");
    const written = new Set(text.split("\n").filter((l) => l !== ""));
    expect(src.sink.texts().filter((l) => !written.has(l))).toEqual([]);
    expect(await resyncs(src, "saved")).toBe(1);
  });

  it("inherited: a copy is not continued from a position that is not a line start in it", async () => {
    const d = tempDirs();
    const p = join(d.logs, "app.log.1");
    const text = BANNER + lines("c", 0, 200);
    writeFileSync(p, text);
    const fp = fingerprintOf(Buffer.from(text), FINGERPRINT_BYTES) ?? "";
    // Another file's saved progress (its inode is gone) whose anchor this file matches: this file
    // would be taken for its copy (copytruncate while the shipper was down) and continued there.
    const offset = text.indexOf("c-20-") + 5;
    const anchorOffset = offset + 2 * ANCHOR_BYTES;
    plantEntry(d.positionsFile, {
      id: fileId(1, 999_999_999, fp),
      path: join(d.logs, "app.log"),
      fingerprint: fp,
      offset,
      seenAt: Date.now(),
      anchorOffset,
      anchor: anchorHash(Buffer.from(text).subarray(anchorOffset - ANCHOR_BYTES, anchorOffset)),
    });
    src = await startSource(d);
    await waitFor(() => src?.sink.lines.length === 201, "every line of app.log.1");
    const written = new Set(text.split("\n").filter((l) => l !== ""));
    expect(src.sink.texts().filter((l) => !written.has(l))).toEqual([]);
    expect(await resyncs(src, "inherited")).toBe(1);
  });

  it("inherited: a copy continued at a line start is not resynced (nothing read twice)", async () => {
    const d = tempDirs();
    const p = join(d.logs, "app.log.1");
    const text = BANNER + lines("e", 0, 200);
    writeFileSync(p, text);
    const fp = fingerprintOf(Buffer.from(text), FINGERPRINT_BYTES) ?? "";
    const offset = text.indexOf("e-150-");
    plantEntry(d.positionsFile, {
      id: fileId(1, 999_999_998, fp),
      path: join(d.logs, "app.log"),
      fingerprint: fp,
      offset,
      seenAt: Date.now(),
      anchorOffset: offset,
      anchor: anchorHash(Buffer.from(text).subarray(offset - ANCHOR_BYTES, offset)),
    });
    src = await startSource(d);
    await waitFor(() => src?.sink.lines.length === 50, "the lines after the inherited offset");
    await new Promise((r) => setTimeout(r, 300));
    expect(src.sink.texts()[0]).toBe(`e-150-${"x".repeat(20 + 30)}`);
    expect(src.sink.lines.length).toBe(50);
    expect(await resyncs(src, "inherited")).toBe(0);
  });

  it("the positions file afterwards holds the file at its real end, not the bad offset", async () => {
    const d = tempDirs();
    const p = join(d.logs, "app.log");
    const text = BANNER + lines("f", 0, 50);
    writeFileSync(p, text);
    const st = statSync(p);
    const fp = fingerprintOf(Buffer.from(text), FINGERPRINT_BYTES) ?? "";
    const offset = text.indexOf("f-5-") + 1;
    plantEntry(d.positionsFile, {
      id: fileId(st.dev, st.ino, fp),
      path: p,
      fingerprint: fp,
      offset,
      seenAt: Date.now(),
    }); // an entry without an anchor (written by an older version): only the line start can tell
    src = await startSource(d);
    await waitFor(() => src?.sink.lines.length === 51, "every line");
    await waitFor(
      () => src?.positions.entriesSnapshot()[0]?.offset === text.length,
      "acknowledged to the end",
    );
    await src.close();
    src = undefined;
    const saved = JSON.parse(readFileSync(d.positionsFile, "utf8")) as { files: { offset: number }[] };
    expect(saved.files.map((f) => f.offset)).toEqual([text.length]);
  });
});

describe("Tailer: a file replaced while its reader was closed", () => {
  let src: Source | undefined;
  afterEach(async () => {
    await src?.close();
    src = undefined;
  });

  /**
   * `x` and `app.log.1` written and read, then `app.log.1` renamed to `app.log.2` and left until
   * its reader is closed: the closed reader whose inode the tests give other content.
   */
  async function withClosedRotatedFile(
    d: ReturnType<typeof tempDirs>,
    x: string,
    xText: string,
    yText: string,
    lineCount: number,
  ): Promise<Source> {
    const y = join(d.logs, "app.log.1");
    writeFileSync(x, xText);
    writeFileSync(y, yText);
    const s = await startSource(d);
    src = s;
    await waitFor(() => s.sink.lines.length === lineCount, "both files read");
    // Rotate y further: a rotated file that stops growing is closed after rotatedIdleMs.
    renameSync(y, join(d.logs, "app.log.2"));
    await waitFor(
      () => s.tailer.files().some((f) => f.path.endsWith("app.log.2") && !f.open),
      "app.log.2 closed",
    );
    return s;
  }

  /** The first 12 characters of every text the sink got more than once (`skip` not counted). */
  function twice(texts: string[], skip?: (t: string) => boolean): string[] {
    const counts = new Map<string, number>();
    for (const t of texts) if (skip?.(t) !== true) counts.set(t, (counts.get(t) ?? 0) + 1);
    return [...counts].filter(([, n]) => n > 1).map(([t]) => t.slice(0, 12));
  }

  it("same inode and first line, other content (inode reused by a copy): judged as a new file, nothing read twice", async () => {
    // A closed reader does not keep its inode alive, so the number can come back as another file —
    // here simulated by writing over the file in place — and with a common banner the fingerprint
    // is the same. The content is a copy of a file already read and gone: it must be recognised
    // as that copy (continue at its end), not read again from 0 as a "truncated" file.
    const d = tempDirs();
    const x = join(d.logs, "x.log");
    const xText = BANNER + lines("x", 0, 80);
    const s = await withClosedRotatedFile(d, x, xText, BANNER + lines("y", 0, 30), 112);
    // x is deleted (fully read: its progress is remembered for a while), and its content lands in
    // app.log.2's inode.
    unlinkSync(x);
    await waitFor(() => s.tailer.files().every((f) => !f.path.endsWith("x.log")), "x.log forgotten");
    writeFileSync(join(d.logs, "app.log.2"), xText);
    await new Promise((r) => setTimeout(r, 1500)); // several polls and rescans
    // (The banner is every file's first line: x.log's and app.log.1's were each read once.)
    expect(twice(s.sink.texts(), (t) => `${t}\n` === BANNER)).toEqual([]);
    // … and a line the "copy" gets later is read from it. Appended: rewriting the file (open with
    // O_TRUNC, then write) lets a read in between see it truncated, and a truncated file is read
    // again from its start, as documented.
    appendFileSync(join(d.logs, "app.log.2"), "x-late\n");
    await waitFor(() => s.sink.texts().includes("x-late"), "the late line");
  });

  it("same inode, other first line (inode reused by a copytruncate copy, its original already truncated): recognised as the copy", async () => {
    // The model test's seed 5000013 with quiet files closed: copytruncate shifted the rotated
    // files (deleting the oldest, whose reader was closed), and the copy of app.log got the
    // deleted file's inode number. By the time the shipper looked, app.log had been truncated.
    // The copy's content begins with another line than the closed reader's file did, and was taken
    // for that file truncated and written again in place: read from 0, every line twice.
    // Simulated by writing over the closed reader's file in place.
    const d = tempDirs();
    const x = join(d.logs, "app.log");
    const xText = lines("x", 0, 80);
    const s = await withClosedRotatedFile(d, x, xText, lines("y", 0, 30), 110);
    // copytruncate's second half came first here: the original truncated and noticed …
    truncateSync(x, 0);
    await waitFor(
      () => !s.tailer.files().some((f) => f.path === x && f.size > 0),
      "app.log's truncation noticed",
    );
    // … then its copy lands on the closed reader's inode.
    writeFileSync(join(d.logs, "app.log.2"), xText);
    await new Promise((r) => setTimeout(r, 1500)); // several polls and rescans
    expect(twice(s.sink.texts())).toEqual([]);
    appendFileSync(join(d.logs, "app.log.2"), "x-late\n");
    await waitFor(() => s.sink.texts().includes("x-late"), "the late line");
  });
});

describe("Tailer: a copy that got ahead of its original across restarts (model seeds 1000087, 1000317, 1000357)", () => {
  let src: Source | undefined;
  afterEach(async () => {
    await src?.close();
    src = undefined;
  });

  it("a line the copy shipped is not shipped again by the original once the original has it", async () => {
    // copytruncate's copy (cp) stopped at a line end while the live file still held only the
    // first half of that line: the copy is ahead. The held copy then grew past its original, so
    // the roles were swapped and the copy shipped the line. After a restart the two are judged
    // the other way round again (the live file found first, the copy held for it) — the copy at
    // its own acknowledged offset past the line, the live file before it.
    const d = tempDirs();
    const live = join(d.logs, "app.log");
    const copy = join(d.logs, "app.log.1");
    const head = BANNER + lines("h", 0, 30);
    writeFileSync(live, head);
    const all: string[] = [];
    src = await startSource(d);
    await waitFor(() => src?.sink.lines.length === 31, "app.log read");
    writeFileSync(copy, head);
    await waitFor(
      () => src?.tailer.files().some((f) => f.path === copy) === true,
      "the copy found (and held)",
    );
    all.push(...src.sink.texts());
    await src.close();
    // While the shipper is down: the writer's half line in app.log, the whole line in the copy.
    const line = `p-half-line-${"y".repeat(40)}`;
    writeFileSync(live, head + line.slice(0, 10));
    writeFileSync(copy, `${head + line}\n`);
    src = await startSource(d);
    await waitFor(() => src?.sink.texts().includes(line) === true, "the copy's line");
    await new Promise((r) => setTimeout(r, 300));
    all.push(...src.sink.texts());
    await src.close();
    // The writer finishes its line and writes on; the copy stays as it is.
    writeFileSync(live, `${head + line}\nafter-1\nafter-2\n`);
    src = await startSource(d);
    await waitFor(() => src?.sink.texts().includes("after-2") === true, "the lines after it");
    await new Promise((r) => setTimeout(r, 300));
    all.push(...src.sink.texts());
    expect(all.filter((t) => t === line).length).toBe(1);
    expect(all.filter((t) => t === "after-1").length).toBe(1);
    const counts = new Map<string, number>();
    for (const t of all) if (`${t}\n` !== BANNER) counts.set(t, (counts.get(t) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1).map(([t]) => t.slice(0, 12))).toEqual([]);
  });
});

describe("Tailer: acknowledgements and identities across copies and renames (model seeds 1000133, 1000313)", () => {
  let src: Source | undefined;
  afterEach(async () => {
    await src?.close();
    src = undefined;
  });

  it("a copy recognised from a truncated original gets the acknowledgements that came while it was being set up", async () => {
    // copytruncate under back-pressure: the original's lines are still in flight when it is
    // truncated. The copy continues where the original stood and inherits its acknowledgements —
    // also those arriving while the copy's reader is being created (forced here: right after the
    // copy was matched). Lost, the copy's saved offset stayed behind, and a graceful restart read
    // the copy again from there.
    const d = tempDirs();
    const live = join(d.logs, "app.log");
    const copy = join(d.logs, "app.log.1");
    const text = BANNER + lines("k", 0, 40);
    writeFileSync(live, text);
    const sink = new RecordingSink();
    sink.autoAck = false;
    src = await startSource({ ...d, sink });
    await waitFor(() => sink.lines.length === 41, "app.log read (nothing acknowledged)");
    // The tailer's copy recognition (src/source/originals.ts), wrapped to time the acknowledgements.
    const o = (src.tailer as unknown as { originals: { originalOf: (...a: unknown[]) => Promise<unknown> } })
      .originals;
    const originalOf = o.originalOf.bind(o);
    o.originalOf = async (...a: unknown[]) => {
      const found = await originalOf(...a);
      sink.ackAll(); // the acknowledgements come back right now
      return found;
    };
    writeFileSync(copy, text);
    truncateSync(live, 0);
    await waitFor(() => src?.tailer.files().some((f) => f.path === copy) === true, "the copy found");
    sink.ackAll();
    const copyId = src.tailer
      .files()
      .find((f) => f.path === copy)
      ?.id.split("/")[0];
    await waitFor(
      () => src?.positions.entriesSnapshot().find((e) => e.id === copyId)?.offset === text.length,
      "the copy acknowledged to its end",
      5000,
    );
    expect(sink.lines.length).toBe(41);
  });

  it("a closed rotated file that comes back under another name is not read again from its start", async () => {
    // A rotated file stops growing and its reader closes its descriptor. Renamed again
    // (app.log.1 → app.log.2) it can vanish from the listing before its new name is looked at:
    // the closed reader was then forgotten with its progress (a rescan drops the positions entry
    // of a file gone from every path), and app.log.2 was found as a new file and read again from
    // 0 (model seed 1000313: 1,182 lines twice). Forced here with a name outside the globs first.
    const d = tempDirs();
    const live = join(d.logs, "app.log");
    const text = BANNER + lines("r", 0, 60);
    writeFileSync(live, text);
    src = await startSource(d);
    await waitFor(() => src?.sink.lines.length === 61, "app.log read");
    renameSync(live, join(d.logs, "app.log.1"));
    await waitFor(
      () => src?.tailer.files().some((f) => f.path.endsWith("app.log.1") && !f.open) === true,
      "app.log.1 closed",
    );
    renameSync(join(d.logs, "app.log.1"), join(d.logs, "app.log.1.tmp"));
    await waitFor(
      () => src?.tailer.files().length === 0 && src.positions.entriesSnapshot().length === 0,
      "app.log.1 forgotten",
    );
    renameSync(join(d.logs, "app.log.1.tmp"), join(d.logs, "app.log.2"));
    await new Promise((r) => setTimeout(r, 1500)); // several polls and rescans
    await waitFor(() => src?.tailer.files().length === 1, "app.log.2 found");
    const counts = new Map<string, number>();
    for (const t of src.sink.texts()) if (`${t}\n` !== BANNER) counts.set(t, (counts.get(t) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1).map(([t]) => t.slice(0, 12))).toEqual([]);
    // … and what app.log.2 gets later is read from it. Appended: a rewrite (O_TRUNC, then write)
    // lets a read in between see it truncated and read it again from its start.
    appendFileSync(join(d.logs, "app.log.2"), "r-late\n");
    await waitFor(() => src?.sink.texts().includes("r-late") === true, "the late line");
  });
});

describe("Tailer: a copy on a reused inode whose saved entry acknowledged nothing (model seeds 2000047, 2000068)", () => {
  let src: Source | undefined;
  afterEach(async () => {
    await src?.close();
    src = undefined;
  });

  for (const [what, planted] of [
    ["offset 0", { offset: 0, anchorOffset: 0, anchor: anchorHash(Buffer.alloc(0)) }],
    [
      "only its banner",
      { offset: BANNER.length, anchorOffset: BANNER.length, anchor: anchorHash(Buffer.from(BANNER)) },
    ],
  ] as const) {
    it(`is recognised as the copy of its truncated original, not resumed at that entry's offset (${what})`, async () => {
      // copytruncate: the copy gets the inode number of a deleted file whose positions entry is still
      // there (inode numbers are reused at once; an entry outlives its file, e.g. one deleted while
      // the shipper was down) — and that entry had nothing acknowledged: offset 0, its anchor the
      // empty one, which every file holds. The truncation of the original was noticed first (its
      // reader retired). Taken for "the file itself, resuming at its acknowledged offset 0", the copy
      // was read again from its start: every line of the original twice (model seeds 2000047 and
      // 2000068 under a 200m CPU cgroup: 39 and 30 lines twice). Forced here: the copy is made under
      // a name outside the globs, its identity planted with such an entry, and it is renamed in
      // after the truncation was noticed.
      const d = tempDirs();
      const live = join(d.logs, "app.log");
      const text = BANNER + lines("c", 0, 50);
      writeFileSync(live, text);
      src = await startSource(d);
      await waitFor(() => src?.sink.lines.length === 51, "app.log read");
      await waitFor(
        () => src?.positions.entriesSnapshot()[0]?.offset === text.length,
        "app.log acknowledged",
      );
      await src.close();
      src = undefined;
      const staged = join(d.logs, "..", "copy-in-progress");
      writeFileSync(staged, text);
      const st = statSync(staged);
      const fp = fingerprintOf(Buffer.from(BANNER), BANNER.length) ?? "";
      const doc = JSON.parse(readFileSync(d.positionsFile, "utf8")) as { files: unknown[] };
      doc.files.push({
        id: fileId(st.dev, st.ino, fp),
        path: join(d.logs, "app.log.3"),
        fingerprint: fp,
        seenAt: Date.now(),
        ...planted,
      });
      writeFileSync(d.positionsFile, JSON.stringify(doc));
      const sink = new RecordingSink();
      src = await startSource({ ...d, sink });
      await waitFor(() => src?.tailer.files()[0]?.readPos === text.length, "app.log resumed at its end");
      truncateSync(live, 0);
      writeFileSync(live, `${BANNER}n-0\n`);
      await waitFor(() => sink.texts().includes("n-0"), "the new generation");
      renameSync(staged, join(d.logs, "app.log.1"));
      await waitFor(
        () => src?.tailer.files().some((f) => f.path.endsWith("app.log.1")) === true,
        "the copy found",
      );
      await new Promise((r) => setTimeout(r, 1000)); // several polls and rescans
      expect(sink.texts().filter((t) => t.startsWith("c-"))).toEqual([]);
      // … and what the copy gets later is read from it. Appended: a rewrite (O_TRUNC, then write)
      // lets a read in between see the copy truncated and read it again from its start, as
      // documented: every c- line (shipped in the first run) would arrive again.
      appendFileSync(join(d.logs, "app.log.1"), "c-late\n");
      await waitFor(() => sink.texts().includes("c-late"), "the late line");
      expect(sink.texts().filter((t) => t.startsWith("c-"))).toEqual(["c-late"]);
    });
  }
});

describe("isLineStart: the rule every start offset passes (also for offsets re-checked against a held copy)", () => {
  const nl = Buffer.from("abc\n");
  const mid = Buffer.from("abc");
  it.each([
    ["offset 0", 0, Buffer.alloc(0), undefined, true],
    ["right after a newline", 4, nl, undefined, true],
    ["inside a line", 3, mid, undefined, false],
    ["inside a line, bytes before it verified there", 3, mid, 3, true],
    ["inside a line, verified further on but not covering it", 3, mid, 3 + ANCHOR_BYTES, false],
    ["inside a line, verified further on and covering it", 3000, mid, 3000 + ANCHOR_BYTES - 1, true],
    ["inside a line, verified before it", 3000, mid, 2999, false],
  ] as const)("%s", (_what, offset, anchor, verifiedAt, ok) => {
    expect(isLineStart(offset, anchor, verifiedAt)).toBe(ok);
  });
});
