// The root Dockerfile as text, checked without a Docker daemon (test/containers.test.ts builds and
// runs its targets): one shared build stage, one target per app, each target following the image
// contract with exactly its app's runtime settings, exactly the pnpm of package.json's
// packageManager, free of CI-only workarounds; and the build context excludes host node_modules,
// build output and secrets.
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

/** How every chain's first stage names its base image (the NODE_IMAGE build argument). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable reference, not a template
const FROM_BASE = "${NODE_IMAGE}";

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
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

/** The Dockerfile's stages by name; `global` holds the ARGs before the first FROM. */
function stages(ins: Instruction[]): { global: Instruction[]; byName: Map<string, Stage> } {
  const global: Instruction[] = [];
  const byName = new Map<string, Stage>();
  let current: Stage | undefined;
  for (const i of ins) {
    if (i.op === "FROM") {
      const m = /^(\S+) AS ([\w-]+)$/.exec(i.args);
      if (!m) throw new Error(`unnamed stage: FROM ${i.args}`);
      current = { name: m[2] as string, base: m[1] as string, instructions: [] };
      byName.set(current.name, current);
    } else (current?.instructions ?? global).push(i);
  }
  return { global, byName };
}

/** A target's stages, from the one built on the base image to the target itself. */
function chain(byName: Map<string, Stage>, target: string): Stage[] {
  const out: Stage[] = [];
  for (let s = byName.get(target); s; s = byName.get(s.base)) out.unshift(s);
  return out;
}

