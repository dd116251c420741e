// POSTs over plain-text HTTP/1.1 keep-alive connections, written and read here instead of through
// Node's `http` client. A destination sends one batch at a time, a few to a few dozen a second: too
// seldom for V8 to optimise Node's client (ClientRequest, the agent, IncomingMessage and their
// event listeners run in the baseline tier), and measured at ~0.3 ms of CPU per request even warm
// (bench/log-shipper-http-post.mjs) — in the 200m box at 100k+ lines/s that was a tenth of the CPU.
// What is needed here is small: write a head and a body, read a status line, headers, and a body
// framed by Content-Length, chunked encoding or the end of the connection; skip 1xx answers; keep
// the connection when both sides allow it. TLS (https:) keeps using Node's client (sinks/http.ts).
import type { IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import { Readable } from "node:stream";

/** An answer's head; `body` must be read to its end or destroyed (destroying drops the connection). */
export interface Http1Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

export interface Http1Post {
  answer: Promise<Http1Answer>;
  cancel(reason: Error): void;
}

/** An idle connection, and how to stop watching it when it is taken again. */
interface Idle {
  socket: Socket;
  unwatch(): void;
}

/** A head larger than this is refused (Node's own default limit is 16 KiB). */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLF2 = Buffer.from("\r\n\r\n", "latin1");
/**
 * A header name: an RFC 9110 token. A value: tab, visible ASCII and latin1 only — Node's own rule
 * (no CR or LF: no header injection; nothing a latin1 head would garble).
 */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** Keep-alive connections to one or more plain-HTTP origins, one request per connection at a time. */
export class Http1Pool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(
    private readonly maxIdle: number,
    private readonly idleMs: number,
  ) {}

  post(url: URL, headers: Record<string, string>, body: Buffer): Http1Post {
    let exchange: Exchange | undefined;
    const answer = new Promise<Http1Answer>((resolve, reject) => {
      const head = requestHead(url, headers, body.length); // throws on a bad header: rejects
      const origin = url.host;
      const socket = this.take(origin) ?? this.open(url);
      exchange = new Exchange(this, origin, socket, resolve, reject);
      socket.cork();
      socket.write(head, "latin1");
      socket.write(body);
      socket.uncork();
    });
    return { answer, cancel: (reason) => exchange?.fail(reason) };
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const idle of list) idle.socket.destroy();
    this.idle.clear();
  }

  private open(url: URL): Socket {
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const socket = connect({ host, port: Number(url.port || 80), noDelay: true });
    // Connection errors reach the exchange through its own listener; none may go unhandled.
    socket.on("error", () => {});
    return socket;
  }

  private take(origin: string): Socket | undefined {
    const idle = this.idle.get(origin)?.pop();
    if (idle === undefined) return undefined;
    idle.unwatch();
    idle.socket.ref();
    return idle.socket;
  }

  /** A connection whose exchange ended cleanly: kept for the next request, or closed. */
  release(origin: string, socket: Socket, keepMs: number): void {
    let list = this.idle.get(origin);
    if (list === undefined) {
      list = [];
      this.idle.set(origin, list);
    }
    if (this.closed || list.length >= this.maxIdle || socket.destroyed) {
      socket.destroy();
      return;
    }
    const idle: Idle = {
      socket,
      unwatch: () => {
        socket.setTimeout(0);
        socket.off("close", drop);
        socket.off("end", drop);
        socket.off("data", drop);
        socket.off("timeout", drop);
      },
    };
    const drop = () => {
      idle.unwatch();
      const i = list.indexOf(idle);
      if (i !== -1) list.splice(i, 1);
      socket.destroy();
    };
    // Closed by the server, or anything arriving unasked: the connection is no longer usable.
    socket.on("close", drop);
    socket.on("end", drop);
    socket.on("data", drop);
    socket.on("timeout", drop);
    socket.setTimeout(keepMs);
    // Like Node's agent: an idle connection does not keep the process alive.
    socket.unref();
    list.push(idle);
  }

  get idleMsDefault(): number {
    return this.idleMs;
  }
}

