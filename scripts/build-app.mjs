// Bundles one app's src/main.ts into dist/main.js — the file the image runs with `node dist/main.js`.
// Workspace packages and pure-JS dependencies are inlined; packages with native code (or that load
// files at run time, like pino's worker transports) stay external and are installed beside dist/.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { build } from "esbuild";

const appDir = resolve(process.argv[2] ?? ".");
const pkg = JSON.parse(readFileSync(resolve(appDir, "package.json"), "utf8"));
const external = pkg.bundleExternal ?? [];

await build({
  entryPoints: [resolve(appDir, "src/main.ts")],
  outfile: resolve(appDir, "dist/main.js"),
  bundle: true,
  platform: "node",
  target: "node20.19",
  format: "esm",
  sourcemap: "linked",
  external,
  legalComments: "none",
  minify: process.env.BUILD_MINIFY !== "0",
  keepNames: true,
  logLevel: "warning",
  // Some CommonJS dependencies call require(); give the ESM bundle a real one.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
});
