// What the source side reports about files: one structured log line and one count
// (log_shipper_file_events_total{event}) per notable event — found, rotated, truncated, copy held
// or recognised, deleted, closed — never per line; and resyncs (log_shipper_resyncs_total{reason}),
// where reading could not go on at an offset and started the file over.
import type { Log as Logger } from "@sidecar/shared";
import type { SourceMetrics } from "./source-metrics.js";

/**
 * Why reading did not go on at an offset (log_shipper_resyncs_total{reason}): a saved offset on
 * restart, an offset inherited from an original (copytruncate), one re-checked against a held
 * copy's original, or a file whose bytes before the offset changed under the reader.
 */
export type ResyncReason = "saved" | "inherited" | "rechecked" | "changed";

export class FileEvents {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: SourceMetrics | undefined,
  ) {}

  event(kind: string, fields: Record<string, unknown>, msg: string): void {
    this.metrics?.fileEvents.inc({ event: kind });
    this.logger.info({ event: kind, ...fields }, msg);
  }

  /**
   * Reading was about to go on at `offset` of `path`, but the bytes before it are not the ones that
   * offset was measured in (not a line start, or changed under the reader): it starts over at 0.
   */
  resync(reason: ResyncReason, path: string, id: string, offset: number): void {
    this.metrics?.resyncs.inc({ reason });
    this.logger.warn(
      { event: "resync", reason, path, id, offset },
      "offset is not a line start of this file's content (changed, or not the file it was taken from); reading it from the start",
    );
  }
}
