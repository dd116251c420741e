// One bad entry must not cost the good lines around it (issue 14, item 1). Against the fake Loki
// over loopback, deciding as Loki does: a time it cannot decode fails the whole push; a time
// outside its window is refused alone while the rest is stored. The shipper gives a line with
// a time Loki cannot take its read time (counted), splits a batch whose 400 does not say which
// entries were bad until only those are dropped, and takes Loki's per-entry verdict as what it
// is — the rest was stored. Offsets move only once the rest of the batch is acknowledged.
import { afterEach, describe, expect, it } from "vitest";
import { lokiEntryVerdict } from "../src/sinks/loki/loki-sink.js";
import { type FakeLoki, LOKI_REJECT_OLD_SAMPLES_MAX_AGE_MS, startFakeLoki } from "./support/fake-loki.js";
import { harness, metric } from "./support/loki-harness.js";

let loki: FakeLoki | undefined;
afterEach(async () => {
  await loki?.close();
  loki = undefined;
});

const a = { id: "dev1:ino1:fpa", path: "/shared/logs/a.log" };
const b = { id: "dev1:ino2:fpb", path: "/shared/logs/b.log" };

const good = (file: string, n: number, t0: number) =>
  Array.from({ length: n }, (_, i) => `{"level":30,"time":${t0 + i},"msg":"${file}-${i}"}`);

describe("a line whose own time the destination cannot take", () => {
  for (const [encoding, time] of [
    ["json", "2300-01-01T00:00:00Z"], // nanoseconds past int64
    ["protobuf", "9999-12-31T23:30:00-01:00"], // 10000-01-01T00:30Z: past google.protobuf.Timestamp
    ["protobuf", "2300-01-01T00:00:00Z"], // encodable, but far beyond Loki's creation grace period
  ] as const) {
    it(`${encoding}, "time":"${time}": sent with its read time and counted; the batch's other lines all arrive`, async () => {
      loki = await startFakeLoki({ dedup: false });
      const h = harness(loki, { encoding, compression: "gzip" });
      h.pipeline.start();
      const now = Date.now();
      const bad = `{"level":50,"time":"${time}","msg":"from the future"}`;
      const endA = h.write(a, [...good("a", 50, now - 1000), bad], now);
      const endB = h.write(b, good("b", 50, now - 1000), now);
      expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
      await h.pipeline.close();

      expect(loki.requests.map((r) => r.status)).toEqual([204]);
      expect(loki.entries).toHaveLength(101);
      const sent = loki.entries.find((e) => e.line === bad);
      // The read time (the harness's), not the line's.
      expect(sent?.tsNs).toBe(BigInt(now) * 1_000_000n);
      expect(await metric(h.registry, "log_shipper_timestamps_replaced_total")).toBe(1);
      expect(await metric(h.registry, "log_shipper_dropped_lines_total")).toBe(0);
      expect(h.acked(a.id)).toBe(endA);
      expect(h.acked(b.id)).toBe(endB);
      expect(h.logs).toContainEqual(
        expect.objectContaining({ level: 40, lines: 1, example: expect.stringContaining(time) }),
      );
    });
  }

  it("keeps a time up to 10 min ahead (Loki's grace), and an old one (Loki decides)", async () => {
    loki = await startFakeLoki({ dedup: false });
    const h = harness(loki);
    h.pipeline.start();
    const now = Date.now();
    const soon = now + 9 * 60 * 1000;
    const old = 0; // 1970-01-01: encodable; Loki with reject_old_samples refuses it, alone
    h.write(a, [`{"time":${soon},"msg":"soon"}`, `{"time":"1970-01-01T00:00:00Z","msg":"old"}`], now);
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries.map((e) => e.tsNs)).toEqual([BigInt(soon) * 1_000_000n, BigInt(old)]);
    expect(await metric(h.registry, "log_shipper_timestamps_replaced_total")).toBe(0);
  });
});

