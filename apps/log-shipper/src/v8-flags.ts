// V8 settings for the shipper process, applied before anything else is loaded (main.ts imports this
// module first). Only undici's HTTP parser (llhttp) is WebAssembly here; letting V8 re-compile it
// with its optimising tier costs a transient ~35 MiB of memory at the first request to Loki — a
// third of the sidecar's 128Mi limit — for no measurable gain. Liftoff (the baseline wasm compiler)
// is enough: measured, peak RSS at 50k lines/s went from ~120 MiB to ~93 MiB, CPU unchanged.
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--liftoff-only");
// User regexes (DROP_MATCHING, KEEP_MATCHING, REDACT): checked for linear-time at start with the
// `l` flag, and switched to the linear engine by V8 when a match backtracks excessively
// (processing/regex.ts). Must precede the compilation of any of them.
setFlagsFromString("--enable-experimental-regexp-engine");
setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
