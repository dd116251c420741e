// Bundles one app's src/main.ts into dist/main.js — the file the image runs with `node dist/main.js`.
// Workspace packages and pure-JS dependencies are inlined; packages with native code (or that load
// files at run time, like pino's worker transports) stay external and are installed beside dist/.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { resolve } from "node:path";
import { build } from "esbuild";

const appDir = resolve(process.argv[2] ?? ".");
const pkg = JSON.parse(readFileSync(resolve(appDir, "package.json"), "utf8"));
const external = pkg.bundleExternal ?? [];
// "bundleFormat": "cjs" in an app's package.json: a CommonJS bundle, with a dist/package.json that
// says so (the app's own package.json says "type": "module"). An ES module entry point costs
// Node 24 its ESM loader at start: ≈ 2 MiB resident for the log shipper (apps/log-shipper/PERFORMANCE.md).
// The Dockerfile copies dist/ whole, that package.json with it.
const format = pkg.bundleFormat ?? "esm";
if (format !== "esm" && format !== "cjs") throw new Error(`bundleFormat: esm or cjs, not ${format}`);

// node:http and node:https are loaded with require(), not as ES modules: an ES import of a builtin
// builds its namespace object, which reads every export, and on Node 24 node:http's exports
// include lazy getters (WebSocket, …) that load Node's bundled undici, http2 and web streams.
// Measured with the image's Node 24, the log shipper idle after start: 73.1 -> 68.9 MiB resident;
// `import { request } from "node:http"` alone costs 13.6 MiB against 0.9 MiB for require(). Not
// every builtin: through require() the others cost more on Node 20 (+5 MiB for the shipper).
const builtinsViaRequire = {
  name: "builtins-via-require",
  setup(b) {
    b.onResolve({ filter: /^(node:)?https?$/ }, (args) =>
      args.kind === "import-statement" && isBuiltin(args.path)
        ? { path: args.path, namespace: "builtin-via-require" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "builtin-via-require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

await build({
  plugins: [builtinsViaRequire],
  entryPoints: [resolve(appDir, "src/main.ts")],
  outfile: resolve(appDir, "dist/main.js"),
  bundle: true,
  platform: "node",
  target: "node20.19",
  format,
  sourcemap: "linked",
  external,
  legalComments: "none",
  minify: process.env.BUILD_MINIFY !== "0",
  keepNames: true,
  logLevel: "warning",
  // Some CommonJS dependencies call require(); give the ESM bundle a real one.
  ...(format === "esm"
    ? {
        banner: {
          js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
        },
      }
    : {}),
});
const typeFile = resolve(appDir, "dist/package.json");
if (format === "cjs") writeFileSync(typeFile, `${JSON.stringify({ type: "commonjs" })}\n`);
else rmSync(typeFile, { force: true });
