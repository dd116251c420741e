// V8 settings for the shipper process, applied before anything else is loaded (main.ts imports this
// module first).
import { setFlagsFromString } from "node:v8";

// User regexes (DROP_MATCHING, KEEP_MATCHING, REDACT): checked for linear-time at start with the
// `l` flag, and switched to the linear engine by V8 when a match backtracks excessively
// (processing/regex.ts). Must precede the compilation of any of them.
setFlagsFromString("--enable-experimental-regexp-engine");
setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