function requestHead(url: URL, headers: Record<string, string>, length: number): string {
  let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\n`;
  let host = false;
  let auth = false;
  for (const name in headers) {
    const value = headers[name] as string;
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) {
      const err = new Error(`invalid HTTP header ${JSON.stringify(name)}`) as NodeJS.ErrnoException;
      err.code = "ERR_INVALID_HTTP_TOKEN";
      throw err;
    }
    const lower = name.toLowerCase();
    if (lower === "content-length" || lower === "connection") continue; // written below
    if (lower === "host") host = true;
    if (lower === "authorization") auth = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!host) head += `host: ${url.host}\r\n`;
  if (!auth && (url.username !== "" || url.password !== "")) {
    const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    head += `authorization: Basic ${Buffer.from(cred, "utf8").toString("base64")}\r\n`;
  }
  return `${head}content-length: ${length}\r\nconnection: keep-alive\r\n\r\n`;
}

type Framing = { kind: "length"; left: number } | { kind: "chunked" } | { kind: "close" };

/** One request/answer on one connection. */
class Exchange {
  private pending: Buffer | null = null;
  private body: Readable | null = null;
  private framing: Framing = { kind: "close" };
  /** Chunked: bytes of the current chunk still to come (-1: at a size line; -2: in the trailers). */
  private chunkLeft = -1;
  private keep = false;
  private keepMs: number;
  private done = false;

  constructor(
    private readonly pool: Http1Pool,
    private readonly origin: string,
    private readonly socket: Socket,
    private readonly resolve: (a: Http1Answer) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.keepMs = pool.idleMsDefault;
    socket.on("data", this.onData);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
  }

  /** Break the exchange off (timeout, abort, a protocol error): the connection is closed. */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    this.socket.destroy();
    if (this.body === null) this.reject(err);
    else this.body.destroy(err);
  }

  private readonly onError = (err: Error): void => this.fail(err);

  private readonly onClose = (): void => {
    if (this.done) return;
    if (this.body !== null && this.framing.kind === "close") {
      this.finish(false);
      return;
    }
    const err = new Error("socket hang up") as NodeJS.ErrnoException;
    err.code = "ECONNRESET";
    this.fail(err);
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    try {
      if (this.body === null) this.readHead(chunk);
      else this.readBody(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
  };

  private detach(): void {
    this.socket.off("data", this.onData);
    this.socket.off("error", this.onError);
    this.socket.off("close", this.onClose);
  }

  private readHead(chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const end = buf.indexOf(CRLF2);
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) throw protocolError("answer head too large");
        this.pending = buf;
        return;
      }
      const lines = buf.toString("latin1", 0, end).split("\r\n");
      const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] ?? "");
      if (m === null)
        throw protocolError(`not an HTTP/1.x answer: ${JSON.stringify(lines[0]?.slice(0, 40))}`);
      const status = Number(m[2]);
      const rest = buf.subarray(end + 4);
      if (status >= 100 && status < 200) {
        // Interim answers (100 Continue, 103 Early Hints): the real one follows.
        buf = rest;
        continue;
      }
      this.pending = null;
      // No prototype: a header named like an Object property ("constructor") is just a header.
      const headers: IncomingHttpHeaders = Object.create(null);
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i] as string;
        const colon = line.indexOf(":");
        if (colon <= 0) throw protocolError("malformed header line");
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        const prev = headers[name];
        headers[name] = prev === undefined ? value : `${prev}, ${value}`;
      }
      this.startBody(m[1] === "1", status, headers);
      if (rest.length > 0) this.readBody(rest);
      else if (this.framing.kind === "length" && this.framing.left === 0) this.finish(this.keep);
      return;
    }
  }

  private startBody(http11: boolean, status: number, headers: IncomingHttpHeaders): void {
    const te = String(headers["transfer-encoding"] ?? "").toLowerCase();
    const cl = headers["content-length"];
    if (status === 204 || status === 304) this.framing = { kind: "length", left: 0 };
    else if (te !== "") {
      if (!/(?:^|,)\s*chunked\s*$/.test(te)) this.framing = { kind: "close" };
      else this.framing = { kind: "chunked" };
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(String(cl))) throw protocolError("bad content-length");
      this.framing = { kind: "length", left: Number(cl) };
    } else this.framing = { kind: "close" };
    const conn = String(headers.connection ?? "").toLowerCase();
    this.keep =
      this.framing.kind !== "close" && (http11 ? !/\bclose\b/.test(conn) : /\bkeep-alive\b/.test(conn));
    const hint = /\btimeout=(\d+)/.exec(String(headers["keep-alive"] ?? ""));
    // The server's idle timeout, less a second so that we never send on a connection it is closing.
    if (hint !== null) this.keepMs = Math.min(this.keepMs, Math.max(0, Number(hint[1]) * 1000 - 1000));
    if (this.keepMs === 0) this.keep = false;
    const body = new Readable({ read() {} });
    // A body broken off later is seen by its reader; unread, it must not throw.
    body.on("error", () => {});
    // The reader stopped early (a size limit): the rest cannot be skipped cheaply, drop the line.
    body.on("close", () => {
      if (!this.done) this.fail(new Error("answer body closed before its end"));
    });
    this.body = body;
    this.resolve({ statusCode: status, headers, body });
  }

  private readBody(data: Buffer): void {
    const body = this.body as Readable;
    const f = this.framing;
    if (f.kind === "close") {
      body.push(data);
      return;
    }
    if (f.kind === "length") {
      if (data.length > f.left) throw protocolError("more answer bytes than announced");
      f.left -= data.length;
      if (data.length > 0) body.push(data);
      if (f.left === 0) this.finish(this.keep);
      return;
    }
    this.readChunked(body, data);
  }

  private readChunked(body: Readable, data: Buffer): void {
    let buf = this.pending === null ? data : Buffer.concat([this.pending, data]);
    this.pending = null;
    while (buf.length > 0) {
      if (this.chunkLeft > 0) {
        const n = Math.min(this.chunkLeft, buf.length);
        body.push(buf.subarray(0, n));
        this.chunkLeft -= n;
        buf = buf.subarray(n);
        if (this.chunkLeft === 0) this.chunkLeft = -3; // its CRLF comes next
        continue;
      }
      const nl = buf.indexOf(10);
      if (nl === -1) {
        if (buf.length > MAX_HEAD_BYTES) throw protocolError("chunk line too long");
        this.pending = buf;
        return;
      }
      const line = buf.toString("latin1", 0, nl).replace(/\r$/, "");
      buf = buf.subarray(nl + 1);
      if (this.chunkLeft === -3) {
        if (line !== "") throw protocolError("missing CRLF after a chunk");
        this.chunkLeft = -1;
      } else if (this.chunkLeft === -1) {
        const size = /^([0-9a-fA-F]+)(?:\s*;.*)?$/.exec(line);
        if (size === null) throw protocolError("bad chunk size");
        const n = Number.parseInt(size[1] as string, 16);
        this.chunkLeft = n === 0 ? -2 : n;
      } else if (line === "") {
        // The empty line after the last chunk (and any trailers): the answer is complete.
        if (buf.length > 0) throw protocolError("bytes after the answer");
        this.finish(this.keep);
        return;
      }
    }
  }

  private finish(keep: boolean): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    (this.body as Readable).push(null);
    // Reused only once the whole request went out (an early answer, say a 413, may come first).
    if (keep && this.socket.writableLength === 0) this.pool.release(this.origin, this.socket, this.keepMs);
    else this.socket.destroy();
  }
}

function protocolError(message: string): Error {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = "HPE_INVALID_ANSWER";
  return err;
}
