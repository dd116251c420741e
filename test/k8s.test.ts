// The kustomize deployment as users apply it, in every combination of sidecars — k8s/ (the full
// pod) and k8s/overlays/app-only, with-log-shipper, with-metrics-exporter: each renders with
// `kubectl kustomize`, every object is valid against the Kubernetes API schema (offline,
// kubernetes-models), and the pod keeps the invariants the design depends on — native sidecars in
// order, mounts per the architecture table, Pod Security Standards "restricted", resources, probes,
// the shutdown and memory budgets, and only environment variables the programs' config schemas
// know. Then the layout itself (component order, namespaces, configuration components) and the
// optional components.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { APPS, type AppName, knownEnvNames } from "./support/config-names.js";
import {
  type Any,
  assertRestricted,
  configMap,
  containersOf,
  envOf,
  find,
  MOUNTS,
  PORTS,
  podOf,
  validateAll,
} from "./support/k8s-pod.js";
import { type K8sObject, kustomize, quantity } from "./support/kustomize.js";

const ROOT = resolve(import.meta.dirname, "..");
const K8S = join(ROOT, "k8s");
const Mi = 2 ** 20;
/** What a Node process (fastify + pino + prom-client) needs beside its tmpfs log files. */
const APP_PROCESS_ALLOWANCE = 96 * Mi;
/** Room on the shared volume for the metrics file(s) and the shipper's positions. */
const VOLUME_OVERHEAD_ALLOWANCE = 4 * Mi;
/** Slack between the containers' shutdown budgets and the pod's grace period. */
const GRACE_MARGIN_S = 5;

type Sidecar = "log-shipper" | "metrics-exporter";

/**
 * Every combination of the guide's switches (enable_sidecar_log_shipper, enable_sidecar_metrics),
 * each one `kubectl apply -k` away. Sidecars in their declaration order: the shipper first, so it
 * is stopped last.
 */
const COMBINATIONS: { dir: string; sidecars: Sidecar[] }[] = [
  { dir: ".", sidecars: ["log-shipper", "metrics-exporter"] },
  { dir: "overlays/app-only", sidecars: [] },
  { dir: "overlays/with-log-shipper", sidecars: ["log-shipper"] },
  { dir: "overlays/with-metrics-exporter", sidecars: ["metrics-exporter"] },
];

let known: Record<AppName, Set<string>>;

beforeAll(async () => {
  known = {} as Record<AppName, Set<string>>;
  for (const app of APPS) known[app] = await knownEnvNames(app, ROOT);
});

