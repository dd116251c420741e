// onMemoryFs: which directories the programs may use synchronous calls in (tmpfs, ramfs).
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { onMemoryFs } from "../src/memory-fs.js";

describe("onMemoryFs", () => {
  it("is true for tmpfs and false for other file systems or a directory that is not there", () => {
    if (existsSync("/dev/shm")) expect(onMemoryFs("/dev/shm")).toBe(true);
    expect(onMemoryFs("/proc")).toBe(false);
    expect(onMemoryFs("/no/such/dir")).toBe(false);
  });
});
