// Peak memory of the built program, run as the image runs it (the Dockerfile's ENV and the node flags
// of its CMD; MEMORY_TEST_NODE=/path/to/node runs it on another node, such as the image's Node 24).
// On the worst files the default caps let in (issue 15.2): the sidecar's limit is 128Mi
// whatever the shape — many small families, long HELP texts, long label values, several files.
// The peak is the kernel's high-water mark of resident memory (VmHWM), read after the files were
// collected and every format and encoding was scraped.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { freePort, tempDir, waitFor } from "./helpers.js";

const MAIN = resolve(import.meta.dirname, "../dist/main.js");
const MiB = 1024 * 1024;
const LIMIT_KIB = 128 * 1024;
// The defaults these shapes are built against (config.ts).
const MAX_FAMILIES = 20_000;
const MAX_TOTAL_BYTES = 12 * MiB;
const MAX_FILE_BYTES = 8 * MiB;
const HELP_WEIGHT = 4;

// The image's runtime settings, read from the root Dockerfile's metrics-exporter target (its stage and
// the stages it is built FROM): the ENV lines and the node flags of its CMD, so the program runs
// here exactly as the image runs it. MEMORY_TEST_NODE names the node binary to run it with (the
// image's Node 24, say); by default, the node running the tests.
function imageRuntime(): { env: Record<string, string>; nodeArgs: string[] } {
  const text = readFileSync(resolve(import.meta.dirname, "../../../Dockerfile"), "utf8");
  const stages = new Map<string, { base: string; lines: string[] }>();
  let current: { base: string; lines: string[] } | undefined;
  for (const line of text.replaceAll("\\\n", " ").split("\n")) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      current = { base: from[1] as string, lines: [] };
      if (from[2]) stages.set(from[2], current);
    } else if (!line.startsWith("#")) current?.lines.push(line);
  }
  const lines: string[] = [];
  for (let s = stages.get("metrics-exporter"); s; s = stages.get(s.base)) lines.unshift(...s.lines);
  const env = Object.fromEntries(
    lines
      .filter((l) => /^ENV\s/.test(l))
      .flatMap((l) => [...l.slice(4).matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)])
      .map((m) => [m[1], m[2] ?? m[3]]),
  );
  const cmd = lines.filter((l) => /^CMD\s/.test(l)).pop();
  const argv: unknown = cmd ? JSON.parse(cmd.slice(4)) : undefined;
  if (!Array.isArray(argv) || argv[0] !== "node" || argv.at(-1) !== "dist/main.js")
    throw new Error(`the metrics-exporter target's CMD is not ["node", …, "dist/main.js"]: ${cmd}`);
  return { env, nodeArgs: argv.slice(1, -1) as string[] };
}
const IMAGE = imageRuntime();
const NODE = process.env.MEMORY_TEST_NODE || process.execPath;

function kib(status: string, field: string): number {
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"));
  if (!m) throw new Error(`no ${field} in /proc status`);
  return Number(m[1]);
}

