// Issue 12's whole table in one run: every figure the issue sets a target for, measured by the
// benches that measure it one after the other on the same build and the same machine hour, each
// reported as a range over several runs with the command that gave it. Prints a Markdown table
// (for the READMEs) and writes every run's JSON to bench/results/. The CPU rows give the whole run
// (what the issue counts) and, in brackets, the same runs from 10 s on (`--steady-from=10`: without
// start-up's compiling and first collections).
//
//   node bench/log-shipper-issue12.mjs [--node24=/path/to/node] [--runs=3] [--long-seconds=150]
//                                      [--skip=idle,box,fanout,long] [--main=PATH]
//
// The rows run on the node that runs this script; with --node24 the rows marked "image" run on
// that node with the log-shipper image's own settings, read from the Dockerfile (its ENV:
// NODE_OPTIONS and MALLOC_ARENA_MAX) — what the pod runs. Build first (`pnpm build`). About 22
// minutes with the defaults; the box rows need root (cgroups).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./lib/args.mjs";
import { imageSettings } from "./lib/dockerfile.mjs";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const args = benchArgs();
const runs = Number(args.runs ?? 3);
const longSeconds = Number(args["long-seconds"] ?? 150);
const skip = new Set((args.skip ?? "").split(",").filter(Boolean));
const main = args.main ? [`--main=${resolve(args.main)}`] : [];

