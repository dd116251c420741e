// The StatsD output of the built program against the real StatsD daemon (the npm package `statsd`,
// run as its own process; what it received is read through its management interface, `gauges` and
// `counters` on TCP), and, for the DogStatsD and InfluxDB tag formats the daemon does not speak,
// against the raw UDP packets.
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { connect, createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packPackets, parseStatsdAddress, StatsdEncoder } from "../src/outputs/statsd.js";
import { parseText } from "../src/parse.js";
import { freePort, runExporter, tempDir, waitFor, writeProm } from "./helpers.js";

const STATSD = join(dirname(createRequire(import.meta.url).resolve("statsd/package.json")), "stats.js");

const run = (env: Record<string, string>) => runExporter(env);

/** One management command; the daemon answers util.inspect() of the object, then END. */
function mgmt(port: number, command: string): Promise<Record<string, number>> {
  return new Promise((resolvePromise, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    let text = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      text += d;
      if (text.includes("END")) {
        s.end();
        const out: Record<string, number> = {};
        for (const m of text.matchAll(/(?:'((?:[^'\\]|\\.)*)'|([A-Za-z_$][\w$]*)):\s*(-?[0-9.e+-]+)/g)) {
          out[(m[1] ?? m[2]) as string] = Number(m[3]);
        }
        resolvePromise(out);
      }
    });
    s.on("error", reject);
    s.write(`${command}\n`);
  });
}

interface Daemon {
  proc: ChildProcess;
  udp: number;
  tcp: number;
  mgmt: number;
}

async function startStatsd(dir: string): Promise<Daemon> {
  const [udp, tcp, mgmtPort] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, "statsd-config.js");
  await writeFile(
    config,
    `({ mgmt_address: "127.0.0.1", mgmt_port: ${mgmtPort}, flushInterval: 3600000, backends: [],
        servers: [{ server: "./servers/udp", address: "127.0.0.1", port: ${udp} },
                  { server: "./servers/tcp", address: "127.0.0.1", port: ${tcp} }] })\n`,
  );
  const proc = spawn(process.execPath, [STATSD, config], { cwd: dirname(STATSD), stdio: "ignore" });
  await waitFor("statsd management port", async () => {
    if (proc.exitCode !== null) throw new Error(`statsd exited with ${proc.exitCode}`);
    return (await mgmt(mgmtPort, "gauges")) !== undefined;
  });
  return { proc, udp, tcp, mgmt: mgmtPort };
}

const FILE = (requests: number, sum: number, count: number) =>
  [
    "# TYPE app_temp gauge",
    'app_temp{room="a b"} 21.5',
    'app_temp{room="c"} -3',
    "# TYPE app_requests_total counter",
    `app_requests_total{code="200"} ${requests}`,
    "# TYPE app_latency_seconds histogram",
    'app_latency_seconds_bucket{le="0.1"} 3',
    `app_latency_seconds_bucket{le="+Inf"} ${count}`,
    `app_latency_seconds_sum ${sum}`,
    `app_latency_seconds_count ${count}`,
    "# TYPE app_up untyped",
    "app_up NaN",
    "",
  ].join("\n");

