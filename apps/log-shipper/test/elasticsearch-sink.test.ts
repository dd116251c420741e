// The Elasticsearch destination end to end against the fake Elasticsearch over loopback: config
// parsed from an environment, a batch encoded and sent, every class of answer (whole-request and
// per item) classified, re-sends answered 409 and stored once, partial retries carrying only the
// items to retry, auth (basic, ApiKey, rotated key file) and an extra CA.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, type Env, parseEnv } from "@sidecar/shared";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { formatLabels } from "../src/labels.js";
import { Pipeline } from "../src/pipeline.js";
import {
  classifyBulkResponse,
  MAX_ERROR_BODY_BYTES,
  readBulkAnswer,
} from "../src/sinks/elasticsearch/bulk-client.js";
import {
  createElasticsearchSink,
  describeElasticsearch,
  type ElasticsearchConfig,
  elasticsearchProblems,
  elasticsearchSchema,
} from "../src/sinks/elasticsearch/elasticsearch.js";
import { type BulkBody, documentId } from "../src/sinks/elasticsearch/encode-bulk.js";
import { appendEntry, type BatchStream, GrowableBuffer } from "../src/sinks/loki/encode-protobuf.js";
import type { PartialResult, Sink, SinkResult } from "../src/sinks/sink.js";
import { type FakeElasticsearch, startFakeElasticsearch } from "./support/fake-elasticsearch.js";
import { silentLogger } from "./support/logger.js";
import { TEST_CA_PEM, TEST_SERVER_CERT_PEM, TEST_SERVER_KEY_PEM } from "./support/loki-tls-fixture.js";

const T = 1_706_702_400; // 2024-01-31T12:00:00Z
const FILE = "64769:1234:00aa11bb22cc33dd/1";
const labels = { job: "sample-app", filename: "/shared/logs/app.log", level: "info" };

/** One stream of `lines`, each ending `lineLen + 1` bytes after the previous one. */
function batch(lines: string[], fileId = FILE, firstOffset = 0): BatchStream[] {
  const g = new GrowableBuffer(1024);
  const offsets: number[] = [];
  let off = firstOffset;
  lines.forEach((l, i) => {
    appendEntry(g, T, i, Buffer.from(l, "utf8"));
    off += Buffer.byteLength(l) + 1;
    offsets.push(off);
  });
  return [
    {
      labels,
      labelBytes: Buffer.from(formatLabels(labels)),
      entries: g.view(),
      count: lines.length,
      fileIds: lines.map(() => fileId),
      offsets,
    },
  ];
}

const lines = (n: number, tag = "line") => Array.from({ length: n }, (_, i) => `${tag} ${i}`);

let es: FakeElasticsearch;
const sinks: Sink[] = [];
beforeEach(async () => {
  es = await startFakeElasticsearch();
});
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close();
  await es.close();
});

function config(env: Env): ElasticsearchConfig {
  const cfg = parseEnv(elasticsearchSchema, env) as ElasticsearchConfig;
  const problems = elasticsearchProblems(cfg, env);
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}

function sink(env: Env = {}, timeoutMs = 10_000): Sink {
  const s = createElasticsearchSink(config({ ES_ENDPOINT: es.url, ...env }), {
    staticLabels: { job: "sample-app" },
    podLabels: {},
    timeoutMs,
    logger: silentLogger(),
  });
  if (s === undefined) throw new Error("no sink");
  sinks.push(s);
  return s;
}

const send = (s: Sink, body: ReturnType<Sink["encode"]>): Promise<SinkResult> =>
  s.send(body, new AbortController().signal);

function messages(): string[] {
  return es.docs.map((d) => d.source.message as string);
}