const here = {
  label: `Node ${process.versions.node.split(".")[0]}`,
  node: process.execPath,
  env: {},
  flags: [],
};
const nodes = [here];
if (args.node24) {
  // The image's ENV and its CMD's node flags (bench/log-shipper-many-files.mjs takes no node flags:
  // its runs get the ENV only).
  const { env, nodeFlags } = imageSettings(readFileSync(join(root, "Dockerfile"), "utf8"));
  const { NODE_OPTIONS: nodeOptions, ...rest } = env;
  const v = execFileSync(args.node24, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
  nodes.push({
    label: `Node ${v.split(".")[0]}, the image's settings`,
    node: args.node24,
    env: rest,
    flags: [
      ...(nodeOptions ? [`--node-options=${nodeOptions}`] : []),
      ...(nodeFlags.length > 0 ? [`--node-args=${nodeFlags.join(" ")}`] : []),
    ],
    nodeOptions,
  });
}
/** Where the box rows and the long run go: the image's node when given, else this one. */
const podNode = nodes[nodes.length - 1];

/**
 * Run a bench with --json on `n` (`extra`: its arguments); returns its parsed JSON (and logs one
 * line to stderr).
 */
function bench(n, script, extra) {
  const env = { ...process.env, ...n.env };
  // The other benches take no --node-options: the image's NODE_OPTIONS goes to them (and so to the
  // shipper they start) through the environment.
  if (script !== "log-shipper.mjs" && n.nodeOptions) env.NODE_OPTIONS = n.nodeOptions;
  const argv = [
    join(root, "bench", script),
    ...extra,
    ...(script === "log-shipper.mjs" ? n.flags : []),
    ...main,
    "--json",
  ];
  const shownEnv =
    script !== "log-shipper.mjs" && n.nodeOptions ? { ...n.env, NODE_OPTIONS: n.nodeOptions } : n.env;
  const shown = `${Object.entries(shownEnv)
    .map(([k, v]) => `${k}=${v} `)
    .join(
      "",
    )}node${n === here ? "" : "24"} bench/${script} ${[...extra, ...(script === "log-shipper.mjs" ? n.flags : [])].join(" ")}`;
  const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
  const out = execFileSync(n.node, argv, {
    env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const json = JSON.parse(out.slice(out.search(/^[[{]/m)));
  process.stderr.write(`[load ${load}] ${shown}\n`);
  return { json, command: shown };
}

const runsOf = (k) => (k === 1 ? "1 run" : `${k} runs`);
const range = (xs, digits = 2) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x));
  if (v.length === 0) return "–";
  const lo = Math.min(...v).toFixed(digits);
  const hi = Math.max(...v).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
};
const rows = [];
const row = (figure, command, result, target) => {
  rows.push({ figure, command, result, target });
  process.stderr.write(`  => ${figure}: ${result}\n`);
};
const lossless = (rs) =>
  rs.every((r) => r.lost === 0 && r.duplicated === 0) ? "" : " **(lines lost or doubled)**";

for (const n of nodes) {
  const r50 = Array.from({ length: runs }, () =>
    bench(n, "log-shipper.mjs", ["--rate=50000", "--seconds=20", "--steady-from=10"]),
  );
  const j50 = r50.map((r) => r.json[0]);
  row(
    `CPU s per million lines at 50k lines/s, ${n.label} (${runsOf(runs)})`,
    r50[0].command,
    `${range(j50.map((r) => r.cpuSecondsPerMillionLines))} (from 10 s on: ${range(j50.map((r) => r.steadyCpuSecondsPerMillionLines))}); p99 ${range(
      j50.map((r) => r.latencyMs.p99),
      0,
    )} ms${lossless(j50)}`,
    "≤ 1.0",
  );
  row(
    `peak RSS (VmHWM) at 50k lines/s, 20 s, ${n.label}`,
    "(the same runs)",
    `${range(
      j50.map((r) => r.peakRssMiB),
      1,
    )} MiB (anonymous ${range(
      j50.map((r) => r.peakRssAnonMiB),
      1,
    )})`,
    "≤ 64 MiB",
  );
  const r25 = Array.from({ length: Math.max(2, runs - 1) }, () =>
    bench(n, "log-shipper.mjs", ["--rate=25000", "--seconds=20", "--steady-from=10"]),
  );
  const j25 = r25.map((r) => r.json[0]);
  row(
    `CPU s per million lines at 25k lines/s, ${n.label} (${runsOf(r25.length)})`,
    r25[0].command,
    `${range(j25.map((r) => r.cpuSecondsPerMillionLines))} (from 10 s on: ${range(j25.map((r) => r.steadyCpuSecondsPerMillionLines))})${lossless(j25)}`,
    "≤ 1.5",
  );
  if (!skip.has("idle")) {
    // A 60 s window: the CPU is counted in 10 ms ticks, and at 20 s (the bench's default) one tick
    // is 0.05 % of a core — half of what an idle shipper now takes.
    const idle = bench(n, "log-shipper-many-files.mjs", ["--files=10", "--idle-seconds=60"]);
    row(
      `idle CPU, 10 quiet files, 60 s, ${n.label}`,
      idle.command,
      `${idle.json.idleCpuPercentOfCore} % of a core`,
      "≤ 0.3 %",
    );
  }
}

const n = podNode;
if (!skip.has("long") && longSeconds > 0) {
  const long = bench(n, "log-shipper.mjs", ["--rate=50000", `--seconds=${longSeconds}`]).json[0];
  row(
    `peak RSS at 50k lines/s over ${longSeconds} s, ${n.label}`,
    `… --rate=50000 --seconds=${longSeconds}`,
    `${long.peakRssMiB} MiB (anonymous ${long.peakRssAnonMiB}); ${long.cpuSecondsPerMillionLines} CPU s/M${lossless([long])}`,
    "≤ 64 MiB",
  );
}
if (!skip.has("box")) {
  const box = Array.from({ length: Math.max(2, runs - 1) }, () =>
    bench(n, "log-shipper.mjs", ["--cgroup", "--rate=100000", "--seconds=15"]),
  );
  const jb = box.map((r) => r.json[0]);
  row(
    `200m CPU / 128Mi cgroup, 100k lines/s, ${n.label} (${runsOf(jb.length)})`,
    box[0].command,
    `kept up ${jb.filter((r) => r.keepsUp).length}/${jb.length}; p99 ${range(jb.map((r) => r.latencyMs.p99 / 1000))} s; ${range(jb.map((r) => r.cpuSecondsPerMillionLines))} CPU s/M${lossless(jb)}`,
    "p99 ≤ 1 s",
  );
  row(
    `cgroup memory peak in that box, ${n.label}`,
    "(the same runs)",
    `${range(
      jb.map((r) => r.cgroup?.memoryMaxUsageBytes / 1024 / 1024),
      1,
    )} MiB`,
    "≤ 32 MiB",
  );
  const max = bench(n, "log-shipper.mjs", ["--cgroup", "--find-max"]).json;
  const kept = max.filter((r) => r.keepsUp);
  const best = kept[kept.length - 1];
  const next = max.find((r) => !r.keepsUp);
  row(
    `highest rate kept up in the box, ${n.label}`,
    `… --cgroup --find-max`,
    best === undefined
      ? "below 25k lines/s"
      : `${best.rate / 1000}k lines/s (p99 ${(best.latencyMs.p99 / 1000).toFixed(2)} s, ${best.cpuSecondsPerMillionLines} CPU s/M)${next ? `; ${next.rate / 1000}k fell behind` : "; the highest step"}`,
    "≥ 200k",
  );
}
if (!skip.has("fanout")) {
  const fan = Array.from({ length: Math.max(2, runs - 1) }, () =>
    bench(n, "log-shipper.mjs", ["--destinations=loki,otlp,elasticsearch", "--rate=50000", "--seconds=20"]),
  );
  const jf = fan.map((r) => r.json[0]);
  row(
    `fan-out Loki + OTLP + Elasticsearch, 50k lines/s, ${n.label} (${runsOf(jf.length)})`,
    fan[0].command,
    `${range(jf.map((r) => r.cpuSecondsPerMillionLines))} CPU s/M; peak RSS ${range(
      jf.map((r) => r.peakRssMiB),
      1,
    )} MiB${lossless(jf)}`,
    "≤ 1.6",
  );
}

const cell = (s) => String(s).replaceAll("|", "\\|");
console.log(
  `Measured ${new Date().toISOString()} at ${execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()}; every run delivered every line once unless marked.\n`,
);
console.log("| figure | command | result | target |");
console.log("|---|---|---|---|");
for (const r of rows)
  console.log(`| ${cell(r.figure)} | \`${cell(r.command)}\` | ${cell(r.result)} | ${cell(r.target)} |`);
