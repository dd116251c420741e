// The /metrics route: the cached collected part plus the exporter's own registry, rendered per
// scrape (it is small and its values — scrape counts, process metrics — should be current), in the
// format the scraper asked for, gzip-compressed when it accepts gzip.
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Exposition } from "./exposition.js";
import { gzipWithPrefix } from "./gzip.js";
import { acceptsGzip, negotiateFormat } from "./negotiate.js";
import { CONTENT_TYPES, OPENMETRICS_EOF, renderFamilies } from "./render.js";
import { ownFamilies, type SelfMetrics } from "./self-metrics.js";

export interface MetricsRouteDeps {
  readonly exposition: Exposition;
  readonly registry: Registry;
  readonly metrics: SelfMetrics;
}

export function registerMetricsRoute(app: FastifyInstance, deps: MetricsRouteDeps): void {
  app.get("/metrics", async (req, reply) => {
    const format = negotiateFormat(req.headers.accept);
    deps.metrics.scrapes.inc({ format });
    let own = renderFamilies(await ownFamilies(deps.registry), format);
    if (format === "openmetrics") own += OPENMETRICS_EOF;
    const tail = Buffer.from(own, "utf8");
    reply.header("content-type", CONTENT_TYPES[format]).header("vary", "Accept, Accept-Encoding");
    if (acceptsGzip(req.headers["accept-encoding"])) {
      reply.header("content-encoding", "gzip");
      return reply.send(gzipWithPrefix(deps.exposition.gzip(format), tail));
    }
    return reply.send(Buffer.concat([deps.exposition.body(format), tail]));
  });
}
