// The remote-write output of the built program against a real Prometheus (Debian's, started here
// with --web.enable-remote-write-receiver; what it stored is read through its query API: the
// receiver decoding our snappy protobuf is the independent check of the encoding), and against a
// local HTTP server for the protocol's headers, auth, retries and drops.
import { readFileSync } from "node:fs";
import { mkdir, unlink, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { join, resolve } from "node:path";
import { Registry } from "prom-client";
import { uncompressSync } from "snappy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RemoteWriteSender } from "../src/outputs/remote-write.js";
import { parseText } from "../src/parse.js";
import { createSelfMetrics } from "../src/self-metrics.js";
import {
  requireBinary,
  runExporter,
  type Started,
  startBinary,
  tempDir,
  waitFor,
  writeProm,
} from "./helpers.js";

const PROMETHEUS = "/usr/bin/prometheus";

const run = (env: Record<string, string>) => runExporter(env);

interface PromSeries {
  metric: Record<string, string>;
  value: [number, string];
}

describe("remote-write against Prometheus", () => {
  let prom: Started;
  let cleanup: () => Promise<void>;
  let root = "";

  beforeAll(async () => {
    requireBinary(PROMETHEUS, "prometheus");
    const t = await tempDir("mx-rw-");
    cleanup = t.cleanup;
    root = t.dir;
    const configFile = join(root, "prometheus.yml");
    await writeFile(configFile, "global:\n  scrape_interval: 1h\n");
    prom = await startBinary(
      PROMETHEUS,
      (p) => [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(root, "data")}`,
        `--web.listen-address=127.0.0.1:${p}`,
        "--web.enable-remote-write-receiver",
        "--log.level=warn",
      ],
      "/-/ready",
    );
  });

  afterAll(async () => {
    await prom?.stop();
    await cleanup?.();
  });

  const query = async (q: string): Promise<PromSeries[]> => {
    const res = await fetch(`http://127.0.0.1:${prom.port}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; data: { result: PromSeries[] } };
    expect(body.status).toBe("success");
    return body.data.result;
  };

  it("writes every series with its collection time and external labels; a deleted file's series end at once (staleness marker)", async () => {
    const dir = join(root, "metrics");
    await mkdir(dir);
    await writeProm(
      dir,
      "app.prom",
      [
        "# TYPE rw_requests_total counter",
        'rw_requests_total{code="200",job="own"} 7',
        "# TYPE rw_temp gauge",
        'rw_temp{room="☃ \\"x\\""} -1.5',
        "# TYPE rw_latency histogram",
        'rw_latency_bucket{le="0.5"} 1',
        'rw_latency_bucket{le="+Inf"} 2',
        "rw_latency_sum 0.75",
        "rw_latency_count 2",
        "",
      ].join("\n"),
    );
    await writeProm(dir, "other.prom", "# TYPE rw_other gauge\nrw_other 3\n");
    const startedAt = Date.now();
    const p = run({
      METRICS_DIR: dir,
      REMOTE_WRITE_URL: `http://127.0.0.1:${prom.port}/api/v1/write`,
      POD_NAME: "pod-rw",
      POD_NAMESPACE: "ns-rw",
      COLLECT_INTERVAL_MS: "300",
    });
    try {
      const [requests] = await waitFor("rw_requests_total in Prometheus", async () => {
        const r = await query("rw_requests_total");
        return r.length === 1 && r;
      });
      expect(requests?.metric).toEqual({
        __name__: "rw_requests_total",
        code: "200",
        exported_job: "own",
        job: "sidecar",
        pod: "pod-rw",
        namespace: "ns-rw",
      });
      expect(requests?.value[1]).toBe("7");
      const [temp] = await query("rw_temp");
      expect(temp?.metric.room).toBe('☃ "x"');
      expect(temp?.value[1]).toBe("-1.5");
      expect((await query('rw_latency_bucket{le="+Inf"}'))[0]?.value[1]).toBe("2");
      expect((await query("rw_latency_sum"))[0]?.value[1]).toBe("0.75");
      // Stamped with the collection time (not Prometheus' arrival time, which it would not know).
      const [ts] = await query("timestamp(rw_other)");
      const seconds = Number(ts?.value[1]);
      expect(seconds * 1000).toBeGreaterThanOrEqual(startedAt - 1000);
      expect(seconds * 1000).toBeLessThanOrEqual(Date.now() + 1000);

      // Without the marker, an instant query would keep returning the last value for 5 minutes.
      await unlink(join(dir, "other.prom"));
      await waitFor("rw_other to end", async () => (await query("rw_other")).length === 0, 30_000);
      expect(await query("rw_requests_total")).toHaveLength(1);

      // The final send at SIGTERM carries the app's last write.
      await writeProm(dir, "app.prom", '# TYPE rw_requests_total counter\nrw_requests_total{code="200"} 9\n');
      p.child.kill("SIGTERM");
      expect(await p.exit).toBe(0);
      expect(p.out()).toContain("final send at shutdown");
      const last = await query('rw_requests_total{exported_job=""}');
      expect(last[0]?.value[1]).toBe("9");
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }
  });
});

describe("remote-write protocol details (local HTTP server)", () => {
  let server: Server;
  let port = 0;
  let statuses: number[] = [];
  const requests: { headers: IncomingMessage["headers"]; body: Buffer }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (d: Buffer) => chunks.push(d));
      req.on("end", () => {
        requests.push({ headers: req.headers, body: Buffer.concat(chunks) });
        const status = statuses.shift() ?? 204;
        res.writeHead(status).end(status >= 400 ? "nope" : "");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const a = server.address();
    port = typeof a === "object" && a ? a.port : 0;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it("sends the protocol's headers, basic auth from a file and extra headers; retries 5xx, drops a 400 (logged, not retried)", async () => {
    const t = await tempDir("mx-rw-local-");
    const dir = join(t.dir, "metrics");
    await mkdir(dir);
    await writeProm(dir, "app.prom", "# TYPE local_value gauge\nlocal_value 1\n");
    const pw = join(t.dir, "password");
    await writeFile(pw, "s3cret\n");
    statuses = [500, 503];
    requests.length = 0;
    const p = run({
      METRICS_DIR: dir,
      REMOTE_WRITE_URL: `http://127.0.0.1:${port}/push`,
      REMOTE_WRITE_USERNAME: "user",
      REMOTE_WRITE_PASSWORD_FILE: pw,
      REMOTE_WRITE_HEADERS: "X-Scope-OrgID=tenant-1",
      COLLECT_INTERVAL_MS: "3600000",
      PUSH_RETRY_MIN_MS: "50",
      PUSH_RETRY_MAX_MS: "100",
    });
    try {
      await waitFor("two failures then a success", () => requests.length >= 3);
      const h = requests[2]?.headers ?? {};
      expect(h["content-type"]).toBe("application/x-protobuf");
      expect(h["content-encoding"]).toBe("snappy");
      expect(h["x-prometheus-remote-write-version"]).toBe("0.1.0");
      expect(h["x-scope-orgid"]).toBe("tenant-1");
      expect(h.authorization).toBe(`Basic ${Buffer.from("user:s3cret").toString("base64")}`);
      const body = uncompressSync(requests[2]?.body as Buffer) as Buffer;
      expect(body.includes(Buffer.from("local_value"))).toBe(true);
      // The third request reached the server; its answer is logged once the exporter has read it.
      await waitFor("the recovery logged", () => p.out().includes("output recovered"));
      expect(p.out().match(/send failed; retrying with backoff/g)).toHaveLength(1);

      // A 400 is not retried: dropped, counted, logged; the final send at SIGTERM gets it.
      statuses = [400];
      p.child.kill("SIGTERM");
      expect(await p.exit).toBe(0);
      expect(requests).toHaveLength(4);
      expect(p.out()).toContain("send rejected by the destination; dropped");
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await t.cleanup();
    }
  });

  it("encodes the staleness marker bit for bit and owes it until a send succeeds", async () => {
    const registry = new Registry();
    const sender = new RemoteWriteSender({
      url: new URL(`http://127.0.0.1:${port}/push`),
      externalLabels: { job: "j" },
      username: undefined,
      passwordFile: undefined,
      bearerTokenFile: undefined,
      headers: {},
      ca: undefined,
      metrics: createSelfMetrics(registry),
    });
    const fam = (text: string) => {
      const r = parseText(text, { maxSeries: 10 });
      if (!r.ok) throw new Error(r.error.message);
      return r.families;
    };
    const marker = Buffer.from([0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f]);
    statuses = [];
    expect(
      await sender.send({ families: fam("a 1\nb 2\n"), timestampMs: 1000 }, 1000, AbortSignal.timeout(5000)),
    ).toEqual({ kind: "success" });
    statuses = [503];
    expect(
      (await sender.send({ families: fam("a 1\n"), timestampMs: 2000 }, 1000, AbortSignal.timeout(5000)))
        .kind,
    ).toBe("retryable");
    const failed = uncompressSync(requests.at(-1)?.body as Buffer) as Buffer;
    expect(failed.includes(marker)).toBe(true);
    expect(
      await sender.send({ families: fam("a 1\n"), timestampMs: 3000 }, 1000, AbortSignal.timeout(5000)),
    ).toEqual({ kind: "success" });
    expect((uncompressSync(requests.at(-1)?.body as Buffer) as Buffer).includes(marker)).toBe(true);
    // Delivered: not again.
    await sender.send({ families: fam("a 1\n"), timestampMs: 4000 }, 1000, AbortSignal.timeout(5000));
    expect((uncompressSync(requests.at(-1)?.body as Buffer) as Buffer).includes(marker)).toBe(false);
  });

  it("trusts REMOTE_WRITE_CA_FILE for https (and refuses the same server without it)", async () => {
    // A fixed self-signed certificate for 127.0.0.1 (test/fixtures, made once with openssl, 100 years).
    const fixtures = resolve(import.meta.dirname, "fixtures");
    const got: string[] = [];
    const tls = createHttpsServer(
      {
        cert: readFileSync(join(fixtures, "tls-cert.pem")),
        key: readFileSync(join(fixtures, "tls-key.pem")),
      },
      (req, res) => {
        got.push(String(req.headers["content-encoding"]));
        req.resume();
        req.on("end", () => res.writeHead(204).end());
      },
    );
    await new Promise<void>((r) => tls.listen(0, "127.0.0.1", r));
    const a = tls.address();
    const url = `https://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/api/v1/write`;
    const t = await tempDir("mx-rw-tls-");
    const dir = join(t.dir, "metrics");
    await mkdir(dir);
    await writeProm(dir, "app.prom", "# TYPE tls_value gauge\ntls_value 1\n");
    const trusted = run({
      METRICS_DIR: dir,
      REMOTE_WRITE_URL: url,
      REMOTE_WRITE_CA_FILE: join(fixtures, "tls-cert.pem"),
    });
    const untrusted = run({ METRICS_DIR: dir, REMOTE_WRITE_URL: url });
    try {
      await waitFor("the trusted send", () => got.length >= 1);
      expect(got[0]).toBe("snappy");
      await waitFor("the untrusted send to fail", () =>
        untrusted.out().includes("send failed; retrying with backoff"),
      );
      expect(untrusted.out()).toMatch(/self[- ]signed|unable to verify|CERT/i);
      for (const p of [trusted, untrusted]) {
        p.child.kill("SIGTERM");
        expect(await p.exit).toBe(0);
      }
    } finally {
      for (const p of [trusted, untrusted]) if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await new Promise((r) => tls.close(r));
      await t.cleanup();
    }
  });
});