describe.each(COMBINATIONS)("kubectl kustomize k8s/$dir", ({ dir, sidecars }) => {
  let objects: K8sObject[] = [];
  const present: AppName[] = ["sample-app", ...sidecars];
  beforeAll(() => {
    objects = kustomize(join(K8S, dir));
  });

  it(`renders the app's namespace, Deployment, Service and ConfigMap, plus what each of [${sidecars}] brings`, () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, "")}`).sort();
    const expected = [
      "Namespace/sample-app",
      "Deployment/sample-app",
      "Service/sample-app",
      ...present.map((c) => `ConfigMap/${c}-config`),
    ];
    // The demo Loki comes with the shipper (components/external-loki removes it).
    if (sidecars.includes("log-shipper"))
      expected.push("ConfigMap/loki-config", "Deployment/loki", "Service/loki");
    expect(kinds).toEqual(expected.sort());
    for (const o of objects) {
      const at = `${o.kind}/${o.metadata.name}`;
      if (o.kind !== "Namespace") expect(o.metadata.namespace, at).toBe("sample-app");
      expect(o.metadata.labels?.["app.kubernetes.io/part-of"], at).toBe("sidecar-pod");
    }
    expect(
      find(objects, "Namespace", "sample-app").metadata.labels["pod-security.kubernetes.io/enforce"],
    ).toBe("restricted");
  });

  it("validates every object against the Kubernetes API schema (kubernetes-models)", () => {
    validateAll(objects);
    // The validator really rejects bad objects (so a pass above means something).
    const bad = structuredClone(find(objects, "Deployment", "sample-app"));
    bad.spec.template.spec.containers[0].ports[0].containerPort = "http";
    expect(() => validateAll([bad])).toThrow(/containerPort/);
  });

  it("runs the enabled sidecars as native sidecars, the shipper first, before the sample-app main container", () => {
    const spec = podOf(objects);
    expect((spec.initContainers ?? []).map((c: Any) => c.name)).toEqual(sidecars);
    expect(spec.containers.map((c: Any) => c.name)).toEqual(["sample-app"]);
    for (const c of spec.initContainers ?? []) expect(c.restartPolicy, c.name).toBe("Always");
    // The app starts only once the shipper's startup probe passed.
    if (sidecars.includes("log-shipper"))
      expect(spec.initContainers[0].startupProbe?.httpGet?.path).toBe("/healthz");
    // Every image pinned by components/images (none left to default to :latest).
    expect(containersOf(objects).map((c: Any) => c.image)).toEqual(
      [...sidecars, "sample-app"].map((c) => `sidecar-pod/${c}:0.1.0`),
    );
  });

  it("mounts one memory-backed emptyDir by subPath exactly as the architecture table says", () => {
    const spec = podOf(objects);
    const shared = spec.volumes.find((v: Any) => v.name === "shared");
    expect(shared.emptyDir).toEqual({ medium: "Memory", sizeLimit: "100Mi" });
    const all = containersOf(objects);
    const mounts = all.flatMap((c: Any) =>
      c.volumeMounts
        .filter((m: Any) => m.name === "shared")
        .map((m: Any) => [c.name, m.subPath, m.mountPath, m.readOnly === true ? "ro" : "rw"].join(" ")),
    );
    expect(mounts.sort()).toEqual(
      MOUNTS.filter(([c]) => present.includes(c))
        .map((row) => row.join(" "))
        .sort(),
    );
    // The programs look where they are mounted.
    const env = (name: string) =>
      envOf(
        objects,
        all.find((c: Any) => c.name === name),
      );
    expect(env("sample-app").get("LOG_DIR")).toBe("/app/logs");
    expect(env("sample-app").get("METRICS_DIR")).toBe("/app/metrics");
    if (sidecars.includes("metrics-exporter"))
      expect(env("metrics-exporter").get("METRICS_DIR")).toBe("/shared/metrics");
    if (sidecars.includes("log-shipper")) {
      expect(String(env("log-shipper").get("POSITIONS_FILE"))).toMatch(/^\/var\/lib\/log-shipper\//);
      for (const glob of String(env("log-shipper").get("LOG_PATHS")).split(","))
        expect(glob).toMatch(/^\/shared\/logs\//);
    }
  });

  it("gives each sidecar the design's resources and every container probes on its own port", () => {
    const spec = podOf(objects);
    for (const c of spec.initContainers ?? []) {
      expect(c.resources, c.name).toEqual({
        requests: { cpu: "50m", memory: "64Mi" },
        limits: { cpu: "200m", memory: "128Mi" },
      });
    }
    for (const c of containersOf(objects)) {
      const own = PORTS[c.name as AppName];
      const portByName = new Map(c.ports.map((p: Any) => [p.name, p.containerPort]));
      expect([...portByName.entries()], c.name).toEqual([[own.name, own.port]]);
      expect(c.livenessProbe?.httpGet?.path, c.name).toBe("/healthz");
      expect(c.readinessProbe?.httpGet?.path, c.name).toBe("/readyz");
      for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe].filter(Boolean)) {
        expect(portByName.get(probe.httpGet.port) ?? probe.httpGet.port, c.name).toBe(own.port);
      }
      expect(Number(envOf(objects, c).get(own.variable)), c.name).toBe(own.port);
      expect(c.resources?.limits?.memory, `${c.name} memory limit`).toBeDefined();
    }
  });

  it("exposes exactly the enabled containers' ports on the app's Service, by the pod's port names", () => {
    const svc = find(objects, "Service", "sample-app");
    expect(svc.spec.selector).toEqual({ "app.kubernetes.io/name": "sample-app" });
    expect(find(objects, "Deployment", "sample-app").spec.template.metadata.labels).toMatchObject(
      svc.spec.selector,
    );
    expect(svc.spec.ports.map((p: Any) => [p.name, p.port, p.targetPort])).toEqual(
      present.map((c) => [PORTS[c].name, PORTS[c].port, PORTS[c].name]),
    );
  });

  it("points the prometheus.io annotations at the metrics exporter, and only when it is there", () => {
    const svc = find(objects, "Service", "sample-app");
    const podAnnotations = find(objects, "Deployment", "sample-app").spec.template.metadata.annotations;
    expect(podAnnotations["kubectl.kubernetes.io/default-container"]).toBe("sample-app");
    const scrape = {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9100",
      "prometheus.io/path": "/metrics",
    };
    if (sidecars.includes("metrics-exporter")) {
      expect(svc.metadata.annotations).toMatchObject(scrape);
      expect(podAnnotations).toMatchObject(scrape);
    } else {
      // Nothing listens on 9100 without the exporter: a scrape there would only ever fail.
      for (const a of [svc.metadata.annotations ?? {}, podAnnotations])
        expect(Object.keys(a).filter((k) => k.startsWith("prometheus.io/"))).toEqual([]);
    }
  });

  it("meets Pod Security Standards restricted (plus read-only root with an emptyDir /tmp) for every pod", () => {
    for (const d of objects.filter((o) => o.kind === "Deployment")) {
      const spec = (d as Any).spec.template.spec;
      assertRestricted(d.metadata.name, spec);
    }
    expect(podOf(objects).securityContext).toMatchObject({
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
    });
  });

  it("passes pod metadata from the downward API, feeds each container its own rendered ConfigMap", () => {
    for (const c of containersOf(objects)) {
      const env = envOf(objects, c); // throws when an envFrom names a ConfigMap that was not rendered
      expect(env.get("POD_NAME"), c.name).toEqual({ from: "metadata.name" });
      expect(env.get("POD_NAMESPACE"), c.name).toEqual({ from: "metadata.namespace" });
      expect(
        c.envFrom.map((e: Any) => e.configMapRef.name.replace(/-[a-z0-9]{10}$/, "")),
        c.name,
      ).toEqual([`${c.name}-config`]);
    }
    if (sidecars.includes("log-shipper")) {
      const shipper = envOf(objects, podOf(objects).initContainers[0]);
      expect(shipper.get("NODE_NAME")).toEqual({ from: "spec.nodeName" });
      expect(shipper.get("CONTAINER_NAME")).toBe("sample-app");
    }
  });

  it("sets only environment variables the programs' config schemas know", () => {
    for (const c of containersOf(objects)) {
      const app = c.name as AppName;
      expect(APPS).toContain(app);
      const unknown = [...envOf(objects, c).keys()].filter((k) => !known[app].has(k));
      expect(unknown, `${app} sets variables its config does not read`).toEqual([]);
    }
    // The introspection itself finds the contract's names (so an empty set cannot pass the above).
    expect(known["sample-app"]).toContain("LOG_MAX_BYTES");
    expect(known["log-shipper"]).toContain("LOKI_ENDPOINT");
    expect(known["metrics-exporter"]).toContain("COLLECT_INTERVAL_MS");
  });

  it("gives the pod a termination grace period that covers the app's and the sidecars' shutdown budgets", () => {
    const spec = podOf(objects);
    const budgetMs = containersOf(objects).map((c: Any) => {
      const v = envOf(objects, c).get("SHUTDOWN_TIMEOUT_MS");
      if (typeof v !== "string") throw new Error(`${c.name}: SHUTDOWN_TIMEOUT_MS must be set explicitly`);
      return Number(v);
    });
    // Sidecars are stopped after the app, one after the other: the budgets add up.
    const needed = budgetMs.reduce((a, b) => a + b, 0) / 1000 + GRACE_MARGIN_S;
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(needed);
    if (sidecars.includes("log-shipper")) {
      const shipperMs = Number(envOf(objects, spec.initContainers[0]).get("SHUTDOWN_TIMEOUT_MS"));
      expect(shipperMs).toBeGreaterThanOrEqual(10_000);
    }
  });

  it("budgets memory for the tmpfs log files: in the app's limit and under the volume's sizeLimit", () => {
    const spec = podOf(objects);
    const app = spec.containers[0];
    const env = envOf(objects, app);
    const logBytes = Number(env.get("LOG_MAX_BYTES")) * (Number(env.get("LOG_MAX_FILES")) + 1);
    expect(logBytes).toBeGreaterThan(0);
    expect(quantity(app.resources.limits.memory)).toBeGreaterThanOrEqual(logBytes + APP_PROCESS_ALLOWANCE);
    const sizeLimit = quantity(spec.volumes.find((v: Any) => v.name === "shared").emptyDir.sizeLimit);
    expect(logBytes + VOLUME_OVERHEAD_ALLOWANCE).toBeLessThanOrEqual(sizeLimit);
    if (sidecars.includes("log-shipper")) {
      // The shipper's read-ahead bound fits its own limit with room for the process itself.
      const shipper = spec.initContainers[0];
      expect(Number(envOf(objects, shipper).get("MAX_BUFFER_BYTES")) * 2).toBeLessThanOrEqual(
        quantity(shipper.resources.limits.memory) - 32 * Mi,
      );
    }
  });
});

describe("kubectl kustomize k8s/ (the full pod): the demo Loki", () => {
  let objects: K8sObject[] = [];
  beforeAll(() => {
    objects = kustomize(K8S);
  });

  it("is reachable at the shipper's endpoint and runs a pinned Loki 3", () => {
    const loki = find(objects, "Service", "loki");
    const endpoint = new URL(configMap(objects, "log-shipper-config").LOKI_ENDPOINT as string);
    expect(endpoint.hostname).toBe("loki");
    expect(Number(endpoint.port)).toBe(loki.spec.ports[0].port);
    const lokiDeploy = find(objects, "Deployment", "loki");
    expect(lokiDeploy.spec.template.metadata.labels).toMatchObject(loki.spec.selector);
    expect(lokiDeploy.spec.template.spec.containers[0].image).toMatch(/^grafana\/loki:3\.\d+\.\d+$/);
  });

  it("ships the same Loki configuration as docker compose, and it selects filesystem storage", () => {
    const k8sLoki = readFileSync(join(K8S, "components/log-shipper/loki.yaml"), "utf8");
    const composeLoki = readFileSync(join(ROOT, "deploy/loki/loki.yaml"), "utf8");
    expect(parseYaml(k8sLoki)).toEqual(parseYaml(composeLoki));
    const cfg = parseYaml(k8sLoki);
    expect(cfg.common.storage.filesystem).toBeDefined();
    expect(cfg.schema_config.configs[0].object_store).toBe("filesystem");
  });
});

/**
 * A user's own overlay in a temporary directory: `resource` (a path under k8s/) with the given
 * components (paths under k8s/) and any extra kustomization text, rendered.
 */
function userOverlay(d: string, resource: string, components: string[], extra = ""): K8sObject[] {
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  const rel = (p: string) => relative(d, join(K8S, p));
  writeFileSync(
    join(d, "kustomization.yaml"),
    `resources: [${rel(resource)}]\ncomponents: [${components.map(rel).join(", ")}]\n${extra}`,
  );
  return kustomize(d);
}

describe("the layout: a base and one component per sidecar", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "k8s-layout-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** An overlay of k8s/base: the app alone plus the given components. */
  const overlay = (name: string, components: string[], extra = "") =>
    userOverlay(join(dir, name), "base", components, extra);

  it("has an overlay for each combination of sidecars, and k8s/ is the full pod", () => {
    const overlays = readdirSync(join(K8S, "overlays"), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `overlays/${d.name}`)
      .sort();
    expect(overlays).toEqual(
      COMBINATIONS.map((c) => c.dir)
        .filter((d) => d !== ".")
        .sort(),
    );
    const combos = COMBINATIONS.map((c) => c.sidecars.join("+")).sort();
    expect(combos).toEqual(["", "log-shipper", "log-shipper+metrics-exporter", "metrics-exporter"]);
  });

  it("puts the shipper first whichever order the components are listed in", () => {
    const out = overlay("reversed", [
      "components/metrics-exporter",
      "components/log-shipper",
      "components/images",
    ]);
    validateAll(out);
    expect(podOf(out).initContainers.map((c: Any) => c.name)).toEqual(["log-shipper", "metrics-exporter"]);
    // The same pod as k8s/ (only the Service's port order follows the components' order).
    const full = kustomize(K8S);
    expect(find(out, "Deployment", "sample-app")).toEqual(find(full, "Deployment", "sample-app"));
  });

  it("moves every object, the components' too, to the namespace an overlay sets, and references still resolve", () => {
    const out = overlay(
      "namespaced",
      ["components/log-shipper", "components/metrics-exporter", "components/images"],
      "namespace: observability\n",
    );
    validateAll(out);
    for (const o of out.filter((o) => o.kind !== "Namespace"))
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("observability");
    for (const c of containersOf(out)) expect(envOf(out, c).size, c.name).toBeGreaterThan(0);
  });

  it("takes a configuration component after a sidecar's: external-loki on the app + log shipper", () => {
    const out = overlay("shipper-external", [
      "components/log-shipper",
      "components/external-loki",
      "components/images",
    ]);
    validateAll(out);
    expect(out.filter((o) => o.metadata.name.startsWith("loki"))).toEqual([]);
    expect(configMap(out, "log-shipper-config").LOKI_ENDPOINT).toMatch(/^https?:\/\/loki-gateway\./);
    expect(podOf(out).initContainers.map((c: Any) => c.name)).toEqual(["log-shipper"]);
  });
});

describe("kustomize components", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "k8s-overlay-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** An overlay of k8s/ (the full pod) plus the given components. */
  const overlay = (name: string, components: string[], extra = "") =>
    userOverlay(join(dir, name), ".", components, extra);

  it("external-loki points the shipper at another Loki and removes the demo Loki", () => {
    const plain = overlay("external-default", ["components/external-loki"]);
    validateAll(plain);
    expect(configMap(plain, "log-shipper-config").LOKI_ENDPOINT).toMatch(/^https?:\/\/loki-gateway\./);
    const out = overlay(
      "external",
      ["components/external-loki"],
      [
        "patches:",
        "  - target: {kind: ConfigMap, name: log-shipper-config}",
        "    patch: |-",
        "      - op: replace",
        "        path: /data/LOKI_ENDPOINT",
        "        value: https://logs.example.com/loki/api/v1/push",
        "",
      ].join("\n"),
    );
    validateAll(out);
    expect(out.filter((o) => o.metadata.name.startsWith("loki"))).toEqual([]);
    expect(configMap(out, "log-shipper-config").LOKI_ENDPOINT).toBe(
      "https://logs.example.com/loki/api/v1/push",
    );
    // The pod still references the (re-hashed) ConfigMap that exists.
    const shipper = find(out, "Deployment", "sample-app").spec.template.spec.initContainers[0];
    const ref = shipper.envFrom[0].configMapRef.name;
    expect(out.some((o) => o.kind === "ConfigMap" && o.metadata.name === ref)).toBe(true);
  });

  it("podmonitor adds a PodMonitor that scrapes the exporter and the shipper of this pod", () => {
    const out = overlay("podmonitor", ["components/podmonitor"]);
    validateAll(out);
    const pm = find(out, "PodMonitor", "sample-app");
    expect(pm.metadata.namespace).toBe("sample-app");
    const podTemplate = find(out, "Deployment", "sample-app").spec.template;
    expect(podTemplate.metadata.labels).toMatchObject(pm.spec.selector.matchLabels);
    const portNames = [...podTemplate.spec.initContainers, ...podTemplate.spec.containers].flatMap((c: Any) =>
      c.ports.map((p: Any) => p.name),
    );
    expect(pm.spec.podMetricsEndpoints.map((e: Any) => e.port).sort()).toEqual([
      "metrics",
      "shipper-metrics",
    ]);
    for (const e of pm.spec.podMetricsEndpoints) expect(portNames).toContain(e.port);
  });
});
