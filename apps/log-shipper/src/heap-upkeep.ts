// Old-generation upkeep: the shipper asks V8 for a major GC once its old generation has grown by
// UPKEEP_GROWTH_BYTES since the last one, instead of waiting for V8's own limit.
//
// Under steady load a few tens of KB a second survive two scavenges and die in the old generation
// (batches and their requests outlive a scavenge or two; 20–31 KB/s at 50k lines/s). V8 collects
// the old generation only once it reaches a limit set well above the live heap: in runs at that
// rate the old space grew from ~5 to 10–11 MiB before a major GC, the first one coming after
// 200 s or later. The pages touched meanwhile stay resident: on Node 24 with the image's settings
// the peak went from 63.6 MiB in the first 20 s to 69–73 MiB after a few minutes (issue 12). V8's
// memory reducer, which collects early, runs only when the allocation rate is low — never for a
// shipper that is busy. Measured at 50k lines/s: with a major GC per MiB (about one a minute)
// the peak was 65.7 MiB over 240 s and 66.0 over 180 s (69.2 over 240 s without), CPU 1.11 and
// 1.13 s per million lines (1.08 without): a mark-compact of a ~10 MB heap is a few milliseconds,
// and it is asked for as `async` (incremental, concurrent marking) so it does not stop reading.
//
// V8's `gc()` is only reachable with --expose-gc, which applies to contexts created after it is
// set: the flag is set for one vm context, whose `gc` is kept, and set back. (A context costs
// ~0.3 MiB.)
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Growth of the old generation (used bytes) that earns a major GC. */
export const UPKEEP_GROWTH_BYTES = 1024 * 1024;
/** How often the old generation's size is read (one call, ~13 small objects). */
export const UPKEEP_CHECK_MS = 5000;

export type MajorGc = () => void;

/** The bytes used in V8's old generation: every space but the young ones. */
export function oldGenerationUsed(): number {
  let used = 0;
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name !== "new_space" && s.space_name !== "new_large_object_space") used += s.space_used_size;
  }
  return used;
}

/** V8's gc(), asking for an incremental major GC. */
export function exposeMajorGc(): MajorGc {
  const own = (globalThis as { gc?: unknown }).gc;
  let gc: unknown = own;
  if (typeof gc !== "function") {
    setFlagsFromString("--expose-gc");
    try {
      gc = runInNewContext("gc");
    } finally {
      setFlagsFromString("--no-expose-gc");
    }
  }
  if (typeof gc !== "function") throw new Error("V8's gc() is not available");
  const collect = gc as (opts?: { type: string; execution: string }) => void;
  return () => collect({ type: "major", execution: "async" });
}

/**
 * The policy, apart from the timer: `check()` reads the old generation and asks for a major GC
 * when it has grown by `growth` since the lowest size seen after the last one (V8's own major GCs
 * lower that baseline too). After asking, the next check takes whatever it finds as the baseline,
 * so a heap that grows because it holds more (more files, more streams) costs one GC per `growth`
 * of it, not one per check.
 */
export class HeapUpkeep {
  private baseline = Number.POSITIVE_INFINITY;
  /** Major GCs asked for. */
  collections = 0;

  constructor(
    private readonly read: () => number,
    private readonly gc: MajorGc,
    private readonly growth = UPKEEP_GROWTH_BYTES,
  ) {}

  check(): void {
    const used = this.read();
    if (used < this.baseline) {
      this.baseline = used;
      return;
    }
    if (used - this.baseline >= this.growth) {
      this.gc();
      this.collections++;
      this.baseline = Number.POSITIVE_INFINITY;
    }
  }
}

/** Start the upkeep on an unref()ed timer; returns how to stop it. */
export function startHeapUpkeep(everyMs = UPKEEP_CHECK_MS): { upkeep: HeapUpkeep; stop(): void } {
  const upkeep = new HeapUpkeep(oldGenerationUsed, exposeMajorGc());
  const timer = setInterval(() => upkeep.check(), everyMs);
  timer.unref();
  return { upkeep, stop: () => clearInterval(timer) };
}
