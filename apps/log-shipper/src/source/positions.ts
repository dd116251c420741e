// Acknowledged offsets, keyed by file identity (device/inode + fingerprint), with the path kept for
// people reading the file. Offsets only move when the sink reports an acknowledgement, so after a
// crash the shipper re-sends at most the unacknowledged tail and loses nothing. The file is written
// atomically (temp + fsync + rename) soon after an acknowledgement moved an offset — at the end of
// the turn when a destination waits for it to send its next batch, else within GROUP_COMMIT_MS —
// with every acknowledgement made meanwhile (group commit, `persist`: with several destinations
// one write can carry the acknowledgements of all; one write at a time, so at most a few per
// second), otherwise about once a second when something else changed (paths, pruning), and at
// shutdown.
// A corrupt file is set aside with a loud warning and the shipper starts fresh: it never
// crash-loops on its own state.
//
// On a memory-backed file system (tmpfs, ramfs: the pod's emptyDir with `medium: Memory`, where the
// manifests keep the state) the write is synchronous (writeFileAtomicSync, @sidecar/shared): it happens at most once
// per acknowledged batch, and the next batch waits for it anyway (pipeline.ts, AckListener.persisted).
// Through libuv's thread pool its seven system calls (open, write, fsync, close, rename, and the
// directory's open, fsync, close) were seven round trips — a thread woken, the loop woken again, a
// callback and a promise each — measured at several per cent of the shipper's CPU at 50k lines/s
// (PERFORMANCE.md); there they take microseconds and cannot hang. On any other file system
// (a disk, a network volume) an fsync can take long or hang: the write goes through the thread
// pool (one at a time), so the process keeps serving /healthz and /metrics, and a shutdown's
// deadline still ends it (pipeline.ts persisted).
import { constants } from "node:fs";
import { dirname } from "node:path";
import type { Log as Logger } from "@sidecar/shared";
import {
  fileKind,
  fsAsync,
  isoTime,
  onMemoryFs,
  writeFileAtomic,
  writeFileAtomicSync,
} from "@sidecar/shared";

export interface PositionEntry {
  /** Identity key: `${dev}:${ino}:${fingerprint}`. */
  id: string;
  /** Last path the file was seen at (for people; identity does not depend on it). */
  path: string;
  fingerprint: string;
  /** Acknowledged offset: every line before it was delivered (or dropped for good). */
  offset: number;
  /** Last time the file was seen on disk (ms since epoch); drives pruning. */
  seenAt: number;
  /**
   * Where the content stood when last read (≥ offset), and a hash of the ≤ 1 KiB before it
   * (fingerprint.ts): a file is only resumed or taken for a copy when its bytes there match.
   * Absent in files written by older versions (then only the fingerprint and size are checked).
   */
  anchorOffset?: number;
  anchor?: string;
  /**
   * With several destinations: those that acknowledged more of the file than `offset` (the least
   * any destination has), by destination name. Reading resumes at `offset`; these get nothing
   * up to their own offset again. Absent with one destination.
   */
  ahead?: Record<string, number>;
}

export interface Anchor {
  offset: number;
  hash: string;
}

interface PositionsFileV1 {
  version: 1;
  savedAt: string;
  files: PositionEntry[];
}

export interface PositionsOptions {
  file: string;
  logger: Logger;
  /** Entries of files not seen for this long are pruned (default 24 h). */
  retentionMs?: number;
  /** At most this many entries are kept (oldest seen dropped first). */
  maxEntries?: number;
  now?: () => number;
  /** Called after every save attempt (metrics). */
  onSave?: (ok: boolean) => void;
  /**
   * Called when entries within the retention were dropped because more than `maxEntries` files
   * are known (MAX_KNOWN_FILES): those files are read again from their start after a restart.
   */
  onEvict?: (count: number) => void;
  /**
   * Write synchronously (true) or through the thread pool (false). Default: synchronously only
   * when the file's directory is on a memory-backed file system (see the header).
   */
  syncWrites?: boolean;
  /** While auto-saving, a commit is written at the latest this long after (default GROUP_COMMIT_MS). */
  groupCommitMs?: number;
}

