// The two ways a collection reads the metrics directory (scan.ts): through libuv's thread pool
// (asyncScanFs, any file system) and with the same calls made synchronously (syncScanFs, a
// memory-backed directory). Each edge case is run through both, and both must say the same:
// what is listed and skipped, what a stat and a capped read give — a FIFO named *.prom must not
// block either, a symlink is never opened through.
import { spawnSync } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { asyncScanFs, listFiles, readCapped, type ScanFs, statFile, syncScanFs } from "../src/scan.js";
import { tempDir } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A metrics directory holding one of each kind of entry, and a file outside it. */
async function layout(): Promise<{ dir: string; outside: string }> {
  const t = await tempDir("mx-scan-");
  cleanups.push(t.cleanup);
  const dir = join(t.dir, "metrics");
  await mkdir(join(dir, "..data"), { recursive: true });
  const outside = join(t.dir, "secret.prom");
  await writeFile(outside, "secret 1\n");
  await writeFile(join(dir, "app.prom"), "app 1\n");
  await writeFile(join(dir, "big.prom"), `${"big 1\n".repeat(100)}`);
  await writeFile(join(dir, ".hidden.prom"), "hidden 1\n");
  await writeFile(join(dir, "notes.txt"), "notes 1\n");
  await writeFile(join(dir, "..data", "inner.prom"), "inner 1\n");
  await mkdir(join(dir, "dir.prom"));
  expect(spawnSync("mkfifo", [join(dir, "fifo.prom")]).status).toBe(0);
  await symlink("..data/inner.prom", join(dir, "inner.prom"));
  await symlink(outside, join(dir, "escape.prom"));
  await symlink("missing.prom.target", join(dir, "broken.prom"));
  return { dir, outside };
}

/** Everything the scan functions say about the layout, with the paths made relative. */
async function survey(fs: ScanFs, dir: string): Promise<unknown> {
  const rel = (p: string) => p.slice(dir.length);
  const listing = await listFiles(dir, fs);
  if (!listing.ok) throw new Error(listing.message);
  const read = async (name: string, cap: number) => {
    const r = await readCapped(join(dir, name), cap, fs);
    return r.ok
      ? { ok: true, text: r.bytes.toString("utf8"), size: r.stats.size }
      : { ok: false, reason: r.reason, message: r.message.replace(/:.*$/, ""), regular: r.stats?.isFile() };
  };
  const stat = async (name: string) => {
    const s = await statFile(join(dir, name), fs);
    return s.ok ? { ok: true, size: s.stats.size } : { ok: false, code: s.code };
  };
  return {
    files: listing.files.map((f) => [f.name, rel(f.path)]),
    skipped: listing.skipped,
    missingDir: await listFiles(join(dir, "nope"), fs),
    stats: [await stat("app.prom"), await stat("gone.prom")],
    reads: [
      await read("app.prom", 1000),
      await read("big.prom", 100),
      await read("fifo.prom", 1000),
      await read("escape.prom", 1000),
      await read("gone.prom", 1000),
    ],
  };
}

describe.each([
  ["thread pool", asyncScanFs],
  ["synchronous", syncScanFs],
] as const)("scan.ts through %s calls", (_, fs) => {
  it("lists, skips, stats and reads every kind of entry as the other way does", async () => {
    const { dir } = await layout();
    const got = await survey(fs, dir);
    expect(got).toEqual({
      files: [
        ["app.prom", "/app.prom"],
        ["big.prom", "/big.prom"],
        ["inner.prom", "/..data/inner.prom"],
      ],
      skipped: [
        { name: "broken.prom", reason: "broken_symlink" },
        { name: "dir.prom", reason: "not_regular_file" },
        { name: "escape.prom", reason: "symlink_outside" },
        { name: "fifo.prom", reason: "not_regular_file" },
      ],
      missingDir: { ok: false, code: "ENOENT", message: expect.stringContaining("ENOENT") },
      stats: [
        { ok: true, size: 6 },
        { ok: false, code: "ENOENT" },
      ],
      reads: [
        { ok: true, text: "app 1\n", size: 6 },
        // Judged by the open descriptor's size: never read past the cap.
        { ok: false, reason: "too_large", message: "600 bytes > MAX_FILE_BYTES 100", regular: true },
        // Opened without blocking (no writer), then refused: not a regular file.
        { ok: false, reason: "not_regular_file", message: "not a regular file", regular: false },
        // O_NOFOLLOW: a symlink is never opened through, whatever it points at.
        { ok: false, reason: "read_error", message: "ELOOP", regular: undefined },
        { ok: false, reason: "read_error", message: "ENOENT", regular: undefined },
      ],
    });
    // And exactly what the other way says.
    const other = fs === syncScanFs ? asyncScanFs : syncScanFs;
    expect(await survey(other, dir)).toEqual(got);
  });
});
