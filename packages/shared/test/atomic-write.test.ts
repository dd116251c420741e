import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeFileAtomic, writeFileAtomicSync } from "../src/atomic-write.js";

describe("writeFileAtomic", () => {
  it("replaces the file and leaves no temporary file behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    const file = join(dir, "m.prom");
    writeFileSync(file, "old\n");
    await writeFileAtomic(file, "new\n");
    expect(readFileSync(file, "utf8")).toBe("new\n");
    expect(readdirSync(dir)).toEqual(["m.prom"]);
  });

  it("never shows a reader a partial file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    const file = join(dir, "big");
    const a = "a".repeat(1 << 20);
    const b = "b".repeat(1 << 20);
    await writeFileAtomic(file, a);
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        const c = readFileSync(file, "utf8");
        seen.add(`${c.length}:${c[0]}:${c[c.length - 1]}`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 20; i++) await writeFileAtomic(file, i % 2 ? a : b);
    stop = true;
    await reader;
    for (const s of seen) expect(["1048576:a:a", "1048576:b:b"]).toContain(s);
  });

  it("fails without leaving a temporary file when the directory is not writable", async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; a missing directory exercises the same error path
      await expect(writeFileAtomic(join(tmpdir(), "no-such-dir-xyz", "f"), "x")).rejects.toThrow(/ENOENT/);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    chmodSync(dir, 0o500);
    await expect(writeFileAtomic(join(dir, "f"), "x")).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("writeFileAtomicSync", () => {
  it("replaces the file and leaves no temporary file behind", () => {
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    const file = join(dir, "positions.json");
    writeFileSync(file, "old\n");
    writeFileAtomicSync(file, "new\n");
    expect(readFileSync(file, "utf8")).toBe("new\n");
    expect(readdirSync(dir)).toEqual(["positions.json"]);
  });

  it("throws without leaving a temporary file when the directory is missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    expect(() => writeFileAtomicSync(join(dir, "gone", "f"), "x")).toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
