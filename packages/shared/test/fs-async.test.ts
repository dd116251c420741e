import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { describe, expect, it } from "vitest";
import * as fsAsync from "../src/fs-async.js";

describe("fsAsync (promises over node:fs's callback API)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fs-async-"));
  writeFileSync(join(dir, "a.log"), "héllo\n");
  mkdirSync(join(dir, "sub"));
  symlinkSync(join(dir, "a.log"), join(dir, "link.log"));

  it("answers as node:fs/promises does", async () => {
    const st = await fsAsync.stat(join(dir, "link.log"));
    expect(st.isFile()).toBe(true);
    expect(st.ino).toBe((await fsp.stat(join(dir, "a.log"))).ino);
    expect((await fsAsync.lstat(join(dir, "link.log"))).isSymbolicLink()).toBe(true);
    const entries = await fsAsync.readdirBuffers(dir);
    expect(entries.every((e) => Buffer.isBuffer(e.name))).toBe(true);
    expect(entries.map((e) => `${e.name.toString()}:${e.isDirectory()}`).sort()).toEqual([
      "a.log:false",
      "link.log:false",
      "sub:true",
    ]);
    expect((await fsAsync.realpathBuffer(join(dir, "link.log"))).toString()).toBe(
      await fsp.realpath(join(dir, "a.log")),
    );
    expect((await fsAsync.readlinkBuffer(join(dir, "link.log"))).toString()).toBe(join(dir, "a.log"));
  });

  it("writes, syncs, reads and renames through descriptors", async () => {
    const fd = await fsAsync.open(join(dir, "w.tmp"), "w", 0o644);
    await fsAsync.writeFd(fd, "one\n");
    await fsAsync.writeFd(fd, Buffer.from("two\n"));
    await fsAsync.fsync(fd);
    await fsAsync.close(fd);
    await fsAsync.rename(join(dir, "w.tmp"), join(dir, "w.txt"));
    const rd = await fsAsync.open(join(dir, "w.txt"), "r");
    expect((await fsAsync.fstat(rd)).size).toBe(8);
    expect(await fsAsync.readFdUtf8(rd)).toBe("one\ntwo\n");
    await fsAsync.close(rd);
    await fsAsync.mkdirRecursive(join(dir, "x", "y"));
    await fsAsync.access(join(dir, "x", "y"));
    await fsAsync.unlink(join(dir, "w.txt"));
    expect(() => readFileSync(join(dir, "w.txt"))).toThrow();
  });

  it("rejects with the system error and its code", async () => {
    await expect(fsAsync.stat(join(dir, "missing"))).rejects.toMatchObject({
      code: "ENOENT",
      syscall: "stat",
    });
    await expect(fsAsync.open(join(dir, "sub"), "w")).rejects.toMatchObject({ code: "EISDIR" });
    await expect(fsAsync.close(123456)).rejects.toMatchObject({ code: "EBADF" });
    await expect(fsAsync.rename(join(dir, "missing"), join(dir, "b"))).rejects.toMatchObject({
      code: "ENOENT",
    });
  });

  it("does not load node:fs/promises (and with it readline and the REPL's history on Node 24)", () => {
    // Bundled as the apps are, run by a bare node: the modules Node loaded for it, nothing else.
    const out = join(dir, "fs-async.cjs");
    buildSync({
      entryPoints: [join(import.meta.dirname, "../src/fs-async.ts")],
      bundle: true,
      platform: "node",
      format: "cjs",
      outfile: out,
    });
    const script = `require(${JSON.stringify(out)}); console.log(JSON.stringify(process.moduleLoadList.filter((m) => /fs\\/promises|readline/.test(m))))`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([]);
    // The check sees the module when it is there.
    const withPromises = spawnSync(process.execPath, ["-e", `require("node:fs/promises"); ${script}`], {
      encoding: "utf8",
    });
    expect(JSON.parse(withPromises.stdout)).toContain("NativeModule fs/promises");
  });
});
