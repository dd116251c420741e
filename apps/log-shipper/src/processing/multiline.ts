// Multiline records: a stack trace is one record, not twenty lines. Which line starts a record:
//
//   MULTILINE_START   a pattern (checked like every user pattern, processing/regex.ts): a line
//                     matching it starts a new record, any other line continues the current one
//   MULTILINE_PRESET  java     continuation: the exception line under a message
//                              (`java.lang.IllegalStateException: boom`), indented lines (`\tat …`,
//                              `\t... 5 more`) and `Caused by: …`
//                     python   continuation: indented lines, and the exception line that ends a
//                              `Traceback (most recent call last):` block (`ValueError: …`)
//                     go       a `panic: …` / `fatal error: …` record takes the goroutine dump that
//                              follows (blank lines, `goroutine 1 [running]:`, frames, indented
//                              file:line lines, `exit status 2`); otherwise indented lines continue
//                     indented continuation: lines that start with a space or a tab
//
// A record is cut (and counted) at MULTILINE_MAX_LINES lines or MULTILINE_MAX_BYTES bytes; the
// line that did not fit starts the next record. A record is sent when the next one starts, when
// nothing followed for MULTILINE_TIMEOUT_MS, or at shutdown. Its offset (past its last line) is
// acknowledged only with the whole record, so a restart reads it again from its first line: a
// record is never split or doubled by a restart. A rename rotation keeps the file's reader, so a
// record rotated in the middle stays whole.

export type MultilinePreset = "java" | "python" | "go" | "indented";
export const MULTILINE_PRESETS: readonly MultilinePreset[] = ["java", "python", "go", "indented"];

/** Decides, line by line, whether a line continues the record begun by `first`. */
export type Continues = (line: string, first: string, previous: string) => boolean;

const INDENTED = /^[ \t]/;
const JAVA_CAUSE = /^(?:Caused by:|Suppressed:|\.\.\. \d+ (?:more|common frames omitted))/;
/** The exception line a logger prints under its message: `java.lang.IllegalStateException: boom`. */
const JAVA_EXCEPTION = /^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable)(?::|$)/;
const PY_TRACEBACK = /^Traceback \(most recent call last\):/;
const PY_EXCEPTION = /^[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)\b/;
const GO_START = /^(?:panic: |fatal error: )/;
const GO_DUMP =
  /^(?:$|goroutine \d+ \[|\[signal |created by |exit status \d+|[\w./*()[\]-]+\(.*\)(?: \+0x[0-9a-f]+)?$)/;

/** The continuation rule of a preset. */
export function presetRule(preset: MultilinePreset): Continues {
  switch (preset) {
    case "indented":
      return (line) => INDENTED.test(line);
    case "java":
      return (line) => INDENTED.test(line) || JAVA_CAUSE.test(line) || JAVA_EXCEPTION.test(line);
    case "python":
      // The exception line right after an indented traceback line belongs to the traceback.
      return (line, first, previous) =>
        INDENTED.test(line) ||
        (PY_TRACEBACK.test(first) && INDENTED.test(previous) && PY_EXCEPTION.test(line));
    case "go":
      return (line, first) => INDENTED.test(line) || (GO_START.test(first) && GO_DUMP.test(line));
  }
}

/** The rule of a MULTILINE_START pattern: a line that does not start a record continues one. */
export function startRule(start: RegExp): Continues {
  return (line) => !start.test(line);
}
