// Many files: how long the BUILT log shipper takes to ship N one-line files that appear at once,
// and what it costs while those files stay quiet afterwards (CPU % of one core over an idle
// window). Optionally inside a 200m CPU cgroup, the sidecar's box.
//
// Usage (build first: `pnpm build`):
//   node bench/log-shipper-many-files.mjs                         # 10,000 files, no limits
//   node bench/log-shipper-many-files.mjs --files=3000 --cgroup   # in a 200m CPU cgroup (root)
// Options: --files=N --idle-seconds=N (default 20) --settle-seconds=N (default 70: quiet files
//          still open are closed after 60 s) --cpu-millis=200 --timeout-seconds=N --json
//          --cpu-prof=DIR (write the shipper's V8 CPU profile there; the idle window is its last
//          idle-seconds before SIGTERM)
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { benchArgs } from "./lib/args.mjs";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const args = benchArgs();
// --main=PATH: another build of the shipper, for before/after runs side by side (say, a copy of
// main's dist/main.js in apps/log-shipper/node_modules/.bench-builds/base/, where its external
// packages resolve).
const MAIN_JS = args.main ? resolve(args.main) : join(root, "apps/log-shipper/dist/main.js");
const opt = {
  files: Number(args.files ?? 10_000),
  idleSeconds: Number(args["idle-seconds"] ?? 20),
  /** Quiet time before the idle window (files still open close after 60 s of quiet). */
  settleSeconds: Number(args["settle-seconds"] ?? 70),
  cgroup: args.cgroup === "true",
  cpuMillis: Number(args["cpu-millis"] ?? 200),
  json: args.json === "true",
  timeoutSeconds: Number(args["timeout-seconds"] ?? 120),
  cpuProf: args["cpu-prof"],
};
if (!existsSync(MAIN_JS)) {
  console.error(`${MAIN_JS} is missing: run \`pnpm build\` first`);
  process.exit(1);
}

const bundleDir = mkdtempSync(join(root, "apps/log-shipper/node_modules/.bench-many-"));
const fakeLokiJs = join(bundleDir, "fake-loki.mjs");
await build({
  entryPoints: [join(root, "apps/log-shipper/test/support/fake-loki.ts")],
  outfile: fakeLokiJs,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  external: ["snappy"],
  logLevel: "warning",
});
const { startFakeLoki } = await import(pathToFileURL(fakeLokiJs).href);

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}
/** Peak RSS and the anonymous part now (MiB): what the container's memory limit mostly sees. */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN);
  return { peakRssMiB: Math.round(kb("VmHWM") / 1024), rssAnonMiB: Math.round(kb("RssAnon") / 1024) };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cgroup() {
  const name = `ls-many-${process.pid}`;
  if (existsSync("/sys/fs/cgroup/cpu/cgroup.procs")) {
    const dir = `/sys/fs/cgroup/cpu/${name}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cpu.cfs_period_us"), "100000");
    writeFileSync(join(dir, "cpu.cfs_quota_us"), String(opt.cpuMillis * 100));
    return { procs: join(dir, "cgroup.procs"), dir };
  }
  const dir = `/sys/fs/cgroup/${name}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "cpu.max"), `${opt.cpuMillis * 100} 100000`);
  return { procs: join(dir, "cgroup.procs"), dir };
}

const tmp = mkdtempSync(join(tmpdir(), "ls-many-"));
const logs = join(tmp, "logs");
mkdirSync(logs);
const seen = new Set();
const loki = await startFakeLoki({
  store: "count",
  onEntry: (e) => {
    seen.add(e.line);
  },
});
const cg = opt.cgroup ? cgroup() : null;
const env = {
  ...process.env,
  LOKI_ENDPOINT: loki.url,
  LOG_PATHS: `${logs}/*.log`,
  POSITIONS_FILE: join(tmp, "positions.json"),
  HTTP_HOST: "127.0.0.1",
  HTTP_PORT: "0",
  LOG_LEVEL: "warn",
};
const profArgs = opt.cpuProf ? `--cpu-prof --cpu-prof-dir="${resolve(opt.cpuProf)}" ` : "";
const cmd = `${cg ? `echo $$ > ${cg.procs}; ` : ""}exec "${process.execPath}" ${profArgs}"${MAIN_JS}"`;
const child = spawn("sh", ["-c", cmd], { env, stdio: ["ignore", "ignore", "inherit"] });
await sleep(1500); // start-up
const t0 = Date.now();
for (let i = 0; i < opt.files; i++) writeFileSync(join(logs, `f${i}.log`), `line of file ${i}\n`);
const created = Date.now();
let shippedAt = null;
let shipCpu = null;
while (Date.now() - t0 < opt.timeoutSeconds * 1000) {
  if (seen.size >= opt.files) {
    shippedAt = Date.now();
    shipCpu = cpuSeconds(child.pid);
    break;
  }
  await sleep(100);
}
// Idle cost: nothing is written any more; let the shipper settle, then measure.
await sleep(opt.settleSeconds * 1000);
const c0 = cpuSeconds(child.pid);
await sleep(opt.idleSeconds * 1000);
const c1 = cpuSeconds(child.pid);
const mem = memory(child.pid);
child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));
await loki.close();
if (cg) {
  try {
    rmdirSync(cg.dir); // a cgroup directory goes with rmdir once empty
  } catch {
    /* still busy for a moment: the kernel frees an empty one */
  }
}
rmSync(tmp, { recursive: true, force: true });
rmSync(bundleDir, { recursive: true, force: true });
const result = {
  files: opt.files,
  cgroupCpuMillis: cg ? opt.cpuMillis : null,
  createSeconds: (created - t0) / 1000,
  shippedSeconds: shippedAt === null ? null : (shippedAt - t0) / 1000,
  shipped: seen.size,
  /** CPU seconds the shipper had used (since it started) when the last file was shipped. */
  cpuSecondsToShip: shipCpu,
  idleCpuPercentOfCore: Number((((c1 - c0) / opt.idleSeconds) * 100).toFixed(2)),
  ...mem,
};
if (opt.json) console.log(JSON.stringify(result));
else
  console.log(
    `${result.files} files${cg ? ` (in a ${opt.cpuMillis}m CPU cgroup)` : ""}: created in ${result.createSeconds} s; ` +
      `${result.shipped} shipped ${result.shippedSeconds === null ? `— NOT all within ${opt.timeoutSeconds} s` : `after ${result.shippedSeconds} s (${shipCpu} CPU s)`}; ` +
      `idle afterwards: ${result.idleCpuPercentOfCore} % of a core; ` +
      `peak RSS ${result.peakRssMiB} MiB, anonymous ${result.rssAnonMiB} MiB`,
  );
