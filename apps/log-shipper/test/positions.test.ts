// Positions: atomic saves, monotonic commits, a corrupt file set aside (never a crash loop), pruning.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onMemoryFs } from "@sidecar/shared";
import { describe, expect, it, vi } from "vitest";
import { Positions } from "../src/source/positions.js";
import { silentLogger } from "./support/logger.js";
import { until } from "./support/loki-harness.js";

function fresh() {
  const dir = mkdtempSync(join(tmpdir(), "pos-"));
  return { dir, file: join(dir, "positions.json") };
}

describe("Positions", () => {
  it("a FIFO in the file's place: load() does not wait for a writer; it is set aside like an unreadable file", async () => {
    const { dir, file } = fresh();
    execFileSync("mkfifo", [file]);
    const p = new Positions({ file, logger: silentLogger() });
    await p.load();
    expect(p.size).toBe(0);
    expect(p.corruptSetAside).toMatch(/positions\.json\.corrupt-/);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  for (const syncWrites of [true, false]) {
    const mode = syncWrites ? "synchronous writes" : "writes through the thread pool";
    it(`save() says whether the file is written; lastSaveError keeps the code until a save succeeds (${mode})`, async () => {
      const { dir, file } = fresh();
      const p = new Positions({ file, logger: silentLogger(), syncWrites });
      p.track("1:2:abc", "abc", "/logs/app.log", 0);
      expect(await p.save(true)).toBe(true);
      expect(p.lastSaveError).toBeNull();
      // The directory is gone: the temp file cannot be created.
      rmSync(dir, { recursive: true });
      p.commit("1:2:abc", 10);
      expect(await p.save()).toBe(false);
      expect(p.lastSaveError).toBe("ENOENT");
      expect(await p.save()).toBe(false); // still dirty, still failing
      mkdirSync(dir);
      expect(await p.save()).toBe(true);
      expect(p.lastSaveError).toBeNull();
    });

    it(`saves atomically and loads what it saved (${mode})`, async () => {
      const { dir, file } = fresh();
      const p = new Positions({ file, logger: silentLogger(), syncWrites });
      await p.load();
      p.track("1:2:abc", "abc", "/logs/app.log", 0);
      p.commit("1:2:abc", 120);
      p.commit("1:2:abc", 80); // never backwards
      await p.save();
      expect(readdirSync(dir)).toEqual(["positions.json"]); // no temp file left behind
      const doc = JSON.parse(readFileSync(file, "utf8"));
      expect(doc.version).toBe(1);
      expect(doc.files).toEqual([
        expect.objectContaining({ id: "1:2:abc", path: "/logs/app.log", offset: 120 }),
      ]);
      const q = new Positions({ file, logger: silentLogger(), syncWrites });
      await q.load();
      expect(q.get("1:2:abc")?.offset).toBe(120);
      expect(q.findByFingerprint("abc")?.id).toBe("1:2:abc");
    });

    it(`saves requested at once are written one after the other, the last state last (${mode})`, async () => {
      const { file } = fresh();
      const p = new Positions({ file, logger: silentLogger(), syncWrites });
      p.track("1:2:abc", "abc", "/logs/app.log", 0);
      const saves: Promise<boolean>[] = [];
      for (let o = 1; o <= 20; o++) {
        p.commit("1:2:abc", o * 10);
        saves.push(p.save());
      }
      expect(await Promise.all(saves)).toEqual(Array(20).fill(true));
      expect(JSON.parse(readFileSync(file, "utf8")).files[0].offset).toBe(200);
    });

    it(`group commit: persist() calls of one turn share one write; a call made during a write waits for the next (${mode})`, async () => {
      const { file } = fresh();
      let writes = 0;
      const p = new Positions({ file, logger: silentLogger(), syncWrites, onSave: () => writes++ });
      p.track("1:2:abc", "abc", "/logs/app.log", 0);
      const onDisk = () => JSON.parse(readFileSync(file, "utf8")).files[0];
      // Three destinations' acknowledgements in one turn: one write, and each caller is told only
      // once the file holds its acknowledgement.
      const seen: unknown[] = [];
      const told = (ok: boolean) => seen.push({ ok, ...onDisk() });
      p.commit("1:2:abc", 0, undefined, { loki: 100 });
      const a = p.persist().then(told);
      p.commit("1:2:abc", 0, undefined, { loki: 100, otlp: 100 });
      const b = p.persist().then(told);
      p.commit("1:2:abc", 100);
      const c = p.persist().then(told);
      await Promise.all([a, b, c]);
      expect(writes).toBe(1);
      expect(seen).toEqual(Array(3).fill(expect.objectContaining({ ok: true, offset: 100 })));
      // The next group's write has started (its snapshot taken): an acknowledgement made now is not
      // in it, and its caller waits for the write after.
      p.commit("1:2:abc", 150);
      const d = p.persist().then(told);
      await new Promise((r) => setImmediate(r));
      p.commit("1:2:abc", 200);
      const e = p.persist().then(told);
      await Promise.all([d, e]);
      expect(writes).toBe(3);
      expect(seen.slice(3)).toEqual([
        expect.objectContaining({ ok: true, offset: 150 }),
        expect.objectContaining({ ok: true, offset: 200 }),
      ]);
    });
  }

  it("while auto-saving, commits nobody waits for are written once, within groupCommitMs", async () => {
    const { file } = fresh();
    let writes = 0;
    const p = new Positions({ file, logger: silentLogger(), groupCommitMs: 30, onSave: () => writes++ });
    p.track("1:2:abc", "abc", "/logs/app.log", 0);
    await p.save();
    writes = 0;
    p.startAutoSave(600_000);
    try {
      for (let o = 10; o <= 50; o += 10) p.commit("1:2:abc", o);
      await until(() => writes > 0, "the commits to be written", 20_000);
      expect(JSON.parse(readFileSync(file, "utf8")).files[0].offset).toBe(50);
      // Given time for more: nothing else is written (nothing changed).
      await new Promise((r) => setTimeout(r, 100));
      expect(writes).toBe(1);
    } finally {
      p.stopAutoSave();
    }
  });

  it("auto-save: a change is written within the period, and a failed write is retried as often", async () => {
    const { dir, file } = fresh();
    let writes = 0;
    let failures = 0;
    const p = new Positions({
      file,
      logger: silentLogger(),
      onSave: (ok) => (ok ? writes++ : failures++),
    });
    p.startAutoSave(50);
    try {
      await new Promise((r) => setTimeout(r, 150));
      expect(writes + failures).toBe(0);
      // A change other than an acknowledgement (a new file): written by the auto-save alone.
      p.track("1:2:abc", "abc", "/logs/app.log", 0);
      await until(() => writes === 1, "the new entry to be written", 20_000);
      expect(JSON.parse(readFileSync(file, "utf8")).files[0].path).toBe("/logs/app.log");
      // The directory gone: the write fails, and is tried again without anything changing.
      rmSync(dir, { recursive: true });
      p.touch("1:2:abc", "/logs/app.log.1");
      await until(() => failures >= 2, "the failed write to be retried", 20_000);
      mkdirSync(dir);
      await until(() => writes === 2, "the retry to succeed once the directory is back", 20_000);
      expect(JSON.parse(readFileSync(file, "utf8")).files[0].path).toBe("/logs/app.log.1");
      await new Promise((r) => setTimeout(r, 150));
      expect(writes).toBe(2);
    } finally {
      p.stopAutoSave();
    }
  });

  it("auto-save arms a timer only when something changed: none while quiet, one per change until it is written", () => {
    vi.useFakeTimers();
    try {
      const { file } = fresh();
      const p = new Positions({ file, logger: silentLogger(), syncWrites: true });
      p.startAutoSave(1000);
      expect(vi.getTimerCount()).toBe(0);
      p.track("1:2:abc", "abc", "/logs/app.log", 0);
      p.touch("1:2:abc", "/logs/app.log.1");
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(999);
      expect(existsSync(file)).toBe(false);
      vi.advanceTimersByTime(1);
      expect(JSON.parse(readFileSync(file, "utf8")).files[0].path).toBe("/logs/app.log.1");
      expect(vi.getTimerCount()).toBe(0);
      p.touch("1:2:abc", "/logs/app.log.1"); // nothing changed
      expect(vi.getTimerCount()).toBe(0);
      p.stopAutoSave();
      p.touch("1:2:abc", "/logs/app.log");
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("writes synchronously only on a memory-backed file system (the pod's emptyDir), else through the thread pool", () => {
    const onDisk = fresh();
    expect(new Positions({ file: onDisk.file, logger: silentLogger() }).writesSynchronously).toBe(
      onMemoryFs(onDisk.dir),
    );
    if (existsSync("/dev/shm")) {
      const shm = mkdtempSync(join("/dev/shm", "pos-"));
      try {
        expect(new Positions({ file: join(shm, "p.json"), logger: silentLogger() }).writesSynchronously).toBe(
          true,
        );
      } finally {
        rmSync(shm, { recursive: true });
      }
    }
  });

  it("writes nothing when nothing changed", async () => {
    const { file } = fresh();
    const p = new Positions({ file, logger: silentLogger() });
    await p.save();
    expect(existsSync(file)).toBe(false);
    p.track("a", "f", "/x", 5);
    await p.save();
    expect(existsSync(file)).toBe(true);
  });

  it("sets a corrupt file aside with a loud warning and starts fresh", async () => {
    for (const garbage of ["{not json", '{"version":7,"files":[]}', '{"version":1,"files":[{"id":1}]}', ""]) {
      const { dir, file } = fresh();
      writeFileSync(file, garbage);
      const lines: string[] = [];
      const { createLogger } = await import("@sidecar/shared");
      const logger = createLogger({
        service: "t",
        level: "warn",
        destination: { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream as never,
      });
      const p = new Positions({ file, logger });
      await p.load();
      expect(p.size).toBe(0);
      expect(p.corruptSetAside).toMatch(/positions\.json\.corrupt-/);
      expect(readdirSync(dir).some((n) => n.startsWith("positions.json.corrupt-"))).toBe(true);
      expect(existsSync(file)).toBe(false);
      expect(lines.join("")).toMatch(/"level":"error".*corrupt/);
    }
  });

  it("starts fresh (never throws) when the positions file cannot be read, and saves over it later", async () => {
    const { dir, file } = fresh();
    mkdirSync(file); // EISDIR: readFile fails with something other than ENOENT
    writeFileSync(join(file, "inside"), "x");
    const p = new Positions({ file, logger: silentLogger() });
    await p.load(); // used to rethrow: a crash loop at every start
    expect(p.size).toBe(0);
    expect(p.corruptSetAside).toMatch(/positions\.json\.corrupt-/);
    expect(readdirSync(dir).some((n) => n.startsWith("positions.json.corrupt-"))).toBe(true);
    p.track("a", "f", "/x", 5);
    await p.save();
    expect(statSync(file).isFile()).toBe(true);
  });

  it("starts fresh when an unreadable file cannot be set aside either", async () => {
    // /proc/self/mem: reading at offset 0 fails (EIO), renaming it fails (EPERM/EXDEV).
    const p = new Positions({ file: "/proc/self/mem", logger: silentLogger() });
    await p.load();
    expect(p.size).toBe(0);
    expect(p.corruptSetAside).toBeNull();
  });

  it("prunes entries not seen within the retention, keeps the others", async () => {
    const { file } = fresh();
    let now = 1_000_000;
    const p = new Positions({ file, logger: silentLogger(), retentionMs: 1000, now: () => now });
    p.track("old", "f1", "/old", 10);
    p.track("live", "f2", "/live", 20);
    now += 600;
    p.touch("live", "/live");
    now += 600;
    expect(p.prune()).toBe(1);
    expect(p.get("old")).toBeUndefined();
    expect(p.get("live")?.offset).toBe(20);
    p.forget("live");
    expect(p.size).toBe(0);
  });

  it("caps the number of entries, dropping the least recently seen", () => {
    const { file } = fresh();
    let now = 0;
    const evicted: number[] = [];
    const p = new Positions({
      file,
      logger: silentLogger(),
      maxEntries: 3,
      now: () => now++,
      onEvict: (n) => evicted.push(n),
    });
    for (let i = 0; i < 5; i++) p.track(`id${i}`, `f${i}`, `/p${i}`, i);
    p.prune();
    expect(p.entriesSnapshot().map((e) => e.id)).toEqual(["id2", "id3", "id4"]);
    // Said, so the app can log and count it (MAX_KNOWN_FILES).
    expect(evicted).toEqual([2]);
    p.prune();
    expect(evicted).toEqual([2]);
  });
});
