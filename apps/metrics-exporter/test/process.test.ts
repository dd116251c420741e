// The built program as the image runs it (`node dist/main.js`): a bad environment stops it with
// exit code 2 naming every bad variable; SIGTERM makes it collect and push a last time, then exit 0.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, waitFor, writeProm } from "./helpers.js";

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
