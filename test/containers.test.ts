// The pod's containers for real: builds the three images from the root Dockerfile's per-app
// targets (checking each image's contract: user, command, environment, labels), runs them the
// way docker-compose.yml does (one tmpfs volume owned by uid 1000, read-only root, no capabilities,
// the compose file's environment), on the host network because the CI daemon has no bridge
// (dockerd --bridge=none), with the shipper pushing to a Loki-compatible receiver in this process.
// Asserts that the app's lines arrive with their labels, that the exporter serves the app's
// metrics, and that stopping the pod in pod order (app, exporter, shipper) ships every line the
// app wrote — across a Loki outage — with the shipper exiting 0. Then docker-compose itself brings
// the pod's services up from docker-compose.yml (host network, the same images) and stops them.
//
// Needs a Docker daemon (scripts/ci/dockerd.sh start) and, without registry access, the locally
// made node:24-bookworm-slim base image (scripts/ci/base-image.sh). Fails, never skips, without.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { type FakeLoki, startFakeLoki } from "../apps/log-shipper/test/support/fake-loki.js";
import { APPS, type AppName } from "./support/config-names.js";
import { docker, dockerOk } from "./support/docker.js";
import { freePorts } from "./support/free-port.js";

const ROOT = resolve(import.meta.dirname, "..");
const TAG = "test";
const RUN_ID = `sidecar-test-${process.pid}`;
const VOLUME = `${RUN_ID}-shared`;
const BUILD_TIMEOUT_MS = 8 * 60_000;
const BASE_IMAGE = "node:24-bookworm-slim";
/** What each target adds to the base image's environment (see the Dockerfile's comments). */
const IMAGE_ENV: Record<AppName, string[]> = {
  "sample-app": ["NODE_ENV=production"],
  "log-shipper": ["MALLOC_ARENA_MAX=2", "NODE_ENV=production", "NODE_OPTIONS=--max-semi-space-size=1"],
  "metrics-exporter": [
    "MALLOC_ARENA_MAX=2",
    "MALLOC_MMAP_THRESHOLD_=131072",
    "NODE_ENV=production",
    "NODE_OPTIONS=--max-semi-space-size=1",
  ],
};
const HEALTH_PORT: Record<AppName, { port: number; variable: string }> = {
  "sample-app": { port: 8080, variable: "PORT" },
  "log-shipper": { port: 9080, variable: "HTTP_PORT" },
  "metrics-exporter": { port: 9100, variable: "HTTP_PORT" },
};
/** Marks what this test builds, so earlier runs' superseded images can be pruned. */
const TEST_LABEL = "sidecar-pod.test=1";

// biome-ignore lint/suspicious/noExplicitAny: compose and docker inspect documents are walked dynamically
type Any = any;

const image = (app: AppName) => `sidecar-pod/${app}:${TAG}`;
const container = (app: AppName) => `${RUN_ID}-${app}`;

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function logsOf(app: AppName): Promise<string> {
  const r = await docker(["logs", "--tail", "60", container(app)]);
  return `--- docker logs ${container(app)} ---\n${r.stdout}${r.stderr}`;
}

/**
 * CI-only differences from docker-compose.yml: loopback ports of our choosing, our Loki, quicker
 * timers, small log files so the run rotates, pod metadata as the downward API would give it.
 */
function ciOverrides(
  lokiUrl: string,
  ports: Record<AppName, number>,
): Record<AppName, Record<string, string>> {
  return {
    "log-shipper": {
      LOKI_ENDPOINT: lokiUrl,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(ports["log-shipper"]),
      BATCH_WAIT_MS: "200",
      RETRY_MIN_MS: "100",
      RETRY_MAX_MS: "1000",
      NODE_NAME: "ci-node",
    },
    "metrics-exporter": {
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(ports["metrics-exporter"]),
      COLLECT_INTERVAL_MS: "1000",
    },
    "sample-app": {
      HOST: "127.0.0.1",
      PORT: String(ports["sample-app"]),
      TRAFFIC_RPS: "20",
      METRICS_INTERVAL_MS: "1000",
      LOG_MAX_BYTES: "32768",
      LOG_MAX_FILES: "50",
    },
  };
}

