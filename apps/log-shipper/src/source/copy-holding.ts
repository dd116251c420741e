// Copy holding (copytruncate): a file found to be a copy of one still being read is held — not
// read — until its original is retired (truncated, rewritten, deleted, forgotten); then it is
// released and reads on where the original's reading finally stood. Reading both would ship
// twice what the original gets after the copy was noticed. While held, a copy is compared with
// its original as both grow (how far it is known equal, or that it is no copy after all, or that
// the roles are the other way round: the "original" is the copy, found first). A copy, held or
// not, inherits its original's acknowledgements up to where their bytes are the same.
//
// Invariants: a held copy `c` has `c.holdFor` set and is in its original's list here, and is
// never in the read queue; `c.inherit` is set exactly when `c` is in the list of copies of
// `c.inherit.fromId`; a copy only ever starts at a line start (isLineStart) — where it cannot,
// it is read from 0 (at worst lines twice, never one skipped). Whether a new file is a copy at all
// is decided elsewhere (originals.ts, tailer.ts); this module is told with hold() and link().

import type { FileEvents, ResyncReason } from "./file-events.js";
import type { FileRegistry } from "./file-registry.js";
import { ANCHOR_BYTES, compareRange, isLineStart, readAnchor } from "./fingerprint.js";
import type { Positions } from "./positions.js";
import type { FileReader } from "./reader.js";

/** The read queue, as far as copy holding moves readers in and out of it. */
export interface ReadQueue {
  enqueue(r: FileReader): void;
  /** Take `r` out of the queue (it is held now). */
  unqueue(r: FileReader): void;
}

export interface CopyHoldingDeps {
  registry: Pick<FileRegistry, "commit">;
  positions: Pick<Positions, "forget" | "track">;
  queue: ReadQueue;
  events: FileEvents;
  /** ANCHOR_BYTES to read anchors into, lent by the tailer (its steps run one at a time). */
  anchorScratch: Buffer;
  /** FINGERPRINT_BYTES for FileReader.verify, likewise lent. */
  scratch: Buffer;
}

export class CopyHolding {
  /** Copies held until their (live) original is retired, by the original. */
  private readonly held = new Map<FileReader, FileReader[]>();
  /** Originals retired since their held copies were last released. */
  private releasing: FileReader[] = [];
  /** Copies (copytruncate) whose original's acknowledgements also cover them, by original id. */
  private readonly copiesOf = new Map<string, FileReader[]>();

  constructor(private readonly deps: CopyHoldingDeps) {}

  /** Whether any copy is held at all (the read path's cheap test). */
  get holding(): boolean {
    return this.held.size > 0;
  }

  /** Whether copies are held for `orig`. */
  isHolding(orig: FileReader): boolean {
    return this.held.has(orig);
  }

  /** Hold copy `c` until `orig` is retired; it is known equal to `orig` up to `verifiedTo`. */
  hold(c: FileReader, orig: FileReader, verifiedTo: number): void {
    c.holdFor = orig;
    c.verifiedTo = verifiedTo;
    const list = this.held.get(orig) ?? [];
    list.push(c);
    this.held.set(orig, list);
  }

  /** `orig` was retired or forgotten: its held copies are released by the next releaseRetired(). */
  originalRetired(orig: FileReader): void {
    if (this.held.has(orig)) this.releasing.push(orig);
  }

  get releasePending(): boolean {
    return this.releasing.length > 0;
  }

  /** Release the copies of the originals retired since the last call. */
  async releaseRetired(): Promise<void> {
    const originals = this.releasing;
    this.releasing = [];
    for (const o of originals) await this.release(o);
  }

  /** The original `id` is acknowledged up to `offset`: so are its copies, as far as they are equal. */
  acknowledged(id: string, offset: number): void {
    const copies = this.copiesOf.get(id);
    if (copies === undefined) return;
    for (const c of copies) {
      if (c.inherit === null) continue;
      const covered = Math.min(offset, c.inherit.limit);
      if (covered > c.acked) {
        c.acked = covered;
        this.deps.registry.commit(c, covered);
      }
    }
  }

  /**
   * `orig` just read more: its held copies are compared again right away, while it still has the
   * bytes — once it is truncated, how far a copy equals it can no longer be checked, and what is
   * not known equal is read from the copy again.
   */
  async recheckCopiesOf(orig: FileReader): Promise<void> {
    for (const c of this.held.get(orig) ?? []) {
      const st = await c.stat();
      if (st !== null) await this.recheck(c, st.size);
    }
  }

