// The bound on open descriptors (MAX_OPEN_FILES). Every reader counts itself in `open` as it
// opens and closes (FileReader keeps it up to date). At the bound, the quietest files that are
// fully read (and neither held nor holding copies) are closed to make room — they are reopened
// when they change; when none can be, the new path waits and is looked at again by the next poll.
//
// Invariants: `open.n` is the number of readers holding a descriptor and `open.readers` those
// readers; a path that could not be opened is in the waiting set until the next poll takes it;
// the first wait of an episode is logged once, and so is its end.
import type { Log as Logger } from "@sidecar/shared";
import type { FileReader, OpenFiles } from "./reader.js";
import type { SourceMetrics } from "./source-metrics.js";

export interface OpenFileBoundOptions {
  max: number;
  logger: Logger;
  metrics?: SourceMetrics;
  /** Whether copies are held for `r` (copy-holding.ts): then it stays open. */
  holdsCopies: (r: FileReader) => boolean;
  /** Called each time a reader opens its file. */
  onOpen?: () => void;
}

export class OpenFileBound {
  /** Open descriptors of all readers, and those readers. */
  readonly open: OpenFiles & Required<Pick<OpenFiles, "readers">>;
  /** Paths waiting for a free descriptor. */
  private readonly waiting = new Set<string>();
  /** The bound was reached and not yet relieved (logged once per episode). */
  private atLimit = false;
  /** At the bound with no file to close; cleared by the next read (see chunkRead). */
  private blocked = false;

  constructor(private readonly opts: OpenFileBoundOptions) {
    this.open = { n: 0, readers: new Set(), ...(opts.onOpen !== undefined ? { opened: opts.onOpen } : {}) };
  }

  /** Whether a path waits for a descriptor (the poll looks at it again). */
  get hasWaiting(): boolean {
    return this.waiting.size > 0;
  }

  /**
   * Whether one more file may be opened. At the bound, the quietest file that is fully read and
   * not held is closed to make room; when there is none, `path` waits (see takeWaiting) and the
   * first wait of an episode is logged.
   */
  async roomFor(path: string): Promise<boolean> {
    const max = this.opts.max;
    if (this.open.n < max) return true;
    if (this.blocked) {
      // Nothing could be closed, and nothing was read since: do not look again for every path.
      this.waiting.add(path);
      return false;
    }
    // Close an eighth of the bound at once (the quietest first), so that a stream of new files
    // costs one pass over the open files per many opens, not one per open.
    const closable: FileReader[] = [];
    for (const r of this.open.readers) {
      if (r.fd === null || r.queued || r.holdFor !== null || this.opts.holdsCopies(r) || r.hasUnread)
        continue;
      if (!r.splitter.inLongLine) closable.push(r);
    }
    if (closable.length > 0) {
      closable.sort((a, b) => a.lastGrowthAt - b.lastGrowthAt);
      for (const r of closable.slice(0, Math.max(1, max >> 3))) await r.closeFd();
      return true;
    }
    this.blocked = true;
    this.waiting.add(path);
    this.opts.metrics?.openLimitWaits.inc();
    if (!this.atLimit) {
      this.atLimit = true;
      this.opts.logger.warn(
        { event: "open_limit", maxOpenFiles: max, path },
        "MAX_OPEN_FILES reached and every open file still has unread lines; new files wait until one is read",
      );
    }
    return false;
  }

  /** A chunk was read: an open file may have become closable. */
  chunkRead(): void {
    this.blocked = false;
  }

  /**
   * The paths that waited for a descriptor, to look at again (the poll). When none waited and
   * the bound is no longer reached, the episode is over (logged).
   */
  takeWaiting(): string[] {
    if (this.waiting.size > 0) {
      const paths = [...this.waiting];
      this.waiting.clear();
      return paths;
    }
    if (this.atLimit && this.open.n < this.opts.max) {
      this.atLimit = false;
      this.opts.logger.info(
        { event: "open_limit_relieved", open: this.open.n },
        "below MAX_OPEN_FILES again",
      );
    }
    return [];
  }
}