describe("StatsD output against the statsd daemon", () => {
  let daemon: Daemon;
  let cleanup: () => Promise<void>;
  let root = "";

  beforeAll(async () => {
    const t = await tempDir("mx-statsd-");
    cleanup = t.cleanup;
    root = t.dir;
    daemon = await startStatsd(root);
  });

  afterAll(async () => {
    if (daemon?.proc.exitCode === null) {
      const exited = new Promise((r) => daemon.proc.once("exit", r));
      daemon.proc.kill("SIGTERM");
      await exited;
    }
    await cleanup?.();
  });

  it("UDP, labels folded into names: gauges (negative too), buckets, counter deltas, a reset, a final send at SIGTERM", async () => {
    const dir = join(root, "udp");
    await mkdir(dir);
    await writeProm(dir, "app.prom", FILE(10, 1.5, 5));
    const httpPort = await freePort();
    const p = run({
      METRICS_DIR: dir,
      HTTP_PORT: String(httpPort),
      STATSD_ADDRESS: `127.0.0.1:${daemon.udp}`,
      STATSD_TAGS: "graphite",
      STATSD_PREFIX: "pod",
      COLLECT_INTERVAL_MS: "200",
    });
    try {
      const gauges = await waitFor("the gauges", async () => {
        const g = await mgmt(daemon.mgmt, "gauges");
        return g["pod.app_temp.room.a_b"] === 21.5 && g;
      });
      expect(gauges["pod.app_temp.room.c"]).toBe(-3);
      expect(gauges["pod.app_latency_seconds_bucket.le.0_1"]).toBe(3);
      expect(gauges["pod.app_latency_seconds_bucket.le._Inf"]).toBe(5);
      expect(Object.keys(gauges).some((k) => k.includes("app_up"))).toBe(false); // NaN cannot be sent
      // The first send took the counters' baseline: nothing counted yet.
      let counters = await mgmt(daemon.mgmt, "counters");
      expect(counters["pod.app_requests_total.code.200"]).toBeUndefined();

      await writeProm(dir, "app.prom", FILE(17, 2.5, 7));
      counters = await waitFor("the counter deltas", async () => {
        const c = await mgmt(daemon.mgmt, "counters");
        return c["pod.app_requests_total.code.200"] === 7 && c;
      });
      expect(counters["pod.app_latency_seconds_sum"]).toBe(1);
      expect(counters["pod.app_latency_seconds_count"]).toBe(2);

      // A reset (the app restarted): the new value counts, never a negative delta.
      await writeProm(dir, "app.prom", FILE(4, 2.5, 7));
      await waitFor(
        "the reset counted",
        async () => (await mgmt(daemon.mgmt, "counters"))["pod.app_requests_total.code.200"] === 11,
      );

      // The output's own metrics, labelled output="statsd".
      const own = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      expect(
        Number(
          own.match(/^metrics_exporter_output_sends_total\{output="statsd",result="success"\} (\d+)$/m)?.[1],
        ),
      ).toBeGreaterThan(2);
      expect(
        Number(
          own.match(
            /^metrics_exporter_output_last_success_timestamp_seconds\{output="statsd"\} (\S+)$/m,
          )?.[1],
        ),
      ).toBeGreaterThan(Date.now() / 1000 - 600);
      expect(own).toMatch(/^metrics_exporter_output_send_duration_seconds_count\{output="statsd"\} [1-9]/m);
      expect(own).toMatch(
        /^metrics_exporter_output_dropped_total\{output="statsd",reason="non_finite"\} [1-9]/m,
      );

      // The app's last write before it stopped, then SIGTERM: the final send carries it.
      await writeProm(dir, "app.prom", FILE(9, 2.5, 7).replace("21.5", "22.5"));
      p.child.kill("SIGTERM");
      expect(await p.exit).toBe(0);
      // (UDP: the daemon may read the last packet a moment after the exporter exited.)
      await waitFor(
        "the final gauge",
        async () => (await mgmt(daemon.mgmt, "gauges"))["pod.app_temp.room.a_b"] === 22.5,
        30_000,
      );
      await waitFor(
        "the final delta",
        async () => (await mgmt(daemon.mgmt, "counters"))["pod.app_requests_total.code.200"] === 16,
        30_000,
      );
      expect(p.out()).toContain("final send at shutdown");
    } finally {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }
  });

  it("TCP, and a refused connection is retried with backoff and logged once until it recovers", async () => {
    const dir = join(root, "tcp");
    await mkdir(dir);
    await writeProm(dir, "app.prom", "# TYPE tcp_value gauge\ntcp_value 42\n");
    const p = run({
      METRICS_DIR: dir,
      STATSD_ADDRESS: `tcp://127.0.0.1:${daemon.tcp}`,
      STATSD_TAGS: "none",
      COLLECT_INTERVAL_MS: "200",
    });
    const closedPort = await freePort();
    const q = run({
      METRICS_DIR: dir,
      STATSD_ADDRESS: `tcp://127.0.0.1:${closedPort}`,
      COLLECT_INTERVAL_MS: "200",
      PUSH_RETRY_MIN_MS: "50",
      PUSH_RETRY_MAX_MS: "200",
    });
    try {
      await waitFor("tcp_value", async () => (await mgmt(daemon.mgmt, "gauges")).tcp_value === 42);
      await waitFor(
        "several refused sends",
        () => (q.out().match(/"result":"retryable"|ECONNREFUSED/g) ?? []).length >= 1,
      );
      await new Promise((r) => setTimeout(r, 1500));
      expect(q.child.exitCode).toBeNull();
      expect(q.out().match(/send failed; retrying with backoff/g)).toHaveLength(1);
      // The daemon comes up: the next retry connects, sends, and says so once.
      const received: string[] = [];
      const socks: Socket[] = [];
      const server = createServer((sock) => {
        socks.push(sock);
        sock.on("data", (d) => received.push(String(d)));
      });
      await new Promise<void>((r) => server.listen(closedPort, "127.0.0.1", r));
      try {
        await waitFor("the recovered send", () => received.join("").includes("tcp_value:42|g\n"), 30_000);
        await waitFor("the recovery log", () => q.out().includes("output recovered"));
        q.child.kill("SIGTERM");
        expect(await q.exit).toBe(0);
      } finally {
        for (const sock of socks) sock.destroy();
        await new Promise((r) => server.close(r));
      }
      expect(await q.exit).toBe(0);
      p.child.kill("SIGTERM");
      expect(await p.exit).toBe(0);
    } finally {
      for (const x of [p, q]) if (x.child.exitCode === null) x.child.kill("SIGKILL");
    }
  });
});