  /**
   * A copy held for `r` can have shipped lines past where `r`'s reading stands: before a restart
   * the two were judged the other way round (the copy — a cp that stopped at a line end while the
   * writer had written only half of that line — grew past `r` and was read on, `r` held), and
   * after it the copy resumed at its own acknowledged offset and is held for `r` again. What `r`
   * has there is what the copy shipped when its bytes are the same: `r` goes on after them, or,
   * while `r` holds only a part of them so far, waits for the rest (false: do not read now) —
   * reading them would ship those lines twice. Where the bytes differ, the copy's offset says
   * nothing about `r`.
   */
  async catchUp(r: FileReader, buf: Buffer): Promise<boolean> {
    for (const c of this.held.get(r) ?? []) {
      const to = c.acked;
      const from = r.readPos;
      if (to <= from || c.fd === null || c.retired || r.fd === null || r.splitter.inLongLine) continue;
      const cmp = await compareRange(r.fd, c.fd, from, to, buf).catch(() => "differs" as const);
      if (r.readPos !== from || r.fd === null || c.holdFor !== r) return false; // changed meanwhile: look again
      if (cmp === "differs") continue;
      if (cmp === "short") return false;
      const read = await readAnchor(r.fd, to, this.deps.anchorScratch).catch(() => null);
      if (read === null || r.readPos !== from) return false;
      const anchor = Buffer.from(read);
      // The copy's acknowledged offset is a line end there, so it is one here too (same bytes).
      if (!isLineStart(to, anchor)) continue;
      if (r.acked >= from) {
        r.moveTo(to, to, anchor);
        this.deps.registry.commit(r, to);
      } else {
        // Lines before `from` are still in flight: acknowledged up to `to` once they are.
        r.moveTo(to, r.acked, anchor);
        r.ackJump = { from, to };
      }
      this.deps.events.event(
        "copy_caught_up",
        { path: r.path, id: r.id, from: c.id, skippedFrom: from, offset: to },
        "a held copy already shipped these lines; reading on after them",
      );
    }
    return true;
  }

  /**
   * A held copy grew or time passed: extend how far it is known equal to its original — or, when
   * its new bytes differ from the original's, it was no copy after all (a new file that began
   * like the original): read it from its start (at worst a few lines twice, none skipped).
   */
  async recheck(c: FileReader, size: number): Promise<void> {
    const orig = c.holdFor;
    if (orig === null || c.fd === null || orig.fd === null || size <= c.verifiedTo) return;
    const cmp = await compareWith(c.fd, size, orig, this.deps.anchorScratch);
    let state = cmp.state;
    if (state === "unknown" && (await orig.verify(this.deps.scratch)) === "ok") {
      // The original lacks those bytes but still holds what it read: it is shorter. Equal over
      // all of it: it is the copy, and this one the file being written (see swap); not
      // equal: this one is no copy of it.
      const shorter = await shorterSame(c.fd, size, orig, this.deps.anchorScratch);
      if (shorter === null) return;
      if (shorter !== "differs" && shorter !== "banner") {
        const lineEnd = (await compareWith(c.fd, shorter, orig, this.deps.anchorScratch)).lineEnd;
        await this.swap(c, orig, shorter, lineEnd);
        return;
      }
      // Differs — or the other file holds nothing but the banner both begin with, which cannot
      // tell a copy from a new file: holding this one until the other grows could hold it for
      // good (its lines never read), so it is read from its start (the banner perhaps twice).
      state = "differs";
    }
    if (state === "same") {
      const to = cmp.lineEnd ?? 0;
      if (to > c.verifiedTo) {
        // The original's acknowledgements cover the copy's identical bytes too: a restart (or the
        // release) then does not read them from the copy again.
        const read = await readAnchor(c.fd, to, this.deps.anchorScratch).catch(() => null);
        if (read === null || c.fd === null) return;
        const anchor = Buffer.from(read);
        // Compared again now that the tail is read: it must be the bytes found equal.
        if ((await compareWith(c.fd, to, orig, this.deps.anchorScratch)).state !== "same") return;
        if (!isLineStart(to, anchor)) {
          this.resetToStart(c, "rechecked");
          return;
        }
        c.verifiedTo = to;
        const acked = Math.max(c.acked, Math.min(orig.acked, to));
        c.moveTo(to, acked, anchor);
        if (c.inherit !== null) c.inherit.limit = to;
        this.deps.registry.commit(c, acked);
      }
      return;
    }
    // Differs, or the original lacks those bytes now: maybe the original was truncated meanwhile
    // (then it is retired first and releases the copy at the right offset).
    if (state === "unknown" || (await orig.verify(this.deps.scratch)) !== "ok") return;
    this.deps.events.event(
      "found",
      { path: c.path, id: c.id, size },
      "file differs from the one it began like; reading it from its start",
    );
    this.readFromStart(c);
  }

