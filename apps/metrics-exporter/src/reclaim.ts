// Frees superseded collections promptly. Each changed collection replaces megabytes of sample-line
// buffers and deflated bodies (100k series: ≈ 9 MB of lines, ≈ 1 MB deflated per format). The
// small objects holding them have lived through a collection interval, so they sit in V8's old
// generation, and V8 only starts a full collection when the old generation grows or external
// memory has grown by its own threshold (about 64 MiB) — so up to that much dead buffer memory
// piled up in RSS, well into the sidecar's 128Mi. After a collection, when the process holds more
// ArrayBuffer memory than the exposition accounts for by `slackBytes`, one full GC (a few ms on
// this small heap, at most once per collection) returns it.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface ReclaimerOptions {
  /** ArrayBuffer bytes the exposition knows to be live (sample lines, cached bodies). */
  readonly liveBytes: () => number;
  /** Dead buffer memory tolerated before a full GC: at most this much… */
  readonly slackBytes: number;
  /** …and at least this much, but no more than the live buffers themselves (small pods stay small). */
  readonly minSlackBytes?: number;
  /** Current ArrayBuffer memory of the process (tests inject it). */
  readonly arrayBufferBytes?: () => number;
  /** Runs a full GC (tests inject it). */
  readonly gc?: () => void;
}

export interface Reclaimer {
  /** Call after a collection: runs a full GC when dead buffers exceed the slack. */
  check(): boolean;
  /** Full GCs run so far. */
  readonly runs: number;
}

let exposedGc: (() => void) | undefined;

/**
 * V8's `gc()`, without starting Node with --expose-gc: the flag set at run time applies to
 * contexts created afterwards, and a fresh context hands its `gc` function back.
 */
function fullGc(): () => void {
  if (!exposedGc) {
    setFlagsFromString("--expose-gc");
    exposedGc = runInNewContext("gc") as () => void;
  }
  return exposedGc;
}

export function createReclaimer(opts: ReclaimerOptions): Reclaimer {
  const arrayBufferBytes = opts.arrayBufferBytes ?? (() => process.memoryUsage().arrayBuffers);
  let runs = 0;
  return {
    check(): boolean {
      const live = opts.liveBytes();
      const slack = Math.min(opts.slackBytes, Math.max(opts.minSlackBytes ?? opts.slackBytes, live));
      if (arrayBufferBytes() - live <= slack) return false;
      (opts.gc ?? fullGc())();
      runs++;
      return true;
    },
    get runs() {
      return runs;
    },
  };
}
