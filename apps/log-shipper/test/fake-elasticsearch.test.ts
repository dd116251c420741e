// The fake Elasticsearch itself, driven with raw HTTP requests: it must read `_bulk` bodies and
// answer the way Elasticsearch documents it, or the sink tests against it prove nothing.
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeElasticsearch, filterPath, startFakeElasticsearch } from "./support/fake-elasticsearch.js";

let es: FakeElasticsearch;
beforeEach(async () => {
  es = await startFakeElasticsearch();
});
afterEach(async () => {
  await es.close();
});

async function bulk(
  body: string | Buffer,
  opts: { path?: string; type?: string; encoding?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": opts.type ?? "application/x-ndjson" };
  if (opts.encoding) headers["content-encoding"] = opts.encoding;
  const res = await fetch(`${es.url}${opts.path ?? "/_bulk"}`, { method: "POST", headers, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const nd = (...lines: unknown[]) => `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;

describe("fake Elasticsearch _bulk", () => {
  it("create stores once, a second create of the _id is 409; index overwrites; the answer has the bulk shape", async () => {
    const r1 = await bulk(
      nd(
        { create: { _index: "app", _id: "1" } },
        { a: 1 },
        { create: { _index: "app", _id: "1" } },
        { a: 2 },
        { index: { _index: "app", _id: "2" } },
        { b: 1 },
        { index: { _index: "app", _id: "2" } },
        { b: 2 },
        { create: { _index: "other", _id: "1" } },
        { c: 1 },
      ),
    );
    expect(r1.status).toBe(200);
    expect(r1.json.errors).toBe(true);
    expect(typeof r1.json.took).toBe("number");
    const items = r1.json.items as Record<
      string,
      { status: number; result?: string; error?: { type: string } }
    >[];
    expect(items.map((i) => Object.keys(i)[0])).toEqual(["create", "create", "index", "index", "create"]);
    expect(items.map((i) => Object.values(i)[0]?.status)).toEqual([201, 409, 201, 200, 201]);
    expect(items[1]?.create?.error?.type).toBe("version_conflict_engine_exception");
    expect(items[3]?.index?.result).toBe("updated");
    expect(es.docs.map((d) => [d.index, d.id, d.source])).toEqual([
      ["app", "1", { a: 1 }],
      ["app", "2", { b: 2 }],
      ["other", "1", { c: 1 }],
    ]);
  });

  it("data streams: only create, and @timestamp required", async () => {
    const r = await bulk(
      nd(
        { index: { _index: "logs-a-b" } },
        { "@timestamp": "2024-01-01T00:00:00Z" },
        { create: { _index: "logs-a-b" } },
        { message: "no time" },
        { create: { _index: "logs-a-b" } },
        { "@timestamp": "2024-01-01T00:00:00Z" },
      ),
    );
    const items = r.json.items as Record<string, { status: number; error?: { type: string } }>[];
    expect(items.map((i) => Object.values(i)[0]?.status)).toEqual([400, 400, 201]);
    expect(items[0]?.index?.error?.type).toBe("illegal_argument_exception");
    expect(es.docs.length).toBe(1);
  });

  it("malformed bodies fail whole with Elasticsearch's error shape; nothing stored", async () => {
    const noNewline = await bulk('{"create":{"_index":"x"}}\n{"a":1}');
    expect(noNewline.status).toBe(400);
    expect(noNewline.json).toMatchObject({
      error: {
        root_cause: [
          { type: "illegal_argument_exception", reason: expect.stringContaining("terminated by a newline") },
        ],
        type: "illegal_argument_exception",
      },
      status: 400,
    });
    expect((await bulk("not json\n{}\n")).json).toMatchObject({
      error: { type: "x_content_parse_exception" },
    });
    expect((await bulk(nd({ update: { _index: "x", _id: "1" } }, { doc: {} }))).status).toBe(400);
    expect((await bulk(nd({ create: {} }, { a: 1 }))).json).toMatchObject({
      error: { type: "action_request_validation_exception" },
    });
    const bad = await bulk(nd({ create: { _index: "x" } }, { a: 1 }), { type: "text/plain" });
    expect(bad.status).toBe(406);
    // A source line that is not JSON is an item error, the rest is stored.
    const item = await bulk(
      `${JSON.stringify({ create: { _index: "x" } })}\n{oops\n${nd({ create: { _index: "x" } }, { ok: 1 })}`,
    );
    expect(item.status).toBe(200);
    const items = item.json.items as Record<string, { status: number; error?: { type: string } }>[];
    expect(items.map((i) => i.create?.status)).toEqual([400, 201]);
    expect(es.docs.map((d) => d.source)).toEqual([{ ok: 1 }]);
  });

  it("index from the path, gzip bodies, and filter_path", async () => {
    const r = await bulk(gzipSync(nd({ create: { _id: "z" } }, { a: 1 })), {
      path: "/from-path/_bulk?filter_path=errors,items.*.status",
      encoding: "gzip",
    });
    expect(r.json).toEqual({ errors: false, items: [{ create: { status: 201 } }] });
    expect(es.docs[0]).toMatchObject({ index: "from-path", id: "z" });
    expect(
      filterPath({ a: { b: 1, c: 2 }, d: [{ x: { s: 1, t: 2 } }] }, [
        ["a", "b"],
        ["d", "*", "s"],
      ]),
    ).toEqual({
      a: { b: 1 },
      d: [{ x: { s: 1 } }],
    });
  });

  it("auth: 401 security_exception with WWW-Authenticate without the right credentials", async () => {
    await es.close();
    es = await startFakeElasticsearch({ requireAuth: { apiKey: "k" } });
    const res = await fetch(`${es.url}/_bulk`, {
      method: "POST",
      headers: { "content-type": "application/x-ndjson", authorization: "ApiKey wrong" },
      body: nd({ create: { _index: "x" } }, { a: 1 }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("Basic");
    expect(await res.json()).toMatchObject({ error: { type: "security_exception" }, status: 401 });
    expect(es.docs.length).toBe(0);
  });
});
