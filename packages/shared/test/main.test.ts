import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureWritableDir, StartupError } from "../src/main.js";

describe("ensureWritableDir", () => {
  it("creates a missing directory", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "ewd-")), "a", "b");
    await expect(ensureWritableDir(dir, "LOG_DIR")).resolves.toBeUndefined();
  });

  it("names the variable when the path cannot be a directory", async () => {
    const base = mkdtempSync(join(tmpdir(), "ewd-"));
    const file = join(base, "file");
    writeFileSync(file, "x");
    const err = await ensureWritableDir(join(file, "sub"), "LOG_DIR").catch((e) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect(err.message).toMatch(/^LOG_DIR=".*\/file\/sub" is not a writable directory \(ENOTDIR\)/);
  });
});
