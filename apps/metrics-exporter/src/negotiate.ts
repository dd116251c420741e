// Content negotiation for /metrics. Text format 0.0.4 is the default; OpenMetrics 1.0 is served
// only when the Accept header asks for it with a higher or equal quality than text (Prometheus
// sends `application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`).
import type { Format } from "./render.js";

interface MediaRange {
  type: string;
  params: Record<string, string>;
  q: number;
}

function parseList(header: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const part of header.split(",")) {
    const [type = "", ...rest] = part.split(";");
    const params: Record<string, string> = {};
    let q = 1;
    for (const p of rest) {
      const eq = p.indexOf("=");
      if (eq === -1) continue;
      const key = p.slice(0, eq).trim().toLowerCase();
      const value = p
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, "$1");
      if (key === "q") {
        const n = Number(value);
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
      } else {
        params[key] = value;
      }
    }
    out.push({ type: type.trim().toLowerCase(), params, q });
  }
  return out;
}

export function negotiateFormat(accept: string | undefined): Format {
  if (!accept) return "text";
  let om = 0;
  let text = 0;
  for (const r of parseList(accept)) {
    if (r.type === "application/openmetrics-text") {
      const v = r.params.version;
      if (v === undefined || v === "1.0.0") om = Math.max(om, r.q);
    } else if (r.type === "text/plain") {
      const v = r.params.version;
      if (v === undefined || v === "0.0.4") text = Math.max(text, r.q);
    }
  }
  return om > 0 && om >= text ? "openmetrics" : "text";
}

export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const r of parseList(acceptEncoding)) {
    if (r.type === "gzip" || r.type === "x-gzip") gzip = Math.max(gzip ?? 0, r.q);
    else if (r.type === "*") any = r.q;
  }
  return (gzip ?? any ?? 0) > 0;
}
