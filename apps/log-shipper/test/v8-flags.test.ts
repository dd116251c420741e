// Which of V8's optimizing compilers the shipper runs with (src/v8-flags.ts): Maglev alone for
// Loki, TurboFan kept for the OTLP and Elasticsearch encoders, never on a Node whose Maglev is off,
// and never against a tier flag given on the node command line. The image's run of it (Node 24,
// Loki only) is checked by test/containers.test.ts and, with MEMORY_TEST_NODE, image-memory.test.ts.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { chooseCompiler } from "../src/v8-flags.js";

const NODE24_V8 = "13.6.233.17-node.40";
const NODE20_V8 = "11.3.244.8-node.33";

describe("chooseCompiler", () => {
  it("Loki only (or the dry run), on a V8 with Maglev: Maglev without TurboFan", () => {
    expect(chooseCompiler({ otherDestinations: [], execArgv: [], v8Version: NODE24_V8 })).toEqual({
      compiler: "maglev",
      why: "no OTLP or Elasticsearch destination: Maglev without TurboFan, for memory",
    });
  });

  it("OTLP or Elasticsearch configured: V8's defaults, TurboFan included", () => {
    for (const other of [["OTLP"], ["Elasticsearch"], ["OTLP", "Elasticsearch"]]) {
      const c = chooseCompiler({ otherDestinations: other, execArgv: [], v8Version: NODE24_V8 });
      expect(c.compiler, other.join()).toBe("default");
      expect(c.why).toBe(`TurboFan for the ${other.join(" and ")} encoders`);
    }
  });

  it("Node 20 (V8 11, Maglev off): V8's defaults, whatever the destinations", () => {
    const c = chooseCompiler({ otherDestinations: [], execArgv: [], v8Version: NODE20_V8 });
    expect(c).toEqual({ compiler: "default", why: `V8 ${NODE20_V8} has Maglev off: TurboFan stays` });
  });

  it("a tier flag on the command line wins; other flags do not count", () => {
    for (const flag of [
      "--max-opt=2",
      "--max-opt=3",
      "--turbofan",
      "--no-turbofan",
      "--no-maglev",
      "--max_opt=2",
      "--no_turbofan",
      "--jitless",
    ]) {
      const c = chooseCompiler({
        otherDestinations: [],
        execArgv: ["--inspect=0", flag],
        v8Version: NODE24_V8,
      });
      expect(c, flag).toEqual({ compiler: "default", why: `${flag} on the command line` });
    }
    const other = chooseCompiler({
      otherDestinations: [],
      execArgv: [
        "--max-semi-space-size=1",
        "--max-old-space-size=64",
        "--enable-source-maps",
        "--maglev-inlining",
      ],
      v8Version: NODE24_V8,
    });
    expect(other.compiler).toBe("maglev");
  });
});

describe("--no-turbofan set at run time", () => {
  // What applyCompiler relies on: V8 reads the flag at each tiering decision, so setting it after
  // start (Node leaves V8's flags unfrozen) keeps a hot function off TurboFan. Checked in a child
  // node with V8's own optimization status (natives syntax): bit 6 is "TurboFanned", on V8 11 (Node
  // 20) as on V8 13 (Node 24). The child calls the function until it is TurboFanned (or for
  // `forMs`), and says how long that took.
  const TURBOFANNED = 1 << 6;
  const run = (setFlag: boolean, forMs: number): { status: number; ms: number } => {
    const script = [
      'const v8 = require("node:v8");',
      setFlag ? 'v8.setFlagsFromString("--no-turbofan");' : "",
      "function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s = (s + a[i]) | 0; return s; }",
      "const a = new Uint8Array(64).fill(3);",
      "const start = Date.now();",
      `while (Date.now() - start < ${forMs} && !(%GetOptimizationStatus(hot) & ${TURBOFANNED})) for (let k = 0; k < 1000; k++) hot(a);`,
      "process.stdout.write(JSON.stringify({ status: %GetOptimizationStatus(hot), ms: Date.now() - start }));",
    ].join("\n");
    const r = spawnSync(process.execPath, ["--allow-natives-syntax", "-e", script], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };

  it("a function TurboFanned without it stays off TurboFan with it, for several times as long", () => {
    const without = run(false, 30_000);
    expect(without.status & TURBOFANNED, JSON.stringify(without)).toBe(TURBOFANNED);
    const withFlag = run(true, Math.max(1000, 4 * without.ms));
    expect(withFlag.status & TURBOFANNED, JSON.stringify(withFlag)).toBe(0);
  });
});
