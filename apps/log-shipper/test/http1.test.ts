// The plain-HTTP/1.1 client (src/sinks/http1.ts) against a raw TCP server that writes its answers
// by hand, byte by byte where it matters: heads and chunked bodies split anywhere, interim 1xx
// answers, Content-Length and end-of-connection framing, keep-alive reuse and its refusal, a
// server that hangs up, a body read only partly, header injection refused.
import { spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { readBody } from "../src/sinks/http.js";
import { Http1Pool } from "../src/sinks/http1.js";

interface Raw {
  url: URL;
  /** Requests as received (head and body), and the connection each came on (0, 1, …). */
  requests: { head: string; body: string; conn: number }[];
  close(): Promise<void>;
}

/**
 * A server that answers each complete request (Content-Length framed) with `answer(n)` for the
 * n-th request, written in the pieces given (each piece a separate write, a few ms apart).
 */
async function rawServer(answer: (n: number) => (string | Buffer)[]): Promise<Raw> {
  const requests: Raw["requests"] = [];
  let conns = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    const conn = conns++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    s.on("data", async (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = buf.toString("latin1", 0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.toString("utf8", end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        requests.push({ head, body, conn });
        for (const piece of answer(requests.length - 1)) {
          if (s.destroyed) return;
          s.write(piece);
          await new Promise((r) => setTimeout(r, 3));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: new URL(`http://127.0.0.1:${port}/loki/api/v1/push?x=1`),
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function text(body: AsyncIterable<unknown>): Promise<string> {
  const { bytes } = await readBody(body, 1 << 20);
  return bytes.toString("utf8");
}

describe("Http1Pool", () => {
  let srv: Raw | undefined;
  let pool: Http1Pool | undefined;
  afterEach(async () => {
    pool?.close();
    await srv?.close();
    pool = undefined;
    srv = undefined;
  });

  it("sends the head and body, reads a chunked answer split anywhere, and reuses the connection", async () => {
    const chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\nConstructor: c\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    // Every byte its own write for the first answer; whole for the second.
    srv = await rawServer((n) => (n === 0 ? [...chunked] : [chunked]));
    pool = new Http1Pool(2, 30_000);
    for (let i = 0; i < 2; i++) {
      const a = await pool.post(
        srv.url,
        { "user-agent": "t", "X-Scope-OrgID": "ten" },
        Buffer.from(`body ${i}`),
      ).answer;
      expect(a.statusCode).toBe(200);
      expect(a.headers["x-a"]).toBe("1, 2");
      expect(a.headers.constructor).toBe("c");
      expect(await text(a.body)).toBe("hello, world");
    }
    expect(srv.requests.map((r) => [r.body, r.conn])).toEqual([
      ["body 0", 0],
      ["body 1", 0],
    ]);
    const head = srv.requests[0]?.head ?? "";
    expect(head.split("\r\n")[0]).toBe("POST /loki/api/v1/push?x=1 HTTP/1.1");
    expect(head).toContain(`host: ${srv.url.host}`);
    expect(head).toContain("X-Scope-OrgID: ten");
    expect(head).toContain("content-length: 6");
  });

  it("skips interim 1xx answers, reads Content-Length bodies, and 204 without a body", async () => {
    srv = await rawServer((n) =>
      n === 0
        ? [
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Le",
            "ngth: 9\r\n\r\nbad",
            " entry",
          ]
        : ["HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"],
    );
    pool = new Http1Pool(2, 30_000);
    const a = await pool.post(srv.url, {}, Buffer.from("x")).answer;
    expect(a.statusCode).toBe(400);
    expect(await text(a.body)).toBe("bad entry");
    const b = await pool.post(srv.url, {}, Buffer.from("y")).answer;
    expect(b.statusCode).toBe(204);
    expect(await text(b.body)).toBe("");
    expect(srv.requests.map((r) => r.conn)).toEqual([0, 0]);
  });

  it("a body framed by the end of the connection, and `Connection: close`, are not reused", async () => {
    srv = await rawServer((n) =>
      n === 0
        ? ["HTTP/1.1 503 Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"]
        : ["HTTP/1.1 200 OK\r\n\r\nuntil the end"],
    );
    pool = new Http1Pool(2, 30_000);
    const a = await pool.post(srv.url, {}, Buffer.from("x")).answer;
    expect(await text(a.body)).toBe("busy");
    const b = await pool.post(srv.url, {}, Buffer.from("y")).answer;
    const reading = text(b.body);
    await new Promise((r) => setTimeout(r, 50));
    // The server ends the answer by closing: the test server's sockets are destroyed here.
    for (const r of srv.requests) expect(r.body.length).toBe(1);
    await srv.close();
    expect(await reading).toBe("until the end");
    expect(srv.requests.map((r) => r.conn)).toEqual([0, 1]);
    srv = undefined;
  });

  it("a server that hangs up before answering gives ECONNRESET; a refused connection ECONNREFUSED", async () => {
    srv = await rawServer(() => []);
    const url = srv.url;
    pool = new Http1Pool(2, 30_000);
    const pending = pool.post(url, {}, Buffer.from("x")).answer;
    await new Promise((r) => setTimeout(r, 50));
    await srv.close();
    srv = undefined;
    await expect(pending).rejects.toMatchObject({ code: "ECONNRESET" });
    await expect(pool.post(url, {}, Buffer.from("x")).answer).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("cancel breaks off a request that waits for its answer, and a body read midway", async () => {
    srv = await rawServer((n) =>
      n === 0 ? [] : ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"],
    );
    pool = new Http1Pool(2, 30_000);
    const p = pool.post(srv.url, {}, Buffer.from("x"));
    setTimeout(() => p.cancel(new Error("deadline")), 30);
    await expect(p.answer).rejects.toThrow("deadline");
    const q = pool.post(srv.url, {}, Buffer.from("y"));
    const a = await q.answer;
    setTimeout(() => q.cancel(new Error("deadline")), 30);
    const r = await readBody(a.body, 1000);
    expect(r.failed).toBe(true);
    expect(r.bytes.toString()).toBe("only part");
  });

  it("an idle kept connection does not keep the process alive (as with Node's agent)", async () => {
    srv = await rawServer(() => ["HTTP/1.1 204 No Content\r\n\r\n"]);
    // A process that sends once and never closes its pool: it must end on its own, well before
    // the 30 s idle timeout, while the server keeps the connection open.
    const code = `
      const { Http1Pool } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, "../src/sinks/http1.ts")).href)});
      const a = await new Http1Pool(2, 30000).post(new URL(${JSON.stringify(srv.url.href)}), {}, Buffer.from("x")).answer;
      a.body.resume();
      a.body.on("end", () => console.log("answered", a.statusCode));
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const exited = await Promise.race([
      new Promise<number | null>((r) => child.once("exit", (c) => r(c))),
      new Promise<"running">((r) => setTimeout(() => r("running"), 15_000)),
    ]);
    if (exited === "running") child.kill("SIGKILL");
    expect(out.trim()).toBe("answered 204");
    expect(exited).toBe(0);
    expect(srv.requests).toHaveLength(1);
  });

  it("refuses a header that would inject another (CR/LF in a value, a bad name)", async () => {
    srv = await rawServer(() => ["HTTP/1.1 204 No Content\r\n\r\n"]);
    pool = new Http1Pool(2, 30_000);
    await expect(pool.post(srv.url, { "x-a": "1\r\nx-b: 2" }, Buffer.from("x")).answer).rejects.toMatchObject(
      {
        code: "ERR_INVALID_HTTP_TOKEN",
      },
    );
    await expect(pool.post(srv.url, { "x-a": "\u0100" }, Buffer.from("x")).answer).rejects.toMatchObject({
      code: "ERR_INVALID_HTTP_TOKEN",
    });
    await expect(pool.post(srv.url, { "x a": "1" }, Buffer.from("x")).answer).rejects.toMatchObject({
      code: "ERR_INVALID_HTTP_TOKEN",
    });
    expect(srv.requests).toHaveLength(0);
  });
});
