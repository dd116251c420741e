// Micro-benchmark of one destination request: the client CPU of postWithin (sinks/http.ts) per
// POST of a 300 KiB body to a local HTTP server in a process of its own, keep-alive, one request at
// a time (as a destination sends). The production code is bundled with esbuild first.
//
//   node bench/log-shipper-http-post.mjs [requests=1500]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

if (process.argv[2] === "--serve") {
  const { createServer } = await import("node:http");
  const s = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.statusCode = 204;
      res.end();
    });
  });
  s.listen(0, "127.0.0.1", () => process.send(s.address().port));
} else {
  const root = resolve(fileURLToPath(import.meta.url), "../..");
  const n = Number(process.argv[2] ?? 1500);
  const dir = mkdtempSync(join(root, "apps/log-shipper/node_modules/.bench-"));
  const out = join(dir, "http.mjs");
  await build({
    entryPoints: [join(root, "apps/log-shipper/src/sinks/http.ts")],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20.19",
    logLevel: "warning",
  });
  const { HttpPool, discard, postWithin } = await import(pathToFileURL(out).href);
  rmSync(dir, { recursive: true, force: true });
  const server = fork(fileURLToPath(import.meta.url), ["--serve"]);
  const port = await new Promise((r) => server.once("message", r));
  const pool = new HttpPool({ connections: 2 });
  const url = new URL(`http://127.0.0.1:${port}/loki/api/v1/push`);
  const body = Buffer.alloc(300 * 1024, 120);
  const signal = new AbortController().signal;
  const one = () =>
    postWithin(
      pool,
      url,
      { "user-agent": "bench", "content-type": "application/x-protobuf" },
      body,
      { signal, timeoutMs: 10_000, destination: "bench" },
      (res) => {
        discard(res.body);
        return res.statusCode;
      },
    );
  for (let i = 0; i < 300; i++) await one(); // warm-up
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) if ((await one()) !== 204) throw new Error("unexpected answer");
  const c = process.cpuUsage(c0);
  console.log(
    JSON.stringify({
      requests: n,
      clientCpuMicrosPerRequest: +((c.user + c.system) / n).toFixed(1),
      userMicrosPerRequest: +(c.user / n).toFixed(1),
    }),
  );
  await pool.close();
  server.kill();
}
