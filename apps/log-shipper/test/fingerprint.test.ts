// File identity on real files: the fingerprint is stable while a file grows and when it is
// renamed; a copy carries it; a file too short to identify has none yet.
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  mkdtempSync,
  openSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FINGERPRINT_BYTES, fileId, fingerprintOf, readFingerprint } from "../src/source/fingerprint.js";

const scratch = Buffer.alloc(FINGERPRINT_BYTES);

async function fpOf(path: string): Promise<string | null> {
  const fd = openSync(path, "r");
  try {
    return await readFingerprint(fd, scratch);
  } finally {
    closeSync(fd);
  }
}

describe("fingerprint", () => {
  const dir = mkdtempSync(join(tmpdir(), "fp-"));

  it("is the hash of the first line, stable while the file grows", async () => {
    const p = join(dir, "grow.log");
    writeFileSync(p, "first line\n");
    const a = await fpOf(p);
    appendFileSync(p, "second line\n".repeat(500));
    expect(a).not.toBeNull();
    expect(await fpOf(p)).toBe(a);
  });

  it("keeps identity across a rename (same inode, same fingerprint → same id)", async () => {
    const p = join(dir, "app.log");
    writeFileSync(p, "hello rename\nmore\n");
    const before = statSync(p);
    const id = fileId(before.dev, before.ino, (await fpOf(p)) as string);
    renameSync(p, `${p}.1`);
    const after = statSync(`${p}.1`);
    expect(fileId(after.dev, after.ino, (await fpOf(`${p}.1`)) as string)).toBe(id);
  });

  it("recognises a copy: same fingerprint, different inode", async () => {
    const p = join(dir, "copy.log");
    writeFileSync(p, "copied first line\nx\n");
    copyFileSync(p, `${p}.1`);
    expect(await fpOf(`${p}.1`)).toBe(await fpOf(p));
    expect(statSync(`${p}.1`).ino).not.toBe(statSync(p).ino);
  });

  it("changes when the file is truncated and rewritten", async () => {
    const p = join(dir, "trunc.log");
    writeFileSync(p, "generation one\n");
    const a = await fpOf(p);
    writeFileSync(p, "generation two\n");
    expect(await fpOf(p)).not.toBe(a);
  });

  it("waits while the file is too short (no complete first line, under 1 KiB)", async () => {
    const p = join(dir, "short.log");
    writeFileSync(p, "");
    expect(await fpOf(p)).toBeNull();
    writeFileSync(p, "partial first li");
    expect(await fpOf(p)).toBeNull();
    appendFileSync(p, "ne\n");
    expect(await fpOf(p)).not.toBeNull();
  });

  it("uses the first 1 KiB when the first line is longer", () => {
    const long = Buffer.alloc(3000, 0x61);
    const a = fingerprintOf(long, 3000);
    const b = fingerprintOf(Buffer.concat([long.subarray(0, 1024), Buffer.alloc(1976, 0x62)]), 3000);
    expect(a).not.toBeNull();
    expect(b).toBe(a);
    expect(fingerprintOf(long, 1023)).toBeNull();
  });
});
