// k8s/components/statsd as a user adds it: a copy of k8s/ with the component listed in its
// kustomization renders with `kubectl kustomize`; the exporter gets STATSD_ADDRESS from the node's
// IP (downward API, status.hostIP) and the sidecars keep their order (the log-shipper first, so
// that it stops last). Rendered on a temporary copy so that this test does not depend on how the
// rest of k8s/ is laid out into base and components.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as models from "kubernetes-models";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { knownEnvNames } from "./support/config-names.js";
import { kustomize } from "./support/kustomize.js";

const ROOT = resolve(import.meta.dirname, "..");
const copy = mkdtempSync(join(tmpdir(), "k8s-statsd-"));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noExplicitAny: the rendered objects are walked dynamically
type Any = any;

describe("k8s/components/statsd", () => {
  it("sets STATSD_ADDRESS from the node's IP on the exporter only, keeping the sidecars' order", async () => {
    const k8s = join(copy, "k8s");
    cpSync(join(ROOT, "k8s"), k8s, { recursive: true });
    const kustomization = parseYaml(readFileSync(join(k8s, "kustomization.yaml"), "utf8"));
    kustomization.components = [...(kustomization.components ?? []), "components/statsd"];
    writeFileSync(join(k8s, "kustomization.yaml"), stringify(kustomization));

    const objects = kustomize(k8s);
    const deployment: Any = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "sample-app");
    expect(deployment).toBeDefined();
    new models.apps.v1.Deployment(deployment).validate();
    const spec = deployment.spec.template.spec;
    expect(spec.initContainers.map((c: Any) => c.name)).toEqual(["log-shipper", "metrics-exporter"]);

    const exporter = spec.initContainers[1];
    const env: { name: string; value?: string; valueFrom?: Any }[] = exporter.env;
    const names = env.map((e) => e.name);
    expect(env.find((e) => e.name === "NODE_IP")?.valueFrom).toEqual({
      fieldRef: { fieldPath: "status.hostIP" },
    });
    // $(NODE_IP) is expanded by the kubelet only from variables defined earlier in the list.
    expect(env.find((e) => e.name === "STATSD_ADDRESS")?.value).toBe("$(NODE_IP):8125");
    expect(names.indexOf("NODE_IP")).toBeLessThan(names.indexOf("STATSD_ADDRESS"));
    // Every other variable is one the exporter reads (NODE_IP only feeds the substitution).
    const known = await knownEnvNames("metrics-exporter", ROOT);
    for (const n of names) if (n !== "NODE_IP") expect(known.has(n), n).toBe(true);
    // The shipper and the app are untouched.
    for (const c of [spec.initContainers[0], ...spec.containers]) {
      expect((c.env ?? []).map((e: Any) => e.name)).not.toContain("STATSD_ADDRESS");
    }
  });
});
