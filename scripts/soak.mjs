#!/usr/bin/env node
// The log shipper's race hunt: many seeded runs of the randomized model test
// (apps/log-shipper/test/model.test.ts) in parallel, with CPU hogs on every core and, optionally,
// each run inside a CPU-limited cgroup like the sidecar's 200m box. The test suite itself only ever
// runs a fixed list of seeds; fresh random exploration belongs here.
//
//   pnpm soak                                  # 500 runs from a random base seed, hogs on every core
//   pnpm soak --runs=2000 --parallel=6         # longer
//   pnpm soak --cgroup=200                     # each worker in a 200m CPU cgroup (root, cgroup v1 or v2)
//   pnpm soak --seeds=3489316589 --repeat=50   # one seed again and again (timing differs every time)
//   pnpm soak --base=1000 --runs=100           # a reproducible range of seeds
//
// Each failing seed is printed with its failure and the path of its full output (MODEL_DEBUG=1
// traces: what was read, the ops and the shipper's file events); replay one with
//   SEED=<n> MODEL_RUNS=1 MODEL_DEBUG=1 npx vitest run apps/log-shipper/test/model.test.ts
// Exit code: 0 when every run passed, 1 otherwise.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((a) => a.startsWith("--"))
    .map((a) => {
      const [k, v] = a.slice(2).split("=");
      return [k, v ?? "true"];
    }),
);
const cores = availableParallelism();
const opt = {
  runs: Number(args.runs ?? 500),
  parallel: Number(args.parallel ?? cores * 2),
  hogs: Number(args.hogs ?? cores),
  cgroupMillis: args.cgroup === undefined ? 0 : args.cgroup === "true" ? 200 : Number(args.cgroup),
  /** Model runs per vitest process (amortises vitest's start-up). */
  batch: Number(args.batch ?? 10),
  seeds: args.seeds ? args.seeds.split(",").map((s) => Number(s) >>> 0) : null,
  repeat: Number(args.repeat ?? 1),
  base: args.base !== undefined ? Number(args.base) >>> 0 : (Math.random() * 2 ** 32) >>> 0,
};

// The work: a list of (seed, count) jobs, each one vitest process running `count` consecutive seeds.
const jobs = [];
if (opt.seeds) {
  for (let r = 0; r < opt.repeat; r++) for (const s of opt.seeds) jobs.push({ seed: s, count: 1 });
} else {
  for (let i = 0; i < opt.runs; i += opt.batch) {
    jobs.push({ seed: (opt.base + i) >>> 0, count: Math.min(opt.batch, opt.runs - i) });
  }
}
const totalRuns = jobs.reduce((n, j) => n + j.count, 0);
const outDir = mkdtempSync(join(tmpdir(), "soak-"));

function cgroupFor(slot) {
  if (opt.cgroupMillis <= 0) return null;
  const name = `ls-soak-${process.pid}-${slot}`;
  const v1 = `/sys/fs/cgroup/cpu/${name}`;
  if (existsSync("/sys/fs/cgroup/cpu/cgroup.procs")) {
    mkdirSync(v1, { recursive: true });
    writeFileSync(join(v1, "cpu.cfs_period_us"), "100000");
    writeFileSync(join(v1, "cpu.cfs_quota_us"), String(opt.cgroupMillis * 100));
    return { procs: join(v1, "cgroup.procs"), dir: v1 };
  }
  const v2 = `/sys/fs/cgroup/${name}`;
  mkdirSync(v2, { recursive: true });
  writeFileSync(join(v2, "cpu.max"), `${opt.cgroupMillis * 100} 100000`);
  return { procs: join(v2, "cgroup.procs"), dir: v2 };
}

/** A cgroup directory is removed with rmdir (its control files go with it), once it is empty. */
function removeCgroup(dir) {
  try {
    rmdirSync(dir);
  } catch {
    /* still busy for a moment, or gone: the kernel frees an empty one */
  }
}

const hogs = [];
for (let i = 0; i < opt.hogs; i++) {
  hogs.push(spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
}
const stopHogs = () => {
  for (const h of hogs) h.kill("SIGKILL");
};
process.on("SIGINT", () => {
  stopHogs();
  process.exit(130);
});

console.log(
  `soak: ${totalRuns} model runs (${opt.seeds ? `seeds ${opt.seeds.join(",")} ×${opt.repeat}` : `seeds ${opt.base}…${(opt.base + opt.runs - 1) >>> 0}`}), ` +
    `${opt.parallel} at a time, ${opt.hogs} CPU hogs` +
    `${opt.cgroupMillis > 0 ? `, each worker in a ${opt.cgroupMillis}m CPU cgroup` : ""}; output in ${outDir}`,
);

const vitest = join(root, "node_modules", ".bin", "vitest");
const failures = [];
let done = 0;
let passedRuns = 0;
const started = Date.now();

function runJob(job, slot) {
  return new Promise((resolveJob) => {
    const cg = cgroupFor(slot);
    const cmd = `${cg ? `echo $$ > ${cg.procs}; ` : ""}exec "${vitest}" run apps/log-shipper/test/model.test.ts`;
    const child = spawn("sh", ["-c", cmd], {
      cwd: root,
      env: {
        ...process.env,
        SEED: String(job.seed),
        MODEL_RUNS: String(job.count),
        MODEL_DEBUG: "1",
        CI: "true",
        NO_COLOR: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("close", (code) => {
      if (cg) removeCgroup(cg.dir);
      // Which seeds of the job failed: vitest names each failing test "run i (seed n, …)".
      const plain = out; // NO_COLOR: the reporter writes no colour codes
      const failed = new Set();
      for (const m of plain.matchAll(/FAIL .*?\(seed (\d+)/g)) failed.add(Number(m[1]));
      if (code !== 0 && failed.size === 0) failed.add(job.seed); // crashed before naming one
      for (const seed of failed) {
        const file = join(outDir, `seed-${seed}-${slot}-${Date.now()}.log`);
        writeFileSync(file, out);
        const why = new RegExp(`(?:AssertionError|Error): (seed ${seed}\\b.*)`).exec(plain);
        failures.push({ seed, file });
        console.log(
          `FAIL seed ${seed}: ${(why?.[1] ?? `exit ${code}`).slice(0, 300)}\n  full output: ${file}`,
        );
      }
      passedRuns += job.count - failed.size;
      done += job.count;
      resolveJob();
    });
  });
}

let next = 0;
let lastReport = Date.now();
await Promise.all(
  Array.from({ length: Math.min(opt.parallel, jobs.length) }, async (_, slot) => {
    while (next < jobs.length) {
      const job = jobs[next++];
      await runJob(job, slot);
      if (Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        console.log(
          `… ${done}/${totalRuns} runs, ${failures.length} failed, ${Math.round((Date.now() - started) / 1000)} s`,
        );
      }
    }
  }),
);
stopHogs();
const secs = Math.round((Date.now() - started) / 1000);
console.log(
  `soak done: ${done} runs in ${secs} s, ${passedRuns} passed, ${failures.length} failed` +
    (failures.length ? ` (seeds: ${[...new Set(failures.map((f) => f.seed))].join(", ")})` : ""),
);
process.exit(failures.length === 0 ? 0 : 1);