/** Start the exporter on `dir`, wait for `served`, scrape every variant twice, run `during`, return VmHWM/VmRSS in KiB. */
async function peakOf(
  dir: string,
  served: (metrics: string) => boolean,
  env: Record<string, string> = {},
  during: (port: number) => Promise<void> = async () => {},
): Promise<{ hwm: number; rss: number }> {
  const port = await freePort();
  const child = spawn(NODE, [...IMAGE.nodeArgs, MAIN], {
    env: {
      PATH: process.env.PATH ?? "",
      METRICS_DIR: dir,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(port),
      ...IMAGE.env,
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d) => {
    err = (err + String(d)).slice(-5000);
  });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  try {
    await waitFor(
      "the files to be collected",
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: "text/plain" } });
        return served(await res.text());
      },
      60_000,
    );
    for (let round = 0; round < 2; round++) {
      for (const accept of ["text/plain", "application/openmetrics-text;version=1.0.0"]) {
        for (const encoding of ["identity", "gzip"]) {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
            headers: { accept, "accept-encoding": encoding },
          });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      }
    }
    await during(port);
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    return { hwm: kib(status, "VmHWM"), rss: kib(status, "VmRSS") };
  } catch (e) {
    throw new Error(`${String(e)}\nexporter stderr: ${err}`);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

const own = (body: string, name: string) =>
  Number(body.match(new RegExp(`^metrics_exporter_${name} (\\S+)$`, "m"))?.[1]);

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "pnpm build" first`);
  if (!existsSync("/proc/self/status")) throw new Error("this test reads /proc/<pid>/status (Linux)");
});

describe("peak memory on the worst files within the default caps (issue 15.2)", () => {
  it("MAX_FAMILIES one-series families whose (non-Latin-1) HELP texts take what MAX_TOTAL_BYTES allows", async () => {
    const t = await tempDir("mx-mem-");
    try {
      const dir = join(t.dir, "metrics");
      await mkdir(dir);
      // Each family: `# HELP <name> ☃xxx…\n# TYPE <name> gauge\n<name> 1\n`; the HELP length is
      // chosen so that file bytes + HELP_WEIGHT × HELP bytes just fits MAX_TOTAL_BYTES.
      const fixed = (name: string) => `# HELP ${name} \n# TYPE ${name} gauge\n${name} 1\n`.length;
      const perFamily = Math.floor(MAX_TOTAL_BYTES / MAX_FAMILIES) - 1;
      const helpBytes = Math.floor((perFamily - fixed("f_000000")) / (1 + HELP_WEIGHT));
      let text = "";
      for (let i = 0; i < MAX_FAMILIES; i++) {
        const name = `f_${String(i).padStart(6, "0")}`;
        text += `# HELP ${name} ☃${"x".repeat(helpBytes - 3)}\n# TYPE ${name} gauge\n${name} 1\n`;
      }
      await writeFile(join(dir, "families.prom"), text);
      const { hwm, rss } = await peakOf(dir, (b) => own(b, "families") === MAX_FAMILIES);
      console.log(`families: ${Buffer.byteLength(text)} bytes, VmHWM ${hwm} KiB, VmRSS ${rss} KiB`);
      expect(hwm).toBeLessThan(LIMIT_KIB);
    } finally {
      await t.cleanup();
    }
  });

  it("100k series (the total cap) of long non-Latin-1 label values in MAX_FILE_BYTES + the rest of MAX_TOTAL_BYTES", async () => {
    const t = await tempDir("mx-mem-");
    try {
      const dir = join(t.dir, "metrics");
      await mkdir(dir);
      const file = (f: number, bytes: number) => {
        const per = Math.floor(bytes / 50_000);
        const parts = [`# TYPE l${f} gauge\n`];
        for (let i = 0; i < 50_000; i++) {
          const line = `l${f}{i="${String(i).padStart(5, "0")}",v="☃"} 1\n`;
          parts.push(line.replace("☃", `☃${"x".repeat(per - Buffer.byteLength(line) - 1)}`));
        }
        return parts.join("");
      };
      const big = file(0, MAX_FILE_BYTES - 1000);
      const rest = file(1, MAX_TOTAL_BYTES - Buffer.byteLength(big) - 1000);
      await writeFile(join(dir, "a.prom"), big);
      await writeFile(join(dir, "b.prom"), rest);
      const { hwm, rss } = await peakOf(dir, (b) => own(b, "series") === 100_000);
      console.log(
        `lines: ${Buffer.byteLength(big)} + ${Buffer.byteLength(rest)} bytes, VmHWM ${hwm} KiB, VmRSS ${rss} KiB`,
      );
      expect(hwm).toBeLessThan(LIMIT_KIB);
    } finally {
      await t.cleanup();
    }
  });

  it("the issue's files: 100k one-series gauge families in 2 files are refused at MAX_FAMILIES, the peak stays bounded", async () => {
    const t = await tempDir("mx-mem-");
    try {
      const dir = join(t.dir, "metrics");
      await mkdir(dir);
      for (let f = 0; f < 2; f++) {
        let text = "";
        for (let i = 0; i < 50_000; i++) {
          const name = `g${f}_${String(i).padStart(6, "0")}`;
          text += `# HELP ${name} h.\n# TYPE ${name} gauge\n${name} 1\n`;
        }
        await writeFile(join(dir, `g${f}.prom`), text);
      }
      await writeFile(join(dir, "app.prom"), "# TYPE app_up gauge\napp_up 1\n");
      const { hwm, rss } = await peakOf(
        dir,
        (b) =>
          b.includes('file_errors_total{file="g0.prom",reason="too_many_families"} 1') &&
          b.includes('file_errors_total{file="g1.prom",reason="too_many_families"} 1') &&
          b.includes("app_up 1"),
      );
      console.log(`issue's 2 × 50k families: VmHWM ${hwm} KiB, VmRSS ${rss} KiB`);
      expect(hwm).toBeLessThan(LIMIT_KIB);
    } finally {
      await t.cleanup();
    }
  });
});

