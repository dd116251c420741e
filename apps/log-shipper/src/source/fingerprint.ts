// File identity. A path is not an identity (rotation renames files, copytruncate copies them), and
// neither is an inode alone (inode numbers are reused as soon as a file is deleted). Like Vector's
// checksum fingerprinter we hash the file's first bytes: the first line, or the first
// FINGERPRINT_BYTES when that line is longer. For an append-only file that prefix never changes,
// so the hash is stable while the file grows and moves, and a copy carries the same hash. A file
// that has neither a complete first line nor FINGERPRINT_BYTES yet cannot be fingerprinted: it
// waits (its first line is still being written).
import { read, readSync } from "node:fs";
import { sha256Hex } from "@sidecar/shared";

export const FINGERPRINT_BYTES = 1024;

/** Hash of the identifying prefix of `head` (the file's first bytes), or null when too short. */
export function fingerprintOf(head: Buffer, length: number): string | null {
  const end = fingerprintEnd(head, length);
  if (end === 0) return null;
  return sha256Hex(head.subarray(0, end)).slice(0, 16);
}

/**
 * Length of the identifying prefix of `head` (its first `length` bytes): through the first
 * newline, or FINGERPRINT_BYTES; 0 when too short to tell. Two heads that agree on the first
 * prefix's bytes have the same prefix, and so the same fingerprint.
 */
export function fingerprintEnd(head: Buffer, length: number): number {
  const n = Math.min(length, FINGERPRINT_BYTES);
  const nl = head.indexOf(10);
  if (nl !== -1 && nl < n) return nl + 1;
  return n >= FINGERPRINT_BYTES ? FINGERPRINT_BYTES : 0;
}

/** Read the first bytes of an open file and fingerprint them (null: too short to identify yet). */
export function readFingerprint(fd: number, scratch: Buffer): Promise<string | null> {
  return new Promise((resolve, reject) => {
    read(fd, scratch, 0, FINGERPRINT_BYTES, 0, (err, bytesRead) => {
      if (err) reject(err);
      else resolve(fingerprintOf(scratch, bytesRead));
    });
  });
}

/** The identity key the sink acknowledges by: device and inode plus the content fingerprint. */
export function fileId(dev: number | bigint, ino: number | bigint, fp: string): string {
  return `${dev}:${ino}:${fp}`;
}

/** The inode part of an identity (to find a renamed file by what it is, not where it is). */
export function inodeKey(dev: number | bigint, ino: number | bigint): string {
  return `${dev}:${ino}`;
}

// The fingerprint says which file this is *meant* to be; it cannot tell two files apart that start
// with the same line (a fixed banner, a CSV header). Before an offset is carried over to another
// file (a copy, a restart), the bytes just before that offset are compared too: an "anchor" of at
// most ANCHOR_BYTES ending at the offset. A file whose bytes there differ, or that is shorter than
// the offset, is not the content the offset was measured in.
export const ANCHOR_BYTES = 1024;

/**
 * A reader may only start at offset 0, right after a newline (`anchor`: the file's bytes before
 * `offset`), or where the bytes before it were just verified equal to what a reader consumed there
 * (`verifiedAt`: the end of ANCHOR_BYTES compared) — a rotated file's last partial line was shipped
 * up to such an offset, and a copy of it continues there.
 */
export function isLineStart(offset: number, anchor: Buffer, verifiedAt?: number): boolean {
  if (offset === 0 || (anchor.length > 0 && anchor[anchor.length - 1] === 10)) return true;
  return verifiedAt !== undefined && verifiedAt - ANCHOR_BYTES < offset && offset <= verifiedAt;
}

/** Hash of an anchor's bytes (what positions store; the live reader keeps the bytes themselves). */
export function anchorHash(bytes: Buffer): string {
  return sha256Hex(bytes).slice(0, 16);
}

/**
 * The bytes of `fd` just before `offset` (at most ANCHOR_BYTES), read into `scratch`; null when the
 * file is shorter than `offset`.
 */
export function readAnchor(fd: number, offset: number, scratch: Buffer): Promise<Buffer | null> {
  const len = Math.min(offset, ANCHOR_BYTES);
  if (len === 0) return Promise.resolve(scratch.subarray(0, 0));
  return new Promise((resolve, reject) => {
    read(fd, scratch, 0, len, offset - len, (err, bytesRead) => {
      if (err) reject(err);
      else resolve(bytesRead === len ? scratch.subarray(0, len) : null);
    });
  });
}

/** Read the first `buf.length` bytes of an open file into `buf`; resolves how many there were. */
/** readAnchor without the thread-pool round trip (see FileReader: reads of a tailed file). */
export function readAnchorSync(fd: number, offset: number, scratch: Buffer): Buffer | null {
  const len = Math.min(offset, ANCHOR_BYTES);
  if (len === 0) return scratch.subarray(0, 0);
  return readSync(fd, scratch, 0, len, offset - len) === len ? scratch.subarray(0, len) : null;
}

export function readHead(fd: number, buf: Buffer): Promise<number> {
  return preadInto(fd, buf, buf.length, 0);
}

function preadInto(fd: number, buf: Buffer, len: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, len, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * Whether `fdA` and `fdB` hold the same bytes over [from, to): "same", "differs", or "short" when
 * they are equal as far as `fdA` goes but it ends before `to` (`fdB` must hold all of them).
 * `scratch` (split in two halves) is used for the reads.
 */
export async function compareRange(
  fdA: number,
  fdB: number,
  from: number,
  to: number,
  scratch: Buffer,
): Promise<"same" | "differs" | "short"> {
  const half = Math.floor(scratch.length / 2);
  const a = scratch.subarray(0, half);
  const b = scratch.subarray(half, 2 * half);
  for (let at = from; at < to; ) {
    const len = Math.min(half, to - at);
    const [na, nb] = await Promise.all([preadInto(fdA, a, len, at), preadInto(fdB, b, len, at)]);
    if (nb < len) return "differs";
    if (a.compare(b, 0, na, 0, na) !== 0) return "differs";
    if (na < len) return "short";
    at += len;
  }
  return "same";
}
