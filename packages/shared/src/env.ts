// Configuration from the environment: one schema, parsed once at the edge, returned frozen.
// Every bad variable is collected into a single ConfigError so a user fixes them all in one go;
// the program's entry point turns that error into one message and exit code 2.
import { readRegularFileSync } from "./regular-file.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** One variable of a schema: where to read it, what it defaults to, how to parse it. */
export interface Field<T> {
  /** The variable's name (also the name used in error messages). */
  readonly name: string;
  /** Parse a raw string; throw (any Error) with a short reason when it is not acceptable. */
  readonly parse: (raw: string, env: Env) => T;
  /** What is expected, in words, for the error message ("an integer from 1 to 65535"). */
  readonly expected: string;
  /** Used when the variable is unset or empty. `undefined` means the variable is required. */
  readonly default?: T | (() => T);
  /** Never print the value (passwords, tokens). */
  readonly secret?: boolean;
  /** Further accepted names, for renamed variables (the first that is set wins). */
  readonly aliases?: readonly string[];
}

export interface ConfigProblem {
  readonly name: string;
  readonly value: string | undefined;
  readonly expected: string;
  readonly reason?: string;
}

export class ConfigError extends Error {
  readonly code = "ERR_CONFIG";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(
      `invalid configuration: ${problems
        .map((p) => {
          const value = p.value === undefined ? "unset" : JSON.stringify(p.value);
          return `${p.name}=${value} (expected ${p.expected}${p.reason ? `: ${p.reason}` : ""})`;
        })
        .join("; ")}`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

type Schema = Record<string, Field<unknown>>;
export type ConfigOf<S extends Schema> = { readonly [K in keyof S]: S[K] extends Field<infer T> ? T : never };

/**
 * Parse `env` against `schema`. Returns a frozen object keyed like the schema, or throws one
 * ConfigError naming every bad variable, its value (masked for secrets) and what was expected.
 * `overrides` (user ?? env ?? default) lets tests and embedders pass values directly.
 */
export function parseEnv<S extends Schema>(
  schema: S,
  env: Env,
  overrides: Partial<{ [K in keyof S]: ConfigOf<S>[K] }> = {},
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  for (const [key, field] of Object.entries(schema)) {
    if (key in overrides && (overrides as Record<string, unknown>)[key] !== undefined) {
      out[key] = (overrides as Record<string, unknown>)[key];
      continue;
    }
    const names = [field.name, ...(field.aliases ?? [])];
    const setName = names.find((n) => env[n] !== undefined && env[n] !== "");
    const raw = setName === undefined ? undefined : env[setName];
    if (raw === undefined) {
      if (field.default === undefined) {
        problems.push({ name: field.name, value: undefined, expected: field.expected, reason: "required" });
      } else {
        out[key] = typeof field.default === "function" ? (field.default as () => unknown)() : field.default;
      }
      continue;
    }
    try {
      out[key] = field.parse(raw, env);
    } catch (err) {
      problems.push({
        name: setName ?? field.name,
        value: field.secret ? "<redacted>" : raw,
        expected: field.expected,
        reason: err instanceof Error && err.message ? err.message : undefined,
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as ConfigOf<S>;
}

type Opts<T> = { default?: T | (() => T); aliases?: readonly string[] };

export function str(name: string, opts: Opts<string> & { expected?: string } = {}): Field<string> {
  return { name, expected: opts.expected ?? "a non-empty string", parse: (raw) => raw, ...opts };
}

/** An optional string: unset stays `undefined`. */
export function optionalStr(name: string, expected = "a string"): Field<string | undefined> {
  return { name, expected, parse: (raw) => raw, default: () => undefined };
}

export function int(name: string, opts: Opts<number> & { min?: number; max?: number } = {}): Field<number> {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  const expected =
    opts.min !== undefined && opts.max !== undefined
      ? `an integer from ${min} to ${max}`
      : opts.min !== undefined
        ? `an integer >= ${min}`
        : "an integer";
  return {
    name,
    expected,
    default: opts.default,
    aliases: opts.aliases,
    parse: (raw) => {
      if (!/^[+-]?\d+$/.test(raw.trim())) throw new Error("not an integer");
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error("out of range");
      return n;
    },
  };
}

export function bool(name: string, opts: Opts<boolean> = {}): Field<boolean> {
  return {
    name,
    expected: "true or false",
    default: opts.default,
    aliases: opts.aliases,
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      throw new Error("not a boolean");
    },
  };
}

export function oneOf<const T extends string>(
  name: string,
  values: readonly T[],
  opts: Opts<T> = {},
): Field<T> {
  return {
    name,
    expected: `one of ${values.join(", ")}`,
    default: opts.default,
    aliases: opts.aliases,
    parse: (raw) => {
      const v = raw.trim().toLowerCase() as T;
      if (!values.includes(v)) throw new Error("unknown value");
      return v;
    },
  };
}

/** An absolute http(s) URL; unset stays `undefined` unless a default is given. */
export function url(name: string, opts: Opts<URL | undefined> = {}): Field<URL | undefined> {
  return {
    name,
    expected: "an http:// or https:// URL",
    default: opts.default ?? (() => undefined),
    aliases: opts.aliases,
    parse: (raw) => {
      let u: URL;
      try {
        u = new URL(raw.trim());
      } catch {
        throw new Error("not a URL");
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("scheme must be http or https");
      return u;
    },
  };
}

/** A comma-separated list; empty items are dropped. */
export function list(name: string, opts: Opts<readonly string[]> = {}): Field<readonly string[]> {
  return {
    name,
    expected: "a comma-separated list",
    default: opts.default,
    aliases: opts.aliases,
    parse: (raw) =>
      Object.freeze(
        raw
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      ),
  };
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `k=v,k=v` label pairs with Prometheus/Loki label names. Values may contain `=`. */
export function labels(
  name: string,
  opts: Opts<Readonly<Record<string, string>>> = {},
): Field<Readonly<Record<string, string>>> {
  return {
    name,
    expected: "comma-separated name=value pairs with names matching [a-zA-Z_][a-zA-Z0-9_]*",
    default: opts.default,
    aliases: opts.aliases,
    parse: (raw) => {
      const out: Record<string, string> = {};
      for (const part of raw.split(",")) {
        const item = part.trim();
        if (item === "") continue;
        const eq = item.indexOf("=");
        if (eq <= 0) throw new Error(`"${item}" is not name=value`);
        const key = item.slice(0, eq).trim();
        if (!LABEL_NAME.test(key)) throw new Error(`"${key}" is not a valid label name`);
        out[key] = item.slice(eq + 1).trim();
      }
      return Object.freeze(out);
    },
  };
}

/**
 * A secret read from the file a variable names (`LOKI_PASSWORD_FILE=/run/secrets/pw`). The value
 * is the file's content with one trailing newline removed; it is never printed in errors.
 */
export function secretFile(name: string): Field<string | undefined> {
  return {
    name,
    expected: "the path of a readable file",
    secret: false, // the path is not secret; the content is never shown
    default: () => undefined,
    parse: (raw) => {
      let content: string;
      try {
        content = readRegularFileSync(raw.trim());
      } catch (err) {
        throw new Error(`cannot read: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
      }
      return content.replace(/\r?\n$/, "");
    },
  };
}
