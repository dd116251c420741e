// Copy recognition: which content already known a new file continues — a file still being read
// (a copytruncate copy of it, or a cp in progress), a retired one (its original was truncated), or
// a saved entry of a file no longer tracked (copied while the shipper was down). A copy starts
// where that content's reading stood instead of at 0, so nothing is shipped twice. This module
// only answers the question (originalOf) and checks saved entries against a file
// (holdsSavedContent); tailer.ts decides what to do with the answer and copy-holding.ts holds a
// copy whose original is still being read.
//
// The rule: the same fingerprint is not enough (a banner, a CSV header); the new file must hold
// the very bytes the other content had just before where its reading stood (its anchor). Every
// answer carries a check (`confirm`) to run again once those bytes are read into the new reader:
// the file may have changed in between.

import { compareWith, shorterSame } from "./copy-holding.js";
import type { FileRegistry } from "./file-registry.js";
import { ANCHOR_BYTES, anchorHash, readAnchor } from "./fingerprint.js";
import type { PositionEntry, Positions } from "./positions.js";
import type { FileReader } from "./reader.js";

/** Where reading stood in another file that a new file turned out to be a copy of. */
export interface Original {
  id: string;
  readPos: number;
  acked: number;
  /** The original is still being read (not truncated yet): hold the copy until it is retired. */
  live?: FileReader;
  /** For a live original: how far the copy was checked equal to it. */
  verifiedTo?: number;
  /** The copy's bytes before this offset (ANCHOR_BYTES of them) were checked equal to the original's. */
  anchorAt: number;
  /** Run that check again (after the copy's bytes before its start offset were read). */
  confirm: (fd: number) => Promise<boolean>;
}

export interface OriginalsDeps {
  registry: Pick<FileRegistry, "withFingerprint" | "retiredWith" | "withId" | "hasIdentity">;
  positions: Pick<Positions, "withFingerprint">;
  /** A reader found truncated or rewritten while looking: the tailer starts it over. */
  restart: (r: FileReader) => Promise<void>;
  /** ANCHOR_BYTES to read anchors into, lent by the tailer (its steps run one at a time). */
  anchorScratch: Buffer;
  /** FINGERPRINT_BYTES for FileReader.verify, likewise lent. */
  scratch: Buffer;
}

export class Originals {
  constructor(private readonly deps: OriginalsDeps) {}

