#!/usr/bin/env node
// `pnpm images`: build the pod's three images from the root Dockerfile's targets, put them where a
// cluster can pull them — loaded into a local kind / k3d / minikube cluster, or pushed to a
// registry you name — and point the kustomize layout at them, so `kubectl apply -k k8s/` (or any
// overlay) runs exactly what was built. The edit is the one `kustomize edit set image` makes, on
// k8s/components/images/kustomization.yaml, which k8s/ and every overlay include.
// `--dry-run` prints the commands and the edit without running or writing anything.
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isMap, isSeq, parse, parseDocument, stringify } from "yaml";

const ROOT = resolve(import.meta.dirname, "..");
export const APPS = ["sample-app", "log-shipper", "metrics-exporter"];
export const CLUSTERS = ["kind", "k3d", "minikube"];
/** The cluster name each tool uses when none is given. */
const DEFAULT_CLUSTER_NAME = { kind: "kind", k3d: "k3s-default", minikube: "minikube" };
const DEFAULT_KUSTOMIZATION = "k8s/components/images/kustomization.yaml";

const USAGE = `Usage: pnpm images [options]
Builds sidecar-pod/{sample-app,log-shipper,metrics-exporter} from the root Dockerfile, loads them
into a local cluster or pushes them to a registry, and sets the kustomize image names to match.

  --registry <prefix>     push to <prefix>/sidecar-pod/<app>:<tag> (e.g. ghcr.io/you, localhost:5000)
  --cluster <tool>        load into a local cluster: kind | k3d | minikube
                          (default without --registry: the first of them found on PATH)
  --cluster-name <name>   the kind/k3d cluster or minikube profile (default: the tool's default)
  --tag <tag>             image tag (default: the commit, with -dirty for uncommitted changes)
  --network <mode>        docker build --network (e.g. host, where builds need the host's network)
  --kustomization <file>  the kustomization whose images: to set (default ${DEFAULT_KUSTOMIZATION})
  --dry-run               print what would be run and the edit; run and write nothing
  --help                  this text`;

class UsageError extends Error {}

