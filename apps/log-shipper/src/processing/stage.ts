// The processing stage between the files and the destinations: a LineSink in front of the
// fan-out that drops lines by level or pattern and redacts what must never leave the pod, before
// any destination sees the line.
//
//   DROP_LEVELS    level names (trace, debug, info, warn, error, fatal) whose lines are dropped
//   KEEP_MATCHING  when set, only lines matching one of its patterns are kept
//   DROP_MATCHING  lines matching one of its patterns are dropped
//   REDACT         each match of its patterns is replaced by [REDACTED]
//   REDACT_PRESETS built-in rules: bearer, aws-keys, jwt, credit-card, email
//   LABEL_FIELDS / METADATA_FIELDS  fields of JSON lines as labels / structured metadata
//                  (processing/fields.ts), read after redaction: a redacted value never leaves
//                  as a label or metadata either
//
// Pattern lists hold one regular expression per line (a newline separates them; a pattern may
// contain commas), each checked at start (processing/regex.ts). A dropped line is counted
// (`log_shipper_lines_dropped_total{reason}`) and still moves the file's offset forward: the
// fan-out acknowledges it once nothing before it is in flight. Redactions are counted per rule
// (`log_shipper_redactions_total{rule}`). Without any of these settings the stage is not built.
import type { Log as Logger } from "@sidecar/shared";
import { Counter, type Registry } from "@sidecar/shared";
import type { LineSink, SourceFile } from "../contracts.js";
import { EntryScanner, LEVEL_NAMES, type LevelCode } from "../entry.js";
import { FieldExtractor, type LineFields } from "./fields.js";
import type { Continues } from "./multiline.js";

export const REDACTED = "[REDACTED]";

export interface RedactRule {
  /** The metric label: a preset's name or `REDACT#<n>`. */
  readonly name: string;
  readonly re: RegExp;
  /** Replacement (may use `$1` to keep a prefix the pattern captured) or a function. */
  readonly replace: string | ((match: string, ...groups: string[]) => string);
}

/** Passes the Luhn checksum (the last digit of every card number). */
function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * The built-in rules (REDACT_PRESETS), each with what it keeps. They are compiled directly, not
 * through safeRegExp: V8's linear engine refuses counted repetitions like `{40}`, and these
 * patterns have no nested or overlapping quantifiers, so they cannot backtrack catastrophically.
 */