  /**
   * `orig` was retired: its held copies start where its reading finally stood when they hold the
   * same bytes there; otherwise (a copy shorter than that, or not equal there) where they were
   * last checked equal to it — at worst a few lines come twice, none is skipped.
   */
  private async release(orig: FileReader): Promise<void> {
    const copies = this.held.get(orig);
    this.held.delete(orig);
    if (copies === undefined) return;
    for (const c of copies) {
      if (c.holdFor !== orig) continue;
      c.holdFor = null;
      if (c.fd === null || c.retired) continue;
      const st = await c.stat();
      const size = st?.size ?? 0;
      let start = Math.min(c.verifiedTo, orig.readPos);
      if (size >= orig.readPos) {
        const bytes = await readAnchor(c.fd, orig.readPos, this.deps.anchorScratch).catch(() => null);
        if (bytes !== null && orig.tailEquals(bytes)) start = orig.readPos;
      }
      // What was acknowledged of the copy itself (before a restart) is never read again.
      if (c.acked > start && c.acked <= size) start = c.acked;
      let anchor = await readAnchor(c.fd, start, this.deps.anchorScratch).catch(() => null);
      if (anchor === null) start = 0;
      else if (
        !isLineStart(start, anchor, start === orig.readPos && orig.tailEquals(anchor) ? start : undefined)
      ) {
        this.deps.events.resync("rechecked", c.path, c.id, start);
        start = 0;
        anchor = null;
      }
      const acked = Math.min(Math.max(orig.acked, c.acked), start);
      c.moveTo(start, acked, anchor ?? Buffer.alloc(0));
      if (c.inherit !== null) c.inherit.limit = start;
      this.deps.registry.commit(c, acked);
      this.deps.events.event(
        "copy_recognised",
        { path: c.path, id: c.id, from: orig.id, offset: start },
        "copy of a file already read (copytruncate); continuing where its original stood",
      );
      this.deps.queue.enqueue(c);
    }
  }

  /**
   * A held copy `c` grew past its "original" `orig`, which still holds what it read and equals
   * `c` over all of its (shorter) length: `orig` is the copy (a cp that finished or lags behind,
   * found first), `c` the file being written. Swap their roles: `c` reads on from where `orig`'s
   * reading stands (every byte before it was read from `orig`, and `c` has the same bytes there),
   * and `orig` is held as a copy of `c` — nothing read twice, nothing skipped.
   */
  private async swap(
    c: FileReader,
    orig: FileReader,
    origSize: number,
    origLineEnd: number | null,
  ): Promise<void> {
    if (c.fd === null || orig.splitter.inLongLine) return;
    // Where `orig`'s reading stands — or further, where `c` itself was acknowledged before (it
    // was found again after a restart with an offset of its own).
    const start = Math.max(orig.readPos, c.acked);
    const anchor = await readAnchor(c.fd, start, this.deps.anchorScratch).catch(() => null);
    if (anchor === null || (start === orig.readPos && !orig.tailEquals(anchor))) return;
    if (!isLineStart(start, anchor, start === orig.readPos ? start : undefined)) {
      this.resetToStart(c, "rechecked");
      return;
    }
    this.unhold(c);
    const acked = Math.max(c.acked, Math.min(orig.acked, start));
    c.moveTo(start, acked, anchor);
    this.unlink(c);
    this.link(c, orig.id, start);
    this.deps.registry.commit(c, acked);
    orig.holdFor = c;
    orig.verifiedTo = Math.min(origSize, Math.max(start, origLineEnd ?? 0));
    this.deps.queue.unqueue(orig);
    const list = this.held.get(c) ?? [];
    list.push(orig);
    this.held.set(c, list);
    this.unlink(orig);
    this.link(orig, c.id, orig.readPos);
    this.deps.events.event(
      "copy_held",
      { path: orig.path, id: orig.id, from: c.id, verifiedTo: orig.verifiedTo },
      "file turned out to be the copy of one found after it; holding it, reading the other on",
    );
    this.deps.queue.enqueue(c);
  }

