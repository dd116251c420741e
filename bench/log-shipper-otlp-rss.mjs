// Start-up memory of the BUILT log shipper (apps/log-shipper/dist/main.js) with and without the
// OTLP destination and SigV4: VmRSS from /proc/<pid>/status 2 s after "log shipper started"
// (median of 3 starts each). SigV4 loads AWS's packages with import(); credentials come from
// AWS_* variables set here (instance metadata is disabled: nothing leaves loopback). Nothing
// listens at the OTLP endpoint: start-up does not send.
//
//   pnpm build && node bench/log-shipper-otlp-rss.mjs
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(import.meta.url), "../..");
const mainJs = join(root, "apps/log-shipper/dist/main.js");

function rssOf(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function once(extraEnv) {
  const dir = mkdtempSync(join(tmpdir(), "otlp-rss-"));
  mkdirSync(join(dir, "logs"));
  const child = spawn(process.execPath, [mainJs], {
    env: {
      PATH: process.env.PATH,
      LOG_PATHS: `${dir}/logs/*.log`,
      POSITIONS_FILE: join(dir, "positions.json"),
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  const t0 = Date.now();
  while (!out.includes('"log shipper started"')) {
    if (child.exitCode !== null || Date.now() - t0 > 20_000) throw new Error(`no start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const rss = rssOf(child.pid);
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
  return rss;
}

const variants = {
  "dry run (no destination)": {},
  "OTLP (protobuf, gzip)": { OTLP_ENDPOINT: "http://127.0.0.1:9/v1/logs" },
  "OTLP + SigV4 (AWS packages loaded)": {
    OTLP_ENDPOINT: "http://127.0.0.1:9/v1/logs",
    OTLP_AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    AWS_EC2_METADATA_DISABLED: "true",
  },
};
const result = {};
for (const [name, env] of Object.entries(variants)) {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await once(env));
  runs.sort((a, b) => a - b);
  result[name] = { medianRssMiB: +runs[1].toFixed(1), runsMiB: runs.map((r) => +r.toFixed(1)) };
}
console.log(JSON.stringify(result, null, 2));