describe("a 400 that does not say which entries were bad", () => {
  it("splits the batch until only the bad entry is dropped; offsets move once the rest is acknowledged", async () => {
    loki = await startFakeLoki({ dedup: false });
    loki.setPoison("POISON");
    const acks: { fileId: string; offset: number; deliveredThen: number }[] = [];
    const h = harness(loki, {
      ack: {
        acknowledged: (fileId, offset) =>
          acks.push({ fileId, offset, deliveredThen: (loki as FakeLoki).entryCount }),
      },
    });
    h.pipeline.start();
    const now = Date.now();
    const linesA = good("a", 60, now);
    linesA.splice(37, 0, `{"level":30,"time":${now},"msg":"POISON"}`);
    const endA = h.write(a, linesA, now);
    const endB = h.write(b, good("b", 40, now), now);
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();

    const delivered = loki.entries.map((e) => e.line);
    const expected = [...linesA.filter((l) => !l.includes("POISON")), ...good("b", 40, now)];
    // Every good line exactly once (Loki's duplicate drop is off: a resent line would show).
    expect([...delivered].sort()).toEqual([...expected].sort());
    // Per-file order holds.
    expect(delivered.filter((l) => l.includes('"a-'))).toEqual(expected.filter((l) => l.includes('"a-')));
    expect(await metric(h.registry, "log_shipper_dropped_lines_total", { reason: "http_400" })).toBe(1);
    expect(await metric(h.registry, "log_shipper_sent_lines_total")).toBe(100);
    // One acknowledgement per file, at its end, after all 100 good lines were stored.
    expect(
      acks.map(({ fileId, offset }) => ({ fileId, offset })).sort((x, y) => x.fileId.localeCompare(y.fileId)),
    ).toEqual([
      { fileId: a.id, offset: endA },
      { fileId: b.id, offset: endB },
    ]);
    expect(acks.every((x) => x.deliveredThen === 100)).toBe(true);
    expect(h.pipeline.pendingBytes).toBe(0);
    // Logged once, with the offending line as the example.
    const drops = h.logs.filter((l) => l.msg === "Loki rejected a batch for good; dropped it");
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({
      status: 400,
      lines: 1,
      example: { line: expect.stringContaining("POISON") },
    });
    // log2(101) rounds of halving: a few requests, not one per line.
    expect(loki.requests.length).toBeLessThanOrEqual(2 * 8 + 1);
  });

  it("JSON encoding: the same", async () => {
    loki = await startFakeLoki({ dedup: false });
    loki.setPoison("POISON");
    const h = harness(loki, { encoding: "json", compression: "none" });
    h.pipeline.start();
    const now = Date.now();
    h.write(a, [...good("a", 10, now), "plain POISON line", ...good("a", 10, now + 10)], now);
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.entries.map((e) => e.line)).toEqual([...good("a", 10, now), ...good("a", 10, now + 10)]);
    expect(await metric(h.registry, "log_shipper_dropped_lines_total")).toBe(1);
  });
});

describe("Loki's per-entry verdict (timestamp too old)", () => {
  it("is not split: Loki stored the others; only the named entries count as dropped", async () => {
    loki = await startFakeLoki({
      dedup: false,
      rejectOldSamplesMaxAgeMs: LOKI_REJECT_OLD_SAMPLES_MAX_AGE_MS,
    });
    const h = harness(loki);
    h.pipeline.start();
    const now = Date.now();
    const lines = good("a", 30, now);
    lines.splice(10, 0, `{"time":1700000000000,"msg":"old one"}`, `{"time":1700000000001,"msg":"old two"}`);
    const end = h.write(a, lines, now);
    expect(await h.pipeline.drain(Date.now() + 20_000)).toBe(true);
    await h.pipeline.close();
    expect(loki.requests.map((r) => r.status)).toEqual([400]);
    expect(loki.entries).toHaveLength(30);
    expect(loki.refused).toHaveLength(2);
    expect(await metric(h.registry, "log_shipper_dropped_lines_total", { reason: "http_400" })).toBe(2);
    expect(await metric(h.registry, "log_shipper_sent_lines_total")).toBe(30);
    expect(h.acked(a.id)).toBe(end);
    expect(h.logs).toContainEqual(
      expect.objectContaining({ lines: 2, storedByLoki: 30, lokiMessage: expect.stringMatching(/too old/) }),
    );
  });

  it("recognises Loki's messages, and nothing else", () => {
    expect(
      lokiEntryVerdict(`entry for stream '{job="x"}' has timestamp too new: 2300-01-01 00:00:00 +0000 UTC`),
    ).toBe(1);
    expect(
      lokiEntryVerdict(
        `3 errors like: entry for stream '{job="x"}' has timestamp too old: 2023-11-14 22:13:20 +0000 UTC; 2 errors like: Max entry size '256000' bytes exceeded for stream '{job="x"}'`,
      ),
    ).toBe(5);
    // METADATA_FIELDS against a Loki whose allow_structured_metadata is off (Loki's own wording).
    expect(
      lokiEntryVerdict(
        "2 errors like: stream '{job=\"x\"}' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it.",
      ),
    ).toBe(2);
    expect(
      lokiEntryVerdict(
        "stream '{job=\"x\"}' has structured metadata too large: '70000' bytes, limit: '65536' bytes",
      ),
    ).toBe(1);
    expect(lokiEntryVerdict("error parsing push request: snappy: corrupt input")).toBeUndefined();
    expect(lokiEntryVerdict("entry for stream has timestamp too old")).toBeUndefined();
    expect(lokiEntryVerdict("")).toBeUndefined();
  });
});