/** The `KEY=value` pairs the given ENV instructions set. */
function envOf(ins: Instruction[]): Record<string, string> {
  return Object.fromEntries(
    ins
      .filter((i) => i.op === "ENV")
      .flatMap((i) => i.args.split(/\s+/))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

/** Each app's runtime settings, exactly as its own Dockerfile had them before the merge. */
const RUNTIME: Record<
  AppName,
  { env: Record<string, string>; mountPoints: string[]; owned?: string[]; nodeFlags?: string }
> = {
  "sample-app": { env: { NODE_ENV: "production" }, mountPoints: ["/app/logs", "/app/metrics"] },
  // /shared too: Docker copies the image directory's owner onto an empty volume mounted over it.
  "log-shipper": {
    // Measured by bench/log-shipper.mjs; apps/log-shipper/README.md "Performance" (issue 12).
    env: { NODE_ENV: "production", NODE_OPTIONS: "--max-semi-space-size=1", MALLOC_ARENA_MAX: "2" },
    mountPoints: ["/shared/logs", "/var/lib/log-shipper"],
    owned: ["/shared", "/shared/logs", "/var/lib/log-shipper"],
  },
  "metrics-exporter": {
    env: {
      NODE_ENV: "production",
      // Measured by bench/metrics-exporter.mjs; apps/metrics-exporter/README.md "Memory".
      NODE_OPTIONS: "--max-semi-space-size=1",
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "131072",
    },
    mountPoints: ["/shared/metrics"],
    owned: ["/shared", "/shared/metrics"],
    // V8's tiers capped on the command line (NODE_OPTIONS refuses the flag); README "Memory".
    nodeFlags: '"--max-opt=1", ',
  },
};

describe("the root Dockerfile", () => {
  const pnpmVersion = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).packageManager.split(
    "@",
  )[1];
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const ins = instructions(text);
  const { global, byName } = stages(ins);

  it("replaces the per-app Dockerfiles", () => {
    for (const app of APPS) expect(existsSync(join(ROOT, "apps", app, "Dockerfile")), app).toBe(false);
  });

  it("has one shared builder stage that installs the whole workspace from the frozen lockfile", () => {
    expect(global.find((i) => i.op === "ARG" && i.args.startsWith("NODE_IMAGE="))?.args).toBe(
      "NODE_IMAGE=node:24-bookworm-slim",
    );
    // Every chain starts on the base image; no stage is FROM anything else.
    for (const s of byName.values()) {
      expect(s.base === FROM_BASE || byName.has(s.base), `${s.name} FROM ${s.base}`).toBe(true);
    }
    const builder = byName.get("builder");
    if (!builder) throw new Error("no builder stage");
    expect(builder.base).toBe(FROM_BASE);
    const b = builder.instructions;
    expect(b.find((i) => i.op === "ARG" && i.args.startsWith("PNPM_VERSION="))?.args).toBe(
      `PNPM_VERSION=${pnpmVersion}`,
    );
    const runs = b.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs.some((r) => r.includes("pnpm fetch"))).toBe(true);
    expect(runs.some((r) => r.includes("pnpm install") && r.includes("--frozen-lockfile"))).toBe(true);
    // A frozen-lockfile install checks every workspace manifest: all must be copied in.
    for (const dir of workspaceDirs()) {
      expect(
        b.some((i) => i.op === "COPY" && i.args === `${dir}/package.json ${dir}/`),
        dir,
      ).toBe(true);
    }
    // No app's source in the shared stage: an edit to one app must not rebuild the others.
    expect(b.filter((i) => i.op === "COPY" && /^apps\/[\w-]+ /.test(i.args))).toEqual([]);
    // CI stand-ins (local base image, CA bundle) live in scripts/ci, never in the image.
    expect(text).not.toMatch(
      /NODE_EXTRA_CA_CERTS|ca-certificates|NODE_TLS_REJECT_UNAUTHORIZED|strict-ssl|--insecure/i,
    );
    expect(text).not.toMatch(/corepack enable/);
  });

  for (const app of APPS) {
    it(`--target ${app}: on node:24-bookworm-slim, uid 1000, node dist/main.js, bash HEALTHCHECK, OCI labels, its own files`, () => {
      const stagesOf = chain(byName, app);
      expect(stagesOf.length, `a ${app} target`).toBeGreaterThan(0);
      expect(stagesOf[0]?.base).toBe(FROM_BASE);
      // The runtime image is not built on the builder: no toolchain in it.
      expect(stagesOf.map((s) => s.name)).not.toContain("builder");
      const runtime = stagesOf.flatMap((s) => s.instructions);
      const last = (op: string) => runtime.filter((i) => i.op === op).pop()?.args;
      expect(envOf(runtime)).toEqual(RUNTIME[app].env);
      expect(last("USER")).toBe("1000:1000");
      expect(last("WORKDIR")).toBe("/app");
      expect(last("CMD")).toBe(`["node", ${RUNTIME[app].nodeFlags ?? ""}"dist/main.js"]`);
      expect(runtime.filter((i) => i.op === "EXPOSE").map((i) => i.args)).toEqual([String(PORTS[app].port)]);
      const health = runtime.filter((i) => i.op === "HEALTHCHECK");
      expect(health.length).toBe(1);
      // bash's /dev/tcp (the slim image has no curl; a node per check costs ~60 MiB and 0.08 CPU s).
      expect(health[0]?.args).toMatch(/CMD \["bash", "-c", /);
      expect(health[0]?.args).toContain(`/dev/tcp/127.0.0.1/\${${PORTS[app].variable}:-${PORTS[app].port}}`);
      expect(health[0]?.args).toContain("GET /healthz HTTP/1.0");
      expect(health[0]?.args).toContain("/healthz");
      const labels = runtime
        .filter((i) => i.op === "LABEL")
        .map((i) => i.args)
        .join(" ");
      for (const l of ["title", "description", "version", "revision", "licenses", "base.name"]) {
        expect(
          labels.match(new RegExp(`org\\.opencontainers\\.image\\.${l.replace(".", "\\.")}=`, "g"))?.length,
          l,
        ).toBe(1);
      }
      expect(labels).toContain(`org.opencontainers.image.title="sidecar-pod/${app}"`);
      // The mount points it prepares for uid 1000 (the volume is mounted over them).
      const mkdir = runtime.filter((i) => i.op === "RUN").map((i) => i.args);
      expect(mkdir).toEqual([
        `mkdir -p ${RUNTIME[app].mountPoints.join(" ")} && chown 1000:1000 ${(RUNTIME[app].owned ?? RUNTIME[app].mountPoints).join(" ")}`,
      ]);

      // Exactly dist/, node_modules and package.json, all from this app's own build stage.
      const copies = runtime.filter((i) => i.op === "COPY").map((i) => i.args);
      expect(copies.map((c) => c.split(" ").pop()).sort()).toEqual([
        "./dist",
        "./node_modules",
        "./package.json",
      ]);
      const from = new Set(copies.map((c) => /^--from=([\w-]+) /.exec(c)?.[1]));
      expect(from.size, "one build stage").toBe(1);
      const buildStage = [...from][0] as string;
      const build = chain(byName, buildStage);
      expect(build.map((s) => s.name)).toContain("builder");
      const own = byName.get(buildStage)?.instructions ?? [];
      expect(own.filter((i) => i.op === "COPY").map((i) => i.args)).toEqual([`apps/${app} apps/${app}`]);
      const buildRuns = own.filter((i) => i.op === "RUN").map((i) => i.args);
      expect(buildRuns.some((r) => r.includes(`--filter "@sidecar/${app}" run build`))).toBe(true);
      expect(buildRuns.some((r) => r.includes(`--filter "@sidecar/${app}" deploy --prod`))).toBe(true);
      for (const c of copies.filter((c) => !c.endsWith("./node_modules")))
        expect(c, "the app's own files").toContain(`/repo/apps/${app}/`);
    });
  }

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
