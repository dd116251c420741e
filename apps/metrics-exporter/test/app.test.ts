// The exporter as a whole on real files in a temp directory, asserted on /metrics over loopback HTTP:
// serving and formats, re-parsing only on change, rejected files and the last good version,
// staleness, deletion, conflicts, limits, symlinks and an unreadable directory.
import { spawnSync } from "node:child_process";
import { chmod, mkdir, rename, stat, symlink, truncate, unlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { onMemoryFs } from "@sidecar/shared";
import { afterEach, describe, expect, it } from "vitest";
import { type App, buildApp } from "../src/app.js";
import { type Config, loadConfig } from "../src/config.js";
import { capturingLogger, silentLogger, tempDir, writeProm } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Response {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as sent (still gzip-compressed when it was). */
  rawPayload: Buffer;
  body: string;
}

interface Harness {
  app: App;
  /** One request to the app's server on its loopback port. */
  get(url: string, headers?: Record<string, string>): Promise<Response>;
  dir: string;
  clock: { now: number };
  scrape(headers?: Record<string, string>): Promise<string>;
  value(series: string, body?: string): Promise<number | undefined>;
}

async function harness(
  overrides: Partial<Config> = {},
  logger = silentLogger(),
  base?: string,
): Promise<Harness> {
  const t = await tempDir("mx-", base);
  const dir = join(t.dir, "metrics");
  await mkdir(dir);
  const clock = { now: Date.now() };
  const config = loadConfig({}, { metricsDir: dir, httpHost: "127.0.0.1", httpPort: 0, ...overrides });
  const app = buildApp(config, { logger, now: () => clock.now });
  cleanups.push(t.cleanup, () => app.close());
  // Listening only (no start()): the tests run collections themselves.
  await app.server.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.server.address() as AddressInfo).port;
  const get = (url: string, headers: Record<string, string> = {}) =>
    new Promise<Response>((resolve, reject) => {
      request({ host: "127.0.0.1", port, path: url, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const rawPayload = Buffer.concat(chunks);
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: res.headers,
            rawPayload,
            body: rawPayload.toString("utf8"),
          });
        });
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });
  const scrape = async (headers: Record<string, string> = {}) => {
    const res = await get("/metrics", headers);
    expect(res.statusCode).toBe(200);
    return res.body;
  };
  return {
    app,
    get,
    dir,
    clock,
    scrape,
    async value(series, body) {
      const text = body ?? (await scrape());
      for (const line of text.split("\n")) {
        if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
      }
      return undefined;
    },
  };
}

const APP =
  '# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{code="200"} 5\n';

