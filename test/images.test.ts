// The Dockerfiles as text, checked without a Docker daemon (test/containers.test.ts builds and
// runs them): each follows the image contract, uses exactly the pnpm of package.json's
// packageManager, stays free of CI-only workarounds, and the build context excludes host
// node_modules, build output and secrets.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { APPS, type AppName } from "./support/config-names.js";

const ROOT = resolve(import.meta.dirname, "..");
const PORTS: Record<AppName, { port: number; variable: string }> = {
  "sample-app": { port: 8080, variable: "PORT" },
  "log-shipper": { port: 9080, variable: "HTTP_PORT" },
  "metrics-exporter": { port: 9100, variable: "HTTP_PORT" },
};

/** The workspace's package directories (apps/*, packages/*), as pnpm-workspace.yaml lists them. */
function workspaceDirs(): string[] {
  return ["apps", "packages"].flatMap((top) =>
    readdirSync(join(ROOT, top), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(ROOT, top, d.name, "package.json")))
      .map((d) => `${top}/${d.name}`),
  );
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: (op as string).toUpperCase(), args: rest.join(" ") };
    });
}

describe("Dockerfiles", () => {
  const pnpmVersion = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).packageManager.split(
    "@",
  )[1];

  for (const app of APPS) {
    it(`${app}: multi-stage on node:24-bookworm-slim, frozen lockfile, uid 1000, node dist/main.js, node HEALTHCHECK`, () => {
      const text = readFileSync(join(ROOT, "apps", app, "Dockerfile"), "utf8");
      const ins = instructions(text);
      const froms = ins.filter((i) => i.op === "FROM");
      expect(froms.length).toBeGreaterThanOrEqual(2);
      expect(ins.find((i) => i.op === "ARG" && i.args.startsWith("NODE_IMAGE="))?.args).toBe(
        "NODE_IMAGE=node:24-bookworm-slim",
      );
      for (const f of froms) expect(f.args).toMatch(/^\$\{NODE_IMAGE\} AS \w+$/);
      expect(ins.find((i) => i.op === "ARG" && i.args.startsWith("PNPM_VERSION="))?.args).toBe(
        `PNPM_VERSION=${pnpmVersion}`,
      );
      const runs = ins.filter((i) => i.op === "RUN").map((i) => i.args);
      expect(runs.some((r) => r.includes("pnpm install") && r.includes("--frozen-lockfile"))).toBe(true);
      expect(runs.some((r) => r.includes(`@sidecar/${app}`) && r.includes("deploy --prod"))).toBe(true);

      // A frozen-lockfile install checks every workspace manifest: all must be copied in.
      for (const dir of workspaceDirs()) {
        expect(
          ins.some((i) => i.op === "COPY" && i.args === `${dir}/package.json ${dir}/`),
          dir,
        ).toBe(true);
      }

      // The runtime stage: everything after the last FROM.
      const lastFrom = ins.lastIndexOf(froms[froms.length - 1] as { op: string; args: string });
      const runtime = ins.slice(lastFrom);
      expect(runtime.some((i) => i.op === "ENV" && /NODE_ENV=production/.test(i.args))).toBe(true);
      expect(runtime.find((i) => i.op === "USER")?.args).toBe("1000:1000");
      expect(runtime.find((i) => i.op === "WORKDIR")?.args).toBe("/app");
      expect(runtime.find((i) => i.op === "CMD")?.args).toBe('["node", "dist/main.js"]');
      expect(runtime.find((i) => i.op === "EXPOSE")?.args).toBe(String(PORTS[app].port));
      const copies = runtime.filter((i) => i.op === "COPY").map((i) => i.args);
      expect(copies.every((c) => c.startsWith("--from=builder"))).toBe(true);
      expect(copies.map((c) => c.split(" ").pop()).sort()).toEqual([
        "./dist",
        "./node_modules",
        "./package.json",
      ]);
      const health = runtime.find((i) => i.op === "HEALTHCHECK")?.args ?? "";
      expect(health).toMatch(/CMD \["node", "-e", /);
      expect(health).toContain(`process.env.${PORTS[app].variable} || ${PORTS[app].port}`);
      expect(health).toContain("/healthz");
      const labels = runtime
        .filter((i) => i.op === "LABEL")
        .map((i) => i.args)
        .join(" ");
      for (const l of ["title", "description", "version", "revision", "licenses"]) {
        expect(labels, l).toContain(`org.opencontainers.image.${l}=`);
      }
      expect(labels).toContain(`org.opencontainers.image.title="sidecar-pod/${app}"`);
      // CI stand-ins (local base image, CA bundle) live in scripts/ci, never in the images.
      expect(text).not.toMatch(
        /NODE_EXTRA_CA_CERTS|ca-certificates|NODE_TLS_REJECT_UNAUTHORIZED|strict-ssl|--insecure/i,
      );
      expect(text).not.toMatch(/corepack enable/);
    });
  }

  it("metrics-exporter: the runtime stage sets the memory settings its README and benchmark assume", () => {
    const ins = instructions(readFileSync(join(ROOT, "apps", "metrics-exporter", "Dockerfile"), "utf8"));
    const lastFrom = ins.map((i) => i.op).lastIndexOf("FROM");
    const env = ins
      .slice(lastFrom)
      .filter((i) => i.op === "ENV")
      .map((i) => i.args)
      .join(" ");
    expect(env).toMatch(/(^|\s)NODE_OPTIONS=--max-semi-space-size=1(\s|$)/);
    expect(env).toMatch(/(^|\s)MALLOC_ARENA_MAX=2(\s|$)/);
    expect(env).toMatch(/(^|\s)MALLOC_MMAP_THRESHOLD_=131072(\s|$)/);
  });

  it(".dockerignore keeps host node_modules, build output, VCS data and env files out of the context", () => {
    const lines = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const p of ["**/node_modules", "**/dist", ".git", ".pod", ".env"]) expect(lines, p).toContain(p);
    // What the Dockerfiles COPY must not be ignored.
    for (const p of ["pnpm-lock.yaml", "package.json", "packages", "apps", "scripts/build-app.mjs"]) {
      expect(lines, p).not.toContain(p);
    }
  });
});
