// The checks every rendering of the pod must pass, shared by the k8s tests: the Kubernetes API schema
// (offline, kubernetes-models), Pod Security Standards "restricted", the ports and the mount table
// of the architecture, and how to read a container's effective environment from a rendering.
import * as models from "kubernetes-models";
import { expect } from "vitest";
import type { AppName } from "./config-names.js";
import type { K8sObject } from "./kustomize.js";

// biome-ignore lint/suspicious/noExplicitAny: the rendered objects are walked dynamically
export type Any = any;

/** The kubernetes-models class for an object's apiVersion/kind, if the package has one. */
function modelFor(obj: K8sObject): (new (data: unknown) => { validate(): void }) | undefined {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const groupKey =
    group === ""
      ? undefined
      : group?.replace(/\.([a-z])/g, (_m, c: string) => c.toUpperCase()).replace(/\./g, "");
  const ns: Any =
    groupKey === undefined
      ? (models as Any)[version as string]
      : (models as Any)[groupKey]?.[version as string];
  return ns?.[obj.kind];
}

/** A PodMonitor (prometheus-operator CRD, no model in kubernetes-models) checked by structure. */
function validatePodMonitor(obj: Any): void {
  expect(obj.apiVersion).toBe("monitoring.coreos.com/v1");
  expect(typeof obj.metadata?.name).toBe("string");
  expect(obj.spec?.selector?.matchLabels).toBeTypeOf("object");
  expect(Array.isArray(obj.spec?.podMetricsEndpoints) && obj.spec.podMetricsEndpoints.length > 0).toBe(true);
  for (const ep of obj.spec.podMetricsEndpoints) {
    expect(typeof ep.port).toBe("string");
    expect(ep.path ?? "/metrics").toMatch(/^\//);
    if (ep.interval !== undefined) expect(ep.interval).toMatch(/^[0-9]+(ms|s|m|h)$/);
  }
}

export function validateAll(objects: K8sObject[]): void {
  for (const obj of objects) {
    if (obj.kind === "PodMonitor") {
      validatePodMonitor(obj);
      continue;
    }
    const Model = modelFor(obj);
    if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
    try {
      new Model(obj).validate();
    } catch (err) {
      throw new Error(`${obj.kind}/${obj.metadata.name} is not valid: ${(err as Error).message}`);
    }
  }
}

export function find(objects: K8sObject[], kind: string, name: string): Any {
  const obj = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!obj) throw new Error(`${kind}/${name} not rendered`);
  return obj;
}

/** ConfigMaps are generated with a content hash suffix; find one by its generator name. */
export function configMap(objects: K8sObject[], base: string): Record<string, string> {
  const cm = objects.find(
    (o) => o.kind === "ConfigMap" && new RegExp(`^${base}-[a-z0-9]{10}$`).test(o.metadata.name),
  );
  if (!cm) throw new Error(`ConfigMap ${base}-<hash> not rendered`);
  return (cm as Any).data as Record<string, string>;
}

/** A container's effective environment: its ConfigMaps (envFrom) and env entries. */
export function envOf(objects: K8sObject[], container: Any): Map<string, string | { from: string }> {
  const env = new Map<string, string | { from: string }>();
  for (const src of container.envFrom ?? []) {
    const name: string = src.configMapRef.name;
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === name) as Any;
    if (!cm) throw new Error(`${container.name}: envFrom references missing ConfigMap ${name}`);
    for (const [k, v] of Object.entries(cm.data ?? {})) env.set(k, v as string);
  }
  for (const e of container.env ?? []) {
    env.set(e.name, e.value ?? { from: e.valueFrom?.fieldRef?.fieldPath ?? JSON.stringify(e.valueFrom) });
  }
  return env;
}

/** Pod Security Standards "restricted" (v1.30 rules) for one pod spec. */
export function assertRestricted(where: string, spec: Any): void {
  const pod = spec.securityContext ?? {};
  expect(spec.hostNetwork ?? false, `${where}: hostNetwork`).toBe(false);
  expect(spec.hostPID ?? false, `${where}: hostPID`).toBe(false);
  expect(spec.hostIPC ?? false, `${where}: hostIPC`).toBe(false);
  const allowedVolumes = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
  ];
  for (const v of spec.volumes ?? []) {
    const types = Object.keys(v).filter((k) => k !== "name");
    expect(
      types.every((t) => allowedVolumes.includes(t)),
      `${where}: volume ${v.name} type ${types}`,
    ).toBe(true);
  }
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = c.securityContext ?? {};
    const at = `${where}/${c.name}`;
    expect(sc.runAsNonRoot ?? pod.runAsNonRoot, `${at}: runAsNonRoot`).toBe(true);
    const uid = sc.runAsUser ?? pod.runAsUser;
    expect(Number.isInteger(uid) && uid > 0, `${at}: numeric non-root runAsUser`).toBe(true);
    expect(sc.allowPrivilegeEscalation, `${at}: allowPrivilegeEscalation`).toBe(false);
    expect(sc.privileged ?? false, `${at}: privileged`).toBe(false);
    expect(sc.capabilities?.drop, `${at}: capabilities.drop`).toContain("ALL");
    for (const cap of sc.capabilities?.add ?? [])
      expect(cap, `${at}: capabilities.add`).toBe("NET_BIND_SERVICE");
    expect((sc.seccompProfile ?? pod.seccompProfile)?.type, `${at}: seccompProfile`).toBe("RuntimeDefault");
    expect(sc.readOnlyRootFilesystem, `${at}: readOnlyRootFilesystem`).toBe(true);
    for (const p of c.ports ?? []) expect(p.hostPort, `${at}: hostPort`).toBeUndefined();
    const tmp = (c.volumeMounts ?? []).find((m: Any) => m.mountPath === "/tmp");
    expect(tmp, `${at}: a writable /tmp beside the read-only root`).toBeDefined();
    expect(tmp.readOnly ?? false).toBe(false);
    expect(
      (spec.volumes ?? []).find((v: Any) => v.name === tmp.name)?.emptyDir,
      `${at}: /tmp is an emptyDir`,
    ).toBeDefined();
  }
}

export const PORTS: Record<AppName, { name: string; port: number; variable: string }> = {
  "sample-app": { name: "http", port: 8080, variable: "PORT" },
  "log-shipper": { name: "shipper-metrics", port: 9080, variable: "HTTP_PORT" },
  "metrics-exporter": { name: "metrics", port: 9100, variable: "HTTP_PORT" },
};

/** The architecture's mount table: container, subPath, mountPath, access. */
export const MOUNTS: [AppName, string, string, "ro" | "rw"][] = [
  ["sample-app", "logs", "/app/logs", "rw"],
  ["sample-app", "metrics", "/app/metrics", "rw"],
  ["log-shipper", "logs", "/shared/logs", "ro"],
  ["log-shipper", "state", "/var/lib/log-shipper", "rw"],
  ["metrics-exporter", "metrics", "/shared/metrics", "ro"],
];

/** The sample-app pod's spec in a rendering. */
export const podOf = (objs: K8sObject[]): Any => find(objs, "Deployment", "sample-app").spec.template.spec;
export const containersOf = (objs: K8sObject[]): Any[] => {
  const spec = podOf(objs);
  return [...(spec.initContainers ?? []), ...spec.containers];
};
