// The source side's metrics (discovery, reading, positions), registered in the app's one Registry.
// Counters are incremented once per chunk, never per line; point-in-time values (files watched,
// lag per file) are computed at scrape time in collect().
import { Counter, Gauge, type Registry } from "@sidecar/shared";

export interface SourceStats {
  filesWatched: number;
  filesOpen: number;
  /** Per file: bytes on disk not yet acknowledged (size − acknowledged offset). */
  lag: readonly { path: string; bytes: number }[];
  readPaused: boolean;
}

export type SourceMetrics = ReturnType<typeof createSourceMetrics>;

/** `saveFailing`: whether the last positions write failed (until one succeeds). */
export function createSourceMetrics(
  registry: Registry,
  stats: () => SourceStats,
  saveFailing: () => boolean = () => false,
) {
  const registers = [registry];
  // stats() walks the tracked files (a handful): cheap enough to call once per gauge per scrape.
  const snapshot = stats;
  return {
    linesRead: new Counter({
      name: "log_shipper_lines_read_total",
      help: "Lines read from log files and handed to the sink.",
      registers,
    }),
    bytesRead: new Counter({
      name: "log_shipper_bytes_read_total",
      help: "Bytes of log files consumed (lines and their terminators).",
      registers,
    }),
    linesTruncated: new Counter({
      name: "log_shipper_lines_truncated_total",
      help: "Lines longer than MAX_LINE_BYTES, shipped truncated to their head.",
      registers,
    }),
    fileEvents: new Counter({
      name: "log_shipper_file_events_total",
      help: "Notable file events: found, rotated, truncated, deleted, copy_held, copy_recognised, refused, closed.",
      labelNames: ["event"] as const,
      registers,
    }),
    resyncs: new Counter({
      name: "log_shipper_resyncs_total",
      help: "Times reading was to go on at an offset that is not a line start of the file's current content (reason: saved, inherited, rechecked, changed); the file was read from its start instead.",
      labelNames: ["reason"] as const,
      registers,
    }),
    openLimitWaits: new Counter({
      name: "log_shipper_open_limit_waits_total",
      help: "Times a new file had to wait for a descriptor: MAX_OPEN_FILES were open, none of them quiet and fully read.",
      registers,
    }),
    positionsSaves: new Counter({
      name: "log_shipper_positions_saves_total",
      help: "Positions file writes by result.",
      labelNames: ["result"] as const,
      registers,
    }),
    positionsEvicted: new Counter({
      name: "log_shipper_positions_evicted_total",
      help: "Positions entries dropped because more than MAX_KNOWN_FILES files were known (the least recently seen first): those files are read again from their start after a restart.",
      registers,
    }),
    positionsSaveErrors: new Counter({
      name: "log_shipper_positions_save_errors_total",
      help: 'Positions file writes that failed (the same as log_shipper_positions_saves_total{result="error"}, by the name alerts look for).',
      registers,
    }),
    positionsSaveFailing: new Gauge({
      name: "log_shipper_positions_save_failing",
      help: "1 while the last positions file write failed (ENOSPC, EROFS …): a restart would re-send what was delivered since the last successful write.",
      registers,
      collect() {
        this.set(saveFailing() ? 1 : 0);
      },
    }),
    backpressureWaits: new Counter({
      name: "log_shipper_read_backpressure_waits_total",
      help: "Times reading paused because MAX_BUFFER_BYTES were read but not yet acknowledged.",
      registers,
    }),
    filesWatched: new Gauge({
      name: "log_shipper_files_watched",
      help: "Files currently tracked (matched by LOG_PATHS and identified).",
      registers,
      collect() {
        this.set(snapshot().filesWatched);
      },
    }),
    filesOpen: new Gauge({
      name: "log_shipper_files_open",
      help: "Files currently held open for reading.",
      registers,
      collect() {
        this.set(snapshot().filesOpen);
      },
    }),
    readPaused: new Gauge({
      name: "log_shipper_read_paused",
      help: "1 while reading is paused by back-pressure (waiting for acknowledgements).",
      registers,
      collect() {
        this.set(snapshot().readPaused ? 1 : 0);
      },
    }),
    fileLag: new Gauge({
      name: "log_shipper_file_lag_bytes",
      help: "Bytes of a file not yet acknowledged by Loki (size minus acknowledged offset).",
      labelNames: ["path"] as const,
      registers,
      collect() {
        this.reset();
        for (const f of snapshot().lag) this.set({ path: f.path }, f.bytes);
      },
    }),
    lagTotal: new Gauge({
      name: "log_shipper_lag_bytes",
      help: "Bytes in all tracked files not yet acknowledged by Loki.",
      registers,
      collect() {
        let total = 0;
        for (const f of snapshot().lag) total += f.bytes;
        this.set(total);
      },
    }),
  };
}
