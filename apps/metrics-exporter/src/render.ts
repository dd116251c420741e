// Renders families as text format 0.0.4 or OpenMetrics 1.0. Both formats share the sample syntax;
// OpenMetrics differs in its TYPE names (untyped → unknown), counters (family named without
// `_total`, samples with it), the escaping of HELP (also `"`) and the closing `# EOF`, which the
// caller appends once after the last family of the whole exposition.
import { type Family, openMetricsName } from "./families.js";

export type Format = "text" | "openmetrics";

export const CONTENT_TYPES: Readonly<Record<Format, string>> = {
  text: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

export const OPENMETRICS_EOF = "# EOF\n";

export function escapeHelp(help: string, format: Format): string {
  let out = help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
  if (format === "openmetrics") out = out.replaceAll('"', '\\"');
  return out;
}

/** Escape a raw label value for either format (the two agree: \\ \" \n). */
export function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** A JavaScript number as a sample value. */
export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}

export function renderFamily(f: Family, format: Format): string {
  if (format === "text") {
    const help = f.help === undefined ? "" : `# HELP ${f.name} ${escapeHelp(f.help, format)}\n`;
    return `${help}# TYPE ${f.name} ${f.type}\n${f.lines}`;
  }
  const name = openMetricsName(f.name, f.type);
  const help = f.help === undefined ? "" : `# HELP ${name} ${escapeHelp(f.help, format)}\n`;
  const type = f.type === "untyped" ? "unknown" : f.type;
  let lines = f.lines;
  if (f.type === "counter" && name === f.name) {
    // Text-format counters may be named without `_total`; OpenMetrics counter samples must have it.
    lines = "";
    let start = 0;
    while (start < f.lines.length) {
      const end = f.lines.indexOf("\n", start);
      lines += `${name}_total${f.lines.slice(start + name.length, end + 1)}`;
      start = end + 1;
    }
  }
  return `${help}# TYPE ${name} ${type}\n${lines}`;
}

export function renderFamilies(families: Iterable<Family>, format: Format): string {
  const parts: string[] = [];
  for (const f of families) parts.push(renderFamily(f, format));
  return parts.join("");
}
