// The exporter's in-memory model of a metric family, shared by the parser, the merge and the
// renderers. Samples are kept as already-normalised text lines (`name{sorted labels} value\n`) in
// one Buffer per family: compact (not one object per series), outside the V8 heap (so 100k series
// do not grow the garbage-collected heap), and served by copying bytes, not re-serialising.

export type FamilyType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export const FAMILY_TYPES: readonly FamilyType[] = ["counter", "gauge", "histogram", "summary", "untyped"];

export interface Family {
  /** The family name as it appears on the TYPE line of text format 0.0.4. */
  readonly name: string;
  readonly type: FamilyType;
  /** Unescaped HELP text; undefined when the source had no HELP line. */
  readonly help: string | undefined;
  /** Normalised text-0.0.4 sample lines (UTF-8), each ending in "\n"; labels sorted by name, empty-valued labels left out. */
  readonly lines: Buffer;
  /** Number of sample lines (series) in `lines`. */
  readonly series: number;
}

/** The sample names a family of this type may produce in text format 0.0.4. */
export function sampleNames(name: string, type: FamilyType): string[] {
  switch (type) {
    case "histogram":
      return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
    case "summary":
      return [name, `${name}_sum`, `${name}_count`];
    default:
      return [name];
  }
}

/** The family name used in OpenMetrics: counters are named without their `_total` suffix. */
export function openMetricsName(name: string, type: FamilyType): string {
  if (type === "counter" && name.endsWith("_total") && name.length > "_total".length) {
    return name.slice(0, -"_total".length);
  }
  return name;
}

/**
 * Every name a family occupies in either output format: its name, its sample names and, for
 * counters, the OpenMetrics family name and `_total` sample name. Two different families that
 * share any of these would produce colliding series or family names, so they conflict.
 */
export function reservedNames(name: string, type: FamilyType): string[] {
  const names = new Set(sampleNames(name, type));
  names.add(name);
  if (type === "counter") {
    const om = openMetricsName(name, type);
    names.add(om);
    names.add(`${om}_total`);
  }
  return [...names];
}

/** Split normalised sample lines into series keys (the line without its value). */
export function seriesKeys(buffer: Buffer): string[] {
  const lines = buffer.toString("utf8");
  const keys: string[] = [];
  let start = 0;
  while (start < lines.length) {
    const end = lines.indexOf("\n", start);
    const stop = end === -1 ? lines.length : end;
    const line = lines.slice(start, stop);
    keys.push(line.slice(0, line.lastIndexOf(" ")));
    start = stop + 1;
  }
  return keys;
}