describe("StatsD wire formats (raw UDP packets)", () => {
  async function packetsFrom(env: Record<string, string>, text: string, until: (lines: string[]) => boolean) {
    const t = await tempDir("mx-statsd-raw-");
    const dir = join(t.dir, "metrics");
    await mkdir(dir);
    await writeProm(dir, "app.prom", text);
    const sock = createSocket("udp4");
    const packets: Buffer[] = [];
    sock.on("message", (m) => packets.push(m));
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const p = run({
      METRICS_DIR: dir,
      STATSD_ADDRESS: `127.0.0.1:${sock.address().port}`,
      COLLECT_INTERVAL_MS: "200",
      ...env,
    });
    try {
      await waitFor("the packets", () => until(packets.flatMap((b) => b.toString("utf8").split("\n"))));
      return packets;
    } finally {
      p.child.kill("SIGTERM");
      await p.exit;
      sock.close();
      await t.cleanup();
    }
  }

  const MANY = `# TYPE many gauge\n${Array.from({ length: 100 }, (_, i) => `many{i="${i}",v="a,b|c#d e:f"} ${i}`).join("\n")}\n`;

  it("DogStatsD (the default): name:value|g|#k:v, tag values sanitised, packets within STATSD_MTU", async () => {
    const packets = await packetsFrom(
      { STATSD_MTU: "300", STATSD_PREFIX: "p." },
      MANY,
      (lines) => lines.filter((l) => l.startsWith("p.many:")).length >= 100,
    );
    const lines = packets.flatMap((b) => b.toString("utf8").split("\n"));
    expect(lines).toContain("p.many:7|g|#i:7,v:a_b_c_d_e:f");
    for (const b of packets) expect(b.length).toBeLessThanOrEqual(300);
    expect(packets.length).toBeGreaterThan(10); // many lines a packet, but not more than fit
    expect(Math.max(...packets.map((b) => b.toString().split("\n").length))).toBeGreaterThan(1);
  });

  it("InfluxDB/Telegraf: name,k=v:value|g", async () => {
    const packets = await packetsFrom(
      { STATSD_TAGS: "influx" },
      MANY,
      (lines) => lines.filter((l) => l.startsWith("many,")).length >= 100,
    );
    const lines = packets.flatMap((b) => b.toString("utf8").split("\n"));
    expect(lines).toContain("many,i=7,v=a_b_c#d_e_f:7|g");
    for (const b of packets) expect(b.length).toBeLessThanOrEqual(1432);
  });
});

describe("StatsD encoding", () => {
  const families = (text: string) => {
    const r = parseText(text, { maxSeries: 1000 });
    if (!r.ok) throw new Error(r.error.message);
    return r.families;
  };

  it("parses addresses", () => {
    expect(parseStatsdAddress("statsd:8125")).toEqual({ protocol: "udp", host: "statsd", port: 8125 });
    expect(parseStatsdAddress("tcp://10.0.0.1:8125")).toEqual({
      protocol: "tcp",
      host: "10.0.0.1",
      port: 8125,
    });
    expect(parseStatsdAddress("udp://[::1]:8125")).toEqual({ protocol: "udp", host: "::1", port: 8125 });
    for (const bad of ["statsd", "statsd:0", "statsd:70000", "http://x:1", ":8125"]) {
      expect(() => parseStatsdAddress(bad)).toThrow();
    }
  });

  it("summaries: quantiles as gauges, _sum/_count as counter deltas; a negative gauge travels as 0 then the value", () => {
    const enc = new StatsdEncoder({ prefix: "", format: "dogstatsd" });
    const text = (n: number) =>
      `# TYPE s summary\ns{quantile="0.5"} 0.2\ns_sum ${n * 0.1}\ns_count ${n}\n# TYPE g gauge\ng -2\n`;
    const first = enc.encode(families(text(3)));
    expect(first.lines).toEqual(["s:0.2|g|#quantile:0.5", "g:0|g\ng:-2|g"]);
    first.commit();
    const second = enc.encode(families(text(5)));
    expect(second.lines).toEqual(["s:0.2|g|#quantile:0.5", "s_sum:0.2|c", "s_count:2|c", "g:0|g\ng:-2|g"]);
    // Not committed (the send failed): the next delta is still against the last successful send.
    expect(enc.encode(families(text(6))).lines).toContain("s_count:3|c");
  });

  it("never splits a line group and leaves out what is longer than the MTU", () => {
    const { packets, tooLong } = packPackets(["a:1|g", "b:0|g\nb:-1|g", "x".repeat(50), "c:2|g"], 20);
    expect(packets.map(String)).toEqual(["a:1|g\nb:0|g\nb:-1|g", "c:2|g"]);
    expect(tooLong).toBe(1);
  });
});
