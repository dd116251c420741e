// Merges the families of every servable file into one exposition. Files are considered in the
// order given (the collector puts files already served first, in the order they got in, then
// newcomers by name), so the earlier file always wins a conflict: a later file whose family disagrees in TYPE or HELP, repeats a series that is already
// present, or would produce a name another family (or the exporter itself) already uses, is left
// out whole — all of its families — and the conflict is reported. Never half-merged.
import { type Family, type FamilyType, reservedNames, seriesKeys } from "./families.js";

export type ConflictReason =
  | "type_conflict"
  | "help_conflict"
  | "duplicate_series"
  | "name_collision"
  | "own_metric";

export interface Conflict {
  readonly reason: ConflictReason;
  /** The family of the excluded file that conflicts. */
  readonly family: string;
  /** Who owns the name already: a file name, or "metrics-exporter" for the exporter's own metrics. */
  readonly with: string;
  readonly message: string;
}

export interface MergeInput {
  readonly file: string;
  readonly families: readonly Family[];
}

export interface MergeResult {
  /** Merged families sorted by name. */
  readonly families: Family[];
  readonly series: number;
  readonly included: ReadonlySet<string>;
  readonly excluded: ReadonlyMap<string, Conflict>;
}

export const OWN = "metrics-exporter";

interface Merged {
  /** The family as its first file gave it: reused as is when no other file adds to it. */
  first: Family;
  name: string;
  type: FamilyType;
  help: string | undefined;
  parts: Buffer[];
  series: number;
  firstFile: string;
  keys: Set<string> | undefined;
}

export function mergeFiles(
  files: readonly MergeInput[],
  own: readonly { name: string; type: FamilyType }[],
): MergeResult {
  const byName = new Map<string, Merged>();
  // Every reserved name → the family that holds it (or OWN for the exporter's own metrics).
  const owner = new Map<string, string>();
  for (const o of own) for (const r of reservedNames(o.name, o.type)) owner.set(r, OWN);
  const included = new Set<string>();
  const excluded = new Map<string, Conflict>();
  let total = 0;

  for (const input of files) {
    const conflict = findConflict(input, byName, owner);
    if (conflict) {
      excluded.set(input.file, conflict);
      continue;
    }
    for (const fam of input.families) {
      const existing = byName.get(fam.name);
      if (existing) {
        existing.parts.push(fam.lines);
        existing.series += fam.series;
        if (existing.keys) for (const k of seriesKeys(fam.lines)) existing.keys.add(k);
      } else {
        byName.set(fam.name, {
          first: fam,
          name: fam.name,
          type: fam.type,
          help: fam.help,
          parts: [fam.lines],
          series: fam.series,
          firstFile: input.file,
          keys: undefined,
        });
        for (const r of reservedNames(fam.name, fam.type)) owner.set(r, fam.name);
      }
      total += fam.series;
    }
    included.add(input.file);
  }

  const families = [...byName.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((m) =>
      m.parts.length === 1
        ? m.first
        : { name: m.name, type: m.type, help: m.help, lines: Buffer.concat(m.parts), series: m.series },
    );
  return { families, series: total, included, excluded };
}

function findConflict(
  input: MergeInput,
  byName: Map<string, Merged>,
  owner: Map<string, string>,
): Conflict | undefined {
  for (const fam of input.families) {
    const existing = byName.get(fam.name);
    if (existing) {
      if (existing.type !== fam.type) {
        return {
          reason: "type_conflict",
          family: fam.name,
          with: existing.firstFile,
          message: `"${fam.name}" is a ${fam.type} here but a ${existing.type} in ${existing.firstFile}`,
        };
      }
      if (existing.help !== fam.help) {
        return {
          reason: "help_conflict",
          family: fam.name,
          with: existing.firstFile,
          message: `"${fam.name}" has a different HELP text than in ${existing.firstFile}`,
        };
      }
      // Series keys are only materialised for families that more than one file contributes to.
      existing.keys ??= new Set(seriesKeys(Buffer.concat(existing.parts)));
      for (const k of seriesKeys(fam.lines)) {
        if (existing.keys.has(k)) {
          return {
            reason: "duplicate_series",
            family: fam.name,
            with: existing.firstFile,
            message: `series ${k.slice(0, 200)} is already exported from ${existing.firstFile}`,
          };
        }
      }
      continue;
    }
    for (const r of reservedNames(fam.name, fam.type)) {
      const holder = owner.get(r);
      if (holder === undefined || holder === fam.name) continue;
      if (holder === OWN) {
        return {
          reason: "own_metric",
          family: fam.name,
          with: OWN,
          message: `"${fam.name}" collides with the exporter's own metric "${r}"`,
        };
      }
      const other = byName.get(holder);
      return {
        reason: "name_collision",
        family: fam.name,
        with: other?.firstFile ?? holder,
        message: `"${fam.name}" and "${holder}" (from ${other?.firstFile ?? "?"}) both use the name "${r}"`,
      };
    }
  }
  return undefined;
}
