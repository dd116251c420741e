// sha256Hex gives node:crypto's SHA-256 digest: every length from 0 to 300 bytes (one, two and
// five blocks, the padding's 55/56/64-byte edges), a kilobyte (the shipper's FINGERPRINT_BYTES),
// the FIPS 180-4 examples, and a larger input, all fixed bytes.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../src/sha256.js";

const nodeSha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const bytes = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7) & 0xff);

describe("sha256Hex", () => {
  it("the FIPS 180-4 examples", () => {
    expect(sha256Hex(Buffer.from("abc"))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(sha256Hex(Buffer.from("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))).toBe(
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    );
    expect(sha256Hex(new Uint8Array(0))).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });

  it("equals node:crypto for every length from 0 to 300 bytes, 1 KiB and 100 KiB", () => {
    for (let n = 0; n <= 300; n++) expect(sha256Hex(bytes(n, n)), `${n} bytes`).toBe(nodeSha(bytes(n, n)));
    for (const n of [1023, 1024, 1025, 100_000])
      expect(sha256Hex(bytes(n, 3)), `${n} bytes`).toBe(nodeSha(bytes(n, 3)));
  });

  it("hashes a view's own bytes, not its whole buffer", () => {
    const whole = bytes(200, 9);
    const view = whole.subarray(17, 150);
    expect(sha256Hex(view)).toBe(nodeSha(Buffer.from(view)));
  });
});