export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/**
 * While auto-saving, a commit is written at the latest this long after it was made (sooner when a
 * destination waits for it: Positions.persist). Long enough to take the acknowledgements of one
 * batch from every destination into one write (they arrived 8–50 ms apart at 50k lines/s), short
 * enough that a kill -9 rarely finds an acknowledgement not yet written.
 */
export const GROUP_COMMIT_MS = 50;

interface Group {
  readonly promise: Promise<boolean>;
  readonly resolve: (ok: Promise<boolean>) => void;
  timer: NodeJS.Timeout | null;
  immediate: NodeJS.Immediate | null;
}
const DEFAULT_MAX_ENTRIES = 10_000;

export class Positions {
  private readonly entries = new EntryMap();
  private dirty = false;
  /** The auto-save period (startAutoSave); null when not auto-saving. */
  private autoSaveMs: number | null = null;
  /** The auto-save armed by a change (markDirty): no timer at all while nothing changed. */
  private timer: NodeJS.Timeout | null = null;
  /** The group commit being gathered (persist): the write every caller since it began waits for. */
  private group: Group | null = null;
  private readonly groupCommitMs: number;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly maxEntries: number;
  /** Set when the file on disk was corrupt and set aside (path of the copy). */
  corruptSetAside: string | null = null;
  /** The error code of the last write when it failed (ENOSPC, EROFS …); null once one succeeds. */
  lastSaveError: string | null = null;

  /** Decided at the first save (the directory exists by then): see PositionsOptions.syncWrites. */
  private sync: boolean | undefined;
  /** The asynchronous write in progress (one at a time). */
  private saving: Promise<void> | null = null;

  constructor(private readonly opts: PositionsOptions) {
    this.now = opts.now ?? Date.now;
    this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.groupCommitMs = opts.groupCommitMs ?? GROUP_COMMIT_MS;
  }

