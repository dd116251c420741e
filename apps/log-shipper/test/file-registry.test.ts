// The identity registry alone (src/source/file-registry.ts): which reader's acknowledgements move
// positions, what stays reachable after a reader stops, and what is remembered of it. Real
// readers on real files; the registry decides nothing about files, so none is read here.
import { closeSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileRegistry } from "../src/source/file-registry.js";
import { Positions } from "../src/source/positions.js";
import { FileReader } from "../src/source/reader.js";
import { silentLogger } from "./support/logger.js";
import { RecordingSink } from "./support/source-harness.js";

const FP = "fp-banner";
let fds: number[] = [];
afterEach(() => {
  for (const fd of fds) closeSync(fd);
  fds = [];
});

function setup(now: () => number = Date.now) {
  const dir = mkdtempSync(join(tmpdir(), "registry-"));
  const positions = new Positions({ file: join(dir, "positions.json"), logger: silentLogger() });
  const registry = new FileRegistry(positions, now);
  const sink = new RecordingSink();
  let n = 0;
  /** A reader of a real (small) file, tracked in positions like the tailer tracks it. */
  const reader = (o: {
    key?: string;
    ino?: number;
    path?: string;
    readPos?: number;
    acked?: number;
    size?: number;
  }) => {
    const file = join(dir, `f${n++}.log`);
    writeFileSync(file, "x\n");
    const fd = openSync(file, "r");
    fds.push(fd);
    const ino = o.ino ?? n;
    const key = o.key ?? `1:${ino}:${FP}`;
    const r = new FileReader({
      id: registry.nextReaderId(key),
      key,
      path: o.path ?? file,
      dev: 1,
      ino,
      fingerprint: FP,
      fd,
      offset: o.readPos ?? 0,
      acked: o.acked ?? 0,
      size: o.size ?? o.readPos ?? 0,
      maxLineBytes: 1024,
      sink,
      now,
    });
    positions.track(key, FP, r.path, r.acked, r.anchorAt());
    return r;
  };
  return { registry, positions, reader };
}

