// The identity registry: every reader the tailer knows, indexed the ways its decisions look them
// up, and what is remembered of readers that are gone. It decides nothing about files (tailer.ts
// does); it keeps the indexes consistent with each other and with positions.
//
//   by inode        the file on disk each reader reads (one reader per inode)
//   by fingerprint  the same readers by first line: the candidates for a copy's original, O(1)
//   by path         what a watched name holds now, while it is believed to hold that file
//   by reader id    every reader whose acknowledgements may still arrive (retired ones included)
//   by identity     the newest reader of an identity (key): the only one that moves positions
//   retired         reading progress of truncated, rewritten or vanished files, by fingerprint,
//                   for a while (RETIRED_MEMORY_MS): a copy found later continues where they stood
//   gone ids        identities that left every watched path fully acknowledged: forgotten from
//                   positions at the next rescan unless that rescan found them again
//
// Invariants: the inode and fingerprint indexes hold the same readers, and a retired reader is in
// neither; a reader leaves the id and identity indexes only once everything it read was
// acknowledged. Copy links between readers (copytruncate) are copy-holding.ts's: whoever drops a
// reader here unlinks it there.
import { inodeKey } from "./fingerprint.js";
import type { PositionEntry, Positions } from "./positions.js";
import type { FileReader } from "./reader.js";

/** What is remembered of a reader that stopped reading (see FileRegistry.retiredWith). */
export interface RetiredProgress {
  id: string;
  key: string;
  readPos: number;
  acked: number;
  /** Hash of the bytes before anchorOffset (default readPos; fingerprint.ts, anchors). */
  anchor: string;
  /** Where the anchor ends when not at readPos (a saved entry: where reading stood, ≥ acked). */
  anchorOffset?: number;
  at: number;
  /**
   * Forgotten while closed because its path went away (renamed or deleted, which cannot be told
   * apart then): the same file found again under another name has its own identity (key).
   */
  vanished?: boolean;
}

const RETIRED_MEMORY_MS = 10 * 60 * 1000;
const RETIRED_PER_FINGERPRINT = 8;

export class FileRegistry {
  private readonly byInode = new Map<string, FileReader>();
  private readonly byFingerprint = new Map<string, Set<FileReader>>();
  private readonly byPath = new Map<string, FileReader>();
  private readonly byId = new Map<string, FileReader>();
  private readonly byKey = new Map<string, FileReader>();
  private generation = 0;
  private readonly goneIds = new Set<string>();
  private readonly retiredFp = new Map<string, RetiredProgress[]>();

  constructor(
    private readonly positions: Positions,
    private readonly now: () => number,
  ) {}

  // ---- lookups ------------------------------------------------------------------------------

  atPath(path: string): FileReader | undefined {
    return this.byPath.get(path);
  }

  atInode(key: string): FileReader | undefined {
    return this.byInode.get(key);
  }

  /** A reader whose acknowledgements may still arrive. */
  withId(id: string): FileReader | undefined {
    return this.byId.get(id);
  }

  /** Whether a reader of this identity is still tracked (its progress is that reader's). */
  hasIdentity(key: string): boolean {
    return this.byKey.has(key);
  }

  /** The tracked readers of a fingerprint (a snapshot: callers may change the registry meanwhile). */
  withFingerprint(fp: string): FileReader[] {
    const set = this.byFingerprint.get(fp);
    return set === undefined ? [] : [...set];
  }

  countWithFingerprint(fp: string): number {
    return this.byFingerprint.get(fp)?.size ?? 0;
  }

  /** Every tracked file (one reader per inode). */
  tracked(): IterableIterator<FileReader> {
    return this.byInode.values();
  }

  get trackedCount(): number {
    return this.byInode.size;
  }

  /** Readers still waiting for acknowledgements (retired ones included). */
  awaitingAcks(): IterableIterator<FileReader> {
    return this.byId.values();
  }

  /** The watched paths and their readers (a snapshot). */
  paths(): [string, FileReader][] {
    return [...this.byPath];
  }

  // ---- changes ------------------------------------------------------------------------------

  /** The id of a new reader of identity `key`: the identity plus a generation. */
  nextReaderId(key: string): string {
    return `${key}/${++this.generation}`;
  }

  /** A new reader: the newest of its identity, at its path and inode. */
  add(r: FileReader): void {
    this.setInode(inodeKey(r.dev, r.ino), r);
    this.byPath.set(r.path, r);
    this.byId.set(r.id, r);
    this.byKey.set(r.key, r);
  }

  /** `path` holds `r`'s file (now, or again). */
  setPath(path: string, r: FileReader): void {
    this.byPath.set(path, r);
  }

  /** `path` no longer holds `r`'s file (if it was `r`'s at all). */
  unsetPath(path: string, r: FileReader): void {
    if (this.byPath.get(path) === r) this.byPath.delete(path);
  }

  /**
   * Commit `r`'s acknowledged offset under its identity — unless a newer reader took that identity
   * over (the file was truncated and rewritten with the same first line): then this offset is of
   * content that no longer exists.
   */
  commit(r: FileReader, offset: number, ahead?: Readonly<Record<string, number>>): void {
    if (this.byKey.get(r.key) !== r) return;
    this.positions.commit(r.key, offset, r.anchorAt(), ahead);
  }

