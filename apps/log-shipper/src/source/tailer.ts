// The source side's coordinator and entry point (app.ts): turns discovery's hints into file
// identities and readers, and decides what each file is. Its other concerns have modules of their
// own: the identity registry (file-registry.ts: readers by inode, fingerprint, path, id and
// identity, and what is remembered of gone ones), copy recognition (originals.ts: which known
// content a new file continues), copy holding (copy-holding.ts: copytruncate copies held until
// their original is retired), the open-file bound (open-files.ts) and the read loop
// (read-loop.ts: the one serial loop every step below runs on, the ready queue, chunk reads,
// back-pressure). What stays here: what a path holds now (examine, identify, createReader),
// rescans and polls of known files, and reading everything to its end at shutdown.
//
// Identity decisions (see fingerprint.ts for what a fingerprint is):
//   same inode, same fingerprint, new path  → renamed (rotation): keeps its reader and offset
//   same inode, other fingerprint / smaller → truncated or rewritten in place: restart at 0
//   new inode, known identity in positions  → resume at the acknowledged offset (restart)
//   new inode, fingerprint of a known file  → a copy (copytruncate): start where the original's
//                                              reading stood
//   otherwise                               → a new file, read from its start
import type { Stats } from "node:fs";
import type { Log as Logger } from "@sidecar/shared";
import { fsAsync } from "@sidecar/shared";
import type { AckListener, LineSink } from "../contracts.js";
import { CopyHolding } from "./copy-holding.js";
import { FileEvents, type ResyncReason } from "./file-events.js";
import { FileRegistry } from "./file-registry.js";
import {
  ANCHOR_BYTES,
  FINGERPRINT_BYTES,
  fileId,
  fingerprintOf,
  inodeKey,
  isLineStart,
  readAnchor,
  readFingerprint,
  readHead,
} from "./fingerprint.js";
import { OpenFileBound } from "./open-files.js";
import { Originals } from "./originals.js";
import { displayPath, fsPath, statQuiet } from "./path-bytes.js";
import type { PositionEntry, Positions } from "./positions.js";
import { ReadLoop } from "./read-loop.js";
import { FileReader } from "./reader.js";
import type { SourceMetrics, SourceStats } from "./source-metrics.js";

export type PathEvent = "add" | "change" | "unlink";

export interface Opener {
  /** Open a path for reading if it is allowed (see Discovery.openAllowed). */
  openAllowed(
    path: string,
  ): Promise<{ fd: number; realPath: string; stats?: import("node:fs").Stats } | null>;
}

export interface TailerOptions {
  sink: LineSink;
  positions: Positions;
  opener: Opener;
  logger: Logger;
  metrics?: SourceMetrics;
  maxLineBytes: number;
  /** Read chunk size (default 1 MiB, at least what one maximal line needs). */
  chunkBytes?: number;
  pollIntervalMs: number;
  /** A rotated file that has not grown for this long is drained: partial line shipped, fd closed. */
  rotatedIdleMs?: number;
  /** An active-path file that has not grown for this long has its fd closed (reopened on change). */
  idleCloseMs?: number;
  /**
   * Quiet files are polled this often (default QUIET_POLL_MS), and while nothing is open and no
   * path waits, the poll itself comes only this often.
   */
  quietPollMs?: number;
  /**
   * At most this many files open at once (default 1024): quiet, fully read files are closed to
   * make room (reopened on change); when none can be, a new file waits until one can.
   */
  maxOpenFiles?: number;
  now?: () => number;
}

/**
 * A file that has not grown for this long is quiet: polled every QUIET_POLL_MS, not every tick.
 * While no file is open and no path waits, the poll itself comes only every QUIET_POLL_MS (its
 * quiet rounds); fs.watch hints and the rescans find what changes meanwhile, as they do for any
 * closed file.
 */
const QUIET_AFTER_MS = 10_000;
const QUIET_POLL_MS = 5_000;
/**
 * Known paths in directories that did not change are stat'ed by each rescan this many at a time,
 * in turn: a safety net for a file's growth whose fs.watch event was lost (inotify overflow),
 * at a cost that does not grow with the number of quiet files.
 */
const RESCAN_STAT_SLICE = 256;
/**
 * A poll tick looks at most at this many open files; a round over more is spread over several
 * ticks (a thousand files that just appeared would otherwise be stat'ed twice each per tick).
 */
const POLL_SLICE = 64;
/**
 * identify() reads this much of a file's start (its fingerprint is in there): a smaller new file
 * is then read whole from those bytes, without reading them again (see examine).
 */
const HEAD_BYTES = 64 * 1024;

