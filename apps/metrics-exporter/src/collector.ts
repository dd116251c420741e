// One collection of the metrics directory: list `*.prom`, re-parse only files whose version (inode,
// size, mtime, ctime) changed, keep each file's last good version while a newer one is rejected, drop
// versions older than STALE_AFTER_MS, and merge what is servable. The merged result is recomputed
// only when the set of served versions changed, so an idle directory costs a readdir and a stat
// per file. Every outcome is reported once per transition (logs) and as per-file metrics.

import { statfs } from "node:fs/promises";
import { isMemoryFsType, type Log } from "@sidecar/shared";
import type { Family, FamilyType } from "./families.js";
import { type Conflict, type MergeResult, mergeFiles } from "./merge.js";
import { decodeUtf8, type FileError, type FileErrorReason, parseTextAsync } from "./parse.js";
import {
  asyncScanFs,
  type Candidate,
  listFiles,
  readCapped,
  type ScanFs,
  statFile,
  syncScanFs,
  versionOf,
} from "./scan.js";
import type { SelfMetrics } from "./self-metrics.js";

export interface CollectorOptions {
  readonly dir: string;
  readonly maxFileBytes: number;
  readonly maxSeriesPerFile: number;
  readonly maxTotalSeries: number;
  readonly maxFiles: number;
  readonly maxLabelsPerSeries: number;
  /** Families of all served files together (a file's own budget is what the others leave). */
  readonly maxFamilies: number;
  /** Bytes of all served files together, HELP texts counted HELP_WEIGHT times. */
  readonly maxTotalBytes: number;
  /** 0 = never stale. */
  readonly staleAfterMs: number;
  readonly logger: Log;
  readonly metrics: SelfMetrics;
  /** The exporter's own families, which collected files may not shadow. */
  readonly ownFamilies: () => readonly { name: string; type: FamilyType }[];
  readonly now?: () => number;
  /**
   * Called after each file that was parsed (accepted or rejected), with its result kept: parsing
   * leaves megabytes of working buffers, which a collection of many changed files (the first
   * one) would otherwise pile up before anything can free them.
   */
  readonly afterParse?: () => void;
}

export interface CollectionResult {
  /** True when the served families differ from the previous collection's. */
  readonly changed: boolean;
  readonly families: readonly Family[];
  readonly series: number;
}

interface GoodVersion {
  readonly families: Family[];
  readonly series: number;
  readonly bytes: number;
  readonly mtimeMs: number;
  readonly version: string;
}

interface FileState {
  readonly name: string;
  /** The last version looked at (served or rejected). */
  version: string | undefined;
  mtimeMs: number;
  /** Why the last version looked at was rejected; undefined when it was accepted. */
  error: FileError | undefined;
  good: GoodVersion | undefined;
  stale: boolean;
  /** What the other files held when this file was refused for a total cap (tried again when that shrinks). */
  blockedAtStored: Totals | undefined;
  conflict: Conflict | undefined;
  /** When the file's data first made it into the output (a sequence number); undefined while it is not served. */
  servedSince: number | undefined;
  readonly errorReasons: Set<FileErrorReason>;
}

/**
 * Sample lines are kept once (every rendered body refers to them), but a HELP text is kept as a
 * string (two bytes a character when it has any non-Latin-1 one) and copied into each rendered
 * format: counted this many times more against MAX_TOTAL_BYTES, so HELP-heavy files cannot take
 * four times the memory that the bound suggests.
 */
export const HELP_WEIGHT = 4;

interface Totals {
  series: number;
  families: number;
  bytes: number;
}

/** Rejections for a budget shared by all files: the file is tried again when the others shrink. */
const TOTAL_CAPS: ReadonlySet<FileErrorReason> = new Set([
  "total_series_cap",
  "too_many_families",
  "total_bytes_cap",
]);

const LIMIT_OF: Partial<Record<FileErrorReason, string>> = {
  too_large: "max_file_bytes",
  too_many_series: "max_series_per_file",
  total_series_cap: "max_total_series",
  too_many_labels: "max_labels_per_series",
  too_many_families: "max_families",
  total_bytes_cap: "max_total_bytes",
};

export class Collector {
  private readonly opts: CollectorOptions;
  private readonly log: Log;
  private readonly m: SelfMetrics;
  private readonly now: () => number;
  private readonly files = new Map<string, FileState>();
  private skipped = new Map<string, string>();
  private dirReadable: boolean | undefined;
  private signature: string | undefined;
  private merged: MergeResult = { families: [], series: 0, included: new Set(), excluded: new Map() };
  private parses = 0;
  private servedSeq = 0;
  /** The ScanFs chosen for the directory (once its file system could be told). */
  private fs: ScanFs | undefined;

