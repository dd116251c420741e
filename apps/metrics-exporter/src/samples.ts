// Reads the samples back out of a family's normalised lines (`name{a="x",b="y"} value\n`, labels
// sorted, values escaped with \\ \" \n only), for the outputs that need them as values rather than
// text (StatsD, remote-write). The lines were validated by the parser, so this reader trusts them.
import type { Family } from "./families.js";

export type Labels = [name: string, value: string][];

/** Call `fn` for every sample of `family`; `labels` is reused between calls (copy it to keep it). */
export function forEachSample(
  family: Family,
  fn: (name: string, labels: Labels, value: number, rawValue: string) => void,
): void {
  const text = family.lines.toString("utf8");
  const labels: Labels = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf("\n", pos);
    if (end === -1) end = text.length;
    const valueAt = text.lastIndexOf(" ", end);
    const brace = text.indexOf("{", pos);
    labels.length = 0;
    let name: string;
    if (brace !== -1 && brace < valueAt) {
      name = text.slice(pos, brace);
      let i = brace + 1;
      while (text.charCodeAt(i) !== 125 /* } */) {
        const eq = text.indexOf("=", i);
        const label = text.slice(i, eq);
        i = eq + 2; // past `="`
        let value = "";
        let from = i;
        for (;;) {
          const c = text.charCodeAt(i);
          if (c === 34 /* " */) break;
          if (c === 92 /* \ */) {
            value += text.slice(from, i);
            const n = text[i + 1];
            value += n === "n" ? "\n" : (n as string);
            i += 2;
            from = i;
            continue;
          }
          i++;
        }
        value += text.slice(from, i);
        labels.push([label, value]);
        i++; // past the closing quote
        if (text.charCodeAt(i) === 44 /* , */) i++;
      }
    } else {
      name = text.slice(pos, valueAt);
    }
    const raw = text.slice(valueAt + 1, end);
    fn(name, labels, parseValue(raw), raw);
    pos = end + 1;
  }
}

export function parseValue(raw: string): number {
  if (raw === "+Inf") return Number.POSITIVE_INFINITY;
  if (raw === "-Inf") return Number.NEGATIVE_INFINITY;
  if (raw === "NaN") return Number.NaN;
  return Number(raw);
}
