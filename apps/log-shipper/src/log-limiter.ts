// Keeps the shipper's own log readable when the same thing keeps happening: during a long 429
// storm or with a misconfigured credential every batch fails the same way, and one log line per
// batch would flood `kubectl logs`. The first occurrence of a kind is logged, repeats of the same
// kind within `intervalMs` are counted, and the next line that is logged says how many were held
// back since the previous logged one (`suppressed`). A different kind is always logged at once.
export class LogLimiter {
  private lastKey: string | undefined;
  private lastLoggedMs = 0;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether to log an event of kind `key` now. When true, `take()` gives the number of events
   * suppressed since the last logged one (to put in the line).
   */
  shouldLog(key: string): boolean {
    const now = this.now();
    if (key !== this.lastKey || now - this.lastLoggedMs >= this.intervalMs) {
      this.lastKey = key;
      this.lastLoggedMs = now;
      return true;
    }
    this.suppressed++;
    return false;
  }

  /** Suppressed count since the last logged event; resets it. */
  take(): number {
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }

  /** Forget the current kind (e.g. after recovery), so the next event is logged at once. */
  reset(): void {
    this.lastKey = undefined;
  }
}