describe("Elasticsearch sink", () => {
  it("ships a batch: one create per line, stored once, with the documented request shape", async () => {
    const s = sink({ ES_PIPELINE: "logs-parse" });
    expect(s.entryRefs).toBe(true);
    const r = await send(s, s.encode(batch(lines(5))));
    expect(r).toEqual({ kind: "success", status: 200 });
    expect(messages()).toEqual(lines(5));
    expect(es.docs.map((d) => d.index)).toEqual(Array(5).fill("logs-sidecar-default"));
    expect(es.docs[0]?.id).toBe(documentId(FILE, 7, Buffer.from("line 0")));
    const req = es.requests[0];
    // A fixed index is the request's (every item's default), not named in each action.
    expect(req?.path).toBe("/logs-sidecar-default/_bulk");
    expect(req?.query.pipeline).toBe("logs-parse");
    expect(req?.query.filter_path).toBeDefined();
    expect(req?.headers["content-type"]).toBe("application/x-ndjson");
    expect(req?.headers.authorization).toBeUndefined();
  });

  it("a re-sent batch creates no duplicate: every item is 409 = acknowledged", async () => {
    const s = sink();
    const body = s.encode(batch(lines(20)));
    expect((await send(s, body)).kind).toBe("success");
    expect(await send(s, body)).toEqual({ kind: "success", status: 200 });
    // Encoded again from the same lines (a restart re-reads them, new reader generation): still 409.
    const again = s.encode(batch(lines(20), "64769:1234:00aa11bb22cc33dd/2"));
    expect(await send(s, again)).toEqual({ kind: "success", status: 200 });
    expect(es.docs.length).toBe(20);
    expect(es.conflicts).toBe(40);
  });

  it("a timeout after the server stored the batch: the retry finds it there (409), nothing doubled", async () => {
    const s = sink({ ES_TIMEOUT_MS: "1000" });
    es.setFault({ kind: "slow", delayMs: 10_000, times: 1 });
    const body = s.encode(batch(lines(10)));
    const r1 = await send(s, body);
    expect(r1).toMatchObject({ kind: "retryable", reason: "timeout" });
    await es.waitForDocs(10, 30_000); // the server took it all the same
    expect(await send(s, body)).toEqual({ kind: "success", status: 200 });
    expect(messages()).toEqual(lines(10));
  });

  it("a connection reset after storing: retryable (network), then acknowledged without duplicates", async () => {
    const s = sink();
    es.setFault({ kind: "reset", afterStore: true, times: 1 });
    const body = s.encode(batch(lines(4)));
    expect(await send(s, body)).toMatchObject({ kind: "retryable", reason: "network" });
    expect(await send(s, body)).toEqual({ kind: "success", status: 200 });
    expect(messages()).toEqual(lines(4));
  });

  it("per-item 429: a partial result whose retry body holds only those items", async () => {
    const s = sink();
    es.setItemFaults([{ match: "busy", status: 429, times: 2 }]);
    const input = ["ok 0", "busy 1", "ok 2", "busy 3", "ok 4"];
    const r = (await send(s, s.encode(batch(input)))) as PartialResult;
    expect(r.kind).toBe("partial");
    expect(r.dropped).toBe(0);
    expect(r.retry?.lines).toBe(2);
    expect(messages()).toEqual(["ok 0", "ok 2", "ok 4"]);
    const retryBody = r.retry?.body as BulkBody;
    expect(retryBody.itemEnds.length).toBe(2);
    expect(await send(s, retryBody)).toEqual({ kind: "success", status: 200 });
    expect(es.requests[1]?.items.map((i) => i.status)).toEqual([201, 201]); // only the two, nothing re-sent
    expect(messages().sort()).toEqual([...input].sort());
  });

  it("per-item 5xx retried, per-item 400 dropped and counted by error type, first message kept", async () => {
    const s = sink({ ES_COMPRESSION: "gzip" });
    es.setItemFaults([
      { match: "bad", status: 400, type: "document_parsing_exception", reason: "failed to parse field [x]" },
      { match: "odd", status: 400, type: "illegal_argument_exception", reason: "odd" },
      { match: "shard", status: 503, times: 1, type: "unavailable_shards_exception" },
    ]);
    const input = ["ok 0", "bad 1", "shard 2", "bad 3", "odd 4", "ok 5"];
    const r = (await send(s, s.encode(batch(input)))) as PartialResult;
    expect(r).toMatchObject({
      kind: "partial",
      status: 200,
      dropped: 3,
      reason: "document_parsing_exception",
    });
    expect(r.message).toContain("2 document_parsing_exception, 1 illegal_argument_exception");
    expect(r.message).toContain("first: document_parsing_exception: failed to parse field [x]");
    expect(r.retry?.lines).toBe(1);
    expect(r.retry?.body.contentEncoding).toBe("gzip");
    expect(await send(s, r.retry?.body as BulkBody)).toEqual({ kind: "success", status: 200 });
    expect(messages()).toEqual(["ok 0", "ok 5", "shard 2"]);
  });

  it("only refused items: partial without a retry body", async () => {
    const s = sink();
    es.setItemFaults([{ match: "bad", status: 400 }]);
    const r = (await send(s, s.encode(batch(["bad", "fine"])))) as PartialResult;
    expect(r).toMatchObject({ kind: "partial", dropped: 1, reason: "mapper_parsing_exception" });
    expect(r.retry).toBeUndefined();
  });

  it.each([
    [
      { kind: "status", status: 503, times: 1 } as const,
      { kind: "retryable", status: 503, reason: "http_503" },
    ],
    [
      { kind: "status", status: 500, times: 1 } as const,
      { kind: "retryable", status: 500, reason: "http_500" },
    ],
    [
      { kind: "status", status: 429, retryAfter: "7", times: 1 } as const,
      { kind: "retryable", status: 429, reason: "http_429", retryAfterMs: 7000 },
    ],
    [
      { kind: "status", status: 403, times: 1 } as const,
      { kind: "retryable", status: 403, hint: expect.stringContaining("create_doc") },
    ],
    [
      { kind: "status", status: 413, times: 1 } as const,
      { kind: "failure", status: 413, reason: "http_413" },
    ],
    [{ kind: "reset", times: 1 } as const, { kind: "retryable", reason: "network" }],
  ])("whole-request fault %j → %j, nothing stored; the next send succeeds", async (fault, want) => {
    const s = sink();
    es.setFault(fault);
    const body = s.encode(batch(lines(3)));
    expect(await send(s, body)).toMatchObject(want);
    expect(es.docs.length).toBe(0);
    expect(await send(s, body)).toEqual({ kind: "success", status: 200 });
    expect(es.docs.length).toBe(3);
  });

  it("a body refused whole (413) splits into halves that carry every item once, with their line bytes", async () => {
    const s = sink({ ES_COMPRESSION: "gzip" });
    es.setFault({ kind: "status", status: 413, times: 1 });
    const input = lines(5, "part");
    const body = s.encode(batch(input));
    expect(await send(s, body)).toMatchObject({ kind: "failure", status: 413 });
    const halves = s.split?.(body);
    expect(halves?.map((h) => h.lines)).toEqual([3, 2]);
    expect(halves?.map((h) => h.lineBytes)).toEqual([18, 12]);
    for (const h of halves ?? []) expect(await send(s, h.body)).toEqual({ kind: "success", status: 200 });
    expect(messages()).toEqual(input);
    const one = s.split?.(halves?.[1]?.body as BulkBody)?.[1];
    expect(one?.lines).toBe(1);
    expect(s.split?.(one?.body as BulkBody)).toBeUndefined();
    expect(s.example?.(one?.body as BulkBody)).toMatchObject({ document: { message: "part 4" } });
  });

  it("404 (wrong URL path) is retryable with a hint naming ES_ENDPOINT", async () => {
    const s = sink({ ES_ENDPOINT: `${es.url}/not/here` });
    const r = await send(s, s.encode(batch(lines(1))));
    expect(r).toMatchObject({ kind: "retryable", status: 404, hint: expect.stringContaining("ES_ENDPOINT") });
  });

  it("a body Elasticsearch cannot parse is a failure carrying its error (cut to 1 KiB)", async () => {
    const s = sink();
    const r = await send(s, { body: Buffer.from('{"create":{}\n'), contentType: "application/x-ndjson" });
    expect(r).toMatchObject({ kind: "failure", status: 400, reason: "http_400" });
    expect((r as { message: string }).message).toContain("x_content_parse_exception");
    expect((r as { message: string }).message.length).toBeLessThanOrEqual(MAX_ERROR_BODY_BYTES + 1);
  });

  it("a proxy ahead of the cluster: the endpoint's path is kept", async () => {
    const s = sink({ ES_ENDPOINT: `${es.url}/gw/` });
    expect((await send(s, s.encode(batch(lines(1))))).kind).toBe("success");
    expect(es.requests[0]?.path).toBe("/gw/logs-sidecar-default/_bulk");
    expect(es.docs.map((d) => d.index)).toEqual(["logs-sidecar-default"]);
  });

  it("an endpoint ending in /_bulk is posted to as it is, each action naming its index", async () => {
    const s = sink({ ES_ENDPOINT: `${es.url}/_bulk`, ES_INDEX: "app-logs" });
    expect((await send(s, s.encode(batch(lines(2))))).kind).toBe("success");
    expect(es.requests[0]?.path).toBe("/_bulk");
    expect(es.docs.map((d) => d.index)).toEqual(["app-logs", "app-logs"]);
  });

  it("classic date indices: documents land in the index of their UTC day", async () => {
    const s = sink({ ES_INDEX: "app-%Y.%m.%d" });
    expect((await send(s, s.encode(batch(lines(2))))).kind).toBe("success");
    expect(es.requests[0]?.path).toBe("/_bulk"); // the index is each action's

    expect(es.docs.map((d) => d.index)).toEqual(["app-2024.01.31", "app-2024.01.31"]);
    expect(es.docs[0]?.source.data_stream).toBeUndefined();
  });
});