export class Tailer implements AckListener {
  private readonly registry: FileRegistry;
  private readonly copies: CopyHolding;
  private readonly report: FileEvents;
  private readonly originals: Originals;
  /**
   * Paths too short to fingerprint yet (an empty log file, a first line not yet ended), with what
   * a stat() said of each when it was found so (see waitingChanged).
   */
  private readonly waiting = new Map<string, string>();
  private readonly events = new Map<string, PathEvent>();
  private pendingScan: ReadonlySet<string> | null = null;
  /** Of pendingScan, the paths whose directory changed (undefined: all of them). */
  private pendingChanged: Set<string> | undefined;
  /** Where the next rescan's slice of unchanged paths to stat starts (see reconcile). */
  private sliceStart = 0;
  private readonly loop: ReadLoop;
  private readonly scratch = Buffer.allocUnsafe(FINGERPRINT_BYTES);
  private readonly anchorScratch = Buffer.allocUnsafe(ANCHOR_BYTES);
  private lastQuietPoll = 0;
  /** New readers of content nothing else shares (read as soon as found: see examine). */
  private readonly fresh = new WeakSet<FileReader>();
  /** The first bytes identify() read into the loop's `buf` (valid until anything else uses it). */
  private head: { fd: number; bytes: number } | null = null;
  private readonly now: () => number;
  private readonly rotatedIdleMs: number;
  private readonly quietPollMs: number;
  private readonly idleCloseMs: number;
  private readonly openFiles: OpenFileBound;
  /** Open files still to be looked at in the current poll round (see poll). */
  private pollQueue: FileReader[] = [];
  /** Closed files off every watched path with lines still in flight: forgotten once acknowledged. */
  private readonly leaving = new Set<FileReader>();