  /**
   * Load the file. Missing = fresh start. Anything else that keeps it from being used — unreadable
   * (EACCES, EISDIR, EIO), not JSON, not ours — is set aside when possible, logged loudly, and the
   * shipper starts fresh: like Promtail/Fluent Bit it prefers re-sending (duplicates) to a crash
   * loop that ships nothing. Never throws.
   */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readPositionsText(this.opts.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      await this.setAside(`cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
      return;
    }
    const parsed = parse(text);
    if (parsed === null) {
      await this.setAside("is corrupt", undefined);
      return;
    }
    for (const e of parsed.files) this.entries.set(e.id, e);
    this.opts.logger.info({ positionsFile: this.opts.file, files: this.entries.size }, "positions loaded");
  }

  private async setAside(problem: string, err: unknown): Promise<void> {
    const aside = `${this.opts.file}.corrupt-${isoTime(this.now()).replace(/[:.]/g, "-")}`;
    try {
      await fsAsync.rename(this.opts.file, aside);
      this.corruptSetAside = aside;
      this.opts.logger.error(
        { err, positionsFile: this.opts.file, setAsideAs: aside },
        `positions file ${problem}; set it aside and starting fresh — files will be read from the start, expect duplicates`,
      );
    } catch (renameErr) {
      // Could not move it either (read-only directory, a directory in the way): start fresh anyway.
      // The next save replaces it when it can; until then every failed save is logged.
      this.opts.logger.error(
        { err, renameErr, positionsFile: this.opts.file },
        `positions file ${problem} and cannot be set aside; starting fresh without it — files will be read from the start, expect duplicates`,
      );
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): PositionEntry | undefined {
    return this.entries.get(id);
  }

  /** The entry with this fingerprint and the highest offset (a copy of a known file), if any. */
  findByFingerprint(fingerprint: string, exceptId?: string): PositionEntry | undefined {
    let best: PositionEntry | undefined;
    for (const e of this.entries.withFingerprint(fingerprint)) {
      if (e.id === exceptId) continue;
      if (best === undefined || e.offset > best.offset) best = e;
    }
    return best;
  }

  /** Every entry with this fingerprint except `exceptId` (candidates for the original of a copy). */
  withFingerprint(fingerprint: string, exceptId?: string): PositionEntry[] {
    const out: PositionEntry[] = [];
    for (const e of this.entries.withFingerprint(fingerprint)) if (e.id !== exceptId) out.push(e);
    return out;
  }

  /** Make sure `id` has an entry (starting at `offset` when new) and mark it seen at `path`. */
  track(id: string, fingerprint: string, path: string, offset: number, anchor?: Anchor): PositionEntry {
    let e = this.entries.get(id);
    if (e === undefined) {
      e = { id, path, fingerprint, offset, seenAt: this.now() };
      if (anchor !== undefined) setAnchor(e, anchor);
      this.entries.set(id, e);
      this.markDirty();
    } else {
      this.touch(id, path);
    }
    return e;
  }

  /** The file is still there (at `path`): keeps its entry from being pruned. */
  touch(id: string, path: string): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    if (e.path !== path) {
      e.path = path;
      this.markDirty();
    }
    const now = this.now();
    // Persisting seenAt only matters at the scale of the retention; avoid a write per touch.
    if (now - e.seenAt > 60_000) this.markDirty();
    e.seenAt = now;
  }

  /**
   * Move the acknowledged offset forward (never backward), with the anchor of where reading stands
   * now (at or past `offset`) when the caller knows it.
   */
  commit(id: string, offset: number, anchor?: Anchor, ahead?: Readonly<Record<string, number>>): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    const aheadMoved = ahead !== undefined && !sameAhead(e.ahead, ahead, Math.max(offset, e.offset));
    if (offset <= e.offset && !aheadMoved) return;
    if (offset > e.offset) e.offset = offset;
    // The anchor proves the content up to where it was read: it must cover the `ahead` offsets
    // too (they are trusted after a restart only up to the anchor), so it moves with them.
    if (anchor !== undefined && anchor.offset >= e.offset) setAnchor(e, anchor);
    if (ahead !== undefined) setAhead(e, ahead);
    else if (e.ahead !== undefined) setAhead(e, e.ahead);
    // While auto-saving, an acknowledgement is written out within GROUP_COMMIT_MS (sooner when a
    // destination waits for it to send its next batch: persist), with every other one made
    // meanwhile: after a kill -9 only the batch in flight — or just acknowledged — comes again,
    // not everything acknowledged since the last periodic save. That write is the save, so the
    // auto-save is not armed for it (a failed one arms it: save's retry).
    this.dirty = true;
    if (this.autoSaveMs !== null) void this.persist(this.groupCommitMs);
  }

  /**
   * Group commit: resolves once everything committed before the call is on disk (true), or the
   * write failed (false: logged, counted, retried by the next save). Every call until the write
   * starts shares it: it starts once the current turn of the event loop has done its I/O
   * callbacks (setImmediate) — or, with `withinMs`, at the latest that much later (a write nobody
   * waits for yet). With several destinations the acknowledgements of one shared batch arrive
   * tens of milliseconds apart; they cost one write when no destination needs its own written
   * sooner (pipeline.ts: only a destination about to send its next batch waits). A call made while
   * a write is in progress waits for the next write (save: one at a time, a snapshot taken when it
   * starts), so no caller is told its acknowledgement is durable before a write containing it
   * completed.
   */
  persist(withinMs = 0): Promise<boolean> {
    let g = this.group;
    if (g === null) {
      let resolve: (ok: Promise<boolean>) => void = () => {};
      const promise = new Promise<boolean>((r) => {
        resolve = r;
      });
      g = { promise, resolve, timer: null, immediate: null };
      this.group = g;
    }
    const group = g;
    if (withinMs <= 0) {
      if (group.immediate === null) {
        if (group.timer !== null) clearTimeout(group.timer);
        group.timer = null;
        group.immediate = setImmediate(() => this.writeGroup(group));
      }
    } else if (group.timer === null && group.immediate === null) {
      group.timer = setTimeout(() => this.writeGroup(group), withinMs);
      // Nobody waits for this one yet; shutdown writes positions itself (save(true)).
      group.timer.unref();
    }
    return group.promise;
  }

  private writeGroup(group: Group): void {
    // Let go before the write takes its snapshot: a call from now on waits for a later write.
    if (this.group === group) this.group = null;
    group.resolve(this.save());
  }

  /** The file is gone and fully read: its entry is of no further use. */
  forget(id: string): void {
    if (this.entries.delete(id)) this.markDirty();
  }

  /** Drop entries not seen within the retention, and the oldest beyond maxEntries. */
  prune(): number {
    const cutoff = this.now() - this.retentionMs;
    let removed = 0;
    for (const [id, e] of this.entries) {
      if (e.seenAt < cutoff) {
        this.entries.delete(id);
        removed++;
      }
    }
    if (this.entries.size > this.maxEntries) {
      const oldest = [...this.entries.values()].sort((a, b) => a.seenAt - b.seenAt);
      const evicted = oldest.slice(0, this.entries.size - this.maxEntries);
      for (const e of evicted) {
        this.entries.delete(e.id);
        removed++;
      }
      this.opts.onEvict?.(evicted.length);
    }
    if (removed > 0) this.markDirty();
    return removed;
  }

  /**
   * Write the file if anything changed (synchronously: see the header). Resolves true when
   * what is in memory is on disk (written now or before), false when the write failed (logged,
   * counted; retried by the next save).
   */
  async save(force = false): Promise<boolean> {
    while (this.saving) await this.saving;
    if (!this.dirty && !force) return this.lastSaveError === null;
    this.prune();
    this.dirty = false;
    const doc: PositionsFileV1 = {
      version: 1,
      savedAt: isoTime(this.now()),
      files: [...this.entries.values()],
    };
    const text = `${JSON.stringify(doc, null, 1)}\n`;
    try {
      if (this.writesSynchronously) {
        writeFileAtomicSync(this.opts.file, text);
      } else {
        let failed: { err: unknown } | undefined;
        this.saving = writeFileAtomic(this.opts.file, text).catch((err: unknown) => {
          failed = { err };
        });
        await this.saving;
        this.saving = null;
        if (failed !== undefined) throw failed.err;
      }
      this.lastSaveError = null;
      this.opts.onSave?.(true);
    } catch (err) {
      this.markDirty();
      this.lastSaveError = (err as NodeJS.ErrnoException).code ?? String(err);
      this.opts.onSave?.(false);
      this.opts.logger.error({ err, positionsFile: this.opts.file }, "cannot save positions; will retry");
    }
    return this.lastSaveError === null;
  }

  /** Whether saves write synchronously (memory-backed directory, or PositionsOptions.syncWrites). */
  get writesSynchronously(): boolean {
    this.sync ??= this.opts.syncWrites ?? onMemoryFs(dirname(this.opts.file));
    return this.sync;
  }

  /**
   * Save within `intervalMs` of a change (and retry a failed save as often). The timer is armed
   * by the change, not kept running: a shipper whose files are quiet has nothing to wake for.
   */
  startAutoSave(intervalMs: number): void {
    if (this.autoSaveMs !== null) return;
    this.autoSaveMs = intervalMs;
    if (this.dirty) this.armAutoSave();
  }

  stopAutoSave(): void {
    this.autoSaveMs = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Something to write changed: while auto-saving, a save is due within the period. */
  private markDirty(): void {
    this.dirty = true;
    if (this.autoSaveMs !== null && this.timer === null) this.armAutoSave();
  }

  private armAutoSave(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.save();
    }, this.autoSaveMs ?? 0);
    this.timer.unref();
  }

  /** A snapshot for tests and the summary. */
  entriesSnapshot(): PositionEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
}

function setAnchor(e: PositionEntry, a: Anchor): void {
  e.anchorOffset = a.offset;
  e.anchor = a.hash;
}

/** Parse and validate a positions document; null when it is not one we wrote. */
function parse(text: string): PositionsFileV1 | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof doc !== "object" || doc === null) return null;
  const d = doc as Partial<PositionsFileV1>;
  if (d.version !== 1 || !Array.isArray(d.files)) return null;
  const files: PositionEntry[] = [];
  for (const f of d.files as unknown[]) {
    if (typeof f !== "object" || f === null) return null;
    const e = f as Partial<PositionEntry>;
    if (
      typeof e.id !== "string" ||
      typeof e.path !== "string" ||
      typeof e.fingerprint !== "string" ||
      typeof e.offset !== "number" ||
      !Number.isSafeInteger(e.offset) ||
      e.offset < 0
    ) {
      return null;
    }
    const entry: PositionEntry = {
      id: e.id,
      path: e.path,
      fingerprint: e.fingerprint,
      offset: e.offset,
      seenAt: typeof e.seenAt === "number" ? e.seenAt : Date.now(),
    };
    if (
      typeof e.anchor === "string" &&
      typeof e.anchorOffset === "number" &&
      Number.isSafeInteger(e.anchorOffset) &&
      e.anchorOffset >= e.offset
    ) {
      setAnchor(entry, { offset: e.anchorOffset, hash: e.anchor });
    }
    if (typeof e.ahead === "object" && e.ahead !== null) {
      const ahead: Record<string, number> = {};
      for (const [k, v] of Object.entries(e.ahead as Record<string, unknown>)) {
        if (typeof v === "number" && Number.isSafeInteger(v)) ahead[k] = v;
      }
      setAhead(entry, ahead);
    }
    files.push(entry);
  }
  return { version: 1, savedAt: typeof d.savedAt === "string" ? d.savedAt : "", files };
}

/**
 * The entries by id, also indexed by fingerprint: looking for the original of a new file is then
 * O(entries with its fingerprint), not O(all entries) — thousands of files appearing at once made
 * that quadratic.
 */
class EntryMap extends Map<string, PositionEntry> {
  private readonly byFp = new Map<string, Set<PositionEntry>>();

  override set(id: string, e: PositionEntry): this {
    const prev = super.get(id);
    if (prev !== undefined && prev !== e) this.unindex(prev);
    super.set(id, e);
    let set = this.byFp.get(e.fingerprint);
    if (set === undefined) {
      set = new Set();
      this.byFp.set(e.fingerprint, set);
    }
    set.add(e);
    return this;
  }

  override delete(id: string): boolean {
    const e = super.get(id);
    if (e === undefined) return false;
    this.unindex(e);
    return super.delete(id);
  }

  override clear(): void {
    this.byFp.clear();
    super.clear();
  }

  withFingerprint(fp: string): Iterable<PositionEntry> {
    return this.byFp.get(fp) ?? [];
  }

  private unindex(e: PositionEntry): void {
    const set = this.byFp.get(e.fingerprint);
    if (set === undefined) return;
    set.delete(e);
    if (set.size === 0) this.byFp.delete(e.fingerprint);
  }
}

/**
 * The file's text. Opened with O_NONBLOCK: a FIFO in its place (main.ts refuses one at start; this
 * covers one that appears after the check) must not hold a threadpool thread and the start for
 * good. Anything but a regular file is an error with a code, like EISDIR for a directory.
 */
async function readPositionsText(path: string): Promise<string> {
  const fd = await fsAsync.open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fsAsync.fstat(fd);
    if (!st.isFile()) {
      const err = new Error(`${path} is ${fileKind(st)}`) as NodeJS.ErrnoException;
      err.code = st.isDirectory() ? "EISDIR" : `not a regular file: ${fileKind(st)}`;
      throw err;
    }
    return await fsAsync.readFdUtf8(fd);
  } finally {
    await fsAsync.close(fd);
  }
}

/** Keep only destinations further on than the entry's offset (none: no `ahead` at all). */
function setAhead(e: PositionEntry, ahead: Readonly<Record<string, number>>): void {
  let kept: Record<string, number> | undefined;
  for (const [k, v] of Object.entries(ahead)) {
    if (v > e.offset) {
      kept ??= {};
      kept[k] = v;
    }
  }
  if (kept === undefined) delete e.ahead;
  else e.ahead = kept;
}

function sameAhead(
  a: Readonly<Record<string, number>> | undefined,
  b: Readonly<Record<string, number>>,
  offset: number,
): boolean {
  const ka = Object.entries(a ?? {}).filter(([, v]) => v > offset);
  const kb = Object.entries(b).filter(([, v]) => v > offset);
  if (ka.length !== kb.length) return false;
  for (const [k, v] of ka) if (b[k] !== v) return false;
  return true;
}