describe("Elasticsearch auth and TLS", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "es-auth-"));
  });

  it("basic auth from ES_USERNAME + ES_PASSWORD_FILE; 401 without it, with a hint", async () => {
    await es.close();
    es = await startFakeElasticsearch({
      requireAuth: { basic: { username: "shipper", password: "s3cret" } },
    });
    writeFileSync(join(dir, "pw"), "s3cret\n");
    const anon = sink();
    expect(await send(anon, anon.encode(batch(lines(1))))).toMatchObject({
      kind: "retryable",
      status: 401,
      hint: expect.stringContaining("ES_API_KEY_FILE"),
    });
    const s = sink({ ES_USERNAME: "shipper", ES_PASSWORD_FILE: join(dir, "pw") });
    expect(await send(s, s.encode(batch(lines(2))))).toEqual({ kind: "success", status: 200 });
    expect(es.docs.length).toBe(2);
  });

  it("ApiKey from ES_API_KEY_FILE, and a rotated key is used right after a 401", async () => {
    await es.close();
    es = await startFakeElasticsearch({ requireAuth: { apiKey: "bmV3OmtleQ==" } });
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, "b2xkOmtleQ==\n");
    const s = sink({ ES_API_KEY_FILE: keyFile });
    const body = s.encode(batch(lines(3)));
    expect(await send(s, body)).toMatchObject({ kind: "retryable", status: 401 });
    expect(es.requests[0]?.headers.authorization).toBe("ApiKey b2xkOmtleQ==");
    writeFileSync(keyFile, "bmV3OmtleQ==\n");
    // The 401 made the client re-read the file: the very next attempt carries the new key.
    expect(await send(s, body)).toEqual({ kind: "success", status: 200 });
    expect(es.requests[1]?.headers.authorization).toBe("ApiKey bmV3OmtleQ==");
  });

  it("HTTPS with a private CA: trusted with ES_CA_FILE, refused without", async () => {
    await es.close();
    es = await startFakeElasticsearch({ tls: { cert: TEST_SERVER_CERT_PEM, key: TEST_SERVER_KEY_PEM } });
    writeFileSync(join(dir, "ca.pem"), TEST_CA_PEM);
    const without = sink();
    expect(await send(without, without.encode(batch(lines(1))))).toMatchObject({
      kind: "retryable",
      reason: "network",
    });
    const s = sink({ ES_CA_FILE: join(dir, "ca.pem") });
    expect(await send(s, s.encode(batch(lines(2))))).toEqual({ kind: "success", status: 200 });
    expect(es.docs.length).toBe(2);
  });
});

