// The collected part of /metrics, rendered once per change of the collected families, per format
// and encoding that scrapers ask for. Uncompressed, it is a list of buffers that reuses the
// families' line buffers (written to the socket one after the other, never joined); compressed, a
// deflate prefix built batch by batch. No body-sized buffer is allocated per change or per scrape.
import type { Family } from "./families.js";
import { type GzipPrefix, gzipPrefix } from "./gzip.js";
import { type Format, renderFamilies, renderPieces } from "./render.js";

export interface Body {
  readonly pieces: readonly Buffer[];
  readonly length: number;
}

// The Pushgateway owns these names and rejects pushes that contain them.
const PUSHGATEWAY_RESERVED = new Set(["push_time_seconds", "push_failure_time_seconds"]);

export class Exposition {
  private families: readonly Family[] = [];
  private readonly bodies = new Map<Format, Body>();
  private readonly gzipped = new Map<Format, GzipPrefix>();
  private pushBody: Buffer | undefined;
  // What scrapers asked for since start: re-rendered right after each change, on the collection
  // tick, so a scrape never pays for rendering 100k series (Prometheus wants OpenMetrics + gzip).
  private readonly wantedBodies = new Set<Format>();
  private readonly wantedGzip = new Set<Format>();

  update(families: readonly Family[]): void {
    this.families = families;
    this.bodies.clear();
    this.gzipped.clear();
    this.pushBody = undefined;
  }

  /** Render now what scrapers have been asking for. */
  warm(): void {
    for (const f of this.wantedBodies) this.body(f);
    for (const f of this.wantedGzip) this.gzip(f);
  }

  get familyCount(): number {
    return this.families.length;
  }

  body(format: Format): Body {
    let b = this.bodies.get(format);
    if (!b) {
      this.wantedBodies.add(format);
      const pieces = renderPieces(this.families, format);
      let length = 0;
      for (const p of pieces) length += p.length;
      b = { pieces, length };
      this.bodies.set(format, b);
    }
    return b;
  }

  gzip(format: Format): GzipPrefix {
    let g = this.gzipped.get(format);
    if (!g) {
      this.wantedGzip.add(format);
      g = gzipPrefix((this.bodies.get(format) ?? { pieces: renderPieces(this.families, format) }).pieces);
      this.gzipped.set(format, g);
    }
    return g;
  }

  /** Adds the memory behind the served families and every cached body (for the reclaimer). */
  retainedMemory(into: Set<ArrayBufferLike>): void {
    for (const f of this.families) into.add(f.lines.buffer);
    for (const b of this.bodies.values()) for (const p of b.pieces) into.add(p.buffer);
    for (const g of this.gzipped.values()) for (const d of g.deflated) into.add(d.buffer);
    if (this.pushBody) into.add(this.pushBody.buffer);
  }

  /** Bytes of collected sample text (uncompressed, without HELP/TYPE lines). */
  get sampleBytes(): number {
    let n = 0;
    for (const f of this.families) n += f.lines.length;
    return n;
  }

  /**
   * Text 0.0.4 for a Pushgateway PUT. The grouping key sets `job` and `instance` on every pushed
   * series and would silently overwrite (and so merge) series that carry their own; like a
   * Prometheus scrape without honor_labels, those labels are kept as `exported_job` and
   * `exported_instance`. A series that already has the exported_ label as well is left out.
   */
  push(): Buffer {
    if (this.pushBody) return this.pushBody;
    const pieces: Family[] = [];
    for (const f of this.families) {
      if (PUSHGATEWAY_RESERVED.has(f.name)) continue;
      if (!f.lines.includes('job="') && !f.lines.includes('instance="')) {
        pieces.push(f);
        continue;
      }
      let lines = "";
      let series = 0;
      // Renaming can make two series equal (`{instance="i"}` next to `{exported_instance="i"}`);
      // the Pushgateway rejects the whole PUT for a duplicate, so the later one is left out.
      const keys = new Set<string>();
      for (const line of f.lines.toString("utf8").split("\n")) {
        if (line === "") continue;
        const renamed = renameGroupingLabels(line);
        if (renamed === undefined) continue;
        const key = renamed.slice(0, renamed.lastIndexOf(" "));
        if (keys.has(key)) continue;
        keys.add(key);
        lines += `${renamed}\n`;
        series++;
      }
      if (series > 0) pieces.push({ ...f, lines: Buffer.from(lines, "utf8"), series });
    }
    this.pushBody = renderFamilies(pieces, "text");
    return this.pushBody;
  }
}

// One label pair of a normalised line; inside a value every `"` and `\` is escaped.
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * The line with `job`/`instance` renamed to `exported_*` and its labels sorted again (so equal
 * series have equal text); undefined when the series already has the `exported_*` label too.
 */
function renameGroupingLabels(line: string): string | undefined {
  const brace = line.indexOf("{");
  const valueAt = line.lastIndexOf(" ");
  if (brace === -1 || brace > valueAt) return line;
  const pairs: [string, string][] = [];
  for (const m of line.slice(brace + 1, line.lastIndexOf("}", valueAt)).matchAll(LABEL)) {
    pairs.push([m[1] as string, m[2] as string]);
  }
  const names = new Set(pairs.map((p) => p[0]));
  for (const label of ["job", "instance"]) {
    if (!names.has(label)) continue;
    if (names.has(`exported_${label}`)) return undefined;
    for (const p of pairs) if (p[0] === label) p[0] = `exported_${label}`;
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${line.slice(0, brace)}{${pairs.map(([n, v]) => `${n}="${v}"`).join(",")}}${line.slice(valueAt)}`;
}
