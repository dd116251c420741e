// Files a variable names are read only when they are regular files: a FIFO (or device) in their
// place is an error at once, never a read that waits for a writer forever.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureRegularFileOrAbsent } from "../src/main.js";
import { readRegularFileSync } from "../src/regular-file.js";

const dir = mkdtempSync(join(tmpdir(), "regular-file-"));
const fifo = join(dir, "fifo");
execFileSync("mkfifo", [fifo]);

describe("readRegularFileSync", () => {
  it("reads a regular file, also through a symlink (Kubernetes' ..data links)", () => {
    writeFileSync(join(dir, "secret"), "s3cret\n");
    symlinkSync(join(dir, "secret"), join(dir, "link"));
    expect(readRegularFileSync(join(dir, "link"))).toBe("s3cret\n");
  });

  it("refuses a FIFO at once (no writer needed), a directory and /dev/zero, with a code saying what it is", () => {
    expect(() => readRegularFileSync(fifo)).toThrow(
      expect.objectContaining({ code: "not a regular file: a FIFO (named pipe)" }),
    );
    mkdirSync(join(dir, "d"));
    expect(() => readRegularFileSync(join(dir, "d"))).toThrow(/a directory/);
    expect(() => readRegularFileSync("/dev/zero")).toThrow(/a character device/);
    expect(() => readRegularFileSync(join(dir, "missing"))).toThrow(
      expect.objectContaining({ code: "ENOENT" }),
    );
  });
});

describe("ensureRegularFileOrAbsent", () => {
  it("accepts a regular file or nothing; refuses a FIFO naming the variable; a directory only when allowed", async () => {
    writeFileSync(join(dir, "p.json"), "{}");
    await ensureRegularFileOrAbsent(join(dir, "p.json"), "X_FILE");
    await ensureRegularFileOrAbsent(join(dir, "absent.json"), "X_FILE");
    await expect(ensureRegularFileOrAbsent(fifo, "X_FILE")).rejects.toThrow(
      /^X_FILE=".*fifo" is a FIFO \(named pipe\), not a regular file$/,
    );
    await expect(ensureRegularFileOrAbsent(dir, "X_FILE")).rejects.toThrow(/is a directory/);
    await ensureRegularFileOrAbsent(dir, "X_FILE", { allowDirectory: true });
  });
});
