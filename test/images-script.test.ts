// `pnpm images` (scripts/images.mjs) as users run it: its --dry-run prints the three target builds
// and the loads into kind / k3d / minikube or the pushes to a named registry, and the images: it
// would set; bad options stop it with exit 2 and one message. Its kustomization edit, applied to a
// temporary copy of k8s/ (never the repository's), makes every combination render with the new
// image names. Then real runs: the three images built and pushed to a real registry on loopback
// (Debian's docker-registry), the edited copy naming exactly what was pushed, and pulled back; and
// a refused push that leaves the kustomization as it was.
// No kind, k3d or minikube here: loading into a cluster is tested as a dry run only (README:
// "Images a cluster can pull"). Needs a Docker daemon and docker-registry; fails, never skips, without.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
// @ts-expect-error -- a plain ES module script without type declarations
import { setImages } from "../scripts/images.mjs";
import { APPS } from "./support/config-names.js";
import { docker } from "./support/docker.js";
import { freePorts } from "./support/free-port.js";
import { type K8sObject, kustomize } from "./support/kustomize.js";

const ROOT = resolve(import.meta.dirname, "..");
const SCRIPT = join(ROOT, "scripts/images.mjs");
const IMAGES_FILE = "components/images/kustomization.yaml";
const REVISION = spawnSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim();
const BUILD_TIMEOUT_MS = 8 * 60_000;

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are walked dynamically
type Any = any;

function images(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: "utf8", env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The printed command lines of a dry run (comments and the images: block left out). */
function commands(stdout: string): string[] {
  const lines = stdout.split("\n");
  return lines
    .slice(
      0,
      lines.findIndex((l) => l.startsWith("# then set images:")),
    )
    .filter((l) => !l.startsWith("#"));
}

/** Every container image of the sample-app pod and the demo Loki, by container name. */
function podImages(objects: K8sObject[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of objects.filter((o) => o.kind === "Deployment") as Any[]) {
    const spec = d.spec.template.spec;
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) out[c.name] = c.image;
  }
  return out;
}

let dir: string;
let k8s: string;
let imagesFile: string;
let original: string;
const repoImagesFile = join(ROOT, "k8s", IMAGES_FILE);
const repoOriginal = readFileSync(repoImagesFile, "utf8");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "images-script-"));
  k8s = join(dir, "k8s");
  cpSync(join(ROOT, "k8s"), k8s, { recursive: true });
  imagesFile = join(k8s, IMAGES_FILE);
  original = readFileSync(imagesFile, "utf8");
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  // The repository's own kustomization is never touched by these tests.
  expect(readFileSync(repoImagesFile, "utf8")).toBe(repoOriginal);
});