  /** `r` stops reading for good: out of the inode and path indexes, its progress remembered. */
  retire(r: FileReader): void {
    this.removeFile(r);
    this.rememberRetired(r.fingerprint, this.progressOf(r));
  }

  /**
   * Retired `r` is acknowledged as far as it read: nothing of it is waited for any more. The
   * identity's entry goes with a deleted file, and with one gone from its inode fully read (after
   * the next rescan, see forgetGone).
   */
  drop(r: FileReader): void {
    if (this.byId.get(r.id) === r) this.byId.delete(r.id);
    if (this.byKey.get(r.key) === r) {
      this.byKey.delete(r.key);
      if (r.deleted) this.positions.forget(r.key);
      else if (this.byInode.get(inodeKey(r.dev, r.ino)) !== r && r.acked >= r.size) this.goneIds.add(r.key);
    }
  }

  /**
   * Forget closed `r`, no longer at any watched path. Returns true when nothing of it is waited
   * for any more (dropped); otherwise it is marked retired until its acknowledgements arrive.
   */
  untrack(r: FileReader): boolean {
    // Renamed while closed, it may be found again under another name after its entry is gone (a
    // rescan forgets the entries of files gone from every path): its progress stays known for a
    // while, or it would be read again from its start.
    if (r.readPos > 0 && !r.deleted)
      this.rememberRetired(r.fingerprint, { ...this.progressOf(r), vanished: true });
    this.removeFile(r);
    if (r.acked >= r.readPos && this.byId.get(r.id) === r) {
      this.byId.delete(r.id);
      if (this.byKey.get(r.key) === r) {
        this.byKey.delete(r.key);
        if (r.acked >= r.size) this.goneIds.add(r.key);
      }
      return true;
    }
    r.retired = true;
    return false;
  }

  /** After a rescan: forget the entries of identities gone from every path and not found again. */
  forgetGone(): void {
    if (this.goneIds.size === 0) return;
    const live = new Set<string>();
    for (const r of this.byInode.values()) live.add(r.key);
    for (const r of this.byId.values()) live.add(r.key);
    for (const id of this.goneIds) if (!live.has(id)) this.positions.forget(id);
    this.goneIds.clear();
  }

  // ---- retired progress ---------------------------------------------------------------------

  /** Progress of retired files and saved entries with fingerprint `fp` (the latest few). */
  retiredWith(fp: string): readonly RetiredProgress[] {
    return this.retiredFp.get(fp) ?? [];
  }

  hasRetired(fp: string): boolean {
    return this.retiredFp.has(fp);
  }

  /** A saved entry's progress, kept for a while for a copy of its content. */
  rememberSaved(fp: string, id: string, known: PositionEntry): void {
    if (known.anchor === undefined || known.anchorOffset === undefined || known.offset <= 0) return;
    this.rememberRetired(fp, {
      id,
      key: id,
      readPos: known.offset,
      acked: known.offset,
      anchor: known.anchor,
      anchorOffset: known.anchorOffset,
      at: this.now(),
    });
  }

  /** Forget retired progress older than RETIRED_MEMORY_MS. */
  pruneRetired(now: number): void {
    for (const [fp, list] of this.retiredFp) {
      const keep = list.filter((p) => now - p.at <= RETIRED_MEMORY_MS);
      if (keep.length === 0) this.retiredFp.delete(fp);
      else if (keep.length < list.length) this.retiredFp.set(fp, keep);
    }
  }

  private rememberRetired(fp: string, p: RetiredProgress): void {
    // Several retired files can share a fingerprint (a common banner line): keep the latest few,
    // each recognisable by its own anchor.
    const list = this.retiredFp.get(fp) ?? [];
    list.push(p);
    if (list.length > RETIRED_PER_FINGERPRINT) list.shift();
    this.retiredFp.set(fp, list);
  }

  /** Where reader `r` stands, to recognise its content later. */
  private progressOf(r: FileReader): RetiredProgress {
    return {
      id: r.id,
      key: r.key,
      readPos: r.readPos,
      acked: r.acked,
      anchor: r.anchorAt().hash,
      at: this.now(),
    };
  }

  private removeFile(r: FileReader): void {
    const key = inodeKey(r.dev, r.ino);
    if (this.byInode.get(key) === r) this.deleteInode(key, r);
    if (this.byPath.get(r.path) === r) this.byPath.delete(r.path);
  }

  private setInode(key: string, r: FileReader): void {
    const prev = this.byInode.get(key);
    if (prev !== undefined && prev !== r) this.deleteInode(key, prev);
    this.byInode.set(key, r);
    let set = this.byFingerprint.get(r.fingerprint);
    if (set === undefined) {
      set = new Set();
      this.byFingerprint.set(r.fingerprint, set);
    }
    set.add(r);
  }

  private deleteInode(key: string, r: FileReader): void {
    this.byInode.delete(key);
    const set = this.byFingerprint.get(r.fingerprint);
    if (set === undefined) return;
    set.delete(r);
    if (set.size === 0) this.byFingerprint.delete(r.fingerprint);
  }
}