describe("serving", () => {
  it("serves collected and own metrics as text 0.0.4, OpenMetrics on request, gzip when accepted", async () => {
    const h = await harness();
    await writeProm(
      h.dir,
      "app.prom",
      `${APP}# TYPE label_test gauge\nlabel_test{v="q\\"uote b\\\\sl n\\nl ☃"} 1\n`,
    );
    const notReady = await h.get("/readyz");
    expect(notReady.statusCode).toBe(503);
    await h.app.collect();
    expect((await h.get("/readyz")).statusCode).toBe(200);
    expect((await h.get("/healthz")).statusCode).toBe(200);

    const text = await h.get("/metrics");
    expect(text.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(text.body).toContain('app_requests_total{code="200"} 5\n');
    expect(text.body).toContain('label_test{v="q\\"uote b\\\\sl n\\nl ☃"} 1\n');
    expect(text.body).toContain("# TYPE metrics_exporter_process_cpu_seconds_total counter\n");
    expect(text.body).toContain('metrics_exporter_file_ok{file="app.prom"} 1\n');
    expect(text.body).not.toContain("# EOF");
    // Never two families of one name.
    const typeLines = text.body.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(typeLines.map((l) => l.split(" ")[2])).size).toBe(typeLines.length);

    const om = await h.get("/metrics", {
      accept: "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    });
    expect(om.headers["content-type"]).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
    expect(om.body).toContain("# TYPE app_requests counter\n");
    expect(om.body).toContain('app_requests_total{code="200"} 5\n');
    expect(om.body.endsWith("# EOF\n")).toBe(true);

    const gz = await h.get("/metrics", { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    const decoded = gunzipSync(gz.rawPayload).toString("utf8");
    expect(decoded).toContain('app_requests_total{code="200"} 5\n');
    expect(decoded).toContain("metrics_exporter_scrapes_total");
  });

  it("re-parses a file only when it changed, and picks up a rewrite", async () => {
    const h = await harness();
    await writeProm(h.dir, "a.prom", APP);
    await writeProm(h.dir, "b.prom", "b_value 1\n");
    await h.app.collect();
    await h.app.collect();
    await h.app.collect();
    expect(await h.value("metrics_exporter_file_parses_total")).toBe(2);
    await writeProm(h.dir, "b.prom", "b_value 2\n");
    await h.app.collect();
    const body = await h.scrape();
    expect(await h.value("metrics_exporter_file_parses_total", body)).toBe(3);
    expect(await h.value("b_value", body)).toBe(2);
  });

  it("looks at a file again after a metadata-only change (a chmod that makes it readable)", async () => {
    // A file written 0600 by another uid is rejected (EACCES) without a change of size, mtime or
    // inode when an operator fixes its mode; only the ctime moves. Without it in the version the
    // exporter kept the rejection until the file was rewritten. (Root reads regardless, so the
    // re-read itself is what is asserted.)
    const h = await harness();
    await writeProm(h.dir, "a.prom", APP);
    await h.app.collect();
    await h.app.collect();
    expect(await h.value("metrics_exporter_file_parses_total")).toBe(1);
    const path = join(h.dir, "a.prom");
    const before = (await stat(path)).ctimeMs;
    // ctime has the file system's timestamp granularity: change modes until it moves.
    for (let mode = 0o640; (await stat(path)).ctimeMs === before; mode ^= 0o004) {
      await chmod(path, mode);
      await new Promise((r) => setTimeout(r, 5));
    }
    await h.app.collect();
    expect(await h.value("metrics_exporter_file_parses_total")).toBe(2);
  });

  it("ignores hidden, temporary and non-.prom files; skips directories and FIFOs named *.prom", async () => {
    const h = await harness();
    await writeFile(join(h.dir, ".hidden.prom"), "hidden 1\n");
    await writeFile(join(h.dir, "app.prom.tmp"), "tmp 1\n");
    await writeFile(join(h.dir, "notes.txt"), "txt 1\n");
    await mkdir(join(h.dir, "dir.prom"));
    expect(spawnSync("mkfifo", [join(h.dir, "fifo.prom")]).status).toBe(0);
    await writeProm(h.dir, "real.prom", "real 1\n");
    await h.app.collect();
    const body = await h.scrape();
    expect(body).toContain("real 1\n");
    for (const s of ["hidden 1", "tmp 1", "txt 1"]) expect(body).not.toContain(s);
    expect(await h.value('metrics_exporter_files_skipped_total{reason="not_regular_file"}', body)).toBe(2);
    // Counted once per occurrence, not per collection.
    await h.app.collect();
    expect(await h.value('metrics_exporter_files_skipped_total{reason="not_regular_file"}')).toBe(2);
  });
});

describe("a metrics directory on a memory-backed file system (the pod's emptyDir, medium Memory)", () => {
  it.skipIf(!onMemoryFs("/dev/shm"))(
    "is read with synchronous calls, with the same outcomes; a directory on disk through the thread pool",
    async () => {
      const cap = capturingLogger();
      const h = await harness({}, cap.logger, "/dev/shm");
      await writeFile(join(h.dir, ".hidden.prom"), "hidden 1\n");
      await mkdir(join(h.dir, "dir.prom"));
      expect(spawnSync("mkfifo", [join(h.dir, "fifo.prom")]).status).toBe(0);
      await symlink("/etc/hostname", join(h.dir, "escape.prom"));
      await writeProm(h.dir, "real.prom", APP);
      await h.app.collect();
      const body = await h.scrape();
      expect(body).toContain('app_requests_total{code="200"} 5\n');
      expect(body).not.toContain("hidden 1");
      expect(await h.value('metrics_exporter_files_skipped_total{reason="not_regular_file"}', body)).toBe(2);
      expect(await h.value('metrics_exporter_files_skipped_total{reason="symlink_outside"}', body)).toBe(1);
      // A file rewritten is read again (its new version), synchronously too.
      await writeProm(h.dir, "real.prom", APP.replace("} 5", "} 6"));
      await h.app.collect();
      expect(await h.value('app_requests_total{code="200"}')).toBe(6);
      const chosen = (lines: Record<string, unknown>[]) =>
        lines.filter((l) => String(l.msg).startsWith("metrics directory on")).map((l) => l.calls);
      expect(chosen(cap.lines())).toEqual(["synchronous"]);
      // The same on the test machine's temp directory: the thread pool unless that is tmpfs too.
      const disk = capturingLogger();
      const d = await harness({}, disk.logger);
      await writeProm(d.dir, "real.prom", APP);
      await d.app.collect();
      expect(await d.value('app_requests_total{code="200"}')).toBe(5);
      expect(chosen(disk.lines())).toEqual([onMemoryFs(d.dir) ? "synchronous" : "thread pool"]);
    },
  );
});

describe("rejected files and the last good version", () => {
  it("keeps serving the last good version of a rejected file until it goes stale", async () => {
    const cap = capturingLogger();
    const h = await harness({ staleAfterMs: 60_000 }, cap.logger);
    await writeProm(h.dir, "app.prom", APP);
    await h.app.collect();
    await writeProm(h.dir, "app.prom", `${APP}app_requests_total{code="500" 1\n`);
    await h.app.collect();
    let body = await h.scrape();
    expect(body).toContain('app_requests_total{code="200"} 5\n');
    expect(
      await h.value('metrics_exporter_file_errors_total{file="app.prom",reason="parse_error"}', body),
    ).toBe(1);
    expect(await h.value('metrics_exporter_file_rejected{file="app.prom"}', body)).toBe(1);
    expect(await h.value('metrics_exporter_file_ok{file="app.prom"}', body)).toBe(1);
    const warning = cap.lines().find((l) => l.msg === "file rejected");
    expect(warning).toMatchObject({
      file: "app.prom",
      line: 4,
      reason: "parse_error",
      servingLastGood: true,
      level: "warn",
    });

    // The same bad version is not counted again.
    await h.app.collect();
    expect(await h.value('metrics_exporter_file_errors_total{file="app.prom",reason="parse_error"}')).toBe(1);

    // A timestamped version is rejected with its own reason.
    await writeProm(h.dir, "app.prom", 'app_requests_total{code="200"} 6 1700000000000\n');
    await h.app.collect();
    body = await h.scrape();
    expect(
      await h.value('metrics_exporter_file_errors_total{file="app.prom",reason="timestamp"}', body),
    ).toBe(1);
    expect(body).toContain('app_requests_total{code="200"} 5\n');

    // Once the last good version is older than STALE_AFTER_MS it is dropped.
    h.clock.now += 61_000;
    await h.app.collect();
    body = await h.scrape();
    expect(body).not.toContain("app_requests_total{");
    expect(await h.value('metrics_exporter_file_ok{file="app.prom"}', body)).toBe(0);
    expect(await h.value('metrics_exporter_file_stale{file="app.prom"}', body)).toBe(1);

    // A good rewrite brings it back.
    h.clock.now = Date.now();
    await writeProm(h.dir, "app.prom", APP.replace("} 5", "} 7"));
    await h.app.collect();
    body = await h.scrape();
    expect(body).toContain('app_requests_total{code="200"} 7\n');
    expect(await h.value('metrics_exporter_file_rejected{file="app.prom"}', body)).toBe(0);
  });

  it("rejects binary garbage and invalid UTF-8 without affecting other files", async () => {
    const h = await harness();
    await writeProm(h.dir, "good.prom", "good 1\n");
    await writeFile(join(h.dir, "bin.prom"), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0xff, 0x00, 0x10, 0x80]));
    await writeFile(join(h.dir, "junk.prom"), "\u0000\u0001 garbage {{{ \n");
    await h.app.collect();
    const body = await h.scrape();
    expect(body).toContain("good 1\n");
    expect(
      await h.value('metrics_exporter_file_errors_total{file="bin.prom",reason="invalid_utf8"}', body),
    ).toBe(1);
    expect(
      await h.value('metrics_exporter_file_errors_total{file="junk.prom",reason="parse_error"}', body),
    ).toBe(1);
  });
});

describe("staleness and deletion", () => {
  it("drops a file not rewritten for STALE_AFTER_MS and a deleted file at the next collection", async () => {
    const h = await harness({ staleAfterMs: 300_000 });
    await writeProm(h.dir, "old.prom", "old_metric 1\n", Date.now() - 301_000);
    await writeProm(h.dir, "fresh.prom", "fresh_metric 1\n");
    await writeProm(h.dir, "gone.prom", "gone_metric 1\n");
    await h.app.collect();
    let body = await h.scrape();
    expect(body).not.toContain("old_metric");
    expect(body).toContain("fresh_metric 1\n");
    expect(await h.value('metrics_exporter_file_stale{file="old.prom"}', body)).toBe(1);
    expect(await h.value('metrics_exporter_file_ok{file="old.prom"}', body)).toBe(0);
    expect(await h.value('metrics_exporter_file_mtime_seconds{file="old.prom"}', body)).toBeLessThan(
      Date.now() / 1000 - 300,
    );

    await unlink(join(h.dir, "gone.prom"));
    await h.app.collect();
    body = await h.scrape();
    expect(body).not.toContain("gone_metric");
    expect(body).not.toContain('file="gone.prom"');
    expect(await h.value('metrics_exporter_files_dropped_total{reason="deleted"}', body)).toBe(1);
  });
});

describe("conflicts", () => {
  it("leaves the later file (by name) out whole and reports why", async () => {
    const cap = capturingLogger();
    const h = await harness({}, cap.logger);
    await writeProm(h.dir, "a.prom", '# HELP shared Shared.\n# TYPE shared gauge\nshared{from="a"} 1\n');
    await writeProm(
      h.dir,
      "b.prom",
      '# HELP shared Shared.\n# TYPE shared counter\nshared{from="b"} 2\nb_other 3\n',
    );
    await writeProm(h.dir, "c.prom", '# HELP shared Shared.\n# TYPE shared gauge\nshared{from="a"} 9\n');
    await writeProm(h.dir, "d.prom", '# HELP shared Shared.\n# TYPE shared gauge\nshared{from="d"} 4\n');
    await h.app.collect();
    const body = await h.scrape();
    expect(body).toContain('shared{from="a"} 1\nshared{from="d"} 4\n');
    expect(body).not.toContain("b_other");
    expect(body).not.toContain("} 9\n");
    expect(await h.value('metrics_exporter_file_conflict{file="b.prom",reason="type_conflict"}', body)).toBe(
      1,
    );
    expect(
      await h.value('metrics_exporter_file_conflict{file="c.prom",reason="duplicate_series"}', body),
    ).toBe(1);
    expect(await h.value('metrics_exporter_file_ok{file="b.prom"}', body)).toBe(0);
    expect(await h.value('metrics_exporter_file_ok{file="d.prom"}', body)).toBe(1);
    expect(await h.value('metrics_exporter_conflicts_total{reason="type_conflict"}', body)).toBe(1);
    expect(cap.lines().filter((l) => l.reason === "type_conflict")[0]).toMatchObject({
      file: "b.prom",
      with: "a.prom",
    });

    // Resolving the conflict (fixing b.prom) merges it.
    await writeProm(
      h.dir,
      "b.prom",
      '# HELP shared Shared.\n# TYPE shared gauge\nshared{from="b"} 2\nb_other 3\n',
    );
    await h.app.collect();
    const fixed = await h.scrape();
    expect(fixed).toContain("b_other 3\n");
    expect(fixed).not.toContain('metrics_exporter_file_conflict{file="b.prom"');
  });

  it("the incumbent wins: a new file that conflicts with a served one is left out, whatever its name (issue 10.4)", async () => {
    const cap = capturingLogger();
    const h = await harness({}, cap.logger);
    await writeProm(
      h.dir,
      "sample-app.prom",
      '# TYPE app_requests_total counter\napp_requests_total{code="200"} 5\n',
    );
    await h.app.collect();
    // a.prom sorts first by name; it used to knock the app's metrics out.
    await writeProm(
      h.dir,
      "a.prom",
      '# TYPE app_requests_total gauge\napp_requests_total{code="500"} 1\na_other 1\n',
    );
    await h.app.collect();
    let body = await h.scrape();
    expect(body).toContain('app_requests_total{code="200"} 5\n');
    expect(body).not.toContain("a_other");
    expect(await h.value('metrics_exporter_file_conflict{file="a.prom",reason="type_conflict"}', body)).toBe(
      1,
    );
    expect(await h.value('metrics_exporter_file_ok{file="sample-app.prom"}', body)).toBe(1);
    expect(cap.lines().find((l) => l.reason === "type_conflict")).toMatchObject({
      file: "a.prom",
      with: "sample-app.prom",
    });
    // The incumbent keeps its place through rewrites…
    await writeProm(
      h.dir,
      "sample-app.prom",
      '# TYPE app_requests_total counter\napp_requests_total{code="200"} 6\n',
    );
    await h.app.collect();
    body = await h.scrape();
    expect(body).toContain('app_requests_total{code="200"} 6\n');
    expect(body).not.toContain("a_other");
    // …and when it leaves, the newcomer gets in.
    await unlink(join(h.dir, "sample-app.prom"));
    await h.app.collect();
    body = await h.scrape();
    expect(body).toContain("a_other 1\n");
    expect(body).toContain("# TYPE app_requests_total gauge\n");
  });

  it("serves an app's own process metrics: the exporter's carry its prefix", async () => {
    const h = await harness();
    await writeProm(
      h.dir,
      "app.prom",
      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 42\n" +
        "# TYPE nodejs_heap_size_used_bytes gauge\nnodejs_heap_size_used_bytes 7\n",
    );
    await h.app.collect();
    const body = await h.scrape();
    expect(body).toContain("\nprocess_cpu_seconds_total 42\n");
    expect(body).toContain("\nnodejs_heap_size_used_bytes 7\n");
    expect(body).toMatch(/^metrics_exporter_process_cpu_seconds_total \d/m);
    expect(await h.value('metrics_exporter_file_ok{file="app.prom"}', body)).toBe(1);
  });

  it("never serves a collected family that collides with an own family", async () => {
    const h = await harness();
    await writeProm(
      h.dir,
      "evil.prom",
      "# TYPE metrics_exporter_process_cpu_seconds_total counter\nmetrics_exporter_process_cpu_seconds_total 1e9\n",
    );
    await h.app.collect();
    const body = await h.scrape();
    expect(body.match(/^# TYPE metrics_exporter_process_cpu_seconds_total /gm)).toHaveLength(1);
    expect(body).not.toContain("metrics_exporter_process_cpu_seconds_total 1e9");
    expect(await h.value('metrics_exporter_file_conflict{file="evil.prom",reason="own_metric"}', body)).toBe(
      1,
    );
  });
});

describe("bounds on input", () => {
  it("never reads a 1 GiB file: skipped by its size and counted", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "huge.prom"), "");
    await truncate(join(h.dir, "huge.prom"), 1024 ** 3);
    await writeProm(h.dir, "ok.prom", "ok 1\n");
    const rss = process.memoryUsage().rss;
    await h.app.collect();
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
    const body = await h.scrape();
    expect(body).toContain("ok 1\n");
    expect(
      await h.value('metrics_exporter_file_errors_total{file="huge.prom",reason="too_large"}', body),
    ).toBe(1);
    expect(await h.value('metrics_exporter_limit_hits_total{limit="max_file_bytes"}', body)).toBe(1);
    expect(await h.value("metrics_exporter_file_parses_total", body)).toBe(1);
  });

  it("caps series per file and in total; a freed budget lets a refused file in without a rewrite", async () => {
    const h = await harness({ maxSeriesPerFile: 100, maxTotalSeries: 150 });
    const lines = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => `${prefix}{i="${i}"} ${i}`).join("\n");
    await writeProm(h.dir, "a.prom", lines("a", 101));
    await writeProm(h.dir, "b.prom", lines("b", 100));
    await writeProm(h.dir, "c.prom", lines("c", 80));
    await h.app.collect();
    let body = await h.scrape();
    expect(await h.value("metrics_exporter_series", body)).toBe(100);
    expect(
      await h.value('metrics_exporter_file_errors_total{file="a.prom",reason="too_many_series"}', body),
    ).toBe(1);
    expect(
      await h.value('metrics_exporter_file_errors_total{file="c.prom",reason="total_series_cap"}', body),
    ).toBe(1);
    expect(await h.value('metrics_exporter_limit_hits_total{limit="max_total_series"}', body)).toBe(1);
    expect(await h.value('metrics_exporter_limit_hits_total{limit="max_series_per_file"}', body)).toBe(1);

    await unlink(join(h.dir, "b.prom"));
    await h.app.collect();
    body = await h.scrape();
    expect(await h.value("metrics_exporter_series", body)).toBe(80);
    expect(body).toContain('c{i="79"} 79\n');
  });

  it("shares MAX_FAMILIES and MAX_TOTAL_BYTES among files; a refused file gets in once another frees room", async () => {
    const h = await harness({ maxFamilies: 5, maxTotalBytes: 2048, maxFileBytes: 2048 });
    const fams = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i} ${i}\n`).join("");
    await writeProm(h.dir, "a.prom", fams("a", 3));
    await writeProm(h.dir, "b.prom", fams("b", 3));
    // 500 bytes of HELP count 4 times: 2000 + the file's own bytes > 2048.
    await writeProm(h.dir, "c.prom", `# HELP c_help ${"h".repeat(500)}\nc_help 1\n`);
    await h.app.collect();
    let body = await h.scrape();
    expect(body).toContain("a2 2\n");
    expect(body).not.toContain("b0 0\n");
    expect(body).not.toContain("c_help 1\n");
    expect(
      await h.value('metrics_exporter_file_errors_total{file="b.prom",reason="too_many_families"}', body),
    ).toBe(1);
    expect(
      await h.value('metrics_exporter_file_errors_total{file="c.prom",reason="total_bytes_cap"}', body),
    ).toBe(1);
    expect(await h.value('metrics_exporter_limit_hits_total{limit="max_families"}', body)).toBe(1);
    expect(await h.value('metrics_exporter_limit_hits_total{limit="max_total_bytes"}', body)).toBe(1);

    await unlink(join(h.dir, "a.prom"));
    await h.app.collect();
    body = await h.scrape();
    expect(body).toContain("b2 2\n");
  });

  it("caps the number of files", async () => {
    const h = await harness({ maxFiles: 2 });
    for (const n of ["a", "b", "c"]) await writeProm(h.dir, `${n}.prom`, `${n}_m 1\n`);
    await h.app.collect();
    const body = await h.scrape();
    expect(body).toContain("a_m 1\n");
    expect(body).toContain("b_m 1\n");
    expect(body).not.toContain("c_m 1\n");
    expect(await h.value('metrics_exporter_limit_hits_total{limit="max_files"}', body)).toBe(1);
  });
});