describe("a typical pod with every output on (issue 10.5)", () => {
  it("≈ 2k series rewritten every second, scraped, sent to StatsD and remote-write: peak RSS within 64 MiB", async () => {
    const t = await tempDir("mx-mem-");
    const udp = createSocket("udp4");
    udp.on("message", () => {});
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    let writes = 0;
    const rw = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        writes++;
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => rw.listen(0, "127.0.0.1", r));
    const rwAddr = rw.address();
    try {
      const dir = join(t.dir, "metrics");
      await mkdir(dir);
      const app = (k: number) => {
        let text = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n";
        for (let r = 0; r < 50; r++)
          for (const code of [200, 404, 500])
            for (const method of ["GET", "POST"])
              text += `http_requests_total{route="/api/v1/r${r}",code="${code}",method="${method}"} ${r * 7 + k}\n`;
        text += "# TYPE http_duration_seconds histogram\n";
        for (let r = 0; r < 50; r++) {
          for (const le of ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"])
            text += `http_duration_seconds_bucket{route="/api/v1/r${r}",le="${le}"} ${r + k}\n`;
          text += `http_duration_seconds_sum{route="/api/v1/r${r}"} ${k}.5\nhttp_duration_seconds_count{route="/api/v1/r${r}"} ${r + k}\n`;
        }
        return text;
      };
      let node = "";
      for (let f = 0; f < 100; f++) {
        node += `# HELP node_thing_${f} Thing ${f}.\n# TYPE node_thing_${f} gauge\n`;
        for (let i = 0; i < 10; i++) node += `node_thing_${f}{i="${i}"} ${i}.5\n`;
      }
      await writeFile(join(dir, "sample-app.prom"), app(0));
      await writeFile(join(dir, "node.prom"), node);
      const { hwm, rss } = await peakOf(
        dir,
        (b) => own(b, "series") === 1800,
        {
          COLLECT_INTERVAL_MS: "1000",
          STATSD_ADDRESS: `127.0.0.1:${udp.address().port}`,
          REMOTE_WRITE_URL: `http://127.0.0.1:${typeof rwAddr === "object" && rwAddr ? rwAddr.port : 0}/api/v1/write`,
        },
        async (port) => {
          for (let k = 1; k <= 20; k++) {
            await writeFile(join(dir, "sample-app.prom"), app(k));
            const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
              headers: { accept: "application/openmetrics-text;version=1.0.0", "accept-encoding": "gzip" },
            });
            await res.arrayBuffer();
            await new Promise((r) => setTimeout(r, 1000));
          }
        },
      );
      console.log(`typical pod, all outputs: ${writes} remote writes, VmHWM ${hwm} KiB, VmRSS ${rss} KiB`);
      expect(writes).toBeGreaterThanOrEqual(10);
      // Node 24.22.3 (the image's; MEMORY_TEST_NODE): 60.4–60.6 MiB; 74.5 MiB before the
      // image's CMD passed --max-opt=1 (its V8 ignores tiering.ts's run-time setting), 61.2–61.7
      // MiB before src/logger.ts replaced pino. Of that peak ≈ 42 MiB is file-backed (the node
      // binary's pages); a bare `node` is 42.2 MiB, an empty directory 54.5 MiB.
      // Node 20: 53.6–54.1 MiB (bare `node` 39.4 MiB, an empty directory 49.1 MiB); it was
      // 70–73 MiB with fastify and TurboFan (src/server.ts, src/tiering.ts). The native snappy
      // module alone would cost 8.5 MiB more.
      expect(hwm).toBeLessThan(64 * 1024);
    } finally {
      udp.close();
      await new Promise((r) => rw.close(r));
      await t.cleanup();
    }
  });
});
