// Which environment variables a program actually reads: its config schema's names and aliases,
// plus what the shared logger reads (pod metadata). Found by introspection, not by a list kept
// here, so a manifest that sets a variable no program knows (a typo, a renamed variable) fails.

import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { createLogger } from "../../packages/shared/src/index.js";

export const APPS = ["sample-app", "log-shipper", "metrics-exporter"] as const;
export type AppName = (typeof APPS)[number];

/** Variables the runtime reads for any program: Node, libuv, glibc malloc, the time zone. */
export const RUNTIME_ENV = [
  "NODE_OPTIONS",
  "NODE_EXTRA_CA_CERTS",
  "UV_THREADPOOL_SIZE",
  "MALLOC_ARENA_MAX",
  "MALLOC_MMAP_THRESHOLD_",
  "MALLOC_TRIM_THRESHOLD_",
  "TZ",
] as const;

interface FieldLike {
  name: string;
  aliases?: readonly string[];
}

function isField(v: unknown): v is FieldLike {
  return typeof v === "object" && v !== null && typeof (v as FieldLike).name === "string" && "parse" in v;
}

/** An env object that records every name looked up in it and answers "unset" to all. */
function recordingEnv(seen: Set<string>): Record<string, string | undefined> {
  return new Proxy({} as Record<string, string | undefined>, {
    get(_t, key) {
      if (typeof key === "string") seen.add(key);
      return undefined;
    },
    has(_t, key) {
      if (typeof key === "string") seen.add(key);
      return false;
    },
  });
}

export async function knownEnvNames(app: AppName, repoRoot: string): Promise<Set<string>> {
  const mod = (await import(pathToFileURL(resolve(repoRoot, "apps", app, "src/config.ts")).href)) as Record<
    string,
    unknown
  >;
  const names = new Set<string>();
  // An exported schema (an object of Fields) is the most direct source: config.ts's, and each
  // destination module's own (src/sinks/<name>/*.ts exports `<name>Schema`, see the log shipper's
  // sinks/sink.ts), which config.ts's loadConfig does not read.
  const modules = [mod];
  const sinks = resolve(repoRoot, "apps", app, "src/sinks");
  if (existsSync(sinks)) {
    for (const d of readdirSync(sinks, { withFileTypes: true }).filter((e) => e.isDirectory())) {
      for (const f of readdirSync(join(sinks, d.name)).filter((n) => n.endsWith(".ts"))) {
        modules.push(await import(pathToFileURL(join(sinks, d.name, f)).href));
      }
    }
  }
  for (const value of modules.flatMap((m) => Object.values(m))) {
    if (typeof value !== "object" || value === null) continue;
    const fields = Object.values(value as Record<string, unknown>);
    if (fields.length > 0 && fields.every(isField)) {
      for (const f of fields as FieldLike[]) {
        names.add(f.name);
        for (const a of f.aliases ?? []) names.add(a);
      }
    }
  }
  // Otherwise (and in addition): run loadConfig against a recording env. parseEnv looks up every
  // field's name and aliases before it reports the missing/bad ones, so nothing is missed.
  if (typeof mod.loadConfig === "function") {
    try {
      (mod.loadConfig as (env: unknown) => unknown)(recordingEnv(names));
    } catch {
      // An empty environment may well be invalid; only the lookups matter here.
    }
  }
  if (names.size === 0)
    throw new Error(`apps/${app}/src/config.ts exposes neither a schema nor loadConfig(env)`);
  // Read by Node.js, libuv or glibc rather than the program (memory and runtime tuning).
  for (const name of RUNTIME_ENV) names.add(name);
  // The shared logger adds pod/namespace from the downward API.
  createLogger({
    service: "probe",
    env: recordingEnv(names),
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
  });
  return names;
}
