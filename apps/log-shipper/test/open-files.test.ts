// The open-file bound alone (src/source/open-files.ts): which files are closed to make room at
// MAX_OPEN_FILES, when a new path has to wait, and that it is handed back to be looked at again.
// Real readers holding real descriptors; the end-to-end behaviour is in process-files.test.ts.
import { mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OpenFileBound } from "../src/source/open-files.js";
import { FileReader } from "../src/source/reader.js";
import { silentLogger } from "./support/logger.js";
import { RecordingSink } from "./support/source-harness.js";

let readers: FileReader[] = [];
afterEach(async () => {
  for (const r of readers) await r.closeFd();
  readers = [];
});

function setup(max: number, holdsCopies: (r: FileReader) => boolean = () => false) {
  const dir = mkdtempSync(join(tmpdir(), "open-files-"));
  const bound = new OpenFileBound({ max, logger: silentLogger(), holdsCopies });
  const sink = new RecordingSink();
  let n = 0;
  /** An open reader of a real file, read up to `readPos` of `size` bytes, last grown at `grewAt`. */
  const open = (o: { grewAt: number; size?: number; readPos?: number }) => {
    const file = join(dir, `f${n++}.log`);
    writeFileSync(file, "x\n");
    const r = new FileReader({
      id: `1:${n}:fp/1`,
      key: `1:${n}:fp`,
      path: file,
      dev: 1,
      ino: n,
      fingerprint: "fp",
      fd: openSync(file, "r"),
      offset: o.readPos ?? 2,
      acked: 0,
      size: o.size ?? 2,
      maxLineBytes: 1024,
      sink,
      now: () => o.grewAt,
      openCount: bound.open,
    });
    readers.push(r);
    return r;
  };
  return { bound, open };
}

describe("OpenFileBound", () => {
  it("below the bound there is room; at it, the quietest fully read files are closed, an eighth of the bound at once", async () => {
    const { bound, open } = setup(16);
    const files = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11, 12, 13, 14, 15].map((t) => open({ grewAt: t }));
    expect(bound.open.n).toBe(15);
    expect(await bound.roomFor("/logs/new-1.log")).toBe(true);
    expect(bound.open.n).toBe(15);
    open({ grewAt: 16 });
    expect(await bound.roomFor("/logs/new-2.log")).toBe(true);
    expect(bound.open.n).toBe(14);
    const closed = files.filter((r) => r.fd === null).map((r) => r.lastGrowthAt);
    expect(closed).toEqual([1, 2]);
    expect(bound.takeWaiting()).toEqual([]);
  });

  it("never closes a file with unread bytes, one in the read queue, a held copy or one holding copies", async () => {
    let holder: FileReader | undefined;
    const { bound, open } = setup(4, (r) => r === holder);
    const unread = open({ grewAt: 1, size: 10, readPos: 2 });
    const queued = open({ grewAt: 2 });
    queued.queued = true;
    const held = open({ grewAt: 3 });
    held.holdFor = unread;
    holder = open({ grewAt: 4 });
    expect(await bound.roomFor("/logs/a.log")).toBe(false);
    expect([unread, queued, held, holder].every((r) => r.fd !== null)).toBe(true);
    // Blocked: later paths wait without another look at the open files, until a chunk is read.
    queued.queued = false;
    expect(await bound.roomFor("/logs/b.log")).toBe(false);
    expect(queued.fd).not.toBeNull();
    bound.chunkRead();
    expect(await bound.roomFor("/logs/c.log")).toBe(true);
    expect(queued.fd).toBeNull();
    // The waiting paths are handed back once, to be looked at again.
    expect(bound.takeWaiting()).toEqual(["/logs/a.log", "/logs/b.log"]);
    expect(bound.takeWaiting()).toEqual([]);
  });
});
