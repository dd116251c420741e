// Which files to tail. picomatch decides which paths match LOG_PATHS and not EXCLUDE_PATHS. Each
// directory the globs start from gets one raw fs.watch (no stat, no readdir): immediate hints to
// the tailer — a name changed (created, renamed, deleted) or a file grew. A periodic rescan
// (readdir) catches whatever the events missed (inotify overflow, a directory created late).
// A rescan reads a directory again only when its mtime/ctime moved (a name was added, removed or
// renamed there), and tells the tailer which paths are in such directories: only those need a
// `stat` to see whether another inode now sits at a known path. A file's own growth does not
// change its directory; it is reported by fs.watch (and open files are polled). Every
// FULL_LISTING_EVERY rescans each directory is listed anyway (attributes cached by a network
// filesystem, a clock stepped back).
// Globs that reach into subdirectories (`**`, `*/…`), which a raw fs.watch cannot see, are also
// watched by chokidar (v5 has no glob support) in polling mode — in its inotify mode every write
// to a tailed file makes it stat the file and re-read the directory, measured at about a quarter
// of the shipper's CPU at 50k lines/s. Its polling stats every file every interval, so it is
// not used where fs.watch suffices: with thousands of quiet files that polling alone is a steady
// cost (see bench/log-shipper-many-files.mjs).
// Symlinks are resolved here and refused when their target lies outside the watched directories:
// the app container controls the shared volume, and the shipper's own secrets must not become
// shippable through a link planted there.
import {
  constants,
  type FSWatcher as FsWatcher,
  watch as fsWatch,
  readdirSync,
  realpathSync,
  type Stats,
} from "node:fs";
import { basename, dirname, join, sep } from "node:path";
import type { Log as Logger } from "@sidecar/shared";
import { fsAsync } from "@sidecar/shared";
import type { FSWatcher } from "chokidar";
import picomatch from "picomatch";
import { decodeName, fsPath, statBigintQuiet, statQuiet } from "./path-bytes.js";

export interface DiscoveryOptions {
  /** Absolute globs of files to tail. */
  include: readonly string[];
  /** Globs never read; a pattern without a slash is matched against the base name. */
  exclude: readonly string[];
  rescanIntervalMs: number;
  /** chokidar's stat-polling interval (default 1000 ms). */
  pollIntervalMs?: number;
  logger: Logger;
  /** Something may have happened at `path` (created, written, renamed away, deleted). */
  onPath: (path: string, event: "add" | "change" | "unlink") => void;
  /**
   * A full rescan finished: every matching path that exists now, and those of them in directories
   * whose names changed since the last rescan (or that are listed for the first time) — a known
   * path outside `changed` still names the same inode.
   */
  onScan: (paths: ReadonlySet<string>, changed: ReadonlySet<string>) => void;
  /** A path was refused (symlink leaving the watched directories). */
  onRefused?: (path: string, reason: string) => void;
  /** Opens a resolved path (tests put a race between resolving and opening here). */
  openFile?: (path: string | Buffer, flags: number) => Promise<number>;
}

/** A directory's matching files and subdirectories as last read, with what it looked like then. */
interface Listing {
  /** dev, inode, mtime and ctime of the directory (ns) when it was read. */
  sig: string;
  /** Read long enough after its last change that a later change must move its mtime. */
  settled: boolean;
  files: string[];
  dirs: string[];
}

interface Root {
  dir: string;
  /** How many directory levels below `dir` a pattern can reach (Infinity for `**`). */
  depth: number;
}

/** What a look at a busy directory saw of one matching file (stat, symlinks followed). */
interface Seen {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  /** When a look last saw it change (or first saw it). */
  changedAt: number;
}

/** A directory looked at every BUSY_LOOK_MS instead of watched (see goBusy). */
interface Busy {
  timer: NodeJS.Timeout;
  /** Matching files by name (latin1, as fs.watch names them) at the last look. */
  seen: Map<string, Seen>;
  /** The directory's signature at the last full look (see dirSig). */
  sig: string;
  /** Quick looks since the last full one (see quickLook). */
  quickLooks: number;
  /** When a look last saw a change. */
  changedAt: number;
}

