// Imported first by main.ts: caps V8's optimising tiers below TurboFan for this process
// (`--max-opt=2`: Ignition, Sparkplug and, where V8 has it on — Node 22 and later — Maglev).
// TurboFan's compilations were the largest memory cost left in a typical pod (issue 10.5: peak
// RSS ≤ 64 MiB with ≈ 2k series): each hot function's compile takes megabytes of zone memory that
// malloc keeps afterwards, plus several MiB of the node binary's compiler pages. Measured on Node 20
// with the image's settings, ≈ 1.8k series, StatsD + remote-write: peak RSS 66–70 MiB → 55 MiB.
// The CPU cost is small where it counts: re-collecting a changed 10k-series file costs the same
// (≈ 120 ms, TurboFan's own compile work included) and only the first collection of 100k series
// is slower (≈ 1.2 s instead of 0.9 s). NODE_OPTIONS cannot carry V8's tiering flags, so this is
// set at run time; `node --max-opt=<n> dist/main.js` overrides it. Node 20's V8 honours the run-time
// setting; Node 24's (the image's) does not — its typical-pod peak is the same ≈ 73 MiB with and
// without it — so the image passes `--max-opt=1` on its command line (Dockerfile CMD).
import { setFlagsFromString } from "node:v8";

if (!process.execArgv.some((a) => a.startsWith("--max-opt"))) setFlagsFromString("--max-opt=2");