describe("symlinks and an unreadable directory", () => {
  it("follows a symlink inside METRICS_DIR but never one pointing outside", async () => {
    const h = await harness();
    const outside = join(h.dir, "..", "secret.prom");
    await writeFile(outside, "secret_metric 1\n");
    await symlink(outside, join(h.dir, "escape.prom"));
    await mkdir(join(h.dir, "..data"));
    await writeFile(join(h.dir, "..data", "inner.prom"), "inner_metric 1\n");
    await symlink("..data/inner.prom", join(h.dir, "inner.prom"));
    await h.app.collect();
    const body = await h.scrape();
    expect(body).not.toContain("secret_metric");
    expect(body).toContain("inner_metric 1\n");
    expect(await h.value('metrics_exporter_files_skipped_total{reason="symlink_outside"}', body)).toBe(1);
  });

  it("keeps serving the last good versions while the directory cannot be listed, and recovers", async () => {
    const h = await harness();
    await writeProm(h.dir, "app.prom", APP);
    await h.app.collect();
    await rename(h.dir, `${h.dir}.away`);
    await h.app.collect();
    let body = await h.scrape();
    expect(body).toContain('app_requests_total{code="200"} 5\n');
    expect(await h.value("metrics_exporter_dir_readable", body)).toBe(0);
    expect(await h.value('metrics_exporter_collection_errors_total{reason="enoent"}', body)).toBe(1);
    await rename(`${h.dir}.away`, h.dir);
    await writeProm(h.dir, "app.prom", APP.replace("} 5", "} 6"));
    await h.app.collect();
    body = await h.scrape();
    expect(await h.value("metrics_exporter_dir_readable", body)).toBe(1);
    expect(body).toContain('app_requests_total{code="200"} 6\n');
  });
});