/** Flags for opening a file to tail: never through a final symlink, never block on a FIFO. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const MAX_DEPTH = 16;
/** Refused paths remembered (to warn once each); beyond this the memory starts over. */
const MAX_REFUSED_REMEMBERED = 1000;
// Names remembered per watched directory for the fs.watch hints (see watchHints).
const KNOWN_NAMES_MAX = 4096;
/**
 * A busy directory is looked at instead of listened to (see goBusy): fs.watch wakes the shipper
 * once per write of the app — a writer that writes every few milliseconds cost 40–50 µs of CPU
 * per wake-up, a tenth of all the CPU at 50k lines/s — while reads are coalesced to one per
 * READ_COALESCE_MS (read-loop.ts) anyway. At BUSY_EVENTS write events within BUSY_WINDOW_MS the
 * directory's watcher is closed and the directory is listed and its matching files stat'ed every
 * BUSY_LOOK_MS instead; what changed between two looks is reported as the events would have
 * reported it. After BUSY_QUIET_MS without a change, fs.watch again.
 */
const BUSY_EVENTS = 40;
const BUSY_WINDOW_MS = 1000;
const BUSY_LOOK_MS = 100;
const BUSY_QUIET_MS = 1000;
/** A directory with more entries than this is never looked at every BUSY_LOOK_MS. */
const BUSY_MAX_ENTRIES = 256;
/**
 * Every this many looks the busy directory is listed again even though its mtime did not move
 * (coarse timestamps), and files quiet for BUSY_QUIET_MS are stat'ed again (see quickLook).
 */
const BUSY_FULL_LOOK_EVERY = 5;
/** After a directory was found too big to look at, it is not considered again for this long. */
const BUSY_RETRY_MS = 30_000;
/**
 * A listing taken within this long of its directory's last change may miss a change made in the
 * same timestamp tick (coarse clocks, 1–2 s on some filesystems): it is read again next time.
 */
const SETTLE_MS = 2000;
const FULL_LISTING_EVERY = 6;

/** The directories to watch for a set of globs, with how deep each must be watched. */
export function rootsOf(globs: readonly string[]): Root[] {
  const byDir = new Map<string, number>();
  for (const g of globs) {
    const s = picomatch.scan(g);
    let dir: string;
    let depth: number;
    if (!s.isGlob) {
      dir = dirname(g);
      depth = 0;
    } else {
      dir = s.base === "" ? "." : s.base;
      depth = s.glob.includes("**") ? Number.POSITIVE_INFINITY : s.glob.split("/").length - 1;
    }
    byDir.set(dir, Math.max(byDir.get(dir) ?? 0, depth));
  }
  return [...byDir].map(([dir, depth]) => ({ dir, depth }));
}

/** A matcher for LOG_PATHS minus EXCLUDE_PATHS. */
export function pathMatcher(
  include: readonly string[],
  exclude: readonly string[],
): (path: string) => boolean {
  const inc = picomatch(include as string[]);
  const excFull = exclude.filter((p) => p.includes("/"));
  const excBase = exclude.filter((p) => !p.includes("/"));
  const exFull = excFull.length > 0 ? picomatch(excFull) : () => false;
  const exBase = excBase.length > 0 ? picomatch(excBase, { dot: true }) : () => false;
  return (path) => inc(path) && !exFull(path) && !exBase(basename(path));
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}

export class Discovery {
  private readonly roots: Root[];
  private readonly matches: (path: string) => boolean;
  /** Real paths of the roots (symlink targets must stay inside one of them). */
  private realRoots: string[] = [];
  private watcher: FSWatcher | null = null;
  /** Raw per-directory watchers (hints only), by directory. */
  private readonly hintWatchers = new Map<string, FsWatcher>();
  /**
   * Per watched directory: its names (latin1) mapped to their paths, or null when not matching.
   * A busy file fires an event per write: remembered rather than joined and matched every time.
   */
  private readonly knownNames = new Map<string, Map<string, string | null>>();
  /** Busy directories: looked at every BUSY_LOOK_MS, their fs.watch closed (see goBusy). */
  private readonly busy = new Map<string, Busy>();
  /** Directories found too big to look at, with when they may be considered again. */
  private readonly busyRefusedUntil = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private closed = false;
  private readonly refusedOnce = new Set<string>();
  private readonly realDirs = new Map<string, string>();
  /** Directory listings of the last rescan, by directory. */
  private listings = new Map<string, Listing>();
  /** Roots whose fs.watch was (re)started: their events may have been missed meanwhile. */
  private readonly rewatched = new Set<string>();
  private scans = 0;
  /** Time of the last completed scan (readiness: we are watching). */
  lastScanAt = 0;

