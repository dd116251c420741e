// The docker compose deployment as users run it: the file validates with the real
// `docker-compose config` (and `docker compose config` where the plugin exists), keeps the pod's
// shape (one tmpfs volume owned by uid 1000, the sidecars healthy before the app, stop grace
// longer than the shipper's shutdown budget, images pinned), and its Prometheus, Grafana and
// dashboard configuration is valid (promtool) and refers to metrics the programs really export.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { APPS, type AppName, knownEnvNames } from "./support/config-names.js";

const ROOT = resolve(import.meta.dirname, "..");
const COMPOSE = join(ROOT, "docker-compose.yml");

// biome-ignore lint/suspicious/noExplicitAny: compose documents are walked dynamically
type Any = any;

function run(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error(`${cmd} is not installed (apt-get install ${cmd === "promtool" ? "prometheus" : cmd})`);
  }
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function seconds(d: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(d));
  if (!m) throw new Error(`not a duration: ${d}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"];
}

/** docker-compose v1 prints volumes in short form ("src:target:mode"), v2 in long form. */
function mounts(service: Any): { source: string; target: string; read_only: boolean; nocopy: boolean }[] {
  return (service.volumes ?? []).map((v: Any) => {
    if (typeof v !== "string")
      return {
        source: v.source,
        target: v.target,
        read_only: v.read_only === true,
        nocopy: v.volume?.nocopy === true,
      };
    const [source, target, mode] = v.split(":");
    return {
      source: source as string,
      target: target as string,
      read_only: mode === "ro",
      nocopy: (mode ?? "").split(",").includes("nocopy"),
    };
  });
}

let config: Any;
let known: Record<AppName, Set<string>>;

beforeAll(async () => {
  config = parseYaml(run("docker-compose", ["-f", COMPOSE, "config"]));
  known = {} as Record<AppName, Set<string>>;
  for (const app of APPS) known[app] = await knownEnvNames(app, ROOT);
});

describe("docker-compose.yml", () => {
  it("validates with docker-compose config (and docker compose config when the plugin is installed)", () => {
    expect(Object.keys(config.services).sort()).toEqual(
      ["grafana", "log-shipper", "loki", "metrics-exporter", "prometheus", "sample-app"].sort(),
    );
    const plugin = spawnSync("docker", ["compose", "version"], { encoding: "utf8" });
    if (plugin.status === 0) {
      const v2 = parseYaml(run("docker", ["compose", "-f", COMPOSE, "config"]));
      expect(Object.keys(v2.services).sort()).toEqual(Object.keys(config.services).sort());
    }
  });

  it("builds the three apps from the root Dockerfile's per-app targets and pins every image by tag", () => {
    const stages = [
      ...readFileSync(join(ROOT, "Dockerfile"), "utf8").matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim),
    ].map((m) => m[1]);
    for (const app of APPS) {
      const s = config.services[app];
      expect(s.build.dockerfile, app).toBe("Dockerfile");
      expect(s.build.target, app).toBe(app);
      expect(stages, `the Dockerfile has a ${app} target`).toContain(app);
      expect(resolve(s.build.context), app).toBe(ROOT);
      expect(s.image, app).toBe(`sidecar-pod/${app}:0.1.0`);
    }
    for (const [name, s] of Object.entries<Any>(config.services)) {
      const tag = /:([^/:]+)$/.exec(s.image)?.[1];
      expect(tag, `${name} image ${s.image}`).toBeDefined();
      expect(tag, `${name} image ${s.image}`).not.toBe("latest");
    }
    expect(config.services.loki.image).toMatch(/^grafana\/loki:3\.\d+\.\d+$/);
  });

  it("shares one tmpfs volume owned by uid 1000 between the pod's containers, read-only for the exporter", () => {
    const v = config.volumes.shared;
    expect(v.driver_opts.type).toBe("tmpfs");
    expect(v.driver_opts.device).toBe("tmpfs");
    expect(v.driver_opts.o).toMatch(/(^|,)size=100m(,|$)/);
    expect(v.driver_opts.o).toMatch(/(^|,)uid=1000(,|$)/);
    expect(v.driver_opts.o).toMatch(/(^|,)gid=1000(,|$)/);
    const mount = (svc: string) => {
      const m = mounts(config.services[svc]).filter((x) => x.source === "shared");
      expect(m, svc).toHaveLength(1);
      const [only] = m;
      if (!only) throw new Error(`${svc} does not mount the shared volume`);
      return only;
    };
    expect(mount("sample-app").target).toBe("/shared");
    expect(mount("log-shipper").target).toBe("/shared");
    expect(mount("metrics-exporter").target).toBe("/shared");
    expect(mount("metrics-exporter").read_only).toBe(true);
    // Starts empty like the pod's emptyDir: without nocopy Docker copies an image's root-owned
    // /shared into the volume when a container starts, and the shipper's state dir became
    // unwritable on starts where the exporter's copy raced the shipper's mount (EACCES, exit 2).
    for (const app of APPS) expect(mount(app).nocopy, app).toBe(true);
    // The app writes where the sidecars read.
    const env = (svc: string) => config.services[svc].environment;
    expect(env("sample-app").LOG_DIR).toBe("/shared/logs");
    expect(env("sample-app").METRICS_DIR).toBe(env("metrics-exporter").METRICS_DIR);
    for (const g of env("log-shipper").LOG_PATHS.split(","))
      expect(g.startsWith(`${env("sample-app").LOG_DIR}/`)).toBe(true);
    expect(env("log-shipper").POSITIONS_FILE).toMatch(/^\/shared\/state\//);
    for (const app of APPS) {
      expect(config.services[app].user, app).toBe("1000:1000");
      expect(config.services[app].read_only, app).toBe(true);
    }
  });

  it("starts the app only once both sidecars are healthy, and every service has a health check", () => {
    expect(config.services["sample-app"].depends_on).toEqual({
      "log-shipper": { condition: "service_healthy" },
      "metrics-exporter": { condition: "service_healthy" },
    });
    for (const [name, s] of Object.entries<Any>(config.services)) {
      expect(s.healthcheck?.test, `${name} healthcheck`).toBeDefined();
      for (const dep of Object.values<Any>(s.depends_on ?? {})) expect(dep.condition).toBe("service_healthy");
    }
    // No curl in the images, and no node process per check (~0.08 CPU s and ~60 MiB inside the
    // container's limits): bash's /dev/tcp asks /healthz on the port the program listens on, the
    // variable left to the container's shell: `$$` in the file, so compose does not interpolate it
    // (and `config` prints it escaped, as it is here); the container runs `$HTTP_PORT`.
    const port: Record<string, string> = {
      "sample-app": "$$PORT",
      "log-shipper": "$$HTTP_PORT",
      "metrics-exporter": "$$HTTP_PORT",
    };
    for (const app of APPS) {
      const test = config.services[app].healthcheck.test;
      expect(test.slice(0, 3), app).toEqual(["CMD", "bash", "-c"]);
      expect(test[3], app).toContain(`/dev/tcp/127.0.0.1/${port[app]} `);
      expect(test[3], app).toContain('[ "$$code" = 200 ]');
    }
  });

  it("gives the shipper a stop grace period longer than its SHUTDOWN_TIMEOUT_MS (and the app its own)", () => {
    for (const app of APPS) {
      const s = config.services[app];
      const budget = Number(s.environment.SHUTDOWN_TIMEOUT_MS) / 1000;
      expect(budget, app).toBeGreaterThan(0);
      expect(seconds(s.stop_grace_period), app).toBeGreaterThan(budget);
    }
    expect(Number(config.services["log-shipper"].environment.SHUTDOWN_TIMEOUT_MS)).toBeGreaterThanOrEqual(
      10_000,
    );
  });

  it("limits the containers like the pod: 200m CPU / 128Mi per sidecar, the app's tmpfs logs in its memory", () => {
    for (const app of ["log-shipper", "metrics-exporter"]) {
      const s = config.services[app];
      expect(Number(s.cpus), app).toBe(0.2);
      expect(String(s.mem_limit).toLowerCase(), app).toBe("128m");
    }
    const app = config.services["sample-app"];
    const logs = Number(app.environment.LOG_MAX_BYTES) * (Number(app.environment.LOG_MAX_FILES) + 1);
    const limit = Number(/^(\d+)m$/i.exec(String(app.mem_limit))?.[1]) * 2 ** 20;
    expect(limit).toBeGreaterThanOrEqual(logs + 96 * 2 ** 20);
  });

  it("sets only environment variables the programs' config schemas know", () => {
    for (const app of APPS) {
      const unknown = Object.keys(config.services[app].environment).filter((k) => !known[app].has(k));
      expect(unknown, app).toEqual([]);
    }
  });
});

describe("Prometheus, Grafana and the dashboard", () => {
  const dashboard = JSON.parse(
    readFileSync(join(ROOT, "deploy/grafana/dashboards/sidecar-pod.json"), "utf8"),
  );
  const panels: Any[] = dashboard.panels.filter((p: Any) => p.type !== "row");
  const promExprs: string[] = panels
    .flatMap((p) => p.targets ?? [])
    .filter((t: Any) => t.datasource?.uid === "prometheus")
    .map((t: Any) => t.expr);
  const lokiExprs: string[] = panels
    .flatMap((p) => p.targets ?? [])
    .filter((t: Any) => t.datasource?.uid === "loki")
    .map((t: Any) => t.expr);

  it("has a Prometheus configuration promtool accepts, scraping the exporter and the shipper", () => {
    run("promtool", ["check", "config", join(ROOT, "deploy/prometheus/prometheus.yml")]);
    const prom = parseYaml(readFileSync(join(ROOT, "deploy/prometheus/prometheus.yml"), "utf8"));
    const targets = new Map<string, string[]>(
      prom.scrape_configs.map((s: Any) => [s.job_name, s.static_configs.flatMap((c: Any) => c.targets)]),
    );
    expect(targets.get("sample-app")).toEqual([
      `metrics-exporter:${config.services["metrics-exporter"].environment.HTTP_PORT}`,
    ]);
    expect(targets.get("log-shipper")).toEqual([
      `log-shipper:${config.services["log-shipper"].environment.HTTP_PORT}`,
    ]);
  });

  it("provisions Loki and Prometheus data sources with the uids the dashboard uses", () => {
    const ds = parseYaml(
      readFileSync(join(ROOT, "deploy/grafana/provisioning/datasources/datasources.yaml"), "utf8"),
    ).datasources;
    expect(ds.map((d: Any) => [d.type, d.uid, d.url])).toEqual([
      ["prometheus", "prometheus", "http://prometheus:9090"],
      ["loki", "loki", "http://loki:3100"],
    ]);
    const used = new Set(
      panels.flatMap((p) => [p.datasource?.uid, ...(p.targets ?? []).map((t: Any) => t.datasource?.uid)]),
    );
    expect([...used].sort()).toEqual(["loki", "prometheus"]);
    const providers = parseYaml(
      readFileSync(join(ROOT, "deploy/grafana/provisioning/dashboards/dashboards.yaml"), "utf8"),
    ).providers;
    const mounted = mounts(config.services.grafana).find((v) => v.target === providers[0].options.path);
    expect(resolve(mounted?.source ?? "")).toBe(join(ROOT, "deploy/grafana/dashboards"));
  });

  it("selects the jobs through variables, so it also works with the PodMonitor's job names", () => {
    const vars = dashboard.templating.list.map((v: Any) => [v.name, v.query.query]);
    expect(vars).toEqual([
      ["job", "label_values(sample_app_build_info, job)"],
      ["shipper_job", "label_values(log_shipper_lines_read_total, job)"],
    ]);
    for (const e of promExprs) {
      if (e.includes("log_shipper_")) expect(e, e).toContain('job=~"$shipper_job"');
      else expect(e, e).toContain('job=~"$job"');
    }
  });

  it("covers log lines by level, shipper throughput / lag / retries / drops, request rate and latency", () => {
    const all = [...promExprs, ...lokiExprs].join("\n");
    expect(lokiExprs.some((e) => /sum by \(level\)/.test(e) && /job="sample-app"/.test(e))).toBe(true);
    for (const m of [
      "log_shipper_sent_lines_total",
      "log_shipper_lag_bytes",
      "log_shipper_retries_total",
      "log_shipper_dropped_lines_total",
      "http_requests_total",
      "http_request_duration_seconds_bucket",
    ]) {
      expect(all, m).toContain(m);
    }
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("uses PromQL that promtool parses, over metric names the programs export", () => {
    // promtool has no expression checker, but it parses every rule expression: wrap them in rules.
    const dir = mkdtempSync(join(tmpdir(), "dashboard-rules-"));
    try {
      const rules = promExprs.map((expr, i) => ({
        record: `dashboard:expr_${i}`,
        expr: expr
          .replaceAll("$__rate_interval", "1m")
          .replaceAll("$__interval", "1m")
          .replaceAll("$__auto", "1m")
          .replaceAll("$shipper_job", ".+")
          .replaceAll("$job", ".+"),
      }));
      const file = join(dir, "rules.yml");
      writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
      run("promtool", ["check", "rules", file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Every metric the dashboard reads is defined in the programs' source.
    const source = APPS.flatMap((app) => {
      const dir = join(ROOT, "apps", app, "src");
      return (readdirSync(dir, { recursive: true }) as string[])
        .filter((f) => f.endsWith(".ts"))
        .map((f) => readFileSync(join(dir, f), "utf8"));
    }).join("\n");
    const names = new Set(
      promExprs.flatMap((e) =>
        [...e.matchAll(/\b(log_shipper_\w+|metrics_exporter_\w+|http_\w+|sample_app_\w+)\b/g)].map(
          (m) => m[1] as string,
        ),
      ),
    );
    expect(names.size).toBeGreaterThan(5);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, "");
      const defined =
        source.includes(`"${base}"`) ||
        (base.startsWith("metrics_exporter_") &&
          source.includes(`\${p}${base.slice("metrics_exporter_".length)}\``));
      expect(defined, `${n} is not defined in apps/*/src`).toBe(true);
    }
  });
});
