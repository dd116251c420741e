import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  bool,
  ConfigError,
  int,
  labels,
  list,
  oneOf,
  optionalStr,
  parseEnv,
  secretFile,
  str,
  url,
} from "../src/env.js";

const schema = {
  port: int("PORT", { default: 8080, min: 1, max: 65535 }),
  dir: str("LOG_DIR", { default: "/app/logs" }),
  verbose: bool("VERBOSE", { default: false }),
  encoding: oneOf("ENCODING", ["protobuf", "json"] as const, { default: "protobuf" }),
  endpoint: url("ENDPOINT"),
  paths: list("PATHS", { default: ["a", "b"] }),
  labels: labels("LABELS", { default: { job: "x" } }),
  tenant: optionalStr("TENANT"),
};

describe("parseEnv", () => {
  it("applies defaults and returns a frozen object", () => {
    const cfg = parseEnv(schema, {});
    expect(cfg).toEqual({
      port: 8080,
      dir: "/app/logs",
      verbose: false,
      encoding: "protobuf",
      endpoint: undefined,
      paths: ["a", "b"],
      labels: { job: "x" },
      tenant: undefined,
    });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it("parses set values", () => {
    const cfg = parseEnv(schema, {
      PORT: "9000",
      VERBOSE: "yes",
      ENCODING: "JSON",
      ENDPOINT: "http://loki:3100",
      PATHS: " x , ,y ",
      LABELS: "job=app, env=a=b",
      TENANT: "t1",
    });
    expect(cfg.port).toBe(9000);
    expect(cfg.verbose).toBe(true);
    expect(cfg.encoding).toBe("json");
    expect(cfg.endpoint?.href).toBe("http://loki:3100/");
    expect(cfg.paths).toEqual(["x", "y"]);
    expect(cfg.labels).toEqual({ job: "app", env: "a=b" });
    expect(cfg.tenant).toBe("t1");
  });

  it("treats an empty variable as unset", () => {
    expect(parseEnv(schema, { PORT: "" }).port).toBe(8080);
  });

  it("names every bad variable, its value and the expectation in one error", () => {
    let err: unknown;
    try {
      parseEnv(schema, { PORT: "80a", ENCODING: "xml", ENDPOINT: "ftp://x", LABELS: "9bad=1" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    expect(msg).toContain('PORT="80a" (expected an integer from 1 to 65535');
    expect(msg).toContain('ENCODING="xml" (expected one of protobuf, json');
    expect(msg).toContain('ENDPOINT="ftp://x"');
    expect(msg).toContain("LABELS=");
    expect((err as ConfigError).problems.map((p) => p.name)).toEqual([
      "PORT",
      "ENCODING",
      "ENDPOINT",
      "LABELS",
    ]);
  });

  it("rejects out-of-range integers", () => {
    expect(() => parseEnv(schema, { PORT: "70000" })).toThrow(/PORT="70000"/);
    expect(() => parseEnv(schema, { PORT: "0" })).toThrow(/PORT="0"/);
  });

  it("reports a required variable as unset", () => {
    expect(() => parseEnv({ need: str("NEEDED") }, {})).toThrow(
      /NEEDED=unset \(expected a non-empty string: required\)/,
    );
  });

  it("prefers overrides over env over defaults", () => {
    expect(parseEnv(schema, { PORT: "9000" }, { port: 7000 }).port).toBe(7000);
  });

  it("accepts aliases for renamed variables", () => {
    const s = { port: int("HTTP_PORT", { default: 1, aliases: ["PORT_OLD"] }) };
    expect(parseEnv(s, { PORT_OLD: "5" }).port).toBe(5);
  });

  it("reads secrets from files and never prints their content", () => {
    const dir = mkdtempSync(join(tmpdir(), "env-"));
    const file = join(dir, "pw");
    writeFileSync(file, "s3cret\n");
    const s = { pw: secretFile("PASSWORD_FILE") };
    expect(parseEnv(s, { PASSWORD_FILE: file }).pw).toBe("s3cret");
    expect(parseEnv(s, {}).pw).toBeUndefined();
    expect(() => parseEnv(s, { PASSWORD_FILE: join(dir, "missing") })).toThrow(/cannot read: ENOENT/);
  });

  it("masks the values of secret fields", () => {
    const s = {
      token: {
        ...str("TOKEN"),
        secret: true,
        parse: () => {
          throw new Error("too short");
        },
      },
    };
    const msg = (() => {
      try {
        parseEnv(s, { TOKEN: "abc" });
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(msg).toContain('TOKEN="<redacted>"');
    expect(msg).not.toContain("abc");
  });
});