  constructor(private readonly opts: DiscoveryOptions) {
    this.roots = rootsOf(opts.include);
    this.matches = pathMatcher(opts.include, opts.exclude);
  }

  get watchedDirs(): string[] {
    return this.roots.map((r) => r.dir);
  }

  /** Directories looked at every BUSY_LOOK_MS instead of watched (written to often: goBusy). */
  get busyDirs(): string[] {
    return [...this.busy.keys()];
  }

  matchesPath(path: string): boolean {
    return this.matches(path);
  }

  async start(): Promise<void> {
    await this.refreshRealRoots();
    this.watchHints();
    // Directories matched one level deep (`/shared/logs/*.log`, the default) are watched by one
    // raw fs.watch each, with the rescan behind it; chokidar only for deeper globs (see above).
    const deep = this.roots.filter((r) => r.depth > 0);
    if (deep.length > 0) await this.watchDeep(deep);
    await this.scan();
    this.timer = setInterval(() => void this.scan(), this.opts.rescanIntervalMs);
    this.timer.unref();
  }

  private async watchDeep(deep: Root[]): Promise<void> {
    const depth = Math.min(MAX_DEPTH, Math.max(...deep.map((r) => r.depth)));
    // Loaded only for globs that reach into subdirectories (the default, one level, never does).
    const { watch } = await import("chokidar");
    const watcher = watch(
      deep.map((r) => r.dir),
      {
        persistent: false,
        ignoreInitial: true,
        followSymlinks: false,
        depth,
        usePolling: true,
        interval: this.opts.pollIntervalMs ?? 1000,
        binaryInterval: this.opts.pollIntervalMs ?? 1000,
        alwaysStat: false,
        atomic: false,
        ignorePermissionErrors: true,
      },
    );
    const hint = (event: "add" | "change" | "unlink") => (path: string) => {
      if (!this.closed && this.matches(path)) this.opts.onPath(path, event);
    };
    watcher.on("add", hint("add"));
    watcher.on("change", hint("change"));
    watcher.on("unlink", hint("unlink"));
    watcher.on("error", (err) => this.opts.logger.warn({ err }, "file watcher error; relying on rescans"));
    this.watcher = watcher;
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  }

  /** List every matching path now and report it (concurrent calls share one scan). */
  scan(): Promise<void> {
    if (this.scanning) return this.scanning;
    this.scanning = this.doScan().finally(() => {
      this.scanning = null;
    });
    return this.scanning;
  }

  /**
   * A raw fs.watch on each top-level directory (depth 0 globs); retried on every scan. Not on a
   * busy directory: that one is looked at instead (goBusy).
   */
  private watchHints(): void {
    for (const root of this.roots) {
      if (root.depth !== 0 || this.hintWatchers.has(root.dir) || this.busy.has(root.dir)) continue;
      if (this.watchDir(root.dir)) this.rewatched.add(root.dir);
    }
  }

  /** Start the raw fs.watch of `dir`; false when it cannot be watched (yet). */
  private watchDir(dir: string): boolean {
    if (this.closed) return false;
    let w: FsWatcher;
    // Write events counted per BUSY_WINDOW_MS: at BUSY_EVENTS the directory is busy (goBusy).
    let windowStart = 0;
    let writes = 0;
    try {
      // Names as latin1 strings: one char per byte, so nothing of a name that is not valid
      // UTF-8 is lost (decoded once per name, path-bytes.ts), and the event hands over a plain
      // string — a Buffer per event ("buffer" encoding: an ArrayBuffer, a view and a prototype
      // change each) was a measurable part of the cost of each write's event.
      w = fsWatch(dir, { persistent: false, encoding: "latin1" }, (event, name) => {
        if (this.closed || name === null) return;
        const path = this.pathOfName(dir, name);
        if (path === null) return;
        if (event === "rename") {
          this.opts.onPath(path, "add");
          return;
        }
        this.opts.onPath(path, "change");
        const now = Date.now();
        if (now - windowStart >= BUSY_WINDOW_MS) {
          windowStart = now;
          writes = 0;
        }
        if (++writes >= BUSY_EVENTS) this.goBusy(dir, now);
      });
    } catch {
      return false; // not there yet: the next scan tries again
    }
    w.on("error", () => {
      w.close();
      if (this.hintWatchers.get(dir) === w) this.hintWatchers.delete(dir);
    });
    this.hintWatchers.set(dir, w);
    return true;
  }

