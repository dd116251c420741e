// RotatingFile on real files: every line lands exactly once, whole, in order across the rotated
// set; the number of files and their sizes respect the limits; flushing and errors behave.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RotatingFile } from "../src/rotating-file.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "rotating-file-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Files of the set, oldest first: app.log.N … app.log.1, app.log. */
function filesOldestFirst(path: string): string[] {
  const base = path.split("/").pop() as string;
  const names = readdirSync(dir).filter((n) => n === base || n.startsWith(`${base}.`));
  const suffix = (n: string) => (n === base ? 0 : Number(n.slice(base.length + 1)));
  for (const n of names) expect(Number.isInteger(suffix(n)), `unexpected file ${n}`).toBe(true);
  return names.sort((a, b) => suffix(b) - suffix(a)).map((n) => join(dir, n));
}

function linesOf(files: string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    // A file holds whole lines only: it is empty or ends with a newline.
    if (text.length > 0) expect(text.endsWith("\n"), `${f} ends mid-line`).toBe(true);
    out.push(...text.split("\n").slice(0, -1));
  }
  return out;
}

const line = (i: number, pad = 40) => `{"seq":${i},"pad":"${"x".repeat(pad + (i % 17))}"}\n`;

describe("RotatingFile", () => {
  it("keeps every line exactly once, in order, across the rotated files, none larger than maxBytes", () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 1000, maxFiles: 100, bufferBytes: 300 });
    const count = 1000; // ~60 KiB: about 65 files, all kept
    for (let i = 0; i < count; i++) f.write(line(i));
    f.close();

    const files = filesOldestFirst(path);
    const lines = linesOf(files);
    expect(lines.map((l) => JSON.parse(l).seq)).toEqual(Array.from({ length: count }, (_, i) => i));
    for (const file of files) expect(statSync(file).size).toBeLessThanOrEqual(1000);
    // Files are filled up to the limit: only the live file may be short by more than one line.
    for (const file of files.slice(0, -1)) expect(statSync(file).size).toBeGreaterThan(1000 - 80);
    expect(f.stats()).toMatchObject({ lines: count, rotations: files.length - 1, writeErrors: 0 });
  });

  it("keeps maxFiles rotated files and drops the oldest lines, never the newest", () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 1024, maxFiles: 3 });
    const count = 1000;
    for (let i = 0; i < count; i++) f.write(line(i));
    f.close();

    const files = filesOldestFirst(path);
    expect(files.map((p) => p.split("/").pop())).toEqual(["app.log.3", "app.log.2", "app.log.1", "app.log"]);
    const seqs = linesOf(files).map((l) => JSON.parse(l).seq as number);
    // What is kept is one contiguous run ending with the last line written.
    expect(seqs.at(-1)).toBe(count - 1);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] as number) + i));
    expect(f.stats().rotations).toBeGreaterThan(3);
  });

  it("gives a line larger than maxBytes a file of its own instead of splitting it", () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 1024, maxFiles: 10 });
    const big = `{"big":"${"y".repeat(3000)}"}\n`;
    f.write(line(1));
    f.write(big);
    f.write(line(2));
    f.close();
    const files = filesOldestFirst(path);
    expect(files.map((p) => readFileSync(p, "utf8"))).toEqual([line(1), big, line(2)]);
  });

  it("counts bytes, not characters, so multi-byte lines respect the limit", () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 1024, maxFiles: 50 });
    const lines = Array.from({ length: 200 }, (_, i) => `{"seq":${i},"msg":"${"é€😀".repeat(10)}"}\n`);
    for (const l of lines) f.write(l);
    f.close();
    const files = filesOldestFirst(path);
    for (const file of files) expect(statSync(file).size).toBeLessThanOrEqual(1024);
    expect(files.map((p) => readFileSync(p, "utf8")).join("")).toBe(lines.join(""));
  });

  it("continues an existing file after a restart and rotates when it would overflow", () => {
    const path = join(dir, "app.log");
    writeFileSync(path, "old-1\nold-2\n");
    const f = new RotatingFile({ path, maxBytes: 30, maxFiles: 5 });
    f.write("new-1-abcdefghij\n"); // 12 + 17 = 29 bytes: still fits
    f.write("new-2\n"); // would make 35: rotates first
    f.close();
    expect(readFileSync(`${path}.1`, "utf8")).toBe("old-1\nold-2\nnew-1-abcdefghij\n");
    expect(readFileSync(path, "utf8")).toBe("new-2\n");
  });

  it("buffers writes and flushes them within the same event-loop turn's end, on flushSync and on close", async () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 1 << 20, maxFiles: 1, bufferBytes: 1 << 16 });
    f.write("a\n");
    f.write("b\n");
    // Batched: nothing written yet in this synchronous turn.
    expect(readFileSync(path, "utf8")).toBe("");
    await new Promise((r) => setImmediate(r));
    expect(readFileSync(path, "utf8")).toBe("a\nb\n");
    f.write("c\n");
    f.flushSync();
    expect(readFileSync(path, "utf8")).toBe("a\nb\nc\n");
    f.write("d\n");
    f.close();
    f.close(); // idempotent
    expect(readFileSync(path, "utf8")).toBe("a\nb\nc\nd\n");
    expect(f.write("late\n")).toBe(false);
    expect(f.stats().droppedBytes).toBe(5);
  });

  it("writes at once when the buffer is full, so memory stays bounded", () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 1 << 20, maxFiles: 1, bufferBytes: 100 });
    for (let i = 0; i < 10; i++) f.write(line(i, 5));
    // Synchronously, without waiting for the scheduled flush, most of it is already on disk.
    expect(statSync(path).size).toBeGreaterThanOrEqual(100);
    f.close();
    expect(linesOf([path])).toHaveLength(10);
  });

  it("keeps writing (and reports) when a rotation cannot rename", () => {
    const path = join(dir, "app.log");
    // A non-empty directory where app.log.1 should go makes the rename fail.
    mkdirSync(`${path}.1`);
    writeFileSync(join(`${path}.1`, "blocker"), "x");
    const errors: string[] = [];
    const f = new RotatingFile({
      path,
      maxBytes: 100,
      maxFiles: 1,
      onError: (err, during) => errors.push(`${during}:${(err as NodeJS.ErrnoException).code}`),
    });
    for (let i = 0; i < 10; i++) f.write(line(i, 10));
    f.close();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/^rotate:/);
    // No line lost: all of them stayed in the live file.
    expect(linesOf([path]).map((l) => JSON.parse(l).seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(f.stats().rotateErrors).toBeGreaterThan(0);
  });

  it("is a pino destination: JSON lines with numeric level and epoch-ms time", () => {
    const path = join(dir, "app.log");
    const f = new RotatingFile({ path, maxBytes: 4096, maxFiles: 5 });
    const logger = pino({ base: { service: "t" } }, f);
    const before = Date.now();
    for (let i = 0; i < 200; i++) logger.info({ i }, "hello");
    logger.error({ err: new Error("boom") }, "failed");
    f.close();
    const records = linesOf(filesOldestFirst(path)).map((l) => JSON.parse(l));
    expect(records).toHaveLength(201);
    expect(records.slice(0, 200).map((r) => r.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(records[0]).toMatchObject({ level: 30, service: "t", msg: "hello" });
    expect(records[0].time).toBeGreaterThanOrEqual(before);
    expect(records[200]).toMatchObject({ level: 50, msg: "failed", err: { message: "boom" } });
    expect(records[200].err.stack).toContain("Error: boom");
    expect(existsSync(`${path}.1`)).toBe(true);
  });

  it("removes rotated files numbered above maxFiles, left by a run with a larger LOG_MAX_FILES", () => {
    const path = join(dir, "app.log");
    for (let i = 1; i <= 6; i++) writeFileSync(`${path}.${i}`, `old ${i}\n`);
    writeFileSync(join(dir, "app.log.keep-me"), "not part of the set\n");
    const f = new RotatingFile({ path, maxBytes: 1024, maxFiles: 2 });
    for (let i = 0; i < 30; i++) f.write(line(i)); // ~2 KiB: at least one rotation
    f.close();
    expect(readdirSync(dir).sort()).toEqual(["app.log", "app.log.1", "app.log.2", "app.log.keep-me"]);
  });

  it("removes rotated files above maxFiles already at start, before any rotation", () => {
    const path = join(dir, "app.log");
    for (let i = 1; i <= 6; i++) writeFileSync(`${path}.${i}`, `old ${i}\n`);
    writeFileSync(join(dir, "app.log.keep-me"), "not part of the set\n");
    const f = new RotatingFile({ path, maxBytes: 1 << 20, maxFiles: 2 });
    f.write(line(0)); // far below maxBytes: no rotation
    f.close();
    expect(f.stats().rotations).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["app.log", "app.log.1", "app.log.2", "app.log.keep-me"]);
  });

  it("flushes buffered lines from process.on('exit') when the process exits abruptly", () => {
    const path = join(dir, "app.log");
    const script = join(dir, "child.mjs");
    const source = resolve(import.meta.dirname, "../src/rotating-file.ts");
    writeFileSync(
      script,
      `import { RotatingFile } from ${JSON.stringify(source)};
const f = new RotatingFile({ path: ${JSON.stringify(path)}, maxBytes: 1 << 30, maxFiles: 1, bufferBytes: 1 << 30 });
process.on("exit", () => f.close());
for (let i = 0; i < 1000; i++) f.write(JSON.stringify({ seq: i }) + "\\n");
process.exit(3); // no event-loop turn: only the exit hook can write the buffer
`,
    );
    const root = resolve(import.meta.dirname, "../../..");
    const r = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: root, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(3);
    expect(linesOf([path]).map((l) => JSON.parse(l).seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});

describe("RotatingFile on a full volume", () => {
  /** A write function that fills the volume: the first call writes `room` bytes, then ENOSPC. */
  function fillingWrite(room: { left: number }) {
    return (fd: number, buf: Buffer, off: number, len: number): number => {
      if (room.left <= 0) {
        const err = new Error("ENOSPC: no space left on device, write") as NodeJS.ErrnoException;
        err.code = "ENOSPC";
        err.syscall = "write";
        throw err;
      }
      const n = writeSync(fd, buf, off, Math.min(len, room.left));
      room.left -= n;
      return n;
    };
  }

  it("takes a short write followed by ENOSPC back out of the file, so the next line is not glued onto a fragment", () => {
    const path = join(dir, "app.log");
    const room = { left: Number.POSITIVE_INFINITY };
    const errors: string[] = [];
    const f = new RotatingFile({
      path,
      maxBytes: 1 << 20,
      maxFiles: 2,
      writeSync: fillingWrite(room),
      onError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? err.message),
    });
    f.write('{"n":1}\n');
    f.flushSync();
    room.left = 20; // the next batch fits only partly: the kernel writes 20 bytes, then ENOSPC
    f.write('{"n":2,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}\n');
    f.write('{"n":3}\n');
    f.flushSync();
    expect(errors).toEqual(["ENOSPC"]);
    const lost = Buffer.byteLength('{"n":2,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}\n{"n":3}\n');
    expect(f.stats()).toMatchObject({ writeErrors: 1, droppedBytes: lost });
    room.left = Number.POSITIVE_INFINITY; // space freed
    f.write('{"n":4}\n');
    f.close();
    const text = readFileSync(path, "utf8");
    expect(text).toBe('{"n":1}\n{"n":4}\n');
    for (const line of text.split("\n").slice(0, -1)) expect(() => JSON.parse(line)).not.toThrow();
    // Rotation still counts from what is really in the file.
    expect(f.stats().bytes).toBe(statSync(path).size);
  });

  it("cuts a half-written last line left by a crash back to the last newline when it reopens the file", () => {
    const path = join(dir, "app.log");
    writeFileSync(path, '{"n":1}\n{"n":2}\n{"n":3,"cut');
    const f = new RotatingFile({ path, maxBytes: 1 << 20, maxFiles: 2 });
    f.write('{"n":4}\n');
    f.close();
    expect(readFileSync(path, "utf8")).toBe('{"n":1}\n{"n":2}\n{"n":4}\n');
  });

  it("cuts a file that holds only a fragment (no newline at all) to empty", () => {
    const path = join(dir, "app.log");
    writeFileSync(path, "x".repeat(200_000)); // longer than one backwards read
    const f = new RotatingFile({ path, maxBytes: 1 << 20, maxFiles: 2 });
    f.write('{"n":1}\n');
    f.close();
    const text = readFileSync(path, "utf8");
    expect({ bytes: text.length, head: text.slice(0, 20) }).toEqual({ bytes: 8, head: '{"n":1}\n' });
  });
});