/** The app's log files (current and rotated) on a volume, read through a throwaway container. */
async function readLogFiles(volume: string): Promise<Record<string, string>> {
  const dump = await dockerOk([
    "run",
    "--rm",
    "--network",
    "none",
    "-v",
    `${volume}:/shared:ro`,
    "--entrypoint",
    "node",
    image("sample-app"),
    "-e",
    "const fs=require('fs');const d='/shared/logs';const out={};for(const f of fs.readdirSync(d))if(/^app\\.log(\\.\\d+)?$/.test(f))out[f]=fs.readFileSync(d+'/'+f,'utf8');console.log(JSON.stringify(out))",
  ]);
  return JSON.parse(dump);
}

let compose: Any;
const sizes: Record<string, number> = {};

beforeAll(async () => {
  const info = await docker(["info", "--format", "{{.ServerVersion}}"]).catch((e: Error) => ({
    code: 1,
    stdout: "",
    stderr: e.message,
  }));
  if (info.code !== 0) {
    throw new Error(
      `dockerd is not running: run scripts/ci/dockerd.sh start (docker info: ${info.stderr.trim()})`,
    );
  }
  // The compose file is the source of each container's settings; docker-compose renders it.
  const cfg = spawnSync("docker-compose", ["-f", resolve(ROOT, "docker-compose.yml"), "config"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (cfg.status !== 0) throw new Error(`docker-compose config failed: ${cfg.error?.message ?? cfg.stderr}`);
  compose = parseYaml(cfg.stdout);

  // Images of earlier runs that a rebuild left untagged.
  await docker(["image", "prune", "--force", "--filter", `label=${TEST_LABEL}`]);
  // Build each app's target of the root Dockerfile, one after the other (they share the builder stage).
  for (const app of APPS) {
    const started = Date.now();
    const r = await docker(
      [
        "build",
        // No stopped intermediate containers left behind when a step fails (legacy builder).
        "--force-rm",
        "--network",
        "host",
        "--target",
        app,
        "-t",
        image(app),
        "--label",
        TEST_LABEL,
        ".",
      ],
      { cwd: ROOT, timeoutMs: BUILD_TIMEOUT_MS },
    );
    if (r.code !== 0) {
      const base = await docker(["image", "inspect", BASE_IMAGE]);
      const hint =
        base.code === 0
          ? ""
          : " (node:24-bookworm-slim is missing: without a registry run scripts/ci/base-image.sh)";
      throw new Error(
        `docker build of ${app} failed${hint}:\n${r.stderr.slice(-3000)}${r.stdout.slice(-3000)}`,
      );
    }
    sizes[app] = Number((await dockerOk(["image", "inspect", "--format", "{{.Size}}", image(app)])).trim());
    console.log(
      `image ${image(app)}: ${(sizes[app] / 1e6).toFixed(1)} MB, built in ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
  }
}, BUILD_TIMEOUT_MS + 60_000);

describe("the pod's containers (docker)", () => {
  let loki: FakeLoki | undefined;
  const ports = { "sample-app": 0, "log-shipper": 0, "metrics-exporter": 0 } as Record<AppName, number>;

  beforeAll(async () => {
    loki = await startFakeLoki({ host: "127.0.0.1", port: 0 });
    const [app, shipper, exporter] = await freePorts(3);
    ports["sample-app"] = app as number;
    ports["log-shipper"] = shipper as number;
    ports["metrics-exporter"] = exporter as number;

    // The compose file's volume, with its options (tmpfs, size, uid/gid 1000).
    const vol = compose.volumes.shared;
    const volArgs = ["volume", "create", "--driver", vol.driver ?? "local", "--label", `${RUN_ID}=1`];
    for (const [k, v] of Object.entries<string>(vol.driver_opts ?? {})) volArgs.push("--opt", `${k}=${v}`);
    await dockerOk([...volArgs, VOLUME]);

    const overrides = ciOverrides(loki.pushUrl, ports);
    // Pod order: the sidecars first, each up before the next starts; the app last.
    for (const app of ["log-shipper", "metrics-exporter", "sample-app"] as const) {
      const svc = compose.services[app];
      const args = ["run", "-d", "--name", container(app), "--label", `${RUN_ID}=1`, "--network", "host"];
      args.push("--user", svc.user);
      if (svc.read_only) args.push("--read-only");
      for (const t of svc.tmpfs ?? []) args.push("--tmpfs", t);
      for (const c of svc.cap_drop ?? []) args.push("--cap-drop", c);
      for (const o of svc.security_opt ?? []) args.push("--security-opt", o);
      // The pod's resource limits: the sidecars must do their job inside 200m CPU / 128Mi.
      if (svc.cpus !== undefined) args.push("--cpus", String(svc.cpus));
      if (svc.mem_limit !== undefined) args.push("--memory", String(svc.mem_limit));
      if (svc.mem_reservation !== undefined) args.push("--memory-reservation", String(svc.mem_reservation));
      const grace = /^(\d+)s$/.exec(svc.stop_grace_period ?? "")?.[1];
      if (grace) args.push("--stop-timeout", grace);
      for (const v of svc.volumes ?? []) {
        const [source, target, mode] =
          typeof v === "string" ? v.split(":") : [v.source, v.target, v.read_only ? "ro" : "rw"];
        const nocopy = typeof v === "string" ? (mode ?? "").includes("nocopy") : v.volume?.nocopy === true;
        if (source !== "shared") continue;
        let spec = `type=volume,source=${VOLUME},target=${target}`;
        if ((mode ?? "").split(",").includes("ro")) spec += ",readonly";
        if (nocopy) spec += ",volume-nocopy";
        args.push("--mount", spec);
      }
      const env = { ...svc.environment, POD_NAME: `${RUN_ID}-pod`, POD_NAMESPACE: "ci", ...overrides[app] };
      for (const [k, v] of Object.entries(env)) args.push("-e", `${k}=${v}`);
      args.push(image(app));
      await dockerOk(args);
      const port = ports[app];
      await until(
        `${app} to answer on /healthz`,
        async () => {
          const state = (await dockerOk(["inspect", "--format", "{{.State.Status}}", container(app)])).trim();
          if (state === "exited") throw new Error(`${app} exited:\n${await logsOf(app)}`);
          const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
          return res.ok || undefined;
        },
        45_000,
      );
    }
  }, BUILD_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    for (const app of APPS) await docker(["rm", "-f", container(app)]);
    await docker(["volume", "rm", "-f", VOLUME]);
    await loki?.close();
  }, 60_000);

  it("builds images that run node [flags] dist/main.js as uid 1000 with production dependencies only", async () => {
    const baseEnv: string[] =
      JSON.parse(await dockerOk(["image", "inspect", "--format", "{{json .Config.Env}}", BASE_IMAGE])) ?? [];
    const descriptions = new Set<string>();
    for (const app of APPS) {
      const cfg = JSON.parse(
        await dockerOk(["image", "inspect", "--format", "{{json .Config}}", image(app)]),
      );
      expect(cfg.User, app).toBe("1000:1000");
      // The exporter caps V8's tiers on its command line; the shipper chooses its own from its
      // destinations (each app's README).
      expect(cfg.Cmd, app).toEqual(
        app === "metrics-exporter" ? ["node", "--max-opt=1", "dist/main.js"] : ["node", "dist/main.js"],
      );
      expect(cfg.WorkingDir, app).toBe("/app");
      // Exactly the environment each app's image set before the three Dockerfiles became one
      // target each, plus the exporter's and the shipper's memory settings; nothing of one target in
      // another.
      const added = (cfg.Env as string[]).filter((e) => !baseEnv.includes(e)).sort();
      expect(added, app).toEqual(IMAGE_ENV[app]);
      expect(Object.keys(cfg.ExposedPorts ?? {}), app).toEqual([`${HEALTH_PORT[app].port}/tcp`]);
      // bash's /dev/tcp, not a node process per check (~0.08 CPU s, ~60 MiB in the container's limits).
      expect(cfg.Healthcheck?.Test?.slice(0, 3), app).toEqual(["CMD", "bash", "-c"]);
      expect(cfg.Healthcheck?.Test?.[3], app).toContain(
        `/dev/tcp/127.0.0.1/\${${HEALTH_PORT[app].variable}:-${HEALTH_PORT[app].port}}`,
      );
      expect(cfg.Labels["org.opencontainers.image.title"], app).toBe(`sidecar-pod/${app}`);
      for (const l of ["description", "version", "revision", "licenses", "base.name"]) {
        expect(cfg.Labels[`org.opencontainers.image.${l}`], `${app}: ${l}`).toMatch(/\S/);
      }
      descriptions.add(cfg.Labels["org.opencontainers.image.description"]);
      // No build tooling or dev dependencies in the runtime image.
      const listing = await dockerOk([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "node",
        image(app),
        "-e",
        "const fs=require('fs');const d='node_modules/.pnpm';console.log(JSON.stringify({files:fs.readdirSync('.'),pnpm:fs.existsSync(d)?fs.readdirSync(d):[]}))",
      ]);
      const { files, pnpm } = JSON.parse(listing);
      // Beside the program: only the mount points the image prepares for uid 1000.
      const mountPoints = app === "sample-app" ? ["logs", "metrics"] : [];
      expect(files.sort(), app).toEqual(["dist", ...mountPoints, "node_modules", "package.json"].sort());
      for (const dev of ["vitest", "typescript", "esbuild", "@biomejs", "tsx"]) {
        expect(
          pnpm.filter((p: string) => p.startsWith(`${dev}@`) || p.startsWith(`${dev}+`)),
          `${app}: ${dev}`,
        ).toEqual([]);
      }
      expect(sizes[app], app).toBeGreaterThan(0);
    }
    // Each target carries its own description, not the last one a shared stage set.
    expect(descriptions.size).toBe(APPS.length);
    // The shipper carries no native code (its snappy compressor is TypeScript; the `snappy` package
    // is only a devDependency of its tests), so nothing in it depends on the image's platform.
    const native = await dockerOk([
      "run",
      "--rm",
      "--network",
      "none",
      "--entrypoint",
      "node",
      image("log-shipper"),
      "-e",
      "const fs=require('fs');console.log(JSON.stringify({addons:fs.readdirSync('node_modules',{recursive:true}).filter((f)=>String(f).endsWith('.node')),snappy:fs.existsSync('node_modules/snappy')}))",
    ]);
    expect(JSON.parse(native)).toEqual({ addons: [], snappy: false });
  });

  it("runs each container as uid 1000 on a read-only root, and the image health checks pass", async () => {
    for (const app of APPS) {
      const uid = await dockerOk([
        "exec",
        container(app),
        "node",
        "-e",
        "process.stdout.write(String(process.getuid()))",
      ]);
      expect(uid, app).toBe("1000");
      const ro = await docker([
        "exec",
        container(app),
        "node",
        "-e",
        "require('fs').writeFileSync('/app/x','')",
      ]);
      expect(ro.code, `${app} wrote to its root filesystem`).not.toBe(0);
      expect(ro.stderr, app).toMatch(/EROFS|EACCES/);
    }
    // The sidecars really run inside the pod's memory limit (cgroup v2 or v1).
    for (const app of ["log-shipper", "metrics-exporter"] as const) {
      const limit = await dockerOk([
        "exec",
        container(app),
        "node",
        "-e",
        "const fs=require('fs');for(const f of ['/sys/fs/cgroup/memory.max','/sys/fs/cgroup/memory/memory.limit_in_bytes'])if(fs.existsSync(f)){process.stdout.write(fs.readFileSync(f,'utf8').trim());break}",
      ]);
      expect(Number(limit), `${app} memory limit`).toBe(128 * 2 ** 20);
    }
    // The HEALTHCHECK (bash asking /healthz on the program's port) reports healthy.
    for (const app of APPS) {
      await until(
        `${app} to be healthy per its HEALTHCHECK`,
        async () =>
          (await dockerOk(["inspect", "--format", "{{.State.Health.Status}}", container(app)])).trim() ===
            "healthy" || undefined,
        60_000,
      );
    }
  }, 90_000);

  it("ships the app's lines to Loki with job, filename and level labels", async () => {
    if (!loki) throw new Error("no Loki receiver");
    await loki.waitForEntries(20, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await logsOf("log-shipper")}\n${await logsOf("sample-app")}`);
    });
    // The image's Node 24 with Loki as the only destination: TurboFan off (src/v8-flags.ts).
    const tiers = (await logsOf("log-shipper")).split("\n").find((l) => l.includes('"V8 compiler tiers"'));
    expect(tiers, await logsOf("log-shipper")).toContain('"compiler":"maglev"');
    const e = loki.entries.find((x) => x.labels.filename === "/shared/logs/app.log");
    expect(e, JSON.stringify(loki.entries[0]?.labels)).toBeDefined();
    expect(e?.labels).toMatchObject({
      job: "sample-app",
      container: "sample-app",
      pod: `${RUN_ID}-pod`,
      namespace: "ci",
    });
    expect(["trace", "debug", "info", "warn", "error", "fatal"]).toContain(e?.labels.level);
    // The line is the app's own JSON line, and its timestamp comes from the line's `time`.
    const line = JSON.parse(e?.line as string);
    expect(line.service).toBe("sample-app");
    expect(Number(e?.tsNs) / 1e6).toBeCloseTo(
      typeof line.time === "number" ? line.time : Date.parse(line.time),
      -1,
    );
  }, 90_000);

  it("serves the app's metrics through the metrics-exporter, and the shipper's own metrics", async () => {
    const exporterUrl = `http://127.0.0.1:${ports["metrics-exporter"]}/metrics`;
    const body = await until(
      "the exporter to serve the app's request counter",
      async () => {
        const text = await (await fetch(exporterUrl)).text();
        return /^http_requests_total\{[^}]*\} [0-9.e+]+$/m.test(text) ? text : undefined;
      },
      60_000,
    ).catch(async (e: Error) => {
      const text = await (await fetch(exporterUrl)).text().catch(() => "");
      throw new Error(`${e.message}\n${text.slice(0, 1500)}\n${await logsOf("metrics-exporter")}`);
    });
    expect(body).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
    expect(body).toMatch(/^sample_app_build_info\{/m);
    const shipper = await (await fetch(`http://127.0.0.1:${ports["log-shipper"]}/metrics`)).text();
    for (const m of [
      "log_shipper_sent_lines_total",
      "log_shipper_lag_bytes",
      "log_shipper_retries_total",
      "log_shipper_dropped_lines_total",
    ]) {
      expect(shipper, m).toMatch(new RegExp(`^# TYPE ${m} `, "m"));
    }
    expect(
      Number(/^log_shipper_sent_lines_total{destination="loki"} (\S+)$/m.exec(shipper)?.[1]),
    ).toBeGreaterThan(0);
  }, 90_000);

  it("stops in pod order and the shipper delivers every line the app wrote, across a Loki outage, then exits 0", async () => {
    if (!loki) throw new Error("no Loki receiver");
    // The app has rotated its file a few times (the exporter shows its rotation counter), so the
    // files to deliver include rotated ones.
    await until(
      "the app to rotate its log file",
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${ports["metrics-exporter"]}/metrics`)).text();
        const rotations = Number(
          /^sample_app_log_rotations_total(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 0,
        );
        return rotations >= 2 || undefined;
      },
      90_000,
    );
    // Loki fails for a while: a backlog builds up on the volume while the app keeps writing.
    loki.setFault({ kind: "status", status: 503 });
    await new Promise((r) => setTimeout(r, 3000));
    // The app first: its last lines are in the files when it exits.
    await dockerOk(["stop", container("sample-app")], { timeoutMs: 60_000 });
    await dockerOk(["stop", container("metrics-exporter")], { timeoutMs: 60_000 });
    // The app's files as it left them (current and rotated). Read now: the tmpfs volume lives
    // only while a container uses it, like the pod's emptyDir.
    const files = await readLogFiles(VOLUME);
    // Loki recovers a moment after the shipper got SIGTERM; it must still deliver the backlog.
    const stopping = dockerOk(["stop", container("log-shipper")], { timeoutMs: 90_000 });
    await new Promise((r) => setTimeout(r, 1500));
    loki.setFault(undefined);
    await stopping;

    const exit = async (app: AppName) =>
      Number((await dockerOk(["inspect", "--format", "{{.State.ExitCode}}", container(app)])).trim());
    expect(await exit("sample-app"), await logsOf("sample-app")).toBe(0);
    expect(await exit("metrics-exporter"), await logsOf("metrics-exporter")).toBe(0);
    expect(await exit("log-shipper"), await logsOf("log-shipper")).toBe(0);
    for (const app of APPS) {
      const oom = (await dockerOk(["inspect", "--format", "{{.State.OOMKilled}}", container(app)])).trim();
      expect(oom, `${app} was OOM-killed`).toBe("false");
    }

    // Every one of those lines arrived.
    expect(Object.keys(files).length, "rotated files too").toBeGreaterThan(1);
    const written = Object.values(files).flatMap((t) => t.split("\n").filter((l) => l !== ""));
    const arrived = new Set(loki.entries.map((e) => e.line));
    const missing = written.filter((l) => !arrived.has(l));
    expect(written.length).toBeGreaterThan(100);
    expect(
      missing.length,
      `of ${written.length} lines, missing e.g. ${missing[0]}\n${await logsOf("log-shipper")}`,
    ).toBe(0);
    expect(
      loki.requests.some((r) => r.status === 503),
      "the outage was seen",
    ).toBe(true);
  }, 180_000);
});

describe("docker-compose up of the pod's services (docker-compose.yml on the host network)", () => {
  // docker-compose itself starts the pod: depends_on with service_healthy, the file's health
  // checks, the tmpfs volume, stop grace periods. The only changes to the user's file: the CI
  // daemon has no bridge, so the three services use the host network (published ports dropped,
  // which compose v1 cannot do in an override), our images and Loki, and Loki/Prometheus/Grafana
  // (images from a registry) are left out.
  const project = `${RUN_ID.replace(/[^a-z0-9]/g, "")}compose`;
  let dir: string;
  let file: string;
  let loki: FakeLoki | undefined;
  const ports = { "sample-app": 0, "log-shipper": 0, "metrics-exporter": 0 } as Record<AppName, number>;

  const composeCmd = (args: string[], timeoutMs = 180_000) =>
    new Promise<{ code: number | null; out: string }>((resolveRun, reject) => {
      const child = spawn("docker-compose", ["-p", project, "-f", file, ...args], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString("utf8");
      });
      child.stderr.on("data", (b: Buffer) => {
        out += b.toString("utf8");
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolveRun({ code, out });
      });
    });
  const containerOf = async (app: AppName) => {
    const r = await composeCmd(["ps", "-q", app]);
    const id = r.out.trim().split("\n").pop();
    if (r.code !== 0 || !id) throw new Error(`no container for ${app}: ${r.out}`);
    return id;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "compose-up-"));
    file = join(dir, "docker-compose.yml");
    loki = await startFakeLoki({ host: "127.0.0.1", port: 0 });
    const [app, shipper, exporter] = await freePorts(3);
    ports["sample-app"] = app as number;
    ports["log-shipper"] = shipper as number;
    ports["metrics-exporter"] = exporter as number;
    const overrides = ciOverrides(loki.pushUrl, ports);
    const services: Record<string, Any> = {};
    for (const app of APPS) {
      const { build: _build, ports: _ports, ...svc } = structuredClone(compose.services[app]);
      services[app] = {
        ...svc,
        image: image(app),
        network_mode: "host",
        restart: "no",
        environment: {
          ...svc.environment,
          POD_NAME: `${project}-pod`,
          POD_NAMESPACE: "ci",
          ...overrides[app],
        },
      };
    }
    // YAML 1.1 output: docker-compose v1 (PyYAML) would read an unquoted `no` as false.
    writeFileSync(
      file,
      stringifyYaml({ services, volumes: { shared: compose.volumes.shared } }, { version: "1.1" }),
    );
  });

  afterAll(async () => {
    if (file) await composeCmd(["down", "--volumes", "--timeout", "5"]).catch(() => undefined);
    await loki?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("brings the app up only after both sidecars are healthy, ships its lines, and stops app-first with exit 0 everywhere", async () => {
    if (!loki) throw new Error("no Loki receiver");
    const up = await composeCmd(["up", "-d", "--no-build"]);
    expect(up.code, up.out).toBe(0);

    // Compose started the app only once the sidecars' health checks (bash → /healthz) passed.
    const started = async (app: AppName) => {
      const iso = (
        await dockerOk(["inspect", "--format", "{{.State.StartedAt}}", await containerOf(app)])
      ).trim();
      return Date.parse(iso);
    };
    const health = async (app: AppName) =>
      JSON.parse(await dockerOk(["inspect", "--format", "{{json .State.Health}}", await containerOf(app)]));
    // Docker keeps a container's last 5 health checks only. Either the first passing check is still
    // among them — then it ended before the app started — or the log has moved on past the app's
    // start (a slow `up` on a busy machine), and every check kept started after it.
    const appStarted = await started("sample-app");
    for (const sidecar of ["log-shipper", "metrics-exporter"] as const) {
      const h = await health(sidecar);
      const firstHealthy = h.Log.find((l: Any) => l.ExitCode === 0);
      const oldest = h.Log[0];
      if (firstHealthy !== undefined && Date.parse(firstHealthy.End) <= appStarted) continue;
      if (oldest === undefined) {
        // No check recorded at all: the container's health state was reset (it restarted?). Say
        // what Docker knows, so a failure here names its cause.
        const id = await containerOf(sidecar);
        const state = await dockerOk([
          "inspect",
          "--format",
          "restarts={{.RestartCount}} {{json .State}}",
          id,
        ]);
        const logs = await docker(["logs", "--tail", "40", id]);
        throw new Error(
          `${sidecar}: no health check recorded; ${state}\nlogs:\n${logs.stdout}${logs.stderr}`,
        );
      }
      expect(Date.parse(oldest.Start), `${sidecar}: a passing check before the app started`).toBeGreaterThan(
        appStarted,
      );
      expect(h.Log.length, `${sidecar}: the log has moved on (5 checks kept)`).toBe(5);
    }
    await until(
      "the app's health check to pass under compose",
      async () => (await health("sample-app")).Status === "healthy" || undefined,
      120_000,
    );

    await loki.waitForEntries(20, 60_000);
    expect(loki.entries[0]?.labels).toMatchObject({ job: "sample-app", filename: "/shared/logs/app.log" });

    // Pod order by hand (compose stops the app first too): the app, then read its files while
    // the sidecars still hold the tmpfs volume, then the rest.
    const stopApp = await composeCmd(["stop", "sample-app"]);
    expect(stopApp.code, stopApp.out).toBe(0);
    const files = await readLogFiles(`${project}_shared`);
    const stopAll = await composeCmd(["stop"]);
    expect(stopAll.code, stopAll.out).toBe(0);
    for (const app of APPS) {
      const code = (
        await dockerOk(["inspect", "--format", "{{.State.ExitCode}}", await containerOf(app)])
      ).trim();
      expect(code, `${app} exit code`).toBe("0");
    }
    const arrived = new Set(loki.entries.map((e) => e.line));
    const written = Object.values(files).flatMap((t) => t.split("\n").filter((l) => l !== ""));
    expect(written.length).toBeGreaterThan(0);
    expect(written.filter((l) => !arrived.has(l))).toEqual([]);
  }, 300_000);
});