  /** The matching path of a name in watched directory `dir` (latin1, as fs.watch gives it), or null. */
  private pathOfName(dir: string, name: string): string | null {
    let known = this.knownNames.get(dir);
    if (known === undefined) {
      known = new Map();
      this.knownNames.set(dir, known);
    }
    let path = known.get(name);
    if (path === undefined) {
      // Bounded: cleared when full.
      if (known.size >= KNOWN_NAMES_MAX) known.clear();
      const full = join(dir, decodeName(Buffer.from(name, "latin1")));
      path = this.matches(full) ? full : null;
      known.set(name, path);
    }
    return path;
  }

  /**
   * `dir`'s files are written so often that looking at the directory every BUSY_LOOK_MS costs
   * less than an fs.watch wake-up per write: close its watcher and look instead. The first look
   * is taken before the watcher closes, so nothing happens unseen in between. A directory with
   * more than BUSY_MAX_ENTRIES entries stays watched.
   */
  private goBusy(dir: string, now: number): void {
    if (this.closed || this.busy.has(dir) || (this.busyRefusedUntil.get(dir) ?? 0) > now) return;
    const first = this.look(dir, undefined, now);
    if (first === null) {
      this.busyRefusedUntil.set(dir, now + BUSY_RETRY_MS);
      return;
    }
    const w = this.hintWatchers.get(dir);
    if (w !== undefined) {
      w.close();
      this.hintWatchers.delete(dir);
    }
    const timer = setInterval(() => this.lookAgain(dir), BUSY_LOOK_MS);
    timer.unref();
    this.busy.set(dir, { timer, ...first, quickLooks: 0, changedAt: now });
    // Events the kernel still held for the watcher when it closed (changes made just before the
    // first look: this callback runs for one event of a batch read at once) are gone with it,
    // and that look counts their changes as seen — a write to another file of the directory
    // just before its writer paused would be reported by nothing (a rescan leaves open files to
    // the poll). Every file of the first look is reported as fs.watch reports a new name; names
    // gone before it: a rescan compares what is there with what the tailer knows (renames of
    // open files: the tailer's poll).
    for (const name of first.seen.keys()) {
      const path = this.pathOfName(dir, name);
      if (path !== null) this.opts.onPath(path, "add");
    }
    this.rewatched.add(dir);
    void this.scan();
    this.opts.logger.debug(
      { dir, lookEveryMs: BUSY_LOOK_MS },
      "directory written to often: looking at it periodically instead of waking on every write",
    );
  }

  /**
   * One look at busy `dir`, reporting what changed since the last one as fs.watch would have (a
   * name that appeared, vanished or holds another file: "add"; a file that grew or was written:
   * "change"). Quiet for BUSY_QUIET_MS, or no longer listable: watched again.
   */
  private lookAgain(dir: string): void {
    const b = this.busy.get(dir);
    if (b === undefined || this.closed) return;
    const now = Date.now();
    let changed = false;
    const quick = this.quickLook(dir, b, now);
    let gone = false;
    if (quick !== null) {
      changed = quick;
    } else {
      const l = this.look(dir, b.seen, now);
      changed = this.reportChanges(dir, b.seen, l?.seen ?? new Map());
      if (l !== null) {
        b.seen = l.seen;
        b.sig = l.sig;
        b.quickLooks = 0;
      } else gone = true;
    }
    if (changed) b.changedAt = now;
    if (!gone && now - b.changedAt < BUSY_QUIET_MS) return;
    // Back to fs.watch. Armed first, then looked at once more: whatever changed after the last
    // look is either in that look or reported by the watcher.
    clearInterval(b.timer);
    this.busy.delete(dir);
    if (gone) this.busyRefusedUntil.set(dir, now + BUSY_RETRY_MS);
    if (!this.watchDir(dir)) {
      this.rewatched.add(dir); // gone or unreadable: the next scan looks at everything under it
      return;
    }
    const last = this.look(dir, b.seen, now);
    if (last !== null) this.reportChanges(dir, b.seen, last.seen);
    else this.rewatched.add(dir);
    this.opts.logger.debug({ dir }, "directory quiet again: watching it");
  }