  /**
   * The file `fd` (of `size` bytes, fingerprint `fp`) is a copy of another file when that file has
   * the same fingerprint AND `fd` holds the very bytes that file had just before where its reading
   * stood (its anchor). A file with only the same first line (a banner, a CSV header), or shorter
   * than that offset, is a new file. Of several matches the one read furthest wins.
   */
  async originalOf(fd: number, size: number, fp: string, exceptId: string): Promise<Original | undefined> {
    // First make sure the readers of this fingerprint still read what they think: a file truncated
    // and rewritten (same first line) but not noticed yet would otherwise neither match the copy
    // nor be known as the copy's real original, and both would be read in full.
    for (const r of this.deps.registry.withFingerprint(fp)) {
      if (r.fingerprint !== fp || r.key === exceptId || r.fd === null || r.retired || r.holdFor !== null)
        continue;
      const v = await r.verify(this.deps.scratch);
      if (v === "truncated" || v === "rewritten") await this.deps.restart(r);
    }
    let best: Original | undefined;
    const consider = (c: Original) => {
      if (best === undefined || c.readPos > best.readPos) best = c;
    };
    for (const r of this.deps.registry.withFingerprint(fp)) {
      if (r.fingerprint !== fp || r.key === exceptId || r.retired || r.holdFor !== null) continue;
      if (size >= r.readPos) {
        // Equal where the original's reading stands, and (while the original still holds them)
        // equal at the copy's end too: a file that only shares a banner differs right after it.
        const bytes = await readAnchor(fd, r.readPos, this.deps.anchorScratch);
        if (bytes === null || !r.tailEquals(bytes)) continue;
        let verifiedTo = r.readPos;
        if (size > r.readPos) {
          const c = await compareWith(fd, size, r, this.deps.anchorScratch);
          if (c.state === "differs") continue;
          if (c.state === "unknown") {
            // The other file lacks those bytes. It was just verified to still hold what it read,
            // so it is most likely shorter, not truncated: a copy still being written (cp in
            // progress), found before the file it copies — e.g. that one was empty or unreadable
            // until now. When this file equals it up to its end, hold this one for now; the
            // held-copy check swaps the two roles once this one has grown past it.
            const shorter = await shorterSame(fd, size, r, this.deps.anchorScratch);
            if (shorter === "differs") continue;
            if (shorter !== null && shorter !== "banner") {
              consider({
                id: r.id,
                readPos: r.readPos,
                acked: r.acked,
                live: r,
                verifiedTo: r.readPos,
                anchorAt: r.readPos,
                confirm: this.confirmTail(r),
              });
              continue;
            }
            // It no longer has those bytes: truncated (not noticed yet), so it will not read on —
            // the copy continues where it stood, without waiting.
            consider({
              id: r.id,
              readPos: r.readPos,
              acked: r.acked,
              anchorAt: r.readPos,
              confirm: this.confirmTail(r),
            });
            continue;
          }
          verifiedTo = Math.max(verifiedTo, c.lineEnd ?? 0);
        }
        consider({
          id: r.id,
          readPos: r.readPos,
          acked: r.acked,
          live: r,
          verifiedTo,
          anchorAt: r.readPos,
          confirm: this.confirmTail(r),
        });
      } else {
        // Shorter than where the original's reading stands, but equal to it so far: a copy still
        // being written (cp in progress), or one taken before the original grew further.
        const c = await compareWith(fd, size, r, this.deps.anchorScratch);
        if (c.state === "same") {
          consider({
            id: r.id,
            readPos: r.readPos,
            acked: r.acked,
            live: r,
            verifiedTo: c.lineEnd ?? 0,
            anchorAt: size,
            confirm: async (cfd) =>
              (await compareWith(cfd, size, r, this.deps.anchorScratch)).state === "same",
          });
        }
      }
    }
    for (const retired of this.deps.registry.retiredWith(fp)) {
      const at = retired.anchorOffset ?? retired.readPos;
      if ((retired.key === exceptId && retired.vanished !== true) || retired.readPos === 0 || size < at)
        continue;
      const bytes = await readAnchor(fd, at, this.deps.anchorScratch);
      // Its acknowledgements may have come in since it was retired: a reader no longer waiting
      // for any (no longer found by id) was acknowledged up to where it stood.
      if (bytes !== null && anchorHash(bytes) === retired.anchor)
        consider({
          id: retired.id,
          readPos: retired.readPos,
          acked: this.deps.registry.withId(retired.id)?.acked ?? retired.readPos,
          anchorAt: at,
          confirm: this.confirmHash(at, retired.anchor),
        });
    }
    for (const e of this.deps.positions.withFingerprint(fp, exceptId)) {
      // A file still tracked here is judged by its reader (where reading stands), not its entry.
      if (this.deps.registry.hasIdentity(e.id)) continue;
      // An entry without an anchor (older version) cannot be verified: reading the file again
      // (duplicates) is better than skipping a new file's head.
      if (e.anchor === undefined || e.anchorOffset === undefined || size < e.anchorOffset) continue;
      const bytes = await readAnchor(fd, e.anchorOffset, this.deps.anchorScratch);
      if (bytes !== null && anchorHash(bytes) === e.anchor)
        consider({
          id: e.id,
          readPos: e.offset,
          acked: e.offset,
          anchorAt: e.anchorOffset,
          confirm: this.confirmHash(e.anchorOffset, e.anchor),
        });
    }
    return best;
  }

  /** Whether `fd` still holds the content a saved entry was measured in (its anchor matches). */
  async holdsSavedContent(fd: number, size: number, e: PositionEntry): Promise<boolean> {
    if (e.anchor === undefined || e.anchorOffset === undefined) return true; // written by an older version
    if (size < e.anchorOffset) return false;
    const bytes = await readAnchor(fd, e.anchorOffset, this.deps.anchorScratch);
    return bytes !== null && anchorHash(bytes) === e.anchor;
  }

  /**
   * Whether the bytes of `fd` before `at` are at most its first line (none at all, or ending at
   * its first newline): an anchor there matches every file that begins with that line.
   */
  async anchorIsFirstLine(fd: number, at: number): Promise<boolean> {
    if (at === 0) return true;
    if (at > ANCHOR_BYTES) return false;
    const bytes = await readAnchor(fd, at, this.deps.anchorScratch).catch(() => null);
    if (bytes === null) return false;
    const nl = bytes.indexOf(10);
    return nl === -1 || nl >= at - 1;
  }

  /** A check that `fd` has the bytes live reader `r` consumed just before where it stands now. */
  private confirmTail(r: FileReader): (fd: number) => Promise<boolean> {
    const at = r.readPos;
    return async (fd) => {
      if (r.readPos !== at) return false;
      const bytes = await readAnchor(fd, at, this.deps.anchorScratch).catch(() => null);
      return bytes !== null && r.tailEquals(bytes);
    };
  }

  /** A check that `fd`'s bytes just before `at` hash to `hash` (a saved or retired anchor). */
  private confirmHash(at: number, hash: string): (fd: number) => Promise<boolean> {
    return async (fd) => {
      const bytes = await readAnchor(fd, at, this.deps.anchorScratch).catch(() => null);
      return bytes !== null && anchorHash(bytes) === hash;
    };
  }
}