/** A shell-quoted command line, to print exactly what runs. */
export function shellLine(argv) {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

function onPath(cmd, env) {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

function git(args) {
  const r = spawnSync("git", args, { cwd: ROOT, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Options from argv and the environment, validated; throws UsageError naming the bad value. */
export function parseOptions(argv, env = process.env) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        registry: { type: "string" },
        cluster: { type: "string" },
        "cluster-name": { type: "string" },
        tag: { type: "string" },
        network: { type: "string" },
        kustomization: { type: "string" },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (values.help) return { help: true };
  const registry = values.registry?.replace(/\/+$/, "");
  if (
    registry !== undefined &&
    !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(\/[a-z0-9._-]+)*$/.test(registry)
  ) {
    throw new UsageError(
      `--registry ${JSON.stringify(values.registry)} is not a registry prefix (expected host[:port][/path], lowercase, e.g. ghcr.io/you)`,
    );
  }
  if (registry !== undefined && values.cluster !== undefined) {
    throw new UsageError(
      "--registry and --cluster exclude each other: push to a registry or load into a cluster",
    );
  }
  let cluster = values.cluster;
  if (cluster !== undefined && !CLUSTERS.includes(cluster)) {
    throw new UsageError(
      `--cluster ${JSON.stringify(cluster)} is not supported (expected one of ${CLUSTERS.join(", ")})`,
    );
  }
  if (registry === undefined && cluster === undefined) {
    cluster = CLUSTERS.find((c) => onPath(c, env));
    if (cluster === undefined) {
      throw new UsageError(
        `no local cluster tool found on PATH (looked for ${CLUSTERS.join(", ")}); install one, or push with --registry <prefix>`,
      );
    }
  }
  const tag = values.tag ?? defaultTag();
  // Docker's tag grammar. Not "latest": an unchanged tag leaves the pod spec unchanged, so
  // `kubectl apply` would not roll the pod onto the new build (nor would nodes re-pull it).
  if (!/^[\w][\w.-]{0,127}$/.test(tag) || tag === "latest") {
    throw new UsageError(
      `--tag ${JSON.stringify(tag)} is not usable (expected [A-Za-z0-9_][A-Za-z0-9_.-]*, up to 128 characters, not "latest")`,
    );
  }
  if (values["cluster-name"] !== undefined && cluster === undefined) {
    throw new UsageError("--cluster-name is for --cluster (kind, k3d, minikube), not --registry");
  }
  return {
    help: false,
    registry,
    cluster,
    clusterName:
      cluster === undefined ? undefined : (values["cluster-name"] ?? DEFAULT_CLUSTER_NAME[cluster]),
    tag,
    network: values.network,
    // pnpm runs scripts from the package root; INIT_CWD is where the user typed the command.
    kustomization: values.kustomization
      ? resolve(env.INIT_CWD ?? process.cwd(), values.kustomization)
      : join(ROOT, DEFAULT_KUSTOMIZATION),
    dryRun: values["dry-run"],
  };
}

/** The commit, marked -dirty when the worktree has changes the image would contain. */
function defaultTag() {
  const sha = git(["rev-parse", "--short=12", "HEAD"]);
  if (sha === undefined) return "dev";
  return git(["status", "--porcelain", "--untracked-files=no"]) === "" ? sha : `${sha}-dirty`;
}

/** The image each app is given: local name, and the name the cluster will pull. */
export function imageNames(app, { registry, tag }) {
  const local = `sidecar-pod/${app}:${tag}`;
  return { local, target: registry === undefined ? local : `${registry}/sidecar-pod/${app}:${tag}` };
}

/** Every command, in order: three builds, then the loads or pushes. */
export function plan(opts) {
  const revision = git(["rev-parse", "HEAD"]) ?? "unknown";
  const cmds = [];
  for (const app of APPS) {
    const { local, target } = imageNames(app, opts);
    const build = ["docker", "build", "--target", app, "-t", local];
    if (target !== local) build.push("-t", target);
    build.push("--build-arg", `VERSION=${opts.tag}`, "--build-arg", `REVISION=${revision}`);
    if (opts.network !== undefined) build.push("--network", opts.network);
    build.push(".");
    cmds.push(build);
  }
  const targets = APPS.map((app) => imageNames(app, opts).target);
  if (opts.registry !== undefined) {
    for (const t of targets) cmds.push(["docker", "push", t]);
  } else if (opts.cluster === "kind") {
    cmds.push(["kind", "load", "docker-image", "--name", opts.clusterName, ...targets]);
  } else if (opts.cluster === "k3d") {
    cmds.push(["k3d", "image", "import", "--cluster", opts.clusterName, ...targets]);
  } else {
    for (const t of targets) cmds.push(["minikube", "image", "load", "--profile", opts.clusterName, t]);
  }
  return cmds;
}

/**
 * A kustomization's text with its images: entries for the three apps set to the given registry and
 * tag — what `kustomize edit set image sidecar-pod/<app>=<newName>:<tag>` writes (newName only when
 * the name changes; a digest is dropped). Other entries, comments and the rest of the file stay.
 */
export function setImages(text, { registry, tag }) {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`not valid YAML: ${doc.errors[0].message}`);
  if (!isMap(doc.contents)) throw new Error("not a kustomization (expected a YAML mapping)");
  let images = doc.get("images", true);
  if (images === undefined || images === null || (isSeq(images) === false && images.value === null)) {
    images = doc.createNode([]);
    doc.set("images", images);
  }
  if (!isSeq(images)) throw new Error("images: is not a list");
  for (const app of APPS) {
    const name = `sidecar-pod/${app}`;
    let entry = images.items.find((i) => isMap(i) && i.get("name") === name);
    if (entry === undefined) {
      entry = doc.createNode({ name });
      images.items.push(entry);
    }
    if (registry === undefined) entry.delete("newName");
    else entry.set("newName", `${registry}/${name}`);
    // Quoted, so a numeric-looking tag (1.2) stays a string, as kustomize requires.
    const newTag = doc.createNode(tag);
    newTag.type = "QUOTE_DOUBLE";
    entry.set("newTag", newTag);
    entry.delete("digest");
    // kustomize's own key order: name, newName, newTag.
    const rank = (k) => ["name", "newName", "newTag"].indexOf(String(k.key?.value ?? k.key));
    entry.items.sort((a, b) => ((rank(a) + 4) % 4) - ((rank(b) + 4) % 4));
  }
  return doc.toString();
}

function run(argv) {
  console.log(`+ ${shellLine(argv)}`);
  const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, stdio: "inherit" });
  if (r.error) throw new Error(`${argv[0]} could not be started: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${shellLine(argv)} exited ${r.status ?? r.signal}`);
}

export function main(argv = process.argv.slice(2), env = process.env) {
  let opts;
  try {
    opts = parseOptions(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`images: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const where =
    opts.registry !== undefined ? `registry ${opts.registry}` : `${opts.cluster} cluster ${opts.clusterName}`;
  const rel = relative(process.cwd(), opts.kustomization);
  const file = rel === "" || rel.startsWith("..") ? opts.kustomization : rel;
  let before;
  try {
    before = readFileSync(opts.kustomization, "utf8");
  } catch (err) {
    console.error(`images: cannot read the kustomization ${opts.kustomization}: ${err.message}`);
    return 2;
  }
  const after = setImages(before, opts);
  const cmds = plan(opts);
  if (opts.dryRun) {
    console.log(`# dry run: would build tag ${opts.tag} for ${where} (run from ${ROOT})`);
    for (const c of cmds) console.log(shellLine(c));
    console.log(`# then set images: in ${file} to:`);
    process.stdout.write(stringify({ images: parse(after).images }));
    return 0;
  }
  try {
    for (const c of cmds) run(c);
  } catch (err) {
    console.error(`images: ${err.message}; ${file} left unchanged`);
    return 1;
  }
  if (after !== before) writeFileSync(opts.kustomization, after);
  console.log(
    `images: ${APPS.map((a) => imageNames(a, opts).target).join(", ")} in ${where}; set in ${file}`,
  );
  console.log("next: kubectl apply -k k8s/   (or k8s/overlays/<combination>)");
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  process.exitCode = main();
}