describe("pnpm images --dry-run", () => {
  it("prints the three target builds, the pushes to the named registry and the images: it would set", () => {
    const r = images([
      "--dry-run",
      "--registry",
      "registry.example.com:5000/team",
      "--tag",
      "1.2",
      "--network",
      "host",
      "--kustomization",
      imagesFile,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(commands(r.stdout)).toEqual([
      ...APPS.map(
        (app) =>
          `docker build --target ${app} -t sidecar-pod/${app}:1.2 -t registry.example.com:5000/team/sidecar-pod/${app}:1.2 --build-arg VERSION=1.2 --build-arg REVISION=${REVISION} --network host .`,
      ),
      ...APPS.map((app) => `docker push registry.example.com:5000/team/sidecar-pod/${app}:1.2`),
    ]);
    const block = parseYaml(r.stdout.slice(r.stdout.indexOf("\nimages:") + 1));
    expect(block.images).toEqual(
      APPS.map((app) => ({
        name: `sidecar-pod/${app}`,
        newName: `registry.example.com:5000/team/sidecar-pod/${app}`,
        newTag: "1.2",
      })),
    );
    // A dry run writes nothing.
    expect(readFileSync(imagesFile, "utf8")).toBe(original);
  });

  it.each([
    ["kind", ["--cluster-name", "dev"], ["kind load docker-image --name dev IMAGES"]],
    ["kind", [], ["kind load docker-image --name kind IMAGES"]],
    ["k3d", ["--cluster-name", "dev"], ["k3d image import --cluster dev IMAGES"]],
    ["k3d", [], ["k3d image import --cluster k3s-default IMAGES"]],
    [
      "minikube",
      ["--cluster-name", "dev"],
      APPS.map((app) => `minikube image load --profile dev sidecar-pod/${app}:t1`),
    ],
  ])("--cluster %s %j: builds with local names and loads them into the cluster", (cluster, extra, loads) => {
    const r = images([
      "--dry-run",
      "--cluster",
      cluster,
      ...extra,
      "--tag",
      "t1",
      "--kustomization",
      imagesFile,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const all = APPS.map((app) => `sidecar-pod/${app}:t1`).join(" ");
    expect(commands(r.stdout)).toEqual([
      ...APPS.map(
        (app) =>
          `docker build --target ${app} -t sidecar-pod/${app}:t1 --build-arg VERSION=t1 --build-arg REVISION=${REVISION} .`,
      ),
      ...loads.map((l) => l.replace("IMAGES", all)),
    ]);
    expect(parseYaml(r.stdout.slice(r.stdout.indexOf("\nimages:") + 1)).images).toEqual(
      APPS.map((app) => ({ name: `sidecar-pod/${app}`, newTag: "t1" })),
    );
    expect(readFileSync(imagesFile, "utf8")).toBe(original);
  });

  it("stops with exit 2 and one message naming the option when no cluster tool is found or a value is bad", () => {
    // PATH with node alone: no kind, k3d or minikube to find.
    const none = images(["--dry-run", "--tag", "t1"], { PATH: dirname(process.execPath) });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no local cluster tool found on PATH \(looked for kind, k3d, minikube\)/);
    const bad: [string[], RegExp][] = [
      [["--cluster", "docker-desktop"], /--cluster "docker-desktop" is not supported/],
      [["--registry", "HTTPS://x"], /--registry "HTTPS:\/\/x" is not a registry prefix/],
      [["--registry", "r.example.com", "--cluster", "kind"], /exclude each other/],
      [["--cluster", "kind", "--tag", "latest"], /--tag "latest" is not usable/],
      [["--registry", "r.example.com", "--cluster-name", "x"], /--cluster-name is for --cluster/],
      [["--cluster", "kind", "--kustomization", join(dir, "missing.yaml")], /cannot read the kustomization/],
      [["--regsitry", "r.example.com"], /regsitry/],
    ];
    for (const [args, message] of bad) {
      const r = images(["--dry-run", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(r.stdout, args.join(" ")).toBe("");
    }
  });
});

describe("the kustomization edit (on a copy of k8s/)", () => {
  const combos = [".", "overlays/app-only", "overlays/with-log-shipper", "overlays/with-metrics-exporter"];

  it("makes k8s/ and every overlay render the pushed names and tag, and nothing else", () => {
    const before = Object.fromEntries(combos.map((c) => [c, kustomize(join(k8s, c))]));
    writeFileSync(imagesFile, setImages(original, { registry: "registry.example.com/team", tag: "1.2" }));
    for (const c of combos) {
      const out = kustomize(join(k8s, c));
      const got = podImages(out);
      for (const [name, image] of Object.entries(podImages(before[c] as K8sObject[]))) {
        expect(got[name], `${c}: ${name}`).toBe(
          name === "loki" ? image : `registry.example.com/team/sidecar-pod/${name}:1.2`,
        );
      }
      // Only the images changed.
      const strip = (objs: K8sObject[]) => JSON.stringify(objs).replace(/"image":"[^"]*"/g, "");
      expect(strip(out), c).toBe(strip(before[c] as K8sObject[]));
    }
    // The file keeps its comments; the edit is idempotent.
    const edited = readFileSync(imagesFile, "utf8");
    expect(edited.split("\n").filter((l) => l.startsWith("#"))).toEqual(
      original.split("\n").filter((l) => l.startsWith("#")),
    );
    expect(setImages(edited, { registry: "registry.example.com/team", tag: "1.2" })).toBe(edited);
  });

  it("goes back to the local names for a cluster load, and adds entries a kustomization lacks", () => {
    writeFileSync(imagesFile, setImages(original, { registry: "registry.example.com/team", tag: "1.2" }));
    writeFileSync(imagesFile, setImages(readFileSync(imagesFile, "utf8"), { tag: "t2" }));
    expect(parseYaml(readFileSync(imagesFile, "utf8")).images).toEqual(
      APPS.map((app) => ({ name: `sidecar-pod/${app}`, newTag: "t2" })),
    );
    const out = podImages(kustomize(k8s));
    for (const app of APPS) expect(out[app]).toBe(`sidecar-pod/${app}:t2`);
    // A kustomization without images: (an overlay of your own) gets the three entries, other keys kept.
    const own = setImages("resources: [../k8s]\nimages:\n  - name: other/app\n    newTag: v1\n", {
      tag: "t3",
    });
    expect(parseYaml(own)).toEqual({
      resources: ["../k8s"],
      images: [
        { name: "other/app", newTag: "v1" },
        ...APPS.map((app) => ({ name: `sidecar-pod/${app}`, newTag: "t3" })),
      ],
    });
    expect(parseYaml(setImages("resources: [../k8s]\n", { tag: "t3" })).images).toHaveLength(3);
  });
});

describe("pnpm images, for real (Docker and a local registry)", () => {
  const tag = `images-test-${process.pid}`;
  let registryDir = "";
  let registryProc: ChildProcess | undefined;
  let registry = "";
  let refused = "";

  /** The registry's HTTP API (distribution v2), JSON. */
  async function api(path: string): Promise<Any> {
    const res = await fetch(`http://${registry}/v2/${path}`);
    if (!res.ok) throw new Error(`GET /v2/${path}: ${res.status}`);
    return res.json();
  }

  beforeAll(async () => {
    const info = await docker(["info", "--format", "{{.ServerVersion}}"]).catch((e: Error) => ({
      code: 1,
      stdout: "",
      stderr: e.message,
    }));
    if (info.code !== 0)
      throw new Error(`dockerd is not running: run scripts/ci/dockerd.sh start (${info.stderr.trim()})`);
    // A real registry (Debian's docker-registry, the distribution project's) on loopback, which
    // Docker pushes to without TLS; and a loopback port nothing listens on, for a refused push.
    const [port, closed] = await freePorts(2);
    registry = `127.0.0.1:${port}`;
    refused = `127.0.0.1:${closed}`;
    registryDir = mkdtempSync(join(tmpdir(), "images-registry-"));
    const config = join(registryDir, "config.yml");
    writeFileSync(
      config,
      `version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: ${join(registryDir, "data")}}}\nhttp: {addr: "${registry}"}\n`,
    );
    registryProc = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    registryProc.stderr?.on("data", (b: Buffer) => {
      stderr += b.toString("utf8");
    });
    const spawned = new Promise<void>((ok, fail) => {
      registryProc?.once("error", (e) =>
        fail(
          (e as NodeJS.ErrnoException).code === "ENOENT"
            ? new Error("docker-registry is not installed (apt-get install docker-registry)")
            : e,
        ),
      );
      registryProc?.once("spawn", ok);
    });
    await spawned;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const up = await fetch(`http://${registry}/v2/`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline || registryProc.exitCode !== null)
        throw new Error(`the local registry did not answer: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 60_000);

  afterAll(async () => {
    for (const app of APPS) {
      await docker([
        "rmi",
        "--force",
        `sidecar-pod/${app}:${tag}`,
        `${registry}/sidecar-pod/${app}:${tag}`,
        `${refused}/sidecar-pod/${app}:${tag}`,
      ]);
    }
    if (registryProc && registryProc.exitCode === null) {
      const exited = new Promise((r) => registryProc?.once("exit", r));
      registryProc.kill("SIGTERM");
      await exited;
    }
    if (registryDir) rmSync(registryDir, { recursive: true, force: true });
  }, 60_000);

  /** The script, run as a user would (synchronous: nothing in this process must answer meanwhile). */
  function realRun(to: string) {
    const child = spawnSync(
      process.execPath,
      [SCRIPT, "--registry", to, "--tag", tag, "--network", "host", "--kustomization", imagesFile],
      { cwd: ROOT, encoding: "utf8", timeout: BUILD_TIMEOUT_MS },
    );
    return { code: child.status, out: `${child.stdout}${child.stderr}` };
  }

  it(
    "builds the three targets, pushes them, and sets the names the cluster will pull",
    async () => {
      writeFileSync(imagesFile, original);
      const r = realRun(registry);
      expect(r.code, r.out.slice(-3000)).toBe(0);
      // In the registry, under the names the kustomization now gives the pod.
      const catalog = await api("_catalog");
      for (const app of APPS) {
        expect(catalog.repositories).toContain(`sidecar-pod/${app}`);
        expect((await api(`sidecar-pod/${app}/tags/list`)).tags).toEqual([tag]);
      }
      const rendered = podImages(kustomize(k8s));
      for (const app of APPS) expect(rendered[app]).toBe(`${registry}/sidecar-pod/${app}:${tag}`);
      // What a node would pull is the image that was built: drop the local copies, pull, inspect.
      for (const app of APPS) {
        const name = `${registry}/sidecar-pod/${app}:${tag}`;
        await docker(["rmi", "--force", name]);
        const pull = await docker(["pull", name]);
        expect(pull.code, `${pull.stdout}${pull.stderr}`).toBe(0);
        const labels = await docker([
          "image",
          "inspect",
          "--format",
          '{{index .Config.Labels "org.opencontainers.image.title"}} {{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Labels "org.opencontainers.image.revision"}}',
          name,
        ]);
        expect(labels.stdout.trim(), name).toBe(`sidecar-pod/${app} ${tag} ${REVISION}`);
      }
      writeFileSync(imagesFile, original);
    },
    BUILD_TIMEOUT_MS + 120_000,
  );

  it(
    "leaves the kustomization unchanged and exits 1 when the push is refused",
    async () => {
      writeFileSync(imagesFile, original);
      const r = realRun(refused);
      expect(r.code, r.out.slice(-3000)).toBe(1);
      expect(r.out).toContain(`+ docker push ${refused}/sidecar-pod/sample-app:${tag}`);
      expect(r.out).toMatch(/images: docker push .* exited 1; .* left unchanged/);
      expect(readFileSync(imagesFile, "utf8")).toBe(original);
    },
    BUILD_TIMEOUT_MS + 60_000,
  );
});