describe("FileRegistry", () => {
  it("only the newest reader of an identity moves its position (a file rewritten with the same first line)", () => {
    const { registry, positions, reader } = setup();
    const old = reader({ key: "1:7:fp", ino: 7, readPos: 500 });
    registry.add(old);
    const now = reader({ key: "1:7:fp", ino: 7 });
    registry.add(now);
    expect(now.id).not.toBe(old.id);
    // Late acknowledgements of the old content: reachable by id, but they move nothing.
    expect(registry.withId(old.id)).toBe(old);
    registry.commit(old, 500);
    expect(positions.get("1:7:fp")?.offset).toBe(0);
    registry.commit(now, 40);
    expect(positions.get("1:7:fp")?.offset).toBe(40);
    // The same inode: the new reader replaced the old one in the inode and fingerprint indexes.
    expect(registry.atInode("1:7")).toBe(now);
    expect(registry.withFingerprint(FP)).toEqual([now]);
  });

  it("a retired reader leaves the path, inode and fingerprint indexes but stays reachable by id until dropped", () => {
    const { registry, reader } = setup();
    const r = reader({ path: "/logs/app.log", readPos: 300, acked: 100, size: 300 });
    registry.add(r);
    registry.retire(r);
    expect(registry.atPath("/logs/app.log")).toBeUndefined();
    expect(registry.countWithFingerprint(FP)).toBe(0);
    expect(registry.trackedCount).toBe(0);
    expect(registry.withId(r.id)).toBe(r);
    expect(registry.hasIdentity(r.key)).toBe(true);
    // Its progress is remembered by fingerprint, for a copy of its content found later.
    expect(registry.retiredWith(FP).map((p) => [p.id, p.readPos, p.acked])).toEqual([[r.id, 300, 100]]);
    registry.drop(r);
    expect(registry.withId(r.id)).toBeUndefined();
    expect(registry.hasIdentity(r.key)).toBe(false);
  });

  it("untrack: a file with lines in flight is kept (retired); a fully acknowledged one is forgotten after the next rescan", () => {
    const { registry, positions, reader } = setup();
    const busy = reader({ path: "/logs/a.log", readPos: 200, acked: 50, size: 200 });
    const done = reader({ path: "/logs/b.log", readPos: 200, acked: 200, size: 200 });
    registry.add(busy);
    registry.add(done);
    expect(registry.untrack(busy)).toBe(false);
    expect(busy.retired).toBe(true);
    expect(registry.withId(busy.id)).toBe(busy);
    expect(registry.untrack(done)).toBe(true);
    expect(registry.withId(done.id)).toBeUndefined();
    // Both remembered as vanished (found again under another name, they are not read from 0).
    expect(registry.retiredWith(FP).map((p) => [p.id, p.vanished])).toEqual([
      [busy.id, true],
      [done.id, true],
    ]);
    expect(positions.get(done.key)).toBeDefined();
    registry.forgetGone();
    expect(positions.get(done.key)).toBeUndefined();
    expect(positions.get(busy.key)).toBeDefined();
  });

  it("a gone identity found again before the rescan keeps its entry", () => {
    const { registry, positions, reader } = setup();
    const r = reader({ key: "1:9:fp", ino: 9, readPos: 80, acked: 80, size: 80 });
    registry.add(r);
    expect(registry.untrack(r)).toBe(true);
    const again = reader({ key: "1:9:fp", ino: 9, readPos: 80, acked: 80, size: 80 });
    registry.add(again);
    registry.forgetGone();
    expect(positions.get("1:9:fp")?.offset).toBe(80);
  });

  it("a deleted file's entry goes as soon as it is fully acknowledged", () => {
    const { registry, positions, reader } = setup();
    const r = reader({ readPos: 60, acked: 0, size: 60 });
    registry.add(r);
    r.deleted = true;
    registry.retire(r);
    expect(positions.get(r.key)).toBeDefined();
    r.acked = 60;
    registry.drop(r);
    expect(positions.get(r.key)).toBeUndefined();
  });

  it("remembers the latest 8 retired files per fingerprint, for 10 minutes", () => {
    let t = 1_000_000;
    const { registry, reader } = setup(() => t);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = reader({ readPos: 10 + i, size: 10 + i });
      registry.add(r);
      registry.retire(r);
      ids.push(r.id);
    }
    expect(registry.retiredWith(FP).map((p) => p.id)).toEqual(ids.slice(2));
    t += 10 * 60 * 1000;
    registry.pruneRetired(t);
    expect(registry.hasRetired(FP)).toBe(true);
    t += 1;
    registry.pruneRetired(t);
    expect(registry.hasRetired(FP)).toBe(false);
  });

  it("a saved entry without an anchor, or at offset 0, is not remembered (nothing to recognise it by)", () => {
    const { registry } = setup();
    registry.rememberSaved(FP, "1:2:fp", {
      id: "1:2:fp",
      fingerprint: FP,
      path: "/x",
      offset: 50,
      seenAt: 0,
    });
    registry.rememberSaved(FP, "1:3:fp", {
      id: "1:3:fp",
      fingerprint: FP,
      path: "/x",
      offset: 0,
      anchor: "h",
      anchorOffset: 0,
      seenAt: 0,
    });
    expect(registry.hasRetired(FP)).toBe(false);
    registry.rememberSaved(FP, "1:4:fp", {
      id: "1:4:fp",
      fingerprint: FP,
      path: "/x",
      offset: 50,
      anchor: "h",
      anchorOffset: 50,
      seenAt: 0,
    });
    expect(registry.retiredWith(FP).map((p) => [p.id, p.readPos, p.anchorOffset])).toEqual([
      ["1:4:fp", 50, 50],
    ]);
  });
});
