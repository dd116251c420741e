// Configuration fields for files the shipper reads (CA bundles, credentials), shared by the core
// settings (config.ts) and the destination modules (src/sinks/<name>/).
import { type Field, secretFile } from "@sidecar/shared";
import { FileSecret } from "./secret-file.js";

/** A readable file whose content is used later (a CA bundle): the path is kept, readability checked. */
export function caFile(name: string): Field<string | undefined> {
  const inner = secretFile(name);
  return {
    name,
    expected: "the path of a readable PEM file",
    default: () => undefined,
    parse: (raw, env) => {
      const pem = inner.parse(raw, env);
      if (!pem?.includes("-----BEGIN")) throw new Error("no PEM certificate in the file");
      return pem;
    },
  };
}

/**
 * A credential file: checked readable now (a bad path is a config error, exit 2), kept by path so
 * the destination's client follows it when Kubernetes rotates it. The content is never printed.
 */
export function credentialFile(name: string): Field<FileSecret | undefined> {
  return {
    name,
    expected: "the path of a readable file",
    default: () => undefined,
    parse: (raw) => new FileSecret(name, raw.trim()),
  };
}