  /**
   * The look between full ones: while the directory itself has not changed (no name created,
   * renamed or removed: its mtime and ctime would have moved), only the files that changed
   * within BUSY_QUIET_MS are stat'ed — the one or two being written — and their changes reported.
   * Returns whether any changed, or null when a full look is due (the directory changed, a file
   * is not what it was, or every BUSY_FULL_LOOK_EVERY looks).
   */
  private quickLook(dir: string, b: Busy, now: number): boolean | null {
    if (++b.quickLooks >= BUSY_FULL_LOOK_EVERY || this.dirSig(dir) !== b.sig) return null;
    let changed = false;
    for (const [name, prev] of b.seen) {
      if (now - prev.changedAt >= BUSY_QUIET_MS) continue;
      const path = this.pathOfName(dir, name);
      const st = path === null ? undefined : statQuiet(path, true);
      if (path === null || st === undefined || st.ino !== prev.ino || st.dev !== prev.dev) return null;
      if (st.size === prev.size && st.mtimeMs === prev.mtimeMs) continue;
      prev.size = st.size;
      prev.mtimeMs = st.mtimeMs;
      prev.changedAt = now;
      this.opts.onPath(path, "change");
      changed = true;
    }
    return changed;
  }

  /** Report the differences between two looks at `dir`; true when there were any. */
  private reportChanges(dir: string, before: Map<string, Seen>, now: Map<string, Seen>): boolean {
    let changed = false;
    for (const [name, cur] of now) {
      const prev = before.get(name);
      const path = this.pathOfName(dir, name);
      if (path === null) continue;
      if (prev === undefined || prev.ino !== cur.ino || prev.dev !== cur.dev) {
        this.opts.onPath(path, "add");
        changed = true;
      } else if (prev.size !== cur.size || prev.mtimeMs !== cur.mtimeMs) {
        this.opts.onPath(path, "change");
        changed = true;
      }
    }
    for (const name of before.keys()) {
      if (now.has(name)) continue;
      const path = this.pathOfName(dir, name);
      if (path === null) continue;
      this.opts.onPath(path, "add");
      changed = true;
    }
    return changed;
  }