  constructor(private readonly opts: TailerOptions) {
    this.now = opts.now ?? Date.now;
    this.registry = new FileRegistry(opts.positions, this.now);
    this.report = new FileEvents(opts.logger, opts.metrics);
    this.originals = new Originals({
      registry: this.registry,
      positions: opts.positions,
      restart: (r) => this.restartTruncated(r),
      anchorScratch: this.anchorScratch,
      scratch: this.scratch,
    });
    this.copies = new CopyHolding({
      registry: this.registry,
      positions: opts.positions,
      queue: { enqueue: (r) => this.loop.enqueue(r), unqueue: (r) => this.loop.unqueue(r) },
      events: this.report,
      anchorScratch: this.anchorScratch,
      scratch: this.scratch,
    });
    this.rotatedIdleMs = opts.rotatedIdleMs ?? 2000;
    this.quietPollMs = opts.quietPollMs ?? QUIET_POLL_MS;
    this.idleCloseMs = opts.idleCloseMs ?? 60 * 1000;
    this.openFiles = new OpenFileBound({
      max: opts.maxOpenFiles ?? 1024,
      logger: opts.logger,
      ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
      holdsCopies: (r) => this.copies.isHolding(r),
      // A file opened: polled every tick again (the loop exists by the time anything opens).
      onOpen: () => this.loop.pollSoon(),
    });
    this.loop = new ReadLoop({
      sink: opts.sink,
      steps: {
        housekeepingDue: () =>
          this.events.size > 0 || this.copies.releasePending || this.pendingScan !== null,
        housekeep: () => this.housekeep(),
        poll: () => this.poll(),
        pollNeeded: () =>
          this.openFiles.open.n > 0 ||
          this.waiting.size > 0 ||
          this.pollQueue.length > 0 ||
          this.openFiles.hasWaiting,
        finish: () => this.flushRotatedPartials(),
        restart: (r, reason) => this.restartTruncated(r, reason),
        chunkRead: () => this.openFiles.chunkRead(),
      },
      copies: this.copies,
      logger: opts.logger,
      ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
      maxLineBytes: opts.maxLineBytes,
      ...(opts.chunkBytes !== undefined ? { chunkBytes: opts.chunkBytes } : {}),
      pollIntervalMs: opts.pollIntervalMs,
      quietPollIntervalMs: this.quietPollMs,
      now: this.now,
      scratch: this.scratch,
    });
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** Discovery hint: something happened at `path`. */
  notePath(path: string, event: PathEvent): void {
    const prev = this.events.get(path);
    // A write to a file being read — the common event, one per write of the app — hints its
    // reader right here, which is all examine() would do with it: no loop wake-up, no
    // housekeeping step and its promises per write. Only with no other event of that path pending
    // (a rename or unlink first decides what the path is now).
    if (event === "change" && prev === undefined) {
      const current = this.registry.atPath(path);
      if (current !== undefined && current.fd !== null) {
        this.loop.hinted(current);
        return;
      }
    }
    if (prev === undefined || prev === "change") this.events.set(path, event);
    this.loop.wake();
  }

  /**
   * Discovery finished a rescan: these matching paths exist now; a known path outside `changed`
   * (when given) still names the same inode — only its size may have changed.
   */
  noteScan(paths: ReadonlySet<string>, changed?: ReadonlySet<string>): void {
    // A rescan not reconciled yet: what changed in it has changed for this one too.
    if (this.pendingScan === null) this.pendingChanged = changed === undefined ? undefined : new Set(changed);
    else if (changed === undefined) this.pendingChanged = undefined;
    else if (this.pendingChanged !== undefined) for (const p of changed) this.pendingChanged.add(p);
    this.pendingScan = paths;
    this.loop.wake();
  }

  /** AckListener: the sink says everything of `fileId` up to `offset` is done. */
  acknowledged(id: string, offset: number, ahead?: Readonly<Record<string, number>>): void {
    const r = this.registry.withId(id);
    if (r === undefined) return; // a reader fully acknowledged and forgotten: nothing to move
    // An acknowledgement past what this reader has read cannot be its own (defensive).
    if (offset > r.readPos && !r.retired) return;
    if (r.ackJump !== null && offset >= r.ackJump.from) {
      offset = Math.max(offset, r.ackJump.to);
      r.ackJump = null;
    }
    if (offset > r.acked) r.acked = offset;
    this.registry.commit(r, offset, ahead);
    if (r.retired && r.acked >= r.readPos) this.dropRetired(r);
    this.copies.acknowledged(id, offset);
    this.settleLeaving();
  }

  /**
   * Forget the `leaving` readers (see `untrack`) that nothing of is in flight any more, unless
   * found again meanwhile. A copy's lines can be acknowledged through its original (CopyHolding
   * passes them on, also when it rechecks, swaps or releases), with no acknowledgement of its own
   * to announce it: so every reader in the set is looked at, after each acknowledgement and each
   * rescan. The set is empty but for files renamed off every path while their lines are in flight.
   */
  private settleLeaving(): void {
    if (this.leaving.size === 0) return;
    for (const r of [...this.leaving]) {
      if (r.acked < r.readPos) continue;
      this.leaving.delete(r);
      if (r.fd !== null || r.retired) continue;
      if (this.registry.atPath(r.path) !== r && this.registry.atInode(inodeKey(r.dev, r.ino)) === r)
        this.untrack(r);
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  start(): void {
    this.loop.start();
  }

  /**
   * Read every open file to its current end (rotated files including their last partial line —
   * their writer is gone), within the deadline. Returns true when everything was read.
   */
  async readToEnd(deadline: number): Promise<boolean> {
    this.loop.startFinalFlush();
    for (const r of this.registry.tracked()) {
      if (r.fd === null) continue;
      r.atEof = true;
      this.loop.enqueue(r);
    }
    return this.loop.whenIdle(deadline);
  }

  /** Stop the loop and close every file. */
  async close(): Promise<void> {
    await this.loop.stop();
    for (const r of this.registry.tracked()) await r.closeFd();
    for (const r of this.registry.awaitingAcks()) await r.closeFd();
    this.loop.resolveIdle();
  }

  /** Bytes on disk not yet acknowledged, over every tracked file. */
  get unacknowledgedBytes(): number {
    let total = 0;
    for (const r of this.registry.tracked()) total += r.lagBytes;
    return total;
  }

  stats(): SourceStats {
    let open = 0;
    const lag: { path: string; bytes: number }[] = [];
    for (const r of this.registry.tracked()) {
      if (r.fd !== null) open++;
      lag.push({ path: displayPath(r.path), bytes: r.lagBytes });
    }
    return { filesWatched: this.registry.trackedCount, filesOpen: open, lag, readPaused: this.loop.paused };
  }

  /** Tracked files (for tests and the shutdown summary). */
  files(): { id: string; path: string; readPos: number; acked: number; size: number; open: boolean }[] {
    return [...this.registry.tracked()].map((r) => ({
      id: r.id,
      path: r.path,
      readPos: r.readPos,
      acked: r.acked,
      size: r.size,
      open: r.fd !== null,
    }));
  }

  /** True while reading waits for acknowledgements. */
  get paused(): boolean {
    return this.loop.paused;
  }

  /** Running totals for the periodic summary line (the metrics hold the same counts). */
  get totals(): Readonly<{ lines: number; bytes: number; truncated: number }> {
    return this.loop.totals;
  }

  // ---- housekeeping (a step of the read loop) --------------------------------------------------

  /** Path hints, then copies released by retired originals, then a rescan's listing. */
  private async housekeep(): Promise<void> {
    if (this.events.size > 0) {
      const batch = [...this.events];
      this.events.clear();
      for (const [path, ev] of batch) {
        await this.examine(path, ev);
        await this.loop.yieldToReads();
      }
      return;
    }
    if (this.copies.releasePending) {
      await this.copies.releaseRetired();
      return;
    }
    if (this.pendingScan !== null) {
      const scan = this.pendingScan;
      const changed = this.pendingChanged;
      this.pendingScan = null;
      this.pendingChanged = undefined;
      await this.reconcile(scan, changed);
    }
  }

  // ---- identity -----------------------------------------------------------------------------

  /** Work out what is at `path` now and update readers accordingly. */
  private async examine(path: string, ev: PathEvent): Promise<void> {
    const current = this.registry.atPath(path);
    if (ev === "change" && current !== undefined && current.fd !== null) {
      this.loop.hinted(current);
      return;
    }
    if (ev === "add" && (await this.renamedOpenFile(path, current))) return;
    if ((current === undefined || current.fd === null) && !(await this.openFiles.roomFor(path))) return;
    const opened = await this.opts.opener.openAllowed(path);
    if (opened === null) {
      this.waiting.delete(path);
      if (current !== undefined) await this.pathGone(path, current);
      return;
    }
    const { fd } = opened;
    let used = false;
    try {
      used = await this.identify(path, fd, current, opened.stats);
    } finally {
      if (!used) await fsAsync.close(fd).catch(() => {});
    }
    const head = this.head;
    this.head = null;
    // A new file is read right away: thousands of files appearing at once are then read as they
    // are found — each fully read and closable at MAX_OPEN_FILES — instead of all being opened
    // first while reads wait behind the whole burst. Only content nothing else shares (no saved
    // entry, no other file of its fingerprint): whether a file is a copy of another, or has a copy
    // that shipped some of its lines already (after a restart), is decided with every file of a
    // listing found before either is read on.
    const r = this.registry.atPath(path);
    if (
      used &&
      r !== undefined &&
      this.fresh.has(r) &&
      r.lastReadAt === 0 &&
      r.queued &&
      this.registry.countWithFingerprint(r.fingerprint) === 1 &&
      !this.registry.hasRetired(r.fingerprint) &&
      this.opts.positions.withFingerprint(r.fingerprint, r.key).length === 0 &&
      this.opts.sink.canAccept()
    ) {
      this.fresh.delete(r);
      this.loop.takeQueued(r);
      // All of a file smaller than HEAD_BYTES is in `buf` already.
      await this.loop.read(r, head?.fd === r.fd && head.bytes < HEAD_BYTES ? head.bytes : undefined);
    }
  }

  /** Returns true when `fd` was handed to a reader (else the caller closes it). */
  private async identify(
    path: string,
    fd: number,
    current: FileReader | undefined,
    stats?: import("node:fs").Stats,
  ): Promise<boolean> {
    const st = stats ?? (await fsAsync.fstat(fd));
    const key = inodeKey(st.dev, st.ino);
    this.head = null;
    const headBytes = await readHead(fd, this.loop.buf.subarray(0, HEAD_BYTES));
    const fp = fingerprintOf(this.loop.buf.subarray(0, headBytes), headBytes);
    this.head = { fd, bytes: headBytes };
    const existing = this.registry.atInode(key);
    // A reader whose fd is closed (idle, rotated) does not keep its inode alive: the number may
    // now be another file's. Content with another first line is such a file (or the old one
    // rewritten in place: nothing tells the two apart), judged like any new file — maybe a
    // copytruncate copy whose original was truncated already (model seed 5000013). A copy that
    // begins with the same banner has the same fingerprint: only the bytes before where the
    // reading stands tell.
    let replaced = false;
    if (existing !== undefined && existing.fd === null) {
      if (fp !== existing.fingerprint) replaced = true;
      else if (existing.readPos > 0) {
        const bytes = await readAnchor(fd, existing.readPos, this.anchorScratch).catch(() => null);
        replaced = bytes === null || !existing.tailEquals(bytes);
      }
    }
    if (existing !== undefined && fp === existing.fingerprint && !replaced) {
      let used = false;
      if (existing.fd === null) {
        existing.fd = fd;
        existing.atEof = true;
        used = true;
      }
      if (!(await this.moved(existing, path, current, key))) return used;
      this.waiting.delete(path);
      existing.noteSize(st.size);
      this.loop.enqueue(existing);
      return used;
    }
    if (existing !== undefined) {
      // Same inode, different content: truncated and rewritten in place, or the inode was reused.
      this.report.event(
        "truncated",
        { path, id: existing.id, previousOffset: existing.readPos, size: st.size },
        "file truncated or replaced; reading it from the start",
      );
      this.retire(existing);
    }
    if (fp === null) {
      this.waiting.set(path, waitSignature(st));
      this.loop.pollSoon();
      if (current !== undefined && current !== existing) await this.pathGone(path, current);
      return false;
    }
    this.waiting.delete(path);
    if (current !== undefined && current !== existing) await this.pathGone(path, current);
    // A file replaced while its reader was closed is judged like any new file (maybe a copy of one
    // already read); one whose content changed under an open reader was truncated in place.
    await this.createReader(
      path,
      fd,
      Number(st.dev),
      Number(st.ino),
      st.size,
      fp,
      existing !== undefined && !replaced,
    );
    return true;
  }

  /**
   * `existing`'s file was found at `path`: renamed there (rotation) — unless it is still at its
   * old path too (a hard link, an allowed symlink), then false and nothing changes.
   */
  private async moved(
    existing: FileReader,
    path: string,
    current: FileReader | undefined,
    key: string,
  ): Promise<boolean> {
    if (existing.path === path) return true;
    const old = existing.path;
    // A second name (hard link or allowed symlink) for a file already tailed.
    if (this.registry.atPath(old) === existing && this.pathHoldsInode(old, key)) return false;
    this.registry.unsetPath(old, existing);
    if (current !== undefined && current !== existing) await this.pathGone(path, current);
    existing.path = path;
    existing.rotated = existing.rotated || path !== existing.firstPath;
    this.registry.setPath(path, existing);
    this.opts.positions.touch(existing.key, path);
    this.report.event("rotated", { from: old, to: path, id: existing.id }, "file rotated (renamed)");
    return true;
  }

  /**
   * A rename rotation moves every file of the set at once, and each new name holds a file open
   * here already. An open descriptor keeps its inode from being reused, so a path (not a symlink)
   * holding the inode of an open reader holds that reader's file: it is taken over with one
   * lstat, without opening and reading the file again (its content is verified before every read
   * anyway: see ReadLoop.read). False when `path` holds anything else: examined in full.
   */
  private async renamedOpenFile(path: string, current: FileReader | undefined): Promise<boolean> {
    let st: import("node:fs").Stats;
    try {
      st = await fsAsync.lstat(fsPath(path));
    } catch {
      return false;
    }
    if (!st.isFile()) return false;
    const key = inodeKey(st.dev, st.ino);
    const existing = this.registry.atInode(key);
    if (existing === undefined || existing.fd === null || existing.retired || existing.holdFor !== null) {
      return false;
    }
    if (!(await this.moved(existing, path, current, key))) return true;
    this.waiting.delete(path);
    existing.noteSize(st.size);
    this.loop.enqueue(existing);
    return true;
  }

  private async createReader(
    path: string,
    fd: number,
    dev: number,
    ino: number,
    size: number,
    fp: string,
    truncated: boolean,
  ): Promise<FileReader> {
    const key = fileId(dev, ino, fp);
    const id = key; // in events and positions: the identity; the reader's own id adds a generation
    const positions = this.opts.positions;
    let offset = 0;
    let acked = 0;
    let inherit: { fromId: string; limit: number } | null = null;
    let holdFor: FileReader | null = null;
    /** Where the bytes before the start offset were verified against the content it comes from. */
    let verifiedAt: number | undefined;
    /** That verification, to run again once those bytes are read (see below). */
    let confirm: ((fd: number) => Promise<boolean>) | undefined;
    const known = truncated ? undefined : positions.get(id);
    let resumed = false;
    /** Nothing known of this content: no entry, no original (see examine). */
    let fresh = false;
    if (known !== undefined) {
      if (known.offset <= size && (await this.originals.holdsSavedContent(fd, size, known))) {
        offset = known.offset;
        acked = known.offset;
        resumed = true;
        verifiedAt = known.anchorOffset;
        confirm = (f) => this.originals.holdsSavedContent(f, Number.MAX_SAFE_INTEGER, known);
        // Maybe a copy (copytruncate) of a file already being read, whose original was not
        // truncated yet when the shipper stopped (or was found again first after the restart):
        // held again like before the restart, or both would read on from their own offsets.
        const src = await this.originals.originalOf(fd, size, fp, id);
        if (src?.live !== undefined) {
          holdFor = src.live;
          inherit = { fromId: src.id, limit: Math.min(src.verifiedTo ?? 0, src.readPos) };
          this.report.event(
            "copy_held",
            { path, id, offset, from: src.id, verifiedTo: src.verifiedTo },
            "file found again: a copy of a file still being read; holding it until the original is truncated",
          );
        } else if (
          src !== undefined &&
          src.readPos > known.offset &&
          (await this.originals.anchorIsFirstLine(fd, known.anchorOffset ?? known.offset))
        ) {
          // The entry proves no more than the identity (inode + first line): its anchor holds at
          // most the first line, which every file of this fingerprint begins with. It may be a
          // deleted file's, its inode number now reused — by a copytruncate copy whose original
          // was already truncated: that copy is judged like any new file (below), or it would be
          // read again from the entry's offset.
          resumed = false;
          offset = 0;
          acked = 0;
          verifiedAt = undefined;
          confirm = undefined;
        } else {
          this.report.event(
            "found",
            { path, id, offset, size },
            "file found; resuming at its acknowledged offset",
          );
        }
      } else {
        positions.forget(id);
        // Its progress stays known for a while: the content it was measured in may live on in a
        // copy found next (copytruncate while the shipper was down: the copy has a new inode,
        // the original was truncated and written again).
        this.registry.rememberSaved(fp, id, known);
      }
    }
    if (!resumed) {
      // Also when an entry of this identity exists but its content does not match: inode numbers
      // are reused as soon as a file is deleted, so a copytruncate's copy (which starts with the
      // same banner as everything else) can get the inode of a deleted file whose entry is still
      // remembered. It is judged like any other new file — maybe a copy of a file already read.
      // A file truncated and written again in place is only checked against files still being
      // read: its copy may have been found first (copied after the truncation was done but
      // before it was noticed here), or it was overwritten with a copy of another (`cp a b`).
      const found = await this.originals.originalOf(fd, size, fp, id);
      const src = truncated && found?.live === undefined ? undefined : found;
      if (src?.live !== undefined) {
        // The original is still there and still read: wait for its truncation before reading on.
        holdFor = src.live;
        offset = Math.min(src.verifiedTo ?? 0, src.readPos);
        acked = Math.min(src.acked, offset);
        inherit = { fromId: src.id, limit: offset };
        verifiedAt = src.anchorAt;
        confirm = src.confirm;
        this.report.event(
          "copy_held",
          { path, id, from: src.id, verifiedTo: src.verifiedTo },
          "copy of a file still being read (copytruncate?); holding it until the original is truncated",
        );
      } else if (src !== undefined) {
        offset = src.readPos;
        acked = src.acked;
        inherit = { fromId: src.id, limit: src.readPos };
        verifiedAt = src.anchorAt;
        confirm = src.confirm;
        this.report.event(
          "copy_recognised",
          { path, id, from: src.id, offset },
          "copy of a file already read (copytruncate); continuing where its original stood",
        );
      } else if (!truncated) {
        // (A truncation noticed here was logged by the caller.)
        if (known !== undefined) {
          this.report.event(
            "truncated",
            { path, id, previousOffset: known.offset, size },
            "file shrank or was rewritten while the shipper was down (or its inode was reused); reading it from the start",
          );
        } else {
          this.report.event("found", { path, id, size }, "file found");
          fresh = true;
        }
      }
    }
    // The bytes before the start offset: what must still be there whenever reading goes on.
    let anchor = offset > 0 ? await readAnchor(fd, offset, this.anchorScratch) : null;
    if (anchor !== null) anchor = Buffer.from(anchor); // the scratch buffer is reused below
    // These bytes become the reader's tail, which every read compares in the read itself. So they
    // must be the bytes that were verified above: the file may have been truncated and written
    // again since (a restart's first look at a file takes a while). Verifying once more, now that
    // they are read, closes that window — the content would have to change back to the verified
    // bytes to slip through.
    // An offset from elsewhere (the positions file, an original's reading) must also be a line
    // start in this file (see isLineStart). Otherwise this is not
    // the content the offset was measured in: read it from its start, which loses nothing (at
    // worst lines come twice), where the next line start could skip lines never read.
    if (
      anchor === null
        ? offset > 0
        : !isLineStart(offset, anchor, verifiedAt) || (confirm !== undefined && !(await confirm(fd)))
    ) {
      this.report.resync(resumed ? "saved" : "inherited", path, id, offset);
      if (resumed && known !== undefined) {
        // The content the saved offset was measured in may live on in a copy found next (as for a
        // saved entry whose anchor does not match, above).
        this.registry.rememberSaved(fp, id, known);
        resumed = false;
      }
      offset = 0;
      acked = 0;
      inherit = null;
      holdFor = null;
      anchor = null;
    }
    if (!resumed) positions.forget(id);
    const r = new FileReader({
      id: this.registry.nextReaderId(key),
      key,
      path,
      dev,
      ino,
      fingerprint: fp,
      fd,
      offset,
      acked,
      size,
      maxLineBytes: this.opts.maxLineBytes,
      sink: this.opts.sink,
      now: this.now,
      openCount: this.openFiles.open,
      ...(anchor !== null ? { anchor } : {}),
    });
    positions.track(id, fp, path, acked, r.anchorAt());
    // The sink learns where this reader starts; destinations that had more of the file than the
    // saved offset (several destinations) are not sent it again.
    this.opts.sink.begin?.(
      r,
      acked,
      resumed && holdFor === null && inherit === null && known !== undefined
        ? verifiedAhead(known)
        : undefined,
    );
    if (holdFor !== null) this.copies.hold(r, holdFor, offset);
    if (inherit !== null) this.copies.link(r, inherit.fromId, inherit.limit);
    this.registry.add(r);
    if (inherit !== null) {
      // Acknowledgements of the original that arrived since its progress was looked up (the
      // awaits above) found no copy to pass them on to: take them now. A reader no longer in
      // the registry by id was acknowledged up to where it stood; a saved entry's id is never there (its
      // progress was taken as acknowledged already).
      const orig = this.registry.withId(inherit.fromId);
      const covered = Math.min(inherit.limit, orig === undefined ? inherit.limit : orig.acked);
      if (covered > r.acked) {
        r.acked = covered;
        this.registry.commit(r, covered);
      }
    }
    this.loop.enqueue(r);
    if (fresh && offset === 0) this.fresh.add(r);
    return r;
  }

  /** The same inode was truncated (or rewritten): retire the old reader, read again from 0. */
  private async restartTruncated(r: FileReader, resync?: ResyncReason): Promise<void> {
    const fd = r.fd;
    const path = r.path;
    if (resync !== undefined) this.report.resync(resync, r.path, r.id, r.readPos);
    else
      this.report.event(
        "truncated",
        { path, id: r.id, previousOffset: r.readPos, size: r.size },
        "file truncated; reading it from the start",
      );
    r.fd = null; // hand the fd over to the new reader instead of closing it
    this.retire(r);
    if (fd === null) return;
    let used = false;
    try {
      const st = await fsAsync.fstat(fd);
      const fp = await readFingerprint(fd, this.scratch);
      if (fp === null) {
        this.waiting.set(path, waitSignature(st));
        this.loop.pollSoon();
        return;
      }
      await this.createReader(path, fd, Number(st.dev), Number(st.ino), st.size, fp, true);
      used = true;
    } finally {
      if (!used) await fsAsync.close(fd).catch(() => {});
    }
  }

  /**
   * Whether `path` still names the file `key` (dev:ino). Synchronous, like the reader's own fstat:
   * the poll asks it of every recently grown open file at each tick, and through the thread pool
   * each was a worker's and the loop's wake-up (12 a second beside a rotating file at 50k lines/s).
   */
  private pathHoldsInode(path: string, key: string): boolean {
    const st = statQuiet(path);
    return st !== undefined && inodeKey(st.dev, st.ino) === key;
  }

  /** `path` no longer holds reader `r`'s file: it was renamed away or deleted. */
  private async pathGone(path: string, r: FileReader): Promise<void> {
    this.registry.unsetPath(path, r);
    r.rotated = true;
    if (r.fd === null) {
      // Closed (it was fully read) and now gone from its path: nothing left to read from it.
      if (!r.hasUnread) this.untrack(r);
      return;
    }
    const st = await r.stat();
    if (st !== null && st.nlink === 0 && !r.deleted) {
      r.deleted = true;
      this.report.event(
        "deleted",
        { path, id: r.id, unreadBytes: Math.max(0, st.size - r.readPos) },
        "file deleted; finishing it from the open descriptor",
      );
    }
    this.loop.enqueue(r);
  }

  /**
   * A rescan's full listing: pick up missed files and notice files gone from their path. Known
   * paths of closed files are stat'ed when their directory changed (`changed`; all when
   * undefined), the others a slice at a time (RESCAN_STAT_SLICE).
   */
  private async reconcile(paths: ReadonlySet<string>, changed?: ReadonlySet<string>): Promise<void> {
    const sliceFrom = this.sliceStart;
    let unchanged = 0;
    for (const path of paths) {
      const r = this.registry.atPath(path);
      // An open file's path is looked at by the poll (same checks, at least as often).
      if (r !== undefined && r.fd !== null) continue;
      if (r !== undefined && changed !== undefined && !changed.has(path)) {
        const k = unchanged++;
        if (k < sliceFrom || k >= sliceFrom + RESCAN_STAT_SLICE) continue;
      }
      await this.loop.yieldToReads();
      if (r === undefined) {
        await this.examine(path, "add");
        continue;
      }
      // Synchronous, as pathHoldsInode: through the thread pool each closed file's stat was a
      // worker's and the loop's wake-up, a dozen per rescan beside ten quiet files.
      const st = statQuiet(path);
      if (st === undefined) {
        await this.pathGone(path, r);
        continue;
      }
      if (inodeKey(st.dev, st.ino) !== inodeKey(r.dev, r.ino)) await this.examine(path, "add");
      else if (r.fd === null && st.size !== r.size) await this.examine(path, "add");
      else if (r.fd !== null && st.size > r.size) this.loop.enqueue(r);
    }
    this.sliceStart = sliceFrom + RESCAN_STAT_SLICE >= unchanged ? 0 : sliceFrom + RESCAN_STAT_SLICE;
    for (const [path, r] of this.registry.paths()) {
      if (paths.has(path)) continue;
      // The listing can be older than what fs.watch reported since: a file created after it was
      // taken (the new file of a rename rotation) is missing from it. Taken for gone, it would be
      // marked rotated and its half-written last line shipped as a line. Look at the path again.
      if (this.pathHoldsInode(path, inodeKey(r.dev, r.ino))) continue;
      await this.pathGone(path, r);
    }
    for (const path of this.waiting.keys()) if (!paths.has(path)) this.waiting.delete(path);
    this.settleLeaving();
    this.registry.forgetGone();
  }

  /**
   * Periodic check of every open file: renamed away, growth, deletion, rotation drain, idle close.
   * A round looks at the open files that are due, POLL_SLICE of them per tick.
   */
  private async poll(): Promise<void> {
    const now = this.now();
    if (this.pollQueue.length === 0) {
      // A new quiet-poll round every quietPollMs; between rounds only files that grew recently
      // are looked at (hints from fs.watch cover the rest; this poll is the safety net).
      const quietRound = now - this.lastQuietPoll >= this.quietPollMs;
      if (quietRound) {
        this.lastQuietPoll = now;
        // Keeps the entries of files still tracked from being pruned (closed ones too).
        for (const r of this.registry.tracked()) this.opts.positions.touch(r.key, r.path);
      }
      for (const r of this.openFiles.open.readers) {
        if (!quietRound && now - r.lastGrowthAt >= QUIET_AFTER_MS && r.holdFor === null && !r.rotated)
          continue;
        this.pollQueue.push(r);
      }
    }
    for (const r of this.pollQueue.splice(0, POLL_SLICE)) {
      if (r.fd === null || r.retired) continue;
      this.opts.positions.touch(r.key, r.path);
      await this.loop.yieldToReads();
      if (r.fd === null || r.retired) continue;
      if (this.registry.atPath(r.path) === r && !this.pathHoldsInode(r.path, inodeKey(r.dev, r.ino))) {
        // Renamed away (rotation) without an event reaching us yet: see what is there now.
        const path = r.path;
        await this.pathGone(path, r);
        if (!this.events.has(path)) this.events.set(path, "add");
      }
      const st = await r.stat();
      if (st === null) continue;
      if (r.holdFor !== null) {
        // A held copy can be truncated or rewritten itself (it was the file being written after
        // all, and its copytruncate finished): then it is a new file, read from its start.
        const v = await r.verify(this.scratch);
        if (v === "truncated" || v === "rewritten") {
          this.copies.unhold(r);
          await this.restartTruncated(r);
          continue;
        }
        await this.copies.recheck(r, st.size);
        r.noteSize(st.size);
        continue;
      }
      if (st.nlink === 0 && !r.deleted) {
        r.deleted = true;
        r.rotated = true;
        this.registry.unsetPath(r.path, r);
        this.report.event(
          "deleted",
          { path: r.path, id: r.id, unreadBytes: Math.max(0, st.size - r.readPos) },
          "file deleted; finishing it from the open descriptor",
        );
      }
      if (st.size < r.size) {
        // Shrank since we last looked: truncated (maybe already rewritten past our offset). The
        // read verifies before it reads on; queue it even when it looks fully read.
        r.noteSize(st.size);
        r.atEof = true;
        this.loop.enqueue(r);
        continue;
      }
      // Grown since the last look — or since the last read, when something else noted the growth
      // without reading (a copy check's verify): a lost event must not leave those lines unread.
      if (st.size > r.size || (r.hasUnread && r.lastGrowthAt > r.lastReadAt)) this.loop.enqueue(r);
      r.noteSize(st.size);
      if (r.queued) continue;
      const idleFor = now - r.lastGrowthAt;
      if (r.rotated && idleFor >= this.rotatedIdleMs && (r.hasUnread || r.splitter.hasHeldHead)) {
        await this.loop.flushPartial(r);
      }
      if (r.readPos < r.size || r.splitter.inLongLine) continue;
      if (r.deleted) {
        this.report.event("closed", { path: r.path, id: r.id }, "deleted file fully read; closed");
        this.retire(r);
      } else if (r.rotated && idleFor >= this.rotatedIdleMs) {
        await r.closeFd();
        if (this.registry.atPath(r.path) !== r) this.untrack(r);
      } else if (idleFor >= this.idleCloseMs) {
        await r.closeFd();
      }
    }
    // A short file is looked at again once a stat() says it changed (written, replaced, gone):
    // opening, reading and closing each one every poll tick, through the thread pool, kept a
    // shipper beside three empty log files awake 40 times a second.
    for (const [path, seen] of this.waiting)
      if (!this.events.has(path) && waitingChanged(path, seen)) this.events.set(path, "add");
    for (const path of this.openFiles.takeWaiting()) if (!this.events.has(path)) this.events.set(path, "add");
    this.registry.pruneRetired(now);
  }

  /** At shutdown: rotated files' writers are gone, so their last partial lines are complete. */
  private async flushRotatedPartials(): Promise<void> {
    for (const r of [...this.registry.tracked()]) {
      if (r.fd === null || !r.rotated) continue;
      if (r.hasUnread || r.splitter.hasHeldHead) await this.loop.flushPartial(r);
    }
  }

  /** Stop reading `r` for good; keep it reachable by id until its acknowledgements arrive. */
  private retire(r: FileReader): void {
    r.retired = true;
    this.opts.sink.end?.(r);
    this.copies.originalRetired(r);
    if (r.fd !== null) void r.closeFd();
    this.loop.unqueue(r);
    this.registry.retire(r);
    if (r.acked >= r.readPos) this.dropRetired(r);
  }

  private dropRetired(r: FileReader): void {
    this.registry.drop(r);
    this.copies.unlink(r);
  }

  /**
   * Forget a closed file that is no longer at any watched path — once every destination has what
   * was read of it. Until then it stays known by its inode: found again meanwhile (the rotation's
   * next rename), it reads on where it stood; a new reader would resume at the acknowledged
   * offset and send the lines still in flight again.
   */
  private untrack(r: FileReader): void {
    this.copies.originalRetired(r);
    if (r.acked < r.readPos) {
      this.leaving.add(r);
      return;
    }
    this.leaving.delete(r);
    if (this.registry.untrack(r)) this.copies.unlink(r);
    this.opts.sink.end?.(r);
  }
}

/**
 * The saved `ahead` offsets the resume check verified: those up to the entry's anchor (the bytes
 * before it matched, so this is the content they were acknowledged in). One beyond it may be of
 * content written since (truncated and rewritten under the same identity) — that destination is
 * sent the lines again rather than skipping lines it never had.
 */
function verifiedAhead(e: PositionEntry): Record<string, number> | undefined {
  if (e.ahead === undefined) return undefined;
  const limit = e.anchorOffset ?? e.offset;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(e.ahead)) if (v <= limit) out[k] = v;
  return out;
}

/** What a stat() says of a file too short to fingerprint: it changed when this does. */
function waitSignature(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Whether `path` no longer is what `seen` (waitSignature) described: written, replaced or gone. */
function waitingChanged(path: string, seen: string): boolean {
  const st = statQuiet(path);
  return st === undefined || waitSignature(st) !== seen;
}
