// StatsD output: the collected families as StatsD lines over UDP (packets never larger than
// STATSD_MTU, many lines a packet) or TCP (newline-terminated lines on one kept connection).
//
// Gauges and untyped → `|g` (a negative gauge is sent as `:0|g` then `:-v|g` in one packet: a
// leading minus means "decrement" in StatsD); counters → `|c` with the delta since the last
// successful send (a reset sends the new value, never a negative; the first send only takes the
// baseline, so a restart of the exporter does not count everything again; a series that appears
// later counts from 0); histograms and summaries → `_count`/`_sum` as counter deltas, buckets (`le`)
// and quantiles as gauges. Labels become DogStatsD tags (`|#k:v`), InfluxDB/Telegraf tags
// (`name,k=v`) or, for graphite/none, parts of the name (`name.k.v`); names and tag values are
// sanitised for the format. NaN and ±Inf cannot be expressed and are left out (counted).
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { connect, isIP, type Socket } from "node:net";
import type { Family } from "../families.js";
import { forEachSample, type Labels } from "../samples.js";
import type { SelfMetrics } from "../self-metrics.js";
import type { Sender, SendResult, Snapshot } from "./output.js";

export const STATSD_TAG_FORMATS = ["dogstatsd", "influx", "graphite", "none"] as const;
export type StatsdTagFormat = (typeof STATSD_TAG_FORMATS)[number];

export interface StatsdAddress {
  readonly protocol: "udp" | "tcp";
  readonly host: string;
  readonly port: number;
}

/** `host:port` or `udp://host:port` (UDP), `tcp://host:port` (TCP); IPv6 hosts in brackets. */
export function parseStatsdAddress(raw: string): StatsdAddress {
  const m = /^(?:(udp|tcp):\/\/)?(\[[0-9A-Fa-f:.]+\]|[^:/[\]\s]+):(\d{1,5})$/.exec(raw.trim());
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) throw new Error("not host:port");
  const host = (m[2] as string).replace(/^\[(.*)\]$/, "$1");
  return { protocol: m[1] === "tcp" ? "tcp" : "udp", host, port };
}

const sanitizeName = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, "_");

