#!/usr/bin/env node
// The local "pod": runs the three built programs like the Kubernetes pod does, on one machine.
//   pnpm pod            (builds first, then runs this script)
// A `.pod/` folder stands in for the pod's emptyDir, with the same subdirectories (logs/, metrics/,
// state/); each program gets the environment of the contract pointing at them. The sidecars start
// first (shipper, then exporter, each once its /healthz answers) and the app last, as with native
// sidecars. Ctrl-C / SIGTERM stops them in pod order: the app first (its last lines are written),
// then the metrics-exporter, then the log-shipper, which ships everything the app wrote. The script
// exits 0 when all three exited 0.
//
// Environment:
//   LOKI_ENDPOINT   ship to this Loki; unset = the shipper's dry run (batches printed below)
//   POD_DIR         the shared folder (default .pod in the repository)
//   POD_APP_PORT / POD_SHIPPER_PORT / POD_EXPORTER_PORT   ports (default 8080 / 9080 / 9100)
//   TRAFFIC_RPS     the app's built-in traffic (default 5), LOG_LEVEL for all three
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const POD_DIR = resolve(process.env.POD_DIR ?? join(ROOT, ".pod"));
const dirs = {
  logs: join(POD_DIR, "logs"),
  metrics: join(POD_DIR, "metrics"),
  state: join(POD_DIR, "state"),
};
const ports = {
  app: process.env.POD_APP_PORT ?? "8080",
  shipper: process.env.POD_SHIPPER_PORT ?? "9080",
  exporter: process.env.POD_EXPORTER_PORT ?? "9100",
};
/** How long each program may take to stop before it is killed (its own budget + margin). */
const STOP_TIMEOUT_MS = { "sample-app": 15_000, "metrics-exporter": 10_000, "log-shipper": 35_000 };
const START_TIMEOUT_MS = 30_000;

// Containers get the pod's metadata from the downward API; here, from the machine.
const podEnv = {
  POD_NAME: process.env.POD_NAME ?? "local-pod",
  POD_NAMESPACE: process.env.POD_NAMESPACE ?? "local",
};

/** The pod in declaration order: sidecars first (they start first and stop last), then the app. */
const programs = [
  {
    name: "log-shipper",
    port: ports.shipper,
    env: {
      ...podEnv,
      LOG_PATHS: `${dirs.logs}/*.log,${dirs.logs}/*.log.*`,
      POSITIONS_FILE: join(dirs.state, "positions.json"),
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: ports.shipper,
      CONTAINER_NAME: "sample-app",
      NODE_NAME: process.env.NODE_NAME ?? "localhost",
    },
  },
  {
    name: "metrics-exporter",
    port: ports.exporter,
    env: { ...podEnv, METRICS_DIR: dirs.metrics, HTTP_HOST: "127.0.0.1", HTTP_PORT: ports.exporter },
  },
  {
    name: "sample-app",
    port: ports.app,
    env: {
      ...podEnv,
      HOST: "127.0.0.1",
      PORT: ports.app,
      LOG_DIR: dirs.logs,
      METRICS_DIR: dirs.metrics,
      TRAFFIC_RPS: process.env.TRAFFIC_RPS ?? "5",
    },
  },
];

const width = Math.max(...programs.map((p) => p.name.length));
const colors = { "log-shipper": 36, "metrics-exporter": 35, "sample-app": 32, pod: 33 };
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
function prefix(name) {
  const label = `${name.padEnd(width)} |`;
  return useColor ? `\x1b[${colors[name] ?? 0}m${label}\x1b[0m` : label;
}
function say(message) {
  process.stdout.write(`${prefix("pod")} ${message}\n`);
}

for (const p of programs) {
  const main = join(ROOT, "apps", p.name, "dist/main.js");
  if (!existsSync(main)) {
    process.stderr.write(`pod: ${main} is missing; build first (\`pnpm pod\` runs \`pnpm build\`)\n`);
    process.exit(2);
  }
}
for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });

const running = new Map(); // name → { child, exited: Promise<{code, signal}> }
let stopping = false;
let failed = false;

function start(p) {
  const child = spawn(process.execPath, [join(ROOT, "apps", p.name, "dist/main.js")], {
    cwd: ROOT,
    env: { ...process.env, ...p.env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: a terminal's Ctrl-C reaches only this script, which then stops the
    // programs one by one in pod order instead of all at once.
    detached: true,
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) =>
      process.stdout.write(`${prefix(p.name)} ${line}\n`),
    );
  }
  const exited = new Promise((resolveExit) => {
    child.on("exit", (code, signal) => {
      say(`${p.name} exited (${signal ? `signal ${signal}` : `code ${code}`})`);
      if (code !== 0) failed = true;
      resolveExit({ code, signal });
      if (!stopping) {
        // Like a pod whose container died; here the whole pod stops rather than restarting it.
        say(`${p.name} stopped unexpectedly; stopping the pod`);
        failed = true;
        void stopAll();
      }
    });
  });
  child.on("error", (err) => {
    say(`${p.name} could not start: ${err.message}`);
    failed = true;
  });
  running.set(p.name, { child, exited });
}

async function waitHealthy(p) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const url = `http://127.0.0.1:${p.port}/healthz`;
  while (Date.now() < deadline) {
    if (stopping) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function stopOne(name) {
  const entry = running.get(name);
  if (!entry) return;
  const { child, exited } = entry;
  if (child.exitCode === null && child.signalCode === null) {
    say(`stopping ${name}`);
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      say(`${name} did not stop within ${STOP_TIMEOUT_MS[name]} ms; killing it`);
      failed = true;
      child.kill("SIGKILL");
    }, STOP_TIMEOUT_MS[name]);
    await exited;
    clearTimeout(timer);
  } else {
    await exited;
  }
}

let stopped;
function stopAll() {
  stopping = true;
  // Reverse declaration order: app, then metrics-exporter, then log-shipper (ships the rest).
  stopped ??= (async () => {
    for (const p of [...programs].reverse()) await stopOne(p.name);
    say(failed ? "pod stopped with failures" : "pod stopped");
    process.exit(failed ? 1 : 0);
  })();
  return stopped;
}

let signals = 0;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    signals += 1;
    if (signals > 1) {
      say(`second ${sig}: killing everything`);
      for (const { child } of running.values()) child.kill("SIGKILL");
      process.exit(130);
    }
    say(`${sig} received: stopping in pod order (sample-app, metrics-exporter, log-shipper)`);
    void stopAll();
  });
}

say(
  `shared folder ${POD_DIR}; shipper ${process.env.LOKI_ENDPOINT ? `→ ${process.env.LOKI_ENDPOINT}` : "in dry run (LOKI_ENDPOINT unset)"}`,
);
for (const p of programs) {
  if (stopping) break;
  say(`starting ${p.name} on 127.0.0.1:${p.port}`);
  start(p);
  if (!(await waitHealthy(p))) {
    if (!stopping) {
      say(`${p.name} did not answer on /healthz within ${START_TIMEOUT_MS} ms`);
      failed = true;
      await stopAll();
    }
    break;
  }
}
if (!stopping) say("pod running; Ctrl-C stops it");
