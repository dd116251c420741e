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

/** The pieces of one family in `format`: header text, then the sample lines. */
function familyPieces(f: Family, format: Format, out: (string | Buffer)[]): void {
  if (format === "text") {
    if (f.help !== undefined) out.push(`# HELP ${f.name} ${escapeHelp(f.help, format)}\n`);
    out.push(`# TYPE ${f.name} ${f.type}\n`, f.lines);
    return;
  }
  const name = openMetricsName(f.name, f.type);
  if (f.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(f.help, format)}\n`);
  out.push(`# TYPE ${name} ${f.type === "untyped" ? "unknown" : f.type}\n`);
  if (f.type === "counter" && name === f.name) {
    // Text-format counters may be named without `_total`; OpenMetrics counter samples must have it.
    const text = f.lines.toString("utf8");
    let lines = "";
    let start = 0;
    while (start < text.length) {
      const end = text.indexOf("\n", start);
      lines += `${name}_total${text.slice(start + name.length, end + 1)}`;
      start = end + 1;
    }
    out.push(lines);
    return;
  }
  out.push(f.lines);
}

/** Concatenate strings and buffers into one exactly sized buffer (no big intermediate string). */
export function joinPieces(pieces: readonly (string | Buffer)[]): Buffer {
  let total = 0;
  for (const p of pieces) total += typeof p === "string" ? Buffer.byteLength(p, "utf8") : p.length;
  const out = Buffer.allocUnsafeSlow(total);
  let offset = 0;
  for (const p of pieces) {
    if (typeof p === "string") offset += out.write(p, offset, "utf8");
    else offset += p.copy(out, offset);
  }
  return out;
}

// Sample-line buffers at least this big are served by reference; smaller ones (and the header
// text) are copied into shared chunks, so a file of 50k one-series families is a few dozen
// chunks rather than 100k small buffers (each with ~100 bytes of object overhead).
const BY_REFERENCE_BYTES = 16 * 1024;
const CHUNK_BYTES = 64 * 1024;

/** The exposition as a list of buffers: chunks of headers and small families, big families' own line buffers (not copied). */
export function renderPieces(families: Iterable<Family>, format: Format): Buffer[] {
  const out: Buffer[] = [];
  const scratch = Buffer.allocUnsafe(CHUNK_BYTES);
  let used = 0;
  const flush = () => {
    if (used === 0) return;
    const chunk = Buffer.allocUnsafeSlow(used);
    scratch.copy(chunk, 0, 0, used);
    out.push(chunk);
    used = 0;
  };
  const pieces: (string | Buffer)[] = [];
  for (const f of families) {
    pieces.length = 0;
    familyPieces(f, format, pieces);
    for (const p of pieces) {
      if (typeof p !== "string" && p.length >= BY_REFERENCE_BYTES) {
        flush();
        out.push(p);
        continue;
      }
      const bytes = typeof p === "string" ? Buffer.byteLength(p, "utf8") : p.length;
      if (used + bytes > CHUNK_BYTES) flush();
      if (bytes > CHUNK_BYTES) {
        out.push(typeof p === "string" ? Buffer.from(p, "utf8") : p);
        continue;
      }
      used += typeof p === "string" ? scratch.write(p, used, "utf8") : p.copy(scratch, used);
    }
  }
  flush();
  return out;
}

export function renderFamily(f: Family, format: Format): Buffer {
  const pieces: (string | Buffer)[] = [];
  familyPieces(f, format, pieces);
  return joinPieces(pieces);
}

export function renderFamilies(families: Iterable<Family>, format: Format, trailer = ""): Buffer {
  const pieces: (string | Buffer)[] = [];
  for (const f of families) familyPieces(f, format, pieces);
  if (trailer) pieces.push(trailer);
  return joinPieces(pieces);
}
