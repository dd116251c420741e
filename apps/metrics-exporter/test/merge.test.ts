// Unit tests of merging files: agreement merges, every kind of conflict leaves the later file out
// whole, and the first file by name wins.
import { describe, expect, it } from "vitest";
import type { Family } from "../src/families.js";
import { mergeFiles, OWN } from "../src/merge.js";
import { parseText } from "../src/parse.js";

function file(name: string, text: string): { file: string; families: Family[] } {
  const r = parseText(text, { maxSeries: 1000 });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return { file: name, families: r.families };
}

const A = file(
  "a.prom",
  '# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{app="a"} 1\n# TYPE a_only gauge\na_only 1\n',
);

describe("mergeFiles", () => {
  it("merges families whose TYPE and HELP agree, sorted by name", () => {
    const B = file("b.prom", '# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{app="b"} 2\n');
    const r = mergeFiles([A, B], []);
    expect(r.excluded.size).toBe(0);
    expect([...r.included]).toEqual(["a.prom", "b.prom"]);
    expect(r.families.map((f) => f.name)).toEqual(["a_only", "jobs_total"]);
    expect(r.families[1]?.lines.toString()).toBe('jobs_total{app="a"} 1\njobs_total{app="b"} 2\n');
    expect(r.series).toBe(3);
  });

  it.each([
    ["type_conflict", '# HELP jobs_total Jobs.\n# TYPE jobs_total gauge\njobs_total{app="b"} 2\n'],
    ["help_conflict", '# HELP jobs_total Other.\n# TYPE jobs_total counter\njobs_total{app="b"} 2\n'],
    ["help_conflict", '# TYPE jobs_total counter\njobs_total{app="b"} 2\n'],
    ["duplicate_series", '# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{app="a"} 5\n'],
    // An empty label value is no label at all to Prometheus: the same series as in a.prom.
    [
      "duplicate_series",
      '# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{app="a",shard=""} 5\n',
    ],
    ["name_collision", "# TYPE jobs gauge\njobs 1\n"],
    ["name_collision", "# TYPE a_only_total counter\na_only_total 1\n"],
  ])("%s leaves the later file out whole", (reason, text) => {
    const B = file("b.prom", `# TYPE b_fine gauge\nb_fine 1\n${text}`);
    const r = mergeFiles([A, B], []);
    expect(r.excluded.get("b.prom")).toMatchObject({ reason, with: "a.prom" });
    expect([...r.included]).toEqual(["a.prom"]);
    // Never half-merged: the file's harmless family is left out too.
    expect(r.families.map((f) => f.name)).toEqual(["a_only", "jobs_total"]);
    expect(r.families.find((f) => f.name === "jobs_total")?.lines.toString()).toBe('jobs_total{app="a"} 1\n');
  });

  it("is deterministic: the earlier file in the given (name) order wins", () => {
    const Z = file("z.prom", "# TYPE shared gauge\nshared 1\n");
    const Y = file("y.prom", "# TYPE shared counter\nshared 1\n");
    expect([...mergeFiles([Y, Z], []).included]).toEqual(["y.prom"]);
    expect(mergeFiles([Y, Z], []).excluded.get("z.prom")?.reason).toBe("type_conflict");
  });

  it("never lets a collected family shadow an own metric", () => {
    const B = file("b.prom", "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n");
    const r = mergeFiles([B], [{ name: "process_cpu_seconds_total", type: "counter" }]);
    expect(r.excluded.get("b.prom")).toMatchObject({ reason: "own_metric", with: OWN });
    expect(r.families).toEqual([]);
    // Also when only the OpenMetrics name would collide.
    const C = file("c.prom", "# TYPE process_cpu_seconds gauge\nprocess_cpu_seconds 1\n");
    expect(
      mergeFiles([C], [{ name: "process_cpu_seconds_total", type: "counter" }]).excluded.get("c.prom")
        ?.reason,
    ).toBe("own_metric");
  });
});
