// Unit tests of the Pushgateway client against a real local HTTP server: URL and grouping key,
// the request it sends, typed results for success / retryable / rejected, backoff on failure, and
// the final push at close; plus the push body's handling of job/instance labels.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { Exposition } from "../src/exposition.js";
import { groupingSegment, Pusher, pushUrl } from "../src/outputs/pushgateway.js";
import { parseText } from "../src/parse.js";
import { createSelfMetrics } from "../src/self-metrics.js";
import { silentLogger, waitFor } from "./helpers.js";

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function gateway(statuses: number[]): Promise<{ url: URL; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += String(d);
    });
    req.on("end", () => {
      received.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body,
        at: Date.now(),
      });
      const status = statuses.length > 1 ? (statuses.shift() as number) : (statuses[0] ?? 200);
      res.writeHead(status).end(status >= 400 ? "nope" : "");
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return { url: new URL(`http://user:p%40ss@127.0.0.1:${port}/base/`), received };
}

function pusher(url: URL, overrides: Partial<ConstructorParameters<typeof Pusher>[0]> = {}) {
  const registry = new Registry();
  const metrics = createSelfMetrics(registry);
  const p = new Pusher({
    url,
    job: "sidecar",
    instance: "pod/0",
    intervalMs: 60_000,
    timeoutMs: 2000,
    retryMinMs: 50,
    retryMaxMs: 200,
    body: () => Buffer.from("m 1\n"),
    logger: silentLogger(),
    metrics,
    ...overrides,
  });
  return { p, registry };
}

describe("grouping key", () => {
  it("path-encodes values and uses base64 for a slash or an empty value", () => {
    expect(groupingSegment("job", "sidecar")).toBe("job/sidecar");
    expect(groupingSegment("instance", "pod/0")).toBe(
      `instance@base64/${Buffer.from("pod/0").toString("base64url")}`,
    );
    expect(groupingSegment("instance", "")).toBe("instance@base64/=");
    expect(groupingSegment("job", "a b")).toBe("job/a%20b");
    // Dot segments would be resolved away by URL normalisation (".." → a different group).
    expect(pushUrl(new URL("http://gw:9091/"), "..", ".").href).toBe(
      `http://gw:9091/metrics/job@base64/${Buffer.from("..").toString("base64url")}/instance@base64/${Buffer.from(".").toString("base64url")}`,
    );
    expect(groupingSegment("job", "a.b")).toBe("job/a.b");
    expect(pushUrl(new URL("http://u:p@gw:9091/prefix/"), "j", "i").href).toBe(
      "http://gw:9091/prefix/metrics/job/j/instance/i",
    );
  });
});

describe("Pusher", () => {
  it("PUTs text format with basic auth from the URL and reports success", async () => {
    const gw = await gateway([200]);
    const { p, registry } = pusher(gw.url);
    expect(await p.pushOnce()).toEqual({ kind: "success", status: 200 });
    const r = gw.received[0];
    expect(r?.method).toBe("PUT");
    expect(r?.url).toBe("/base/metrics/job/sidecar/instance@base64/cG9kLzA");
    expect(r?.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(r?.headers.authorization).toBe(`Basic ${Buffer.from("user:p@ss").toString("base64")}`);
    expect(r?.body).toBe("m 1\n");
    expect(await registry.metrics()).toContain('metrics_exporter_pushes_total{result="success"} 1');
  });

  it("classifies 5xx and network errors as retryable, 4xx as rejected", async () => {
    const gw = await gateway([503, 400]);
    const { p } = pusher(gw.url);
    expect(await p.pushOnce()).toMatchObject({ kind: "retryable", status: 503 });
    expect(await p.pushOnce()).toMatchObject({ kind: "failure", status: 400, message: "nope" });
    const dead = pusher(new URL("http://127.0.0.1:1/")).p;
    expect(await dead.pushOnce()).toMatchObject({ kind: "retryable" });
  });

  it("backs off while failing, returns to the interval after success, and pushes once more at close", async () => {
    const gw = await gateway([500, 500, 500, 200]);
    const { p } = pusher(gw.url, { intervalMs: 60_000 });
    p.start();
    await waitFor("four pushes", () => gw.received.length >= 4, 10_000);
    const gaps = gw.received.slice(1, 4).map((r, i) => r.at - (gw.received[i]?.at ?? 0));
    // Equal-jitter backoff from 50 ms, capped at 200 ms: never immediate, never the 60 s interval.
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(20);
      expect(g).toBeLessThan(5000);
    }
    // After the success the next push waits the full interval; close() pushes at once.
    const final = await p.close(Date.now() + 5000);
    expect(final).toMatchObject({ kind: "success" });
    expect(gw.received).toHaveLength(5);
  });
});

describe("Pusher at shutdown", () => {
  it("abandons a hung periodic push at close and still makes the final push before the deadline", async () => {
    // A Pushgateway that accepts the connection but never answers (overloaded, or a proxy that
    // black-holes): the periodic push in flight at SIGTERM must not eat the shutdown budget, or the
    // final push never happens and the lifecycle deadline forces exit 1.
    const seen: string[] = [];
    const server = createServer((req) => {
      seen.push(req.url ?? "");
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    try {
      const { p } = pusher(new URL(`http://127.0.0.1:${port}/`), { timeoutMs: 5000 });
      p.start();
      await waitFor("the periodic push to be in flight", () => seen.length >= 1, 10_000);
      const deadline = Date.now() + 2000;
      const final = await p.close(deadline);
      expect(final).toMatchObject({ kind: "retryable" });
      expect(Date.now()).toBeLessThan(deadline);
      await waitFor("the final push to reach the gateway", () => seen.length >= 2, 5000);
      expect(seen).toHaveLength(2);
    } finally {
      server.closeAllConnections();
    }
  });
});

describe("push body", () => {
  it("renames job/instance labels to exported_* and leaves out Pushgateway-reserved names", () => {
    const r = parseText(
      [
        '# TYPE a gauge\na{instance="i",job="j",x="1"} 1\na{x="job=\\"x\\""} 2',
        "# TYPE push_time_seconds gauge\npush_time_seconds 5",
        '# TYPE b gauge\nb{exported_job="e",job="j"} 3\nb{y="1"} 4',
        "",
      ].join("\n"),
      { maxSeries: 100 },
    );
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const e = new Exposition();
    e.update(r.families);
    const body = e.push().toString();
    expect(body).toContain('a{exported_instance="i",exported_job="j",x="1"} 1\n');
    expect(body).toContain('a{x="job=\\"x\\""} 2\n');
    expect(body).not.toContain("push_time_seconds");
    expect(body).not.toContain("b{exported_job");
    expect(body).toContain('b{y="1"} 4\n');
  });

  it("leaves out a series whose renamed labels would duplicate another (the Pushgateway rejects the whole push)", () => {
    // A real Pushgateway answers 400 "was collected before with the same name and label values"
    // for the whole PUT, so one such pair would make every push fail.
    const r = parseText(
      '# TYPE a gauge\na{b="1",exported_instance="i"} 1\na{b="1",instance="i"} 2\na{job="j"} 3\n',
      { maxSeries: 100 },
    );
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    const e = new Exposition();
    e.update(r.families);
    const body = e.push().toString();
    expect(body).toContain('a{b="1",exported_instance="i"} 1\n');
    expect(body.match(/exported_instance="i"/g)).toHaveLength(1);
    expect(body).toContain('a{exported_job="j"} 3\n');
  });
});