export const REDACT_PRESETS: Readonly<Record<string, () => RedactRule>> = {
  // `Authorization: Bearer <token>`: the scheme word stays, the token goes.
  bearer: () => ({
    name: "bearer",
    re: /(\b[Bb]earer\s+)[A-Za-z0-9\-._~+/]+=*/g,
    replace: `$1${REDACTED}`,
  }),
  // Access key ids (AKIA… long-term, ASIA… temporary) and a secret key after its usual names.
  "aws-keys": () => ({
    name: "aws-keys",
    re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|(aws_secret_access_key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{40}/gi,
    replace: (_m: string, prefix?: string) => (prefix ? `${prefix}${REDACTED}` : REDACTED),
  }),
  // JSON Web Tokens: base64url header starting `eyJ` (`{"`), payload, signature.
  jwt: () => ({
    name: "jwt",
    re: /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
    replace: REDACTED,
  }),
  // 13–19 digits (a space or dash allowed between groups of four) starting like a card number (3–6)
  // and passing the Luhn check — so epoch-millisecond times and ids are left alone.
  "credit-card": () => ({
    name: "credit-card",
    re: /\b[3-6]\d{3}[ -]?\d{4}[ -]?\d{4}[ -]?\d{1,7}\b/g,
    replace: (m: string) => (luhn(m.replace(/[ -]/g, "")) ? REDACTED : m),
  }),
  email: () => ({
    name: "email",
    re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
    replace: REDACTED,
  }),
};

export interface MultilineOptions {
  continues: Continues;
  timeoutMs: number;
  maxLines: number;
  maxBytes: number;
}

export interface ProcessingOptions {
  multiline?: MultilineOptions;
  dropLevels: readonly string[];
  keepMatching: readonly RegExp[];
  dropMatching: readonly RegExp[];
  redact: readonly RedactRule[];
  /** JSON fields promoted to labels (LABEL_FIELDS), their distinct-value cap and combination cap. */
  labelFields?: readonly string[];
  labelFieldsMaxValues?: number;
  labelFieldsMaxCombinations?: number;
  /** JSON fields sent as structured metadata (METADATA_FIELDS). */
  metadataFields?: readonly string[];
  registry: Registry;
  /** For the once-per-field warning of the label cap (a silent logger when omitted). */
  logger?: Logger;
}

/** What the stage writes into: the fan-out (a LineSink that can also skip a line). */
export interface SkippingSink extends LineSink {
  /** As LineSink.writeLine, with the line's LABEL_FIELDS / METADATA_FIELDS when it had any. */
  writeLine(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
    readTimeMs: number,
    fields?: LineFields,
  ): void;
  /** A line that goes nowhere: its offset still moves forward once nothing before it is in flight. */
  skipLine(file: SourceFile, offset: number): void;
}

/** True when the settings ask for any processing (else the stage is left out). */
export function processingEnabled(o: Omit<ProcessingOptions, "registry">): boolean {
  return (
    o.multiline !== undefined ||
    (o.labelFields?.length ?? 0) > 0 ||
    (o.metadataFields?.length ?? 0) > 0 ||
    o.dropLevels.length > 0 ||
    o.keepMatching.length > 0 ||
    o.dropMatching.length > 0 ||
    o.redact.length > 0
  );
}

/** A record being gathered for one file. */
interface Pending {
  readonly file: SourceFile;
  readonly parts: Buffer[];
  bytes: number;
  lines: number;
  readonly first: string;
  previous: string;
  /** Offset past the record's last line. */
  offset: number;
  truncated: boolean;
  readonly readTimeMs: number;
  lastAt: number;
}

const NEWLINE = Buffer.from("\n");

const noop = (): void => {};
const silentLogger = { warn: noop } as unknown as Logger;

export class ProcessingStage implements LineSink {
  private readonly scanner = new EntryScanner();
  private readonly dropLevel: boolean[];
  private readonly needText: boolean;
  private readonly dropped: Counter<"reason">;
  private readonly redactions: Counter<"rule">;
  private readonly records?: Counter;
  private readonly cuts?: Counter<"reason">;
  private readonly pending = new Map<SourceFile, Pending>();
  private readonly fields: FieldExtractor | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly next: SkippingSink,
    private readonly opts: ProcessingOptions,
  ) {
    this.dropLevel = LEVEL_NAMES.map((n) => n !== "" && opts.dropLevels.includes(n));
    this.needText = opts.keepMatching.length > 0 || opts.dropMatching.length > 0 || opts.redact.length > 0;
    this.dropped = new Counter({
      name: "log_shipper_lines_dropped_total",
      help: "Lines the processing stage dropped before any destination, by reason: level (DROP_LEVELS), drop_matching, keep_matching (matched no KEEP_MATCHING pattern).",
      labelNames: ["reason"],
      registers: [opts.registry],
    });
    this.redactions = new Counter({
      name: "log_shipper_redactions_total",
      help: "Matches replaced by [REDACTED] before any destination saw the line, by rule (a REDACT_PRESETS name or REDACT#<n>).",
      labelNames: ["rule"],
      registers: [opts.registry],
    });
    const labelFields = opts.labelFields ?? [];
    const metadataFields = opts.metadataFields ?? [];
    if (labelFields.length > 0 || metadataFields.length > 0) {
      this.fields = new FieldExtractor({
        labelFields,
        metadataFields,
        maxValues: opts.labelFieldsMaxValues ?? 50,
        maxCombinations: opts.labelFieldsMaxCombinations ?? 200,
        registry: opts.registry,
        logger: opts.logger ?? silentLogger,
      });
    }
    const ml = opts.multiline;
    if (ml !== undefined) {
      this.records = new Counter({
        name: "log_shipper_multiline_records_total",
        help: "Records of more than one line sent as one entry (MULTILINE_START / MULTILINE_PRESET).",
        registers: [opts.registry],
      });
      this.cuts = new Counter({
        name: "log_shipper_multiline_cut_total",
        help: "Records cut at MULTILINE_MAX_LINES (reason lines) or MULTILINE_MAX_BYTES (bytes); the rest starts the next record.",
        labelNames: ["reason"],
        registers: [opts.registry],
      });
      // A record nothing followed is sent after MULTILINE_TIMEOUT_MS.
      this.sweeper = setInterval(() => this.sweep(), Math.max(20, Math.floor(ml.timeoutMs / 4)));
      this.sweeper.unref();
    }
  }

  /** Stop the timeout sweep (after flush at shutdown). */
  stop(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  writeLine(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
    readTimeMs: number,
  ): void {
    const ml = this.opts.multiline;
    if (ml === undefined) {
      this.process(file, buf, start, end, offset, truncated, readTimeMs);
      return;
    }
    const text = buf.toString("utf8", start, end);
    const rec = this.pending.get(file);
    const len = end - start;
    if (rec !== undefined) {
      if (ml.continues(text, rec.first, rec.previous)) {
        const cut =
          rec.lines + 1 > ml.maxLines ? "lines" : rec.bytes + 1 + len > ml.maxBytes ? "bytes" : null;
        if (cut === null) {
          rec.parts.push(NEWLINE, Buffer.from(buf.subarray(start, end)));
          rec.bytes += 1 + len;
          rec.lines++;
          rec.previous = text;
          rec.offset = offset;
          rec.truncated ||= truncated;
          rec.lastAt = Date.now();
          return;
        }
        this.cuts?.inc({ reason: cut });
      }
      this.emit(rec);
    }
    this.pending.set(file, {
      file,
      parts: [Buffer.from(buf.subarray(start, end))],
      bytes: len,
      lines: 1,
      first: text,
      previous: text,
      offset,
      truncated,
      readTimeMs,
      lastAt: Date.now(),
    });
  }

  /** Send a gathered record on as one line. */
  private emit(rec: Pending): void {
    this.pending.delete(rec.file);
    if (rec.lines > 1) this.records?.inc();
    const b = rec.parts.length === 1 ? (rec.parts[0] as Buffer) : Buffer.concat(rec.parts, rec.bytes);
    this.process(rec.file, b, 0, b.length, rec.offset, rec.truncated, rec.readTimeMs);
  }

  private sweep(): void {
    const timeoutMs = this.opts.multiline?.timeoutMs ?? 0;
    const now = Date.now();
    for (const rec of [...this.pending.values()]) if (now - rec.lastAt >= timeoutMs) this.emit(rec);
  }

  /** Drop, keep and redact one line (or record), then hand it on. */
  private process(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
    readTimeMs: number,
  ): void {
    if (this.opts.dropLevels.length > 0) {
      this.scanner.scan(buf, start, end);
      if (this.dropLevel[this.scanner.level as LevelCode]) {
        this.dropped.inc({ reason: "level" });
        this.next.skipLine(file, offset);
        return;
      }
    }
    if (!this.needText) {
      this.forward(file, buf, start, end, offset, truncated, readTimeMs);
      return;
    }
    const text = buf.toString("utf8", start, end);
    const { keepMatching, dropMatching, redact } = this.opts;
    if (keepMatching.length > 0 && !keepMatching.some((re) => re.test(text))) {
      this.dropped.inc({ reason: "keep_matching" });
      this.next.skipLine(file, offset);
      return;
    }
    if (dropMatching.some((re) => re.test(text))) {
      this.dropped.inc({ reason: "drop_matching" });
      this.next.skipLine(file, offset);
      return;
    }
    let out = text;
    for (const rule of redact) {
      // One pass: replace() (global pattern) scans the line once and leaves it as it is when
      // nothing matches; no separate test() first.
      let n = 0;
      const replace = rule.replace;
      out = out.replace(rule.re, (...args: unknown[]) => {
        const m = args[0] as string;
        const groups = args.slice(1, -2) as string[];
        const r =
          typeof replace === "function"
            ? replace(m, ...groups)
            : replace.replace(/\$(\d)/g, (_, i: string) => groups[Number(i) - 1] ?? "");
        if (r !== m) n++;
        return r;
      });
      if (n > 0) this.redactions.inc({ rule: rule.name }, n);
    }
    if (out === text) {
      this.forward(file, buf, start, end, offset, truncated, readTimeMs);
      return;
    }
    const b = Buffer.from(out, "utf8");
    this.forward(file, b, 0, b.length, offset, truncated, readTimeMs);
  }

  /** Hand a kept line on, with its label and metadata fields when those are asked for. */
  private forward(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
    readTimeMs: number,
  ): void {
    const fx = this.fields;
    if (fx === undefined) {
      this.next.writeLine(file, buf, start, end, offset, truncated, readTimeMs);
      return;
    }
    this.next.writeLine(file, buf, start, end, offset, truncated, readTimeMs, fx.extract(buf, start, end));
  }

  get pendingBytes(): number {
    return this.next.pendingBytes;
  }

  canAccept(): boolean {
    return this.next.canAccept();
  }

  onDrain(listener: () => void): void {
    this.next.onDrain(listener);
  }

  /** Send every record still being gathered (shutdown, after every file was read to its end), then seal. */
  flush(): void {
    for (const rec of [...this.pending.values()]) this.emit(rec);
    this.next.flush();
  }

  begin(file: SourceFile, offset: number, ahead?: Readonly<Record<string, number>>): void {
    this.next.begin?.(file, offset, ahead);
  }

  end(file: SourceFile): void {
    this.next.end?.(file);
  }
}