describe("Elasticsearch config", () => {
  it("no ES_ENDPOINT: no sink, and the defaults", () => {
    const cfg = config({});
    expect(
      createElasticsearchSink(cfg, { staticLabels: {}, podLabels: {}, timeoutMs: 1, logger: silentLogger() }),
    ).toBe(undefined);
    expect(cfg.esIndex.pattern).toBe("logs-sidecar-default");
    expect(cfg.esCompression).toBe("none");
    expect(cfg.esTimeoutMs).toBeUndefined();
    expect(cfg.esWhenFull).toBe("block");
    expect(describeElasticsearch(cfg)).toEqual({ enabled: false });
  });

  it.each([
    [{ ES_ENDPOINT: "ftp://x" }, /ES_ENDPOINT="ftp:\/\/x" \(expected an http/],
    [{ ES_INDEX: "Logs-%Y" }, /ES_INDEX="Logs-%Y" \(expected .*: index names must be lowercase\)/],
    [{ ES_INDEX: "logs-%s" }, /ES_INDEX="logs-%s" .*unsupported placeholder "%s"/],
    [{ ES_COMPRESSION: "zstd" }, /ES_COMPRESSION="zstd"/],
    [{ ES_WHEN_FULL: "maybe" }, /ES_WHEN_FULL="maybe"/],
    [{ ES_TIMEOUT_MS: "0" }, /ES_TIMEOUT_MS="0"/],
    [{ ES_PASSWORD_FILE: "/nonexistent/pw" }, /ES_PASSWORD_FILE="\/nonexistent\/pw" .*cannot read: ENOENT/],
    [{ ES_CA_FILE: "/nonexistent/ca" }, /ES_CA_FILE="\/nonexistent\/ca"/],
  ])("%j is refused with a message naming it", (env, msg) => {
    expect(() => config({ ES_ENDPOINT: "http://es:9200", ...env })).toThrow(msg);
  });

  it("cross-checks: password without user, API key with user, ES_* without an endpoint, bad pipeline", () => {
    const dir = mkdtempSync(join(tmpdir(), "es-cfg-"));
    writeFileSync(join(dir, "f"), "x");
    const f = join(dir, "f");
    expect(() => config({ ES_ENDPOINT: "http://es:9200", ES_PASSWORD_FILE: f })).toThrow(
      /ES_USERNAME=unset \(expected a user name whenever ES_PASSWORD_FILE is set\)/,
    );
    expect(() => config({ ES_ENDPOINT: "http://es:9200", ES_USERNAME: "u", ES_API_KEY_FILE: f })).toThrow(
      /ES_API_KEY_FILE=.*choose one/,
    );
    expect(() => config({ ES_PIPELINE: "p" })).toThrow(
      /ES_PIPELINE="p" \(expected unset unless ES_ENDPOINT is set\)/,
    );
    expect(() => config({ ES_ENDPOINT: "http://es:9200", ES_PIPELINE: "a b" })).toThrow(/ES_PIPELINE="a b"/);
  });

  it("describes without secrets", () => {
    const dir = mkdtempSync(join(tmpdir(), "es-cfg-"));
    writeFileSync(join(dir, "k"), "TOPSECRETKEY");
    const d = describeElasticsearch(
      config({
        ES_ENDPOINT: "https://u:pw@es:9200",
        ES_API_KEY_FILE: join(dir, "k"),
        ES_INDEX: "logs-%Y.%m.%d",
      }),
    );
    expect(d).toMatchObject({
      index: "logs-%Y.%m.%d",
      dataStream: false,
      auth: "apikey",
      compression: "none",
    });
    expect(JSON.stringify(d)).not.toContain("TOPSECRETKEY");
    expect(JSON.stringify(d)).not.toContain(":pw@");
  });
});

describe("classifyBulkResponse", () => {
  const body = {
    body: Buffer.from('{"a":1}\n{}\n{"b":2}\n{}\n'),
    contentType: "application/x-ndjson",
    itemEnds: Uint32Array.of(10, 20),
    lineBytes: Uint32Array.of(5, 5),
  } satisfies BulkBody;

  it("an answer that says errors:false at its head is success without reading the items", () => {
    for (const text of [
      '{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}',
      '{"took":12,"errors":false,"items":[]}',
      ' {\n  "took" : 3,\n  "errors" : false\n}',
    ]) {
      expect(classifyBulkResponse(200, text, body)).toEqual({ kind: "success", status: 200 });
    }
  });

  it("readBulkAnswer: a head that says all is well (even split into single bytes) settles it; anything else is the whole text", async () => {
    async function* chunked(text: string, size: number, failAt?: number) {
      const b = Buffer.from(text);
      for (let p = 0; p < b.length; p += size) {
        if (failAt !== undefined && p >= failAt) throw new Error("socket hang up");
        yield b.subarray(p, p + size);
      }
    }
    const items = Array(500).fill('{"create":{"status":201}}').join(",");
    const well = `{"took":3,"errors":false,"items":[${items}]}`;
    const failing = `{"errors":true,"items":[${items},{"create":{"status":429,"error":{"type":"x","reason":"y"}}}]}`;
    for (const size of [1, 7, 64, 65536]) {
      expect(typeof (await readBulkAnswer(chunked(well, size)))).toBe("symbol");
      expect(await readBulkAnswer(chunked(failing, size))).toEqual({ text: failing, truncated: false });
    }
    // Shorter than the head: classified from its text, as before.
    expect(await readBulkAnswer(chunked('{"errors":false}', 3))).toEqual({
      text: '{"errors":false}',
      truncated: false,
    });
    expect(await readBulkAnswer(chunked(` \n${failing}\n`, 1000))).toEqual({
      text: failing,
      truncated: false,
    });
    // Cut off mid-way: all well when the head said so; else what came, to be classified.
    expect(typeof (await readBulkAnswer(chunked(well, 100, 300)))).toBe("symbol");
    expect(await readBulkAnswer(chunked(failing, 100, 300))).toEqual({
      text: failing.slice(0, 300),
      truncated: false,
    });
  });

  it("errors:true, or a head the fast path does not know, is still read item by item", () => {
    const r = classifyBulkResponse(
      200,
      '{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}]}',
      body,
    );
    expect(r).toMatchObject({ kind: "partial", dropped: 0, retry: { lines: 1 } });
    expect(classifyBulkResponse(200, '{"ingest_took":1,"errors":false,"items":[{},{}]}', body)).toEqual({
      kind: "success",
      status: 200,
    });
    expect(classifyBulkResponse(200, '{"errors":false', body).kind).toBe("retryable");
    expect(classifyBulkResponse(200, '{"errors":"false"}', body).kind).toBe("retryable");
  });
});

/** A pipeline to `s` that batches only on flush() and reports each acknowledged offset. */
function esPipeline(s: Sink, acknowledged: (offset: number) => void): Pipeline {
  return new Pipeline({
    sink: s,
    timeoutMs: 5000,
    retryMinMs: 20,
    retryMaxMs: 50,
    batchWaitMs: 60_000,
    batchMaxBytes: 1 << 20,
    maxBufferBytes: 1 << 24,
    staticLabels: { job: "sample-app" },
    registry: new Registry(),
    logger: silentLogger(),
    ack: { acknowledged: (_id, offset) => acknowledged(offset) },
    random: () => 0.5,
  });
}

describe("Elasticsearch in a pipeline", () => {
  it("uncompressed: queued batches wait as entries and are encoded only when next to send, each line stored once", async () => {
    const inner = sink({ ES_COMPRESSION: "none" });
    expect(inner.encodeLate).toBe(true);
    let encoded = 0;
    const counted = Object.assign(Object.create(inner) as Sink, {
      encode(streams: readonly BatchStream[]) {
        encoded++;
        return inner.encode(streams);
      },
    });
    const acked: number[] = [];
    const pipeline = esPipeline(counted, (offset) => acked.push(offset));
    es.setFault({ kind: "status", status: 503 });
    const file = { id: FILE, path: "/shared/logs/app.log" };
    const want = lines(30, "queued");
    let offset = 0;
    pipeline.start();
    for (let b = 0; b < 3; b++) {
      for (const l of want.slice(b * 10, b * 10 + 10)) {
        const buf = Buffer.from(`${l}\n`);
        offset += buf.length;
        pipeline.writeLine(file, buf, 0, buf.length - 1, offset, false, T * 1000);
      }
      pipeline.flush();
    }
    const deadline = Date.now() + 20_000;
    while (es.requests.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(pipeline.stats().queuedBatches).toBe(3);
    // Only the head has been encoded (and is retried as it is); the two behind it have not.
    expect(encoded).toBe(1);
    es.setFault(undefined);
    expect(await pipeline.drain(Date.now() + 20_000)).toBe(true);
    await pipeline.close();
    expect(encoded).toBe(3);
    expect(messages().sort()).toEqual([...want].sort());
    expect(acked.at(-1)).toBe(offset);
  });

  it("uncompressed: a batch held behind the one in flight reuses the buffer the one before was held in; every line intact", async () => {
    const pipeline = esPipeline(sink({ ES_COMPRESSION: "none" }), () => {});
    // Every answer comes late: each batch sealed now waits (held) behind the one in flight.
    es.setFault({ kind: "slow", delayMs: 20 });
    const holds = vi.spyOn(Buffer, "allocUnsafeSlow");
    try {
      const file = { id: FILE, path: "/shared/logs/app.log" };
      const want: string[] = [];
      let offset = 0;
      pipeline.start();
      for (let b = 0; b < 12; b++) {
        // Same sizes, different bytes: a batch encoded from a stale or shared buffer shows.
        const batchLines = lines(10, `held-${String(b).padStart(2, "0")}`);
        want.push(...batchLines);
        for (const l of batchLines) {
          const buf = Buffer.from(`${l}\n`);
          offset += buf.length;
          pipeline.writeLine(file, buf, 0, buf.length - 1, offset, false, T * 1000);
        }
        pipeline.flush();
        // The batch before this one is sent (encoded, its buffer free) before the next is sealed.
        const deadline = Date.now() + 20_000;
        while (es.requests.length < b && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      }
      expect(await pipeline.drain(Date.now() + 20_000)).toBe(true);
      await pipeline.close();
      expect(messages().sort()).toEqual([...want].sort());
      expect(es.docs).toHaveLength(want.length);
      // Eleven batches were held (the first was encoded at once): one buffer, reused — not eleven.
      expect(holds.mock.calls.length).toBeLessThanOrEqual(2);
    } finally {
      holds.mockRestore();
    }
  });
});