function tagPart(format: StatsdTagFormat, s: string): string {
  switch (format) {
    case "dogstatsd":
      // `,` separates tags, `|` fields, `#` starts the tag list; newlines end the line.
      return s.replace(/[,|#\s]/g, "_");
    case "influx":
      return s.replace(/[,=:|\s\\]/g, "_");
    default:
      // Folded into a dotted name: a dot would make a new path segment.
      return s.replace(/[^A-Za-z0-9_-]/g, "_") || "_";
  }
}

/** `name` plus labels in the chosen format, without the `:value|type`; the type goes last for dogstatsd. */
function identity(format: StatsdTagFormat, name: string, labels: Labels): { head: string; tail: string } {
  if (labels.length === 0) return { head: name, tail: "" };
  switch (format) {
    case "dogstatsd":
      return {
        head: name,
        tail: `|#${labels.map(([k, v]) => `${tagPart(format, k)}:${tagPart(format, v)}`).join(",")}`,
      };
    case "influx":
      return {
        head: `${name},${labels.map(([k, v]) => `${tagPart(format, k)}=${tagPart(format, v)}`).join(",")}`,
        tail: "",
      };
    default:
      return {
        head: `${name}.${labels.map(([k, v]) => `${tagPart(format, k)}.${tagPart(format, v)}`).join(".")}`,
        tail: "",
      };
  }
}

/** A number as StatsD text: at most 15 significant digits (no 0.30000000000000004 from deltas). */
function num(n: number): string {
  return String(Number(n.toPrecision(15)));
}

export interface Encoded {
  /** Line groups: each is one line, or two that must travel in one packet (a negative gauge). */
  readonly lines: string[];
  readonly nonFinite: number;
  /** Make this send's counter values the baseline of the next (call after a successful send). */
  commit(): void;
}

/** Turns snapshots into StatsD lines, keeping the counter values of the last successful send. */
export class StatsdEncoder {
  private readonly prefix: string;
  private readonly format: StatsdTagFormat;
  private sent: Map<string, number> | undefined;

  constructor(opts: { prefix: string; format: StatsdTagFormat }) {
    this.prefix = opts.prefix === "" || opts.prefix.endsWith(".") ? opts.prefix : `${opts.prefix}.`;
    this.format = opts.format;
  }

  encode(families: readonly Family[]): Encoded {
    const lines: string[] = [];
    const counters = new Map<string, number>();
    const previous = this.sent;
    let nonFinite = 0;
    for (const family of families) {
      forEachSample(family, (sampleName, labels, value) => {
        if (!Number.isFinite(value)) {
          nonFinite++;
          return;
        }
        const isCount =
          family.type === "counter" ||
          ((family.type === "histogram" || family.type === "summary") &&
            (sampleName === `${family.name}_sum` || sampleName === `${family.name}_count`));
        const { head, tail } = identity(this.format, `${this.prefix}${sanitizeName(sampleName)}`, labels);
        if (!isCount) {
          lines.push(
            value < 0
              ? `${head}:0|g${tail}\n${head}:${num(value)}|g${tail}`
              : `${head}:${num(value)}|g${tail}`,
          );
          return;
        }
        const key = `${head}\0${tail}`;
        counters.set(key, value);
        if (previous === undefined) return; // the first send takes the baseline
        const before = previous.get(key);
        const delta = before === undefined || value < before ? value : value - before;
        if (delta !== 0) lines.push(`${head}:${num(delta)}|c${tail}`);
      });
    }
    return {
      lines,
      nonFinite,
      commit: () => {
        this.sent = counters;
      },
    };
  }
}

/** Pack line groups into packets of at most `mtu` bytes; a group longer than that alone is left out. */
export function packPackets(lines: readonly string[], mtu: number): { packets: Buffer[]; tooLong: number } {
  const packets: Buffer[] = [];
  let tooLong = 0;
  let current = "";
  let currentBytes = 0;
  for (const line of lines) {
    const bytes = Buffer.byteLength(line, "utf8");
    if (bytes > mtu) {
      tooLong++;
      continue;
    }
    if (currentBytes > 0 && currentBytes + 1 + bytes > mtu) {
      packets.push(Buffer.from(current, "utf8"));
      current = "";
      currentBytes = 0;
    }
    current = currentBytes === 0 ? line : `${current}\n${line}`;
    currentBytes += (currentBytes === 0 ? 0 : 1) + bytes;
  }
  if (currentBytes > 0) packets.push(Buffer.from(current, "utf8"));
  return { packets, tooLong };
}

export interface StatsdSenderOptions {
  readonly address: StatsdAddress;
  readonly prefix: string;
  readonly tags: StatsdTagFormat;
  readonly mtu: number;
  readonly metrics: SelfMetrics;
}

export class StatsdSender implements Sender {
  readonly name = "statsd" as const;
  readonly target: string;
  private readonly opts: StatsdSenderOptions;
  private readonly encoder: StatsdEncoder;
  private udp: { socket: UdpSocket; family: 4 | 6 } | undefined;
  private tcp: Socket | undefined;

  constructor(opts: StatsdSenderOptions) {
    this.opts = opts;
    const a = opts.address;
    this.target = `${a.protocol}://${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
    this.encoder = new StatsdEncoder({ prefix: opts.prefix, format: opts.tags });
  }

  async send(snapshot: Snapshot, _timeoutMs: number, abort: AbortSignal): Promise<SendResult> {
    const encoded = this.encoder.encode(snapshot.families);
    const dropped = this.opts.metrics.outputDropped;
    if (encoded.nonFinite > 0) dropped.inc({ output: this.name, reason: "non_finite" }, encoded.nonFinite);
    try {
      if (this.opts.address.protocol === "udp") {
        const { packets, tooLong } = packPackets(encoded.lines, this.opts.mtu);
        if (tooLong > 0) dropped.inc({ output: this.name, reason: "longer_than_mtu" }, tooLong);
        await this.sendUdp(packets, abort);
      } else {
        await this.sendTcp(encoded.lines, abort);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { kind: "retryable", message: `${e.code ?? "error"}: ${e.message}` };
    }
    encoded.commit();
    return { kind: "success" };
  }

  private async sendUdp(packets: Buffer[], abort: AbortSignal): Promise<void> {
    const { host, port } = this.opts.address;
    // Resolved at every send: a node agent's address (or its DNS name) may change.
    const { address, family } = await lookup(host);
    const fam = family === 6 ? 6 : 4;
    if (!this.udp || this.udp.family !== fam) {
      this.udp?.socket.close();
      const socket = createSocket(fam === 6 ? "udp6" : "udp4");
      // ICMP "port unreachable" and the like arrive as 'error' events; the next send tries again.
      socket.on("error", () => {});
      socket.unref();
      this.udp = { socket, family: fam };
    }
    const socket = this.udp.socket;
    for (const p of packets) {
      abort.throwIfAborted();
      await new Promise<void>((resolve, reject) =>
        socket.send(p, port, address, (err) => (err ? reject(err) : resolve())),
      );
    }
  }

  private async sendTcp(lines: string[], abort: AbortSignal): Promise<void> {
    const socket = this.tcp ?? (await this.connectTcp(abort));
    const body = lines.length === 0 ? "" : `${lines.join("\n")}\n`;
    if (body === "") return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        socket.destroy();
        reject(abort.reason instanceof Error ? abort.reason : new Error("aborted"));
      };
      abort.addEventListener("abort", onAbort, { once: true });
      socket.write(body, (err) => {
        abort.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  private connectTcp(abort: AbortSignal): Promise<Socket> {
    const { host, port } = this.opts.address;
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host, port });
      const fail = (err: Error) => {
        socket.destroy();
        abort.removeEventListener("abort", onAbort);
        reject(err);
      };
      const onAbort = () => fail(abort.reason instanceof Error ? abort.reason : new Error("aborted"));
      abort.addEventListener("abort", onAbort, { once: true });
      socket.once("error", fail);
      socket.once("connect", () => {
        abort.removeEventListener("abort", onAbort);
        socket.off("error", fail);
        socket.setNoDelay(true);
        // A connection that breaks is dropped; the next send connects again.
        const drop = () => {
          if (this.tcp === socket) this.tcp = undefined;
        };
        socket.on("error", drop);
        socket.on("close", drop);
        // The daemon sends nothing back; reading keeps a closed peer from going unnoticed.
        socket.on("data", () => {});
        socket.unref();
        this.tcp = socket;
        resolve(socket);
      });
    });
  }

  close(): void {
    this.udp?.socket.close();
    this.udp = undefined;
    this.tcp?.end();
    this.tcp = undefined;
  }
}