  constructor(opts: CollectorOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: "collector" });
    this.m = opts.metrics;
    this.now = opts.now ?? Date.now;
  }

  async collect(): Promise<CollectionResult> {
    const endTimer = this.m.collectionDuration.startTimer();
    const fs = this.fs ?? (await this.chooseFs());
    const listing = await listFiles(this.opts.dir, fs);
    if (!listing.ok) {
      // Keep serving the last good versions (they still go stale); say so once, count every time.
      this.m.collectionErrors.inc({ reason: listing.code.toLowerCase() });
      this.m.dirReadable.set(0);
      if (this.dirReadable !== false) {
        this.log.warn(
          { dir: this.opts.dir, code: listing.code, err: listing.message },
          "cannot list the metrics directory; serving the last good versions until they go stale",
        );
      }
      this.dirReadable = false;
    } else {
      if (this.dirReadable === false)
        this.log.info({ dir: this.opts.dir }, "metrics directory readable again");
      this.dirReadable = true;
      this.m.dirReadable.set(1);
      const candidates = listing.files.slice(0, this.opts.maxFiles);
      const skipped = new Map<string, string>(listing.skipped.map((s) => [s.name, s.reason]));
      for (const extra of listing.files.slice(this.opts.maxFiles)) skipped.set(extra.name, "too_many_files");
      this.reportSkipped(skipped);
      // Forget deleted files first, so the series they held count as free budget for the others.
      const listed = new Set(candidates.map((c) => c.name));
      for (const name of [...this.files.keys()]) if (!listed.has(name)) this.forget(name);
      for (const c of candidates) {
        const parsesBefore = this.parses;
        if (!(await this.visit(c, fs))) this.forget(c.name);
        if (this.parses !== parsesBefore) this.opts.afterParse?.();
      }
    }

    this.expireStale();
    const servable = [...this.files.values()].filter((s) => s.good !== undefined);
    // The incumbent wins a conflict: files already served come first, in the order they got in;
    // newcomers after them, by name (which decides among files that arrive together, as at start).
    servable.sort((a, b) => {
      const sa = a.servedSince ?? Number.POSITIVE_INFINITY;
      const sb = b.servedSince ?? Number.POSITIVE_INFINITY;
      if (sa !== sb) return sa - sb;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
    const signature = servable.map((s) => `${s.name}\0${s.good?.version}`).join("\n");
    const changed = signature !== this.signature;
    if (changed) {
      this.signature = signature;
      this.merged = mergeFiles(
        servable.map((s) => ({ file: s.name, families: s.good?.families ?? [] })),
        this.opts.ownFamilies(),
      );
      for (const s of servable) {
        if (!this.merged.included.has(s.name)) s.servedSince = undefined;
        else s.servedSince ??= ++this.servedSeq;
      }
      this.m.series.set(this.merged.series);
      this.m.families.set(this.merged.families.length);
    }
    this.reportFiles();
    this.m.collections.inc();
    this.m.lastCollection.set(this.now() / 1000);
    endTimer();
    return { changed, families: this.merged.families, series: this.merged.series };
  }

  /**
   * The ScanFs for the directory's file system: synchronous calls on a memory-backed one (the
   * pod's emptyDir with `medium: Memory`), the thread pool otherwise (scan.ts). Told by an
   * asynchronous statfs (a hung mount must not stop the process), once; while the directory cannot
   * be looked at, the thread pool and another try next time.
   */
  private async chooseFs(): Promise<ScanFs> {
    try {
      const memory = isMemoryFsType((await statfs(this.opts.dir)).type);
      this.fs = memory ? syncScanFs : asyncScanFs;
      this.log.debug(
        { dir: this.opts.dir, calls: this.fs === syncScanFs ? "synchronous" : "thread pool" },
        memory ? "metrics directory on a memory-backed file system" : "metrics directory on disk or network",
      );
      return this.fs;
    } catch {
      return asyncScanFs;
    }
  }

  /** Look at one candidate; false when it vanished before it could be looked at. */
  private async visit(c: Candidate, fs: ScanFs): Promise<boolean> {
    const st = await statFile(c.path, fs);
    if (!st.ok) {
      if (st.code === "ENOENT") return false;
      const state = this.stateOf(c.name);
      const version = `stat-error:${st.code}`;
      if (state.version !== version) {
        this.reject(state, version, state.mtimeMs, {
          reason: "read_error",
          line: 0,
          message: `${st.code}: ${st.message}`,
        });
      }
      return true;
    }
    const state = this.stateOf(c.name);
    const version = versionOf(st.stats);
    const others = this.storedTotals(state);
    const blocked = state.error && TOTAL_CAPS.has(state.error.reason) ? state.blockedAtStored : undefined;
    const budgetFreed =
      blocked !== undefined &&
      (others.series < blocked.series || others.families < blocked.families || others.bytes < blocked.bytes);
    if (version === state.version && !budgetFreed) return true;
    const mtimeMs = st.stats.mtimeMs;

    if (this.isStale(mtimeMs)) {
      // Not worth parsing: it would be dropped at once. Counts as stale, not as an error.
      state.version = version;
      state.mtimeMs = mtimeMs;
      state.error = undefined;
      if (state.good) this.dropStale(state);
      state.stale = true;
      return true;
    }
    if (st.stats.size > this.opts.maxFileBytes) {
      // Judged by stat alone: a huge file is never opened.
      this.reject(state, version, mtimeMs, {
        reason: "too_large",
        line: 0,
        message: `${st.stats.size} bytes > MAX_FILE_BYTES ${this.opts.maxFileBytes}`,
      });
      return true;
    }
    const read = await readCapped(c.path, this.opts.maxFileBytes, fs);
    if (!read.ok) {
      if (read.stats === undefined && read.message.startsWith("ENOENT")) return false;
      const v = read.stats ? versionOf(read.stats) : version;
      const reason: FileErrorReason = read.reason === "too_large" ? "too_large" : "read_error";
      this.reject(state, v, read.stats?.mtimeMs ?? mtimeMs, { reason, line: 0, message: read.message });
      return true;
    }
    const readVersion = versionOf(read.stats);
    const readMtime = read.stats.mtimeMs;
    const text = decodeUtf8(read.bytes);
    if (text === undefined) {
      this.reject(state, readVersion, readMtime, {
        reason: "invalid_utf8",
        line: 0,
        message: "not valid UTF-8",
      });
      return true;
    }
    const bytesOver = (bytes: number) => {
      if (others.bytes + bytes <= this.opts.maxTotalBytes) return false;
      this.reject(state, readVersion, readMtime, {
        reason: "total_bytes_cap",
        line: 0,
        message: `${bytes} bytes (HELP counted ${HELP_WEIGHT}×) + ${others.bytes} of the other files > MAX_TOTAL_BYTES ${this.opts.maxTotalBytes}`,
      });
      state.blockedAtStored = others;
      return true;
    };
    if (bytesOver(read.bytes.length)) return true;
    const budget = Math.max(0, this.opts.maxTotalSeries - others.series);
    const perFileBinds = this.opts.maxSeriesPerFile <= budget;
    this.m.fileParses.inc();
    this.parses++;
    const parsed = await parseTextAsync(text, {
      maxSeries: perFileBinds ? this.opts.maxSeriesPerFile : budget,
      seriesLimitReason: perFileBinds ? "too_many_series" : "total_series_cap",
      maxLabels: this.opts.maxLabelsPerSeries,
      maxFamilies: Math.max(0, this.opts.maxFamilies - others.families),
      maxHelpBytes: Math.floor((this.opts.maxTotalBytes - others.bytes - read.bytes.length) / HELP_WEIGHT),
    });
    if (!parsed.ok) {
      this.reject(state, readVersion, readMtime, parsed.error);
      if (TOTAL_CAPS.has(parsed.error.reason)) state.blockedAtStored = others;
      return true;
    }
    const cost = read.bytes.length + HELP_WEIGHT * parsed.helpBytes;
    if (bytesOver(cost)) return true;
    if (state.error) this.log.info({ file: c.name, series: parsed.series }, "file accepted again");
    state.version = readVersion;
    state.mtimeMs = readMtime;
    state.error = undefined;
    state.blockedAtStored = undefined;
    state.stale = false;
    state.good = {
      families: parsed.families,
      series: parsed.series,
      bytes: cost,
      mtimeMs: readMtime,
      version: readVersion,
    };
    return true;
  }

  private reject(state: FileState, version: string, mtimeMs: number, error: FileError): void {
    state.version = version;
    state.mtimeMs = mtimeMs;
    state.error = error;
    state.blockedAtStored = undefined;
    state.errorReasons.add(error.reason);
    this.m.fileErrors.inc({ file: state.name, reason: error.reason });
    const limit = LIMIT_OF[error.reason];
    if (limit) this.m.limitHits.inc({ limit });
    this.log.warn(
      {
        file: state.name,
        line: error.line || undefined,
        reason: error.reason,
        err: error.message,
        servingLastGood: state.good !== undefined,
      },
      "file rejected",
    );
  }

  private stateOf(name: string): FileState {
    let s = this.files.get(name);
    if (!s) {
      s = {
        name,
        version: undefined,
        mtimeMs: 0,
        error: undefined,
        good: undefined,
        stale: false,
        blockedAtStored: undefined,
        conflict: undefined,
        servedSince: undefined,
        errorReasons: new Set(),
      };
      this.files.set(name, s);
    }
    return s;
  }

  /** Adds the memory behind every kept file version's sample lines (for the reclaimer). */
  retainedMemory(into: Set<ArrayBufferLike>): void {
    for (const s of this.files.values()) for (const f of s.good?.families ?? []) into.add(f.lines.buffer);
  }

  /** What the served versions of every file but `except` hold. */
  private storedTotals(except: FileState): Totals {
    const t: Totals = { series: 0, families: 0, bytes: 0 };
    for (const s of this.files.values()) {
      if (s === except || !s.good) continue;
      t.series += s.good.series;
      t.families += s.good.families.length;
      t.bytes += s.good.bytes;
    }
    return t;
  }

  private isStale(mtimeMs: number): boolean {
    return this.opts.staleAfterMs > 0 && this.now() - mtimeMs > this.opts.staleAfterMs;
  }

  private expireStale(): void {
    for (const s of this.files.values()) if (s.good && this.isStale(s.good.mtimeMs)) this.dropStale(s);
  }

  private dropStale(s: FileState): void {
    this.log.warn(
      {
        file: s.name,
        mtime: new Date(s.good?.mtimeMs ?? 0).toISOString(),
        staleAfterMs: this.opts.staleAfterMs,
      },
      "file not rewritten for STALE_AFTER_MS; dropped from the output",
    );
    s.good = undefined;
    s.servedSince = undefined;
    s.stale = true;
    this.m.filesDropped.inc({ reason: "stale" });
  }

  /** A file that disappeared: drop its data and its per-file series. */
  private forget(name: string): void {
    const s = this.files.get(name);
    if (!s) return;
    this.files.delete(name);
    if (s.good) {
      this.m.filesDropped.inc({ reason: "deleted" });
      this.log.info({ file: name }, "file deleted; dropped from the output");
    }
    for (const g of [
      this.m.fileOk,
      this.m.fileMtime,
      this.m.fileSeries,
      this.m.fileStale,
      this.m.fileRejected,
    ]) {
      g.remove({ file: name });
    }
    for (const reason of s.errorReasons) this.m.fileErrors.remove({ file: name, reason });
    if (s.conflict) this.m.fileConflict.remove({ file: name, reason: s.conflict.reason });
  }

  private reportSkipped(now: Map<string, string>): void {
    for (const [name, reason] of now) {
      if (this.skipped.get(name) === reason) continue;
      this.m.filesSkipped.inc({ reason });
      if (reason === "too_many_files") this.m.limitHits.inc({ limit: "max_files" });
      this.log.warn({ file: name, reason }, "file skipped");
    }
    this.skipped = now;
  }

  private reportFiles(): void {
    for (const s of this.files.values()) {
      const file = s.name;
      const included = this.merged.included.has(file) && s.good !== undefined;
      this.m.fileOk.set({ file }, included ? 1 : 0);
      this.m.fileMtime.set({ file }, s.mtimeMs / 1000);
      this.m.fileSeries.set({ file }, included ? (s.good?.series ?? 0) : 0);
      this.m.fileStale.set({ file }, s.stale ? 1 : 0);
      this.m.fileRejected.set({ file }, s.error ? 1 : 0);
      const conflict = s.good ? this.merged.excluded.get(file) : undefined;
      if (conflict?.reason !== s.conflict?.reason || conflict?.family !== s.conflict?.family) {
        if (s.conflict) this.m.fileConflict.remove({ file, reason: s.conflict.reason });
        if (conflict) {
          this.m.fileConflict.set({ file, reason: conflict.reason }, 1);
          this.m.conflicts.inc({ reason: conflict.reason });
          this.log.warn(
            {
              file,
              reason: conflict.reason,
              family: conflict.family,
              with: conflict.with,
              err: conflict.message,
            },
            "file left out: conflicts with a file already served (the incumbent keeps its place; files arriving together: name order)",
          );
        } else if (s.conflict) {
          this.log.info({ file }, "conflict resolved; file merged");
        }
        s.conflict = conflict;
      }
    }
  }
}
