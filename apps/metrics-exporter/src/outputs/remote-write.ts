// Prometheus remote-write 1.0 output: every send is one snappy-compressed protobuf WriteRequest
// with the current collection, each sample stamped with its collection time, plus external labels
// (`job`, `pod`, `namespace`; a series' own label of that name is kept as `exported_<name>`, as a
// scrape without honor_labels does). A series that went away (its file deleted or stale, or the
// series itself gone) gets the staleness marker once, so queries stop showing it at once instead
// of for the 5-minute lookback. Nothing queues: a retry after backoff sends the newest collection
// (with the staleness markers still owed), so an outage costs a gap, never a growing backlog.
// 2xx = sent; 429, 5xx and network errors = retried; other 4xx = dropped, counted and logged.
import { readFile } from "node:fs/promises";
import { SnappyCompressor } from "@sidecar/shared";
import { http } from "../node-http.js";
import { forEachSample } from "../samples.js";
import type { SelfMetrics } from "../self-metrics.js";
import type { Sender, SendResult, Snapshot } from "./output.js";
import { encodeLabels, ProtoWriter, writeSeries } from "./remote-write-proto.js";

export interface RemoteWriteOptions {
  readonly url: URL;
  /** Added to every series (`job`, `pod`, `namespace`); empty values are left out. */
  readonly externalLabels: Readonly<Record<string, string>>;
  readonly username: string | undefined;
  /** Files read at every send, so a rotated Secret is picked up. */
  readonly passwordFile: string | undefined;
  readonly bearerTokenFile: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly ca: string | undefined;
  readonly metrics: SelfMetrics;
  readonly userAgent?: string;
}

interface Response {
  readonly status: number;
  readonly body: string;
}

async function post(
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
  ca: string | undefined,
  signal: AbortSignal,
): Promise<Response> {
  // node:https (TLS, OpenSSL's start-up: ≈ 6 MiB on Node 24) only for an https:// receiver.
  const request = url.protocol === "https:" ? (await import("node:https")).request : http.request;
  return new Promise<Response>((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(body.length) },
        signal,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          if (text.length < 1000) text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text.slice(0, 500).trim() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export class RemoteWriteSender implements Sender {
  readonly name = "remote_write" as const;
  readonly target: string;
  private readonly opts: RemoteWriteOptions;
  private readonly external: [string, string][];
  /**
   * Series of the last request: their encoded labels as latin1 strings (byte for byte), for the
   * staleness markers. Strings, not a Buffer per series: no per-send buffer garbage.
   */
  private live = new Set<string>();
  /** Series that went away and whose staleness marker has not been delivered yet (same keys). */
  private readonly owedStale = new Set<string>();
  private readonly req = new ProtoWriter();
  private readonly snappy = new SnappyCompressor();

  constructor(opts: RemoteWriteOptions) {
    this.opts = opts;
    const u = new URL(opts.url.href);
    u.username = "";
    u.password = "";
    this.target = u.href;
    this.external = Object.entries(opts.externalLabels).filter(([, v]) => v !== "");
  }

  /**
   * The request body (uncompressed protobuf) for a snapshot. `body` is a view into a buffer that
   * the next encode() overwrites: compress it before anything else encodes.
   */
  encode(snapshot: Snapshot): {
    body: Buffer;
    series: number;
    stale: number;
    current: Set<string>;
    clashes: number;
  } {
    const req = this.req;
    req.reset();
    const current = new Set<string>();
    const ts = snapshot.timestampMs;
    const externalNames = new Set(this.external.map(([k]) => k));
    let clashes = 0;
    for (const family of snapshot.families) {
      forEachSample(family, (name, labels, value) => {
        const all: [string, string][] = [["__name__", name]];
        const own = new Set<string>();
        for (const [k] of labels) own.add(k);
        for (const [k, v] of labels) {
          if (!externalNames.has(k)) {
            all.push([k, v]);
            continue;
          }
          // The same rule as for the Pushgateway: kept as exported_<name>, unless that exists too.
          if (own.has(`exported_${k}`)) {
            clashes++;
            return;
          }
          all.push([`exported_${k}`, v]);
        }
        for (const pair of this.external) all.push(pair);
        all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        // A view into a scratch buffer, written into the request at once.
        const labelBytes = encodeLabels(all);
        const key = labelBytes.toString("latin1");
        if (current.has(key)) return; // renaming made two series equal: the first wins
        current.add(key);
        writeSeries(req, labelBytes, value, ts);
      });
    }
    for (const key of this.live) if (!current.has(key)) this.owedStale.add(key);
    for (const key of current) this.owedStale.delete(key);
    for (const key of this.owedStale) writeSeries(req, Buffer.from(key, "latin1"), undefined, ts);
    return {
      body: req.take(),
      series: current.size,
      stale: this.owedStale.size,
      current,
      clashes,
    };
  }

  private async authHeader(): Promise<string | undefined> {
    if (this.opts.bearerTokenFile) {
      return `Bearer ${(await readFile(this.opts.bearerTokenFile, "utf8")).trim()}`;
    }
    if (this.opts.username !== undefined) {
      const password = this.opts.passwordFile
        ? (await readFile(this.opts.passwordFile, "utf8")).replace(/\r?\n$/, "")
        : "";
      return `Basic ${Buffer.from(`${this.opts.username}:${password}`).toString("base64")}`;
    }
    const u = this.opts.url;
    if (u.username || u.password) {
      return `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    }
    return undefined;
  }

  async send(snapshot: Snapshot, _timeoutMs: number, abort: AbortSignal): Promise<SendResult> {
    const encoded = this.encode(snapshot);
    if (encoded.clashes > 0)
      this.opts.metrics.outputDropped.inc({ output: this.name, reason: "label_clash" }, encoded.clashes);
    const after = () => {
      this.live = encoded.current;
    };
    if (encoded.series === 0 && this.owedStale.size === 0) {
      after();
      return { kind: "success" };
    }
    // Compressed at once (encoded.body is reused by the next encode), and wrapped, not copied:
    // a typical pod's send was four copies of a few hundred kB, enough garbage to force a full GC
    // (reclaim.ts) after every collection.
    const body = this.snappy.compress(encoded.body);
    let res: Response;
    try {
      const headers: Record<string, string> = {
        ...this.opts.headers,
        "content-type": "application/x-protobuf",
        "content-encoding": "snappy",
        "x-prometheus-remote-write-version": "0.1.0",
        "user-agent": this.opts.userAgent ?? "sidecar-metrics-exporter",
      };
      const auth = await this.authHeader();
      if (auth) headers.authorization = auth;
      res = await post(this.opts.url, headers, body, this.opts.ca, abort);
    } catch (err) {
      after();
      const e = err as NodeJS.ErrnoException;
      return { kind: "retryable", message: `${e.code ?? e.name ?? "error"}: ${e.message}` };
    }
    after();
    if (res.status >= 200 && res.status < 300) {
      this.owedStale.clear();
      return { kind: "success" };
    }
    if (res.status === 429 || res.status >= 500)
      return { kind: "retryable", message: `HTTP ${res.status}: ${res.body}` };
    // The receiver refused this data for good: drop it (and the markers owed with it).
    this.owedStale.clear();
    this.opts.metrics.outputDropped.inc({ output: this.name, reason: `http_${res.status}` });
    return { kind: "failure", message: `HTTP ${res.status}: ${res.body}` };
  }
}
