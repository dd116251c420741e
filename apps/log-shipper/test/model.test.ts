// A randomized model test on real files (seeded; the seed is printed, SEED=<n> replays a run):
// writes (sometimes splitting a line across writes), rename rotation (with the writer adding a
// last line to the renamed file), copytruncate, truncation, deletion and shipper restarts
// (graceful, or abrupt: no drain, like a crash after the last positions save) are interleaved
// with the shipper running in-process against the fake Loki.
//
// What "every line" means here, exactly: every complete line the model wrote must arrive. The
// model never destroys unread data on purpose — before an operation that would (truncate,
// delete, a rotation that replaces the oldest rotated file) it waits until every line written
// so far has arrived — so nothing is exempt. Per-file order: for each physical file generation,
// the first arrivals of its lines are in the order they were written. Duplicates are allowed
// only in runs with an abrupt restart (at least once), and must be absent otherwise (every other
// run restarts only gracefully, so exactly-once is checked too) — in every variant.
//
// Every other six seeds (floor(seed / 6) % 2 = 1; not the fixed seeds listed before this was
// added, which keep the configuration they found their bugs in) the shipper closes a file after
// 250 ms without growth instead of a minute, and polls every 1.5 s while none is open: files are
// closed and reopened by the next write throughout the run, as quiet files are in a pod.
// Variants by seed (seed % 3): plain; every file generation starting with the same banner line
// (identity by first line alone cannot tell them apart); and the banner plus back-pressure — a
// small MAX_BUFFER_BYTES, a slow Loki, bursts, and truncate-and-rewrite while reading is paused
// (the lines truncated away before they were read are the only ones exempt from arriving; the
// banner line itself is not checked, as every generation has it). Every run also does "copy now,
// truncate later" (copytruncate with the writer appending in between, the copy sometimes
// catching up — also across restarts, and also of a file just truncated to empty, whose copy is
// then found before it). Deleted files free their inode numbers, which new files and copies reuse.
// MODEL_DEBUG=1 traces what was read, the ops and the shipper's file events, printed around the
// first missing or duplicated lines.
import { appendFileSync, copyFileSync, existsSync, renameSync, truncateSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { buildTestApp, type Dirs, tempDirs } from "./support/app-harness.js";
import { startFakeLoki } from "./support/fake-loki.js";
import { lokiSinkNamed } from "./support/loki-harness.js";
import { type Rng, seededRng, testSeed } from "./support/random.js";

const MAX_ROTATED = 3;
const BANNER = "=== service starting ===";

interface Written {
  gen: number;
  seq: number;
}

class Model {
  private gen = 0;
  private seq = 0;
  /** Line text → where it was written. */
  readonly written = new Map<string, Written>();
  /** Half of the next line, already on disk without its newline. */
  private partialRest: string | null = null;
  private partialText: string | null = null;
  /** Generation of the file currently at app.log (null = no file). */
  private liveGen: number | null = null;
  readonly ops: string[] = [];
  /** Lines destroyed before they could be read (truncated while reading was paused). */
  readonly optional = new Set<string>();
  /** The next write starts a new file generation (writes the banner first in banner runs). */
  private fresh = true;
  /** A copy made by "copy now, truncate later", still mirroring the live file's writes (cp running). */
  private copyPath: string | null = null;
  private mirror = false;

  constructor(
    private readonly dir: string,
    private readonly rng: Rng,
    private readonly banner: boolean,
  ) {}

  get copying(): boolean {
    return this.copyPath !== null;
  }

  private appendLive(out: string): void {
    appendFileSync(this.live, out);
    if (this.mirror && this.copyPath !== null) appendFileSync(this.copyPath, out);
  }

  get live(): string {
    return join(this.dir, "app.log");
  }

  private rotated(n: number): string {
    return join(this.dir, `app.log.${n}`);
  }

  private nextLine(): string {
    if (this.liveGen === null) {
      this.liveGen = ++this.gen;
      this.fresh = true;
    }
    const text = `g${this.liveGen}-s${this.seq++}-${"x".repeat(this.rng.int(0, 120))}`;
    this.written.set(text, { gen: this.liveGen, seq: this.seq });
    return text;
  }

  write(n: number): void {
    if (this.mirror && this.rng.chance(0.4)) {
      // cp finishes: the copy ends at a line end, a prefix of the live file.
      if (this.partialRest !== null && this.copyPath !== null)
        appendFileSync(this.copyPath, this.partialRest);
      this.mirror = false;
    }
    let out = "";
    if (this.liveGen === null || this.fresh) {
      if (this.liveGen === null) this.liveGen = ++this.gen;
      if (this.banner) out += `${BANNER}\n`;
      this.fresh = false;
    }
    if (this.partialRest !== null) {
      out += this.partialRest;
      this.partialRest = null;
      this.partialText = null;
    }
    for (let i = 0; i < n; i++) out += `${this.nextLine()}\n`;
    if (this.rng.chance(0.3)) {
      // Leave the next line half written; its rest comes with the next write.
      const text = this.nextLine();
      const cut = this.rng.int(1, text.length);
      out += text.slice(0, cut);
      this.partialRest = `${text.slice(cut)}\n`;
      this.partialText = text;
    }
    this.appendLive(out);
    this.ops.push(`write ${n}`);
  }

  /** Finish a half-written line (before anything that moves or cuts the live file). */
  completePartial(): void {
    if (this.partialRest !== null) {
      this.appendLive(this.partialRest);
      this.partialRest = null;
      this.partialText = null;
    }
  }

  /** Lines expected to have arrived: every complete line written (not the half-written one). */
  expected(): string[] {
    return [...this.written.keys()].filter((t) => t !== this.partialText && !this.optional.has(t));
  }

  /** Whether shifting rotated files would replace (delete) the oldest one. */
  shiftDestroys(): boolean {
    return existsSync(this.rotated(MAX_ROTATED));
  }

  private shift(): void {
    for (let i = MAX_ROTATED - 1; i >= 1; i--) {
      if (existsSync(this.rotated(i))) renameSync(this.rotated(i), this.rotated(i + 1));
    }
  }

  renameRotate(): void {
    this.completePartial();
    if (this.liveGen === null) return;
    this.shift();
    renameSync(this.live, this.rotated(1));
    const gen = this.liveGen;
    this.liveGen = null;
    if (this.rng.chance(0.5)) {
      // The writer's last line lands in the renamed file before it reopens.
      const text = `g${gen}-s${this.seq++}-late`;
      this.written.set(text, { gen, seq: this.seq });
      appendFileSync(this.rotated(1), `${text}\n`);
    }
    this.ops.push("rename-rotate");
  }

  copyTruncate(): void {
    this.completePartial();
    if (this.liveGen === null) return;
    this.shift();
    copyFileSync(this.live, this.rotated(1));
    truncateSync(this.live, 0);
    // The copy keeps the original's lines; the live file starts a new generation.
    this.liveGen = ++this.gen;
    this.fresh = true;
    this.ops.push("copytruncate");
  }

  /** copytruncate's first half: the copy is made (and may keep copying) while the writer writes on. */
  copyStart(): void {
    this.completePartial();
    if (this.liveGen === null) return;
    this.shift();
    this.copyPath = this.rotated(1);
    copyFileSync(this.live, this.copyPath);
    this.mirror = this.rng.chance(0.6);
    this.ops.push("copy");
  }

  /** … and its second half, later: the live file is truncated. */
  copyFinish(): void {
    this.completePartial();
    this.mirror = false;
    this.copyPath = null;
    truncateSync(this.live, 0);
    this.liveGen = ++this.gen;
    this.fresh = true;
    this.ops.push("truncate-after-copy");
  }

  /** A restart stops a running cp (a copy still growing across a restart is not modelled). */
  stopMirror(): void {
    if (this.mirror && this.partialRest !== null && this.copyPath !== null) {
      appendFileSync(this.copyPath, this.partialRest);
    }
    this.mirror = false;
  }

  /**
   * Truncate and write a new generation at once, without waiting for the old one to be read (it
   * may be paused by back-pressure): what was not read yet is gone, so it becomes optional.
   */
  truncateRewrite(arrived: ReadonlySet<string>, n: number): void {
    this.completePartial();
    if (this.liveGen === null) return;
    const gen = this.liveGen;
    for (const [t, w] of this.written) if (w.gen === gen && !arrived.has(t)) this.optional.add(t);
    truncateSync(this.live, 0);
    this.liveGen = ++this.gen;
    this.fresh = true;
    this.ops.push("truncate-rewrite");
    this.write(n);
  }

  truncate(): void {
    this.completePartial();
    if (this.liveGen === null) return;
    truncateSync(this.live, 0);
    this.liveGen = ++this.gen;
    this.fresh = true;
    this.ops.push("truncate");
  }

  delete(): void {
    this.completePartial();
    const candidates = [this.live, ...[1, 2, 3].map((n) => this.rotated(n))].filter((p) => existsSync(p));
    if (candidates.length === 0) return;
    const victim = this.rng.pick(candidates);
    unlinkSync(victim);
    if (victim === this.live) this.liveGen = null;
    this.ops.push(`delete ${victim.slice(this.dir.length + 1)}`);
  }
}

/**
 * 1000044: a new file taken for rotated (a rescan listing older than it), its half line shipped.
 * 1000087, 1000317, 1000357: a copy ahead of the live file by a line end, roles swapped and swapped
 * back across restarts: the line twice. 1000133: a copytruncate copy missing acknowledgements that
 * came while it was set up: read again after a restart. 1000313: a closed rotated file renamed
 * again, forgotten and read again from 0.
 * 2000047, 2000068 (under a 200m CPU cgroup): a copytruncate copy on the inode of a deleted file
 * whose saved entry proved nothing (offset 0) resumed there, not recognised as the copy of its
 * truncated original: its lines twice (2000068 failed first with the copy-ahead case of 1000087).
 * 3489316589: a fragment of a line under CPU pressure (a file truncated and written again between
 * the identity check and the read, and between a restart's check of a saved offset and reading
 * the bytes before it), and a copy taken for a renamed file when its inode number was reused.
 * 2960237189 … 2960237194: the previous fixed range (2960237189-203 found the held-banner case),
 * one of each kind × variant.
 */
const REGRESSION_SEEDS = [
  1000044, 1000087, 1000133, 1000313, 1000317, 1000357, 2000047, 2000068, 3489316589, 2960237189, 2960237190,
  2960237191, 2960237192, 2960237193, 2960237194,
];

/** The fan-out runs' seeds (the describe below): one per kind × variant. */
const FANOUT_SEEDS = [4000001, 4000002, 4000003, 4000004, 4000005, 4000006];

/**
 * Seeds 5000010 … 5000015: quiet files closed (see the header), one of each kind × variant.
 * 5000013 (about one run in ten with both cores busy): a copytruncate copy on the inode of a
 * deleted file whose reader was closed, its original truncated before the copy was looked at —
 * taken for that file truncated in place and read from 0, its lines twice.
 */
const CLOSING_SEEDS = [5000010, 5000011, 5000012, 5000013, 5000014, 5000015];

/** The test title's note for seeds whose runs close quiet files (see the header); "" for others. */
function closing(seed: number): string {
  if (REGRESSION_SEEDS.includes(seed) || FANOUT_SEEDS.includes(seed)) return "";
  return Math.floor(seed / 6) % 2 === 1 ? ", quiet files closed" : "";
}

async function runModel(seed: number, fanout: boolean): Promise<void> {
  // Kind and variant follow from the seed, so SEED=<seed> MODEL_RUNS=1 replays a run exactly.
  const gracefulOnly = seed % 2 === 1;
  const variant = (["plain", "banner", "banner + back-pressure"] as const)[seed % 3] ?? "plain";
  const closesQuietFiles = closing(seed) !== "";
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    console.log(`model test seed=${seed} (replay: SEED=${seed} MODEL_RUNS=1)`);
    const rng = seededRng(seed);
    const dirs: Dirs = tempDirs("model-");
    const arrived = new Set<string>();
    const loki = await startFakeLoki({ store: "lines", onEntry: (e) => arrived.add(e.line) });
    cleanup.push(() => loki.close());
    // With fan-out, a second destination ("otlp", another fake Loki) fails or is slow at random,
    // driven by its own generator so the ops of a seed are the same as without it.
    const arrivedB = new Set<string>();
    const lokiB = fanout
      ? await startFakeLoki({ store: "lines", onEntry: (e) => arrivedB.add(e.line) })
      : undefined;
    if (lokiB) cleanup.push(() => lokiB.close());
    const rngB = seededRng((seed ^ 0x5bd1e995) >>> 0);
    const pressure = variant === "banner + back-pressure";
    const env: Record<string, string> = { LOKI_ENDPOINT: loki.url, BATCH_WAIT_MS: String(rng.int(5, 80)) };
    if (pressure) Object.assign(env, { MAX_BUFFER_BYTES: "65536", BATCH_MAX_BYTES: "8192" });
    const model = new Model(dirs.logs, rng, variant !== "plain");
    const trace: string[] = [];
    let opsTraced = 0;
    // Fresh sinks for every start: close() releases a sink's connections for good.
    const depsOf = () => ({
      ...(lokiB
        ? {
            destinations: [
              { sink: lokiSinkNamed(loki, "loki"), whenFull: "block" as const },
              { sink: lokiSinkNamed(lokiB, "otlp"), whenFull: "block" as const },
            ],
          }
        : {}),
      ...(closesQuietFiles ? { tailerClocks: { idleCloseMs: 250, quietPollMs: 1500 } } : {}),
    });
    const build = () => {
      const deps = depsOf();
      if (!process.env.MODEL_DEBUG) return buildTestApp(dirs, env, undefined, deps);
      // Debugging aid: the shipper's file events go into the trace too, in order.
      const sinkStream = {
        write(s: string) {
          const o = JSON.parse(s) as Record<string, unknown>;
          if (o.event !== undefined) {
            const { level: _l, time: _t, pid: _p, hostname: _h, service: _s, msg, ...rest } = o;
            trace.push(`EV ${msg} ${JSON.stringify(rest)}`);
          }
        },
      };
      const a = buildTestApp(dirs, env, pino({ level: "info" }, sinkStream), deps);
      {
        // Debugging aid: record what the source side hands to the sink.
        const orig = a.pipeline.writeLine.bind(a.pipeline);
        a.pipeline.writeLine = (f, b, st, en, off, tr, t) => {
          trace.push(`${f.id} ${f.path} ${off} ${b.toString("latin1", st, Math.min(en, st + 14))}`);
          orig(f, b, st, en, off, tr, t);
        };
      }
      return a;
    };
    let app = build();
    cleanup.push(async () => {
      await app.close(Date.now() + 2000);
    });
    await app.start();
    let abrupt = 0;
    const l = loki;

    /** Wait until every expected line arrived (distinct lines: duplicates do not count). */
    const allArrived = async (why: string, timeoutMs: number) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const missing = model
          .expected()
          .filter((t) => !arrived.has(t) || (lokiB !== undefined && !arrivedB.has(t)));
        if (missing.length === 0) return;
        if (Date.now() > until) {
          if (process.env.MODEL_DEBUG) {
            const m0 = missing[0]?.slice(0, 14) ?? "";
            const i = trace.findIndex((t) => t.endsWith(m0));
            console.log(
              `trace around ${m0} (index ${i}):\n${trace.slice(Math.max(0, i - 5), i + 5).join("\n")}`,
            );
            const gen = m0.split("-")[0];
            console.log(
              trace
                .filter((t) => t.includes(` ${gen}-`))
                .slice(-8)
                .join("\n"),
            );
            for (; opsTraced < model.ops.length; opsTraced++) trace.push(`OP ${model.ops[opsTraced]}`);
            console.log(
              `TRACE TAIL (ops, events)\n${trace
                .filter((t) => /^(OP|EV)/.test(t))
                .slice(-40)
                .join("\n")}`,
            );
          }
          throw new Error(
            `seed ${seed}: ${why}: ${missing.length} lines never arrived${lokiB ? ` (missing at loki: ${missing.filter((t) => !arrived.has(t)).length}, at otlp: ${missing.filter((t) => !arrivedB.has(t)).length})` : ""}, e.g. ${missing.slice(0, 5).join(" ")}; ` +
              `files: ${JSON.stringify(app?.tailer.files())}; ops: ${model.ops.join(", ")}`,
          );
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const quiesce = async (why: string) => {
      // A half-written line is completed first: it must be delivered before the data goes.
      model.completePartial();
      await allArrived(`before ${why}`, 60_000); // generous: both cores may be busy (nothing here is timed)
      // Arrived is not yet acknowledged: let the acknowledgement come back too.
      await new Promise((r) => setTimeout(r, 30));
    };

    const steps = rng.int(120, 200);
    for (let step = 0; step < steps; step++) {
      if (process.env.MODEL_DEBUG) {
        for (; opsTraced < model.ops.length; opsTraced++) trace.push(`OP ${model.ops[opsTraced]}`);
      }
      if (lokiB && rngB.chance(0.06)) {
        // The second destination: a few 503s (with or without Retry-After), or slowness.
        const f = rngB.int(0, 2);
        if (f === 0) lokiB.setFault({ kind: "status", status: 503, times: rngB.int(1, 8) });
        else if (f === 1)
          lokiB.setFault({ kind: "status", status: 429, retryAfter: "0", times: rngB.int(1, 4) });
        else lokiB.setFault({ kind: "slow", delayMs: rngB.int(20, 80), times: rngB.int(2, 8) });
      }
      const op = rng.next();
      if (model.copying) {
        // Between the copy and the truncate only writes, waits and restarts happen.
        if (op < 0.55) model.write(rng.int(1, 40));
        else if (op < 0.7) {
          await quiesce("the truncate after a copy");
          model.copyFinish();
        } else if (op < 0.75) {
          const r = await app.close(Date.now() + 15_000);
          expect(r.clean, `seed ${seed}: graceful restart not clean`).toBe(true);
          model.stopMirror();
          model.ops.push("restart");
          app = build();
          await app.start();
        } else await new Promise((r) => setTimeout(r, rng.int(0, 40)));
        continue;
      }
      if (pressure && op < 0.08) {
        // A burst past MAX_BUFFER_BYTES against a slow Loki, then maybe truncate-and-rewrite
        // while reading is paused.
        l.setFault({ kind: "slow", delayMs: rng.int(20, 60), times: rng.int(2, 6) });
        model.write(rng.int(600, 1500));
        await new Promise((r) => setTimeout(r, rng.int(0, 30)));
        if (rng.chance(0.6)) {
          model.truncateRewrite(arrived, rng.int(200, 1500));
        }
        continue;
      }
      if (op < 0.05) {
        if (model.shiftDestroys()) await quiesce("a copy replacing the oldest file");
        model.copyStart();
        continue;
      }
      if (op < 0.5) {
        model.write(rng.int(1, 40));
      } else if (op < 0.6) {
        if (model.shiftDestroys()) await quiesce("a rotation replacing the oldest file");
        model.renameRotate();
      } else if (op < 0.68) {
        if (model.shiftDestroys()) await quiesce("a copytruncate replacing the oldest file");
        model.copyTruncate();
      } else if (op < 0.73) {
        await quiesce("truncate");
        model.truncate();
      } else if (op < 0.78) {
        await quiesce("delete");
        model.delete();
      } else if (op < 0.83) {
        // Odd runs restart only gracefully: there, not a single line may arrive twice.
        const graceful = gracefulOnly || rng.chance(0.5);
        if (graceful) {
          // A graceful stop delivers what was complete; a half-written line stays for later.
          const r = await app.close(Date.now() + 15_000);
          expect(r.clean, `seed ${seed}: graceful restart not clean`).toBe(true);
        } else {
          abrupt++;
          await app.close(Date.now()); // no drain: like a crash after the last save
        }
        model.ops.push(graceful ? "restart" : "crash-restart");
        app = build();
        await app.start();
      } else {
        await new Promise((r) => setTimeout(r, rng.int(0, 40)));
      }
    }
    model.completePartial();
    await allArrived("at the end", 90_000);
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show up by now
    await app.close(Date.now() + 10_000);

    verify(loki.entries, "loki");
    if (lokiB) verify(lokiB.entries, "otlp");

    function verify(entries: readonly { line: string }[], destination: string): void {
      const seen = new Map<string, number>();
      const lastSeqOfGen = new Map<number, number>();
      let disorder: string | null = null;
      let unknown: string | null = null;
      for (const e of entries) {
        if (e.line === BANNER) continue; // every generation's first line in banner runs
        const w = model.written.get(e.line);
        if (w === undefined) {
          unknown ??= e.line;
          continue;
        }
        const n = (seen.get(e.line) ?? 0) + 1;
        seen.set(e.line, n);
        if (n > 1) continue; // order is judged on first arrivals
        const last = lastSeqOfGen.get(w.gen) ?? -1;
        if (w.seq < last) disorder ??= `${e.line} arrived after a later line of generation ${w.gen}`;
        lastSeqOfGen.set(w.gen, w.seq);
      }
      const missing = [...model.written.keys()].filter((t) => !seen.has(t) && !model.optional.has(t));
      const duplicates = [...seen.values()].filter((n) => n > 1).length;
      console.log(
        `seed ${seed}: ${model.written.size} lines (${model.optional.size} truncated before read), ${model.ops.length} ops, ${abrupt} crash-restarts, ${duplicates} duplicated`,
      );
      const ctx = `seed ${seed}, destination ${destination}; ops: ${model.ops.join(", ")}`;
      if (process.env.MODEL_DEBUG && unknown !== null) {
        // Debugging aid: where the line that was never written was read, with the ops and the
        // shipper's file events before it.
        for (; opsTraced < model.ops.length; opsTraced++) trace.push(`OP ${model.ops[opsTraced]}`);
        const at = trace.findIndex((t) => !/^(OP|EV)/.test(t) && !/ (g\d+-s\d+|===)/.test(t));
        console.log(
          `UNKNOWN ${unknown.slice(0, 40)} read at trace index ${at}:\n${trace
            .slice(Math.max(0, at - 80), at + 5)
            .join("\n")}`,
        );
      }
      expect(unknown, ctx).toBeNull();
      expect(missing.slice(0, 10), ctx).toEqual([]);
      expect(disorder, ctx).toBeNull();
      // Exactly-once: in every run without a crash-restart, in every variant — the banner shared by
      // all generations, rotation by rename and copytruncate, inode reuse after deletion and
      // graceful restarts must not make the shipper send a line twice.
      const twice = [...seen].filter(([, n]) => n > 1).map(([t]) => t.slice(0, 14));
      if (process.env.MODEL_DEBUG && twice.length > 0) {
        // Debugging aid: what was read of the first duplicated lines, with the ops and the
        // shipper's file events around them.
        const keys = twice.slice(0, 3).map((t) => t.split("-x")[0] as string);
        const mine = (t: string) => keys.some((k) => t.includes(` ${k}-`));
        console.log(`DUPTRACE\n${trace.filter(mine).join("\n")}`);
        const first = trace.findIndex(mine);
        const last = trace.findLastIndex(mine);
        console.log(
          `TRACE (ops, events, banners, those lines)\n${trace
            .slice(Math.max(0, first - 60), last + 20)
            .filter((t) => /^(OP|EV)/.test(t) || mine(t) || /app\.log[^ ]* \d+ ===/.test(t))
            .join("\n")}`,
        );
      }
      if (abrupt === 0) expect(twice.slice(0, 10), ctx).toEqual([]);
    }
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  }
}

describe("randomized model: write / rotate / copytruncate / truncate / delete / restart", () => {
  // Without SEED the suite runs a fixed list: every seed that ever found a bug, and one seed for
  // each of the six kind × variant combinations (seed % 2, seed % 3). Fresh seeds are explored by
  // the soak command (`pnpm soak`, scripts/soak.mjs), never here. SEED=<n> MODEL_RUNS=<k> runs
  // seeds n … n+k−1 instead (MODEL_FANOUT=1: with two destinations).
  const seeds =
    process.env.SEED !== undefined && process.env.SEED !== ""
      ? Array.from({ length: Number(process.env.MODEL_RUNS ?? 1) }, (_, i) => (testSeed(0) + i) >>> 0)
      : [...REGRESSION_SEEDS, ...CLOSING_SEEDS];
  const fanoutOnly = process.env.MODEL_FANOUT === "1";
  for (const [run, seed] of seeds.entries()) {
    const kind = seed % 2 === 1 ? "graceful restarts only" : "crashes too";
    const variant = (["plain", "banner", "banner + back-pressure"] as const)[seed % 3] ?? "plain";
    it.skipIf(fanoutOnly)(
      `run ${run} (seed ${seed}, ${kind}, ${variant}${closing(seed)})`,
      { timeout: 300_000 },
      () => runModel(seed, false),
    );
  }
});

/**
 * Two destinations, the second failing or slow at random (issue 9): in every graceful run each
 * destination gets every line exactly once; with crashes, at least once. One seed per kind × variant.
 */

describe("randomized model with two destinations, one failing or slow at random", () => {
  // SEED without MODEL_FANOUT=1 replays single-destination runs only: these are listed, skipped.
  const explore = process.env.SEED !== undefined && process.env.SEED !== "";
  const skip = explore && process.env.MODEL_FANOUT !== "1";
  const seeds = explore
    ? Array.from({ length: Number(process.env.MODEL_RUNS ?? 1) }, (_, i) => (testSeed(0) + i) >>> 0)
    : FANOUT_SEEDS;
  for (const [run, seed] of seeds.entries()) {
    const kind = seed % 2 === 1 ? "graceful restarts only" : "crashes too";
    const variant = (["plain", "banner", "banner + back-pressure"] as const)[seed % 3] ?? "plain";
    it.skipIf(skip)(
      `fan-out run ${run} (seed ${seed}, ${kind}, ${variant}${closing(seed)})`,
      { timeout: 300_000 },
      () => runModel(seed, true),
    );
  }
});