  /** A reader that has nothing in flight (held, or not read yet) starts over at offset 0. */
  private readFromStart(c: FileReader): void {
    this.unhold(c);
    this.unlink(c);
    c.inherit = null;
    c.moveTo(0, 0, Buffer.alloc(0));
    this.deps.positions.forget(c.key);
    this.deps.positions.track(c.key, c.fingerprint, c.path, 0, c.anchorAt());
    this.deps.queue.enqueue(c);
  }

  /** `c`'s offset, taken from elsewhere, is not a line start of its file: read it from 0. */
  private resetToStart(c: FileReader, reason: ResyncReason): void {
    this.deps.events.resync(reason, c.path, c.id, c.readPos);
    this.readFromStart(c);
  }

  /** `c` is no longer held for its original (released, found to differ, truncated itself). */
  unhold(c: FileReader): void {
    const orig = c.holdFor;
    if (orig === null) return;
    const list = this.held.get(orig)?.filter((x) => x !== c) ?? [];
    if (list.length > 0) this.held.set(orig, list);
    else this.held.delete(orig);
    c.holdFor = null;
  }

  /** Acknowledgements of `fromId` up to `limit` also cover copy `c` (identical bytes). */
  link(c: FileReader, fromId: string, limit: number): void {
    c.inherit = { fromId, limit };
    const list = this.copiesOf.get(fromId) ?? [];
    list.push(c);
    this.copiesOf.set(fromId, list);
  }

  /** `r` no longer inherits acknowledgements (dropped, or read from elsewhere now). */
  unlink(r: FileReader): void {
    if (r.inherit === null) return;
    const list = this.copiesOf.get(r.inherit.fromId);
    if (list === undefined) return;
    const rest = list.filter((c) => c !== r);
    if (rest.length > 0) this.copiesOf.set(r.inherit.fromId, rest);
    else this.copiesOf.delete(r.inherit.fromId);
  }
}

/**
 * `fd`'s bytes just before `end` against the live original's ("unknown": it lacks them now),
 * and the offset just past the last line end among them (a copy may only start at a line start).
 */
export async function compareWith(
  fd: number,
  end: number,
  orig: FileReader,
  scratch: Buffer,
): Promise<{ state: "same" | "differs" | "unknown"; lineEnd: number | null }> {
  const ofd = orig.fd;
  if (ofd === null || end <= 0) return { state: "unknown", lineEnd: null };
  const mine = await readAnchor(fd, end, scratch).catch(() => null);
  if (mine === null) return { state: "unknown", lineEnd: null };
  const copy = Buffer.from(mine);
  const nl = copy.lastIndexOf(10);
  const lineEnd = nl === -1 ? null : end - copy.length + nl + 1;
  const theirs = await readAnchor(ofd, end, scratch).catch(() => null);
  if (theirs === null) return { state: "unknown", lineEnd };
  return { state: theirs.equals(copy) ? "same" : "differs", lineEnd };
}

/**
 * Whether `fd` (of `size` bytes) equals live reader `r`'s file over all of that file, when that
 * file is shorter than `size` but still at least as long as where `r`'s reading stands: its size
 * when so, "differs" when the bytes differ, "banner" when that file holds nothing but its first
 * line (which every file of the fingerprint shares, so it says nothing), null when it cannot
 * tell (closed, gone, too short).
 */
export async function shorterSame(
  fd: number,
  size: number,
  r: FileReader,
  scratch: Buffer,
): Promise<number | "differs" | "banner" | null> {
  const st = await r.stat();
  if (st === null || r.fd === null || st.size >= size || st.size < r.readPos || st.size === 0) return null;
  if (st.size <= ANCHOR_BYTES) {
    // A file that holds nothing but its first line (a banner) says nothing: every file of this
    // fingerprint begins like that.
    const all = await readAnchor(r.fd, st.size, scratch).catch(() => null);
    if (all === null) return null;
    const nl = all.indexOf(10);
    if (nl === -1 || nl + 1 >= st.size) return "banner";
  }
  const cmp = await compareWith(fd, st.size, r, scratch);
  if (cmp.state === "differs") return "differs";
  return cmp.state === "same" ? st.size : null;
}
