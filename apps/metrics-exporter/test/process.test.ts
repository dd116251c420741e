// The built program as the image runs it (`node dist/main.js`): a bad environment stops it with
// exit code 2 naming every bad variable; SIGTERM makes it collect and push a last time, then exit 0;
// the buffers of superseded collections are freed instead of piling up.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, tempDir, waitFor, writeProm } from "./helpers.js";

const MAIN = resolve(import.meta.dirname, "../dist/main.js");

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += String(d);
  });
  child.stderr.on("data", (d) => {
    stderr += String(d);
  });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exit, out: () => stdout, err: () => stderr };
}

beforeAll(() => {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: run "pnpm build" (pnpm test builds first)`);
  }
});

describe("dist/main.js", () => {
  it("exits 2 on a bad environment, naming each bad variable, its value and what is expected", async () => {
    const p = run({ COLLECT_INTERVAL_MS: "soon", HTTP_PORT: "99999", PUSHGATEWAY_URL: "ftp://gw" });
    expect(await p.exit).toBe(2);
    const err = p.err();
    expect(err).toContain('COLLECT_INTERVAL_MS="soon"');
    expect(err).toContain('HTTP_PORT="99999"');
    expect(err).toContain("an integer from 0 to 65535");
    expect(err).toContain('PUSHGATEWAY_URL="ftp://gw"');
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  // 24 rewrites of a 5 MB exposition, each waited for through full scrapes: on a machine whose two
  // cores are busy this takes minutes, not seconds (nothing here is timed; only the conditions).
  it("frees the buffers of superseded collections instead of letting them pile up", {
    timeout: 300_000,
  }, async () => {
    // 4 files × 20k series ≈ 5 MB of sample lines; every rewrite of a file supersedes ≈ 1.2 MB of
    // line buffers plus the cached bodies. Left to V8's own schedule, 24 rewrites leave tens of MB of
    // dead buffers (it collects them only after external memory grew by ~64 MiB).
    const t = await tempDir("mx-reclaim-");
    const dir = join(t.dir, "metrics");
    await mkdir(dir);
    const fileText = (f: number, gen: number) => {
      let text = `# HELP reclaim_f${f}_total Test counter.\n# TYPE reclaim_f${f}_total counter\n`;
      for (let i = 0; i < 20_000; i++)
        text += `reclaim_f${f}_total{route="/api/v1/items/${i}",code="200"} ${i + gen}\n`;
      return text;
    };
    for (let f = 0; f < 4; f++) await writeProm(dir, `f${f}.prom`, fileText(f, 0));
    const port = await freePort();
    const p = run({
      METRICS_DIR: dir,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(port),
      COLLECT_INTERVAL_MS: "100",
    });
    const own = async (name: string) => {
      const body = await (
        await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { "accept-encoding": "gzip" } })
      ).text();
      const m = body.match(new RegExp(`^metrics_exporter_${name} (\\S+)$`, "m"));
      return Number(m?.[1]);
    };
    const parses = () => own("file_parses_total");
    const collections = () => own("collection_duration_seconds_count");
    try {
      await waitFor("the first collection", async () => (await parses().catch(() => 0)) >= 4, 30_000);
      // Dead buffer memory = the process's external memory minus the collected sample lines
      // (the served families and the kept file versions share their buffers), sampled once each
      // rewrite was collected and one more collection (with its check) has finished.
      let maxDead = 0;
      let live = 0;
      for (let gen = 1; gen <= 24; gen++) {
        const before = await parses();
        await writeProm(dir, `f${gen % 4}.prom`, fileText(gen % 4, gen));
        await waitFor(`rewrite ${gen} collected`, async () => (await parses()) > before, 30_000);
        const done = await collections();
        await waitFor("one more collection", async () => (await collections()) >= done + 2, 30_000);
        live = await own("exposition_bytes");
        maxDead = Math.max(maxDead, (await own("nodejs_external_memory_bytes")) - live);
      }
      console.log(`reclaim test: live ${live} bytes, dead at most ${maxDead} bytes`);
      expect(live).toBeGreaterThan(4_000_000);
      // Tolerated: 8 MiB of dead buffers before a full GC, plus the cached gzip prefix, sockets,
      // Node's buffer pool and this scrape's garbage. Measured: ≈ 10.8 MB with the reclaimer,
      // ≈ 28 MB without it.
      expect(maxDead).toBeLessThan(12 * 1024 * 1024);
      expect(await own("memory_reclaims_total")).toBeGreaterThan(0);
      p.child.kill("SIGTERM");
      expect(await p.exit).toBe(0);
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await t.cleanup();
    }
  });

  describe("with a Pushgateway", () => {
    let server: Server;
    let port = 0;
    const pushes: { url: string; contentType: string; body: string }[] = [];
    let cleanup: () => Promise<void>;
    let dir = "";

    beforeAll(async () => {
      const t = await tempDir("mx-proc-");
      cleanup = t.cleanup;
      dir = join(t.dir, "metrics");
      await mkdir(dir);
      server = createServer((req: IncomingMessage, res) => {
        let body = "";
        req.on("data", (d) => {
          body += String(d);
        });
        req.on("end", () => {
          pushes.push({
            url: `${req.method} ${req.url}`,
            contentType: String(req.headers["content-type"]),
            body,
          });
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const addr = server.address();
      port = typeof addr === "object" && addr ? addr.port : 0;
    });

    afterAll(async () => {
      await new Promise((r) => server.close(r));
      await cleanup();
    });

    it("pushes once more at SIGTERM with the latest file, then exits 0", async () => {
      await writeProm(dir, "app.prom", "# TYPE app_value gauge\napp_value 1\n");
      const p = run({
        METRICS_DIR: dir,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        PUSHGATEWAY_URL: `http://127.0.0.1:${port}/`,
        PUSH_INTERVAL_MS: "3600000",
        POD_NAME: "pod-abc",
        COLLECT_INTERVAL_MS: "3600000",
      });
      try {
        await waitFor("the first push", () => pushes.length >= 1, 30_000);
        expect(pushes[0]).toMatchObject({
          url: "PUT /metrics/job/sidecar/instance/pod-abc",
          contentType: "text/plain; version=0.0.4; charset=utf-8",
        });
        expect(pushes[0]?.body).toContain("app_value 1\n");
        // The app writes its final metrics and exits; then the sidecar gets SIGTERM.
        await writeProm(dir, "app.prom", "# TYPE app_value gauge\napp_value 2\n");
        p.child.kill("SIGTERM");
        expect(await p.exit).toBe(0);
        expect(pushes).toHaveLength(2);
        expect(pushes[1]?.body).toContain("app_value 2\n");
        expect(p.out()).toContain("final push at shutdown");
      } finally {
        if (p.child.exitCode === null) p.child.kill("SIGKILL");
      }
    });
  });
});