  /** What says that a directory's names changed: its inode, mtime and ctime ("" when gone). */
  private dirSig(dir: string): string {
    const st = statQuiet(dir);
    return st === undefined ? "" : `${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
  }

  /**
   * List `dir` and stat its matching files, synchronously (a few microseconds for the handful of
   * files a busy directory holds; the files themselves are read synchronously too). `before`:
   * the last look, for when each file last changed. Null when it cannot be listed or holds more
   * than BUSY_MAX_ENTRIES entries.
   */
  private look(
    dir: string,
    before: Map<string, Seen> | undefined,
    now: number,
  ): { seen: Map<string, Seen>; sig: string } | null {
    // Taken before the listing: a change made while listing makes the next look a full one.
    const sig = this.dirSig(dir);
    let names: string[];
    try {
      names = readdirSync(fsPath(dir), { encoding: "latin1" });
    } catch {
      return null;
    }
    if (names.length > BUSY_MAX_ENTRIES) return null;
    const seen = new Map<string, Seen>();
    for (const name of names) {
      const path = this.pathOfName(dir, name);
      if (path === null) continue;
      const st = statQuiet(path, true);
      if (st === undefined || !(st.isFile() || st.isSymbolicLink())) continue;
      const prev = before?.get(name);
      const same =
        prev !== undefined &&
        prev.ino === st.ino &&
        prev.dev === st.dev &&
        prev.size === st.size &&
        prev.mtimeMs === st.mtimeMs;
      seen.set(name, {
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtimeMs: st.mtimeMs,
        changedAt: same ? prev.changedAt : now,
      });
    }
    return { seen, sig };
  }

  private async doScan(): Promise<void> {
    this.watchHints();
    await this.refreshRealRoots();
    const found = new Set<string>();
    const changed = new Set<string>();
    const listings = new Map<string, { listing: Listing; unchanged: boolean }>();
    const full = this.scans++ % FULL_LISTING_EVERY === 0;
    // Events under a root whose watcher was just (re)started may have been missed: every path
    // under it is looked at as if its directory had changed.
    const rewatched = [...this.rewatched];
    this.rewatched.clear();
    for (const root of this.roots) {
      const all = rewatched.includes(root.dir);
      await this.walk(root.dir, Math.min(root.depth, MAX_DEPTH), { found, changed, listings, full, all });
    }
    if (this.closed) return;
    this.listings = new Map([...listings].map(([dir, l]) => [dir, l.listing]));
    this.lastScanAt = Date.now();
    this.opts.onScan(found, changed);
  }

  private async walk(
    dir: string,
    depth: number,
    scan: {
      found: Set<string>;
      changed: Set<string>;
      listings: Map<string, { listing: Listing; unchanged: boolean }>;
      full: boolean;
      all: boolean;
    },
  ): Promise<void> {
    const l = scan.listings.get(dir) ?? (await this.list(dir, scan.full));
    if (l === null) return; // not there (yet) or not readable: the next scan tries again
    scan.listings.set(dir, l);
    const { listing, unchanged } = l;
    for (const p of listing.files) {
      scan.found.add(p);
      if (!unchanged || scan.all) scan.changed.add(p);
    }
    if (depth > 0) for (const d of listing.dirs) await this.walk(d, depth - 1, scan);
  }

  /**
   * The directory's matching files and subdirectories: the last listing when the directory has
   * not changed since it was taken (and it was settled then), else read now. A listing read again
   * that holds the same names under an unchanged, settled signature is marked as unchanged.
   */
  private async list(dir: string, full: boolean): Promise<{ listing: Listing; unchanged: boolean } | null> {
    const before = this.listings.get(dir);
    let sig = "";
    let changedAt = Number.POSITIVE_INFINITY;
    // The directory's stat is synchronous (as a busy directory's looks): a rescan that finds
    // nothing changed then costs no thread-pool round trip. Its listing stays asynchronous.
    const st = statBigintQuiet(dir);
    if (st === undefined) return null;
    sig = `${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
    changedAt = Math.max(Number(st.mtimeNs / 1_000_000n), Number(st.ctimeNs / 1_000_000n));
    if (!full && before !== undefined && before.settled && before.sig === sig) {
      return { listing: before, unchanged: true };
    }
    const startedAt = Date.now();
    let entries: import("node:fs").Dirent<Buffer>[];
    try {
      entries = await fsAsync.readdirBuffers(fsPath(dir));
    } catch {
      return null;
    }
    const files: string[] = [];
    const dirs: string[] = [];
    for (const e of entries) {
      const p = join(dir, decodeName(e.name));
      if (e.isDirectory()) dirs.push(p);
      else if ((e.isFile() || e.isSymbolicLink()) && this.matches(p)) files.push(p);
    }
    const listing = { sig, settled: changedAt < startedAt - SETTLE_MS, files, dirs };
    const unchanged =
      before?.settled === true &&
      before.sig === sig &&
      sameNames(before.files, files) &&
      sameNames(before.dirs, dirs);
    return { listing, unchanged };
  }

  /**
   * The real path of a directory, remembered until the next rescan: thousands of files appearing
   * in one directory need one realpath, not one each. (What is opened is checked through the fd
   * itself — openedPath — so a directory swapped for a symlink meanwhile is still refused.)
   */
  private async realDir(dir: string): Promise<string> {
    const known = this.realDirs.get(dir);
    if (known !== undefined) return known;
    const real = decodeName(await fsAsync.realpathBuffer(fsPath(dir)));
    if (this.realDirs.size >= KNOWN_NAMES_MAX) this.realDirs.clear();
    this.realDirs.set(dir, real);
    return real;
  }

  private async refreshRealRoots(): Promise<void> {
    this.realDirs.clear();
    const real: string[] = [];
    for (const r of this.roots) {
      try {
        real.push(realpathSync.native(r.dir));
      } catch {
        /* missing root: nothing under it can be allowed */
      }
    }
    this.realRoots = real;
  }

  private insideRoots(real: string): boolean {
    return this.realRoots.some((r) => real === r || real.startsWith(r.endsWith(sep) ? r : r + sep));
  }

  /**
   * Open `path` for tailing when it is a regular file inside the watched directories (following a
   * symlink only when its target stays inside them). Returns the file handle's fd and the real path,
   * or null (gone, refused, not a regular file).
   */
  async openAllowed(path: string): Promise<{ fd: number; realPath: string; stats: Stats } | null> {
    let real: string;
    try {
      const st = await fsAsync.lstat(fsPath(path));
      if (st.isSymbolicLink()) {
        real = decodeName(await fsAsync.realpathBuffer(fsPath(path)));
      } else if (st.isFile()) {
        real = join(await this.realDir(dirname(path)), basename(path));
      } else {
        return null;
      }
    } catch {
      return null;
    }
    if (!this.insideRoots(real)) {
      this.refuse(path, `symlink target ${real} is outside the watched directories`);
      return null;
    }
    let fd: number;
    try {
      fd = await (this.opts.openFile ?? fsAsync.open)(fsPath(real), OPEN_FLAGS);
    } catch {
      return null; // vanished between lstat and open, or a symlink swapped in (O_NOFOLLOW)
    }
    try {
      const st = await fsAsync.fstat(fd);
      // O_NOFOLLOW guards only the last component: a directory on the way may have been swapped
      // for a symlink between resolving and opening. Check what was actually opened.
      const opened = await this.openedPath(fd, real, st);
      if (opened === null) {
        this.refuse(path, `the file opened for ${real} is not the one resolved (changed while opening)`);
      } else if (!this.insideRoots(opened)) {
        this.refuse(path, `the file opened is ${opened}, outside the watched directories`);
      } else if (st.isFile()) {
        return { fd, realPath: real, stats: st };
      }
    } catch {
      /* fall through */
    }
    await fsAsync.close(fd).catch(() => {});
    return null;
  }

  /**
   * The path of what `fd` refers to: from /proc/self/fd on Linux; elsewhere the resolved path
   * re-resolved now, when it still names the same device and inode (null when it does not).
   */
  private async openedPath(fd: number, real: string, st: import("node:fs").Stats): Promise<string | null> {
    try {
      return decodeName(await fsAsync.readlinkBuffer(`/proc/self/fd/${fd}`)).replace(/ \(deleted\)$/, "");
    } catch {
      /* no procfs */
    }
    try {
      const again = decodeName(await fsAsync.realpathBuffer(fsPath(real)));
      const st2 = await fsAsync.lstat(fsPath(again));
      return st2.dev === st.dev && st2.ino === st.ino ? again : null;
    } catch {
      return null;
    }
  }

  private refuse(path: string, reason: string): void {
    this.opts.onRefused?.(path, reason);
    if (this.refusedOnce.has(path)) return;
    // Bounded: a volume full of refused names must not grow this forever (they warn again).
    if (this.refusedOnce.size >= MAX_REFUSED_REMEMBERED) this.refusedOnce.clear();
    this.refusedOnce.add(path);
    this.opts.logger.warn({ path, reason }, "refusing to read file");
  }

  async close(): Promise<void> {
    // A busy directory's last look, before anything else: what changed since the previous one
    // (up to BUSY_LOOK_MS ago) is reported now, as its fs.watch would have reported it before
    // closing. The shutdown reads to the end of what the tailer knows, and the new file of a
    // rename rotation made just before the signal — at the path of a reader still open — is
    // known from nothing else (the last rescan leaves open readers' paths to the poll, which
    // by then finds the reader at its new name).
    for (const [dir, b] of this.busy) {
      clearInterval(b.timer);
      const last = this.look(dir, b.seen, Date.now());
      this.reportChanges(dir, b.seen, last?.seen ?? new Map());
    }
    this.busy.clear();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.scanning?.catch(() => {});
    for (const w of this.hintWatchers.values()) w.close();
    this.hintWatchers.clear();
    await this.watcher?.close();
    this.watcher = null;
  }
}
