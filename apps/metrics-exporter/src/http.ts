// The /metrics route: the cached collected part plus the exporter's own registry, rendered per
// scrape (it is small and its values — scrape counts, process metrics — should be current), in the
// format the scraper asked for, gzip-compressed when it accepts gzip.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "@sidecar/shared";
import type { Exposition } from "./exposition.js";
import { gzipPiecesWithPrefix } from "./gzip.js";
import { acceptsGzip, negotiateFormat } from "./negotiate.js";
import { CONTENT_TYPES, type Format, OPENMETRICS_EOF, renderFamilies } from "./render.js";
import { ownFamilies, type SelfMetrics } from "./self-metrics.js";

export interface MetricsRouteDeps {
  readonly exposition: Exposition;
  readonly registry: Registry;
  readonly metrics: SelfMetrics;
}

/** The /metrics handler (GET and HEAD; the server routes to it). */
export function metricsHandler(
  deps: MetricsRouteDeps,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const format = negotiateFormat(req.headers.accept);
    deps.metrics.scrapes.inc({ format });
    const tail = renderFamilies(
      await ownFamilies(deps.registry),
      format,
      format === "openmetrics" ? OPENMETRICS_EOF : "",
    );
    const gzip = acceptsGzip(req.headers["accept-encoding"]);
    const body = responseBody(deps.exposition, format, tail, gzip);
    const headers: Record<string, string | number> = {
      "content-type": CONTENT_TYPES[format],
      vary: "Accept, Accept-Encoding",
      "content-length": body.length,
    };
    if (gzip) headers["content-encoding"] = "gzip";
    // Written straight to the socket: the cached part (megabytes at 100k series uncompressed,
    // about a megabyte deflated) is never copied per scrape.
    res.writeHead(200, headers);
    if (req.method === "HEAD") {
      res.end();
    } else {
      res.cork();
      for (const piece of body.pieces) res.write(piece);
      res.end(); // end() uncorks
    }
  };
}

/**
 * The response as pieces whose big part is cached: the collected families' own buffers, or their
 * deflated prefix followed by this scrape's deflated tail.
 */
function responseBody(
  exposition: Exposition,
  format: Format,
  tail: Buffer,
  gzip: boolean,
): { pieces: readonly Buffer[]; length: number } {
  if (gzip) return gzipPiecesWithPrefix(exposition.gzip(format), tail);
  const b = exposition.body(format);
  return { pieces: [...b.pieces, tail], length: b.length + tail.length };
}
