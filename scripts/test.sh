#!/usr/bin/env bash
# The README's test command. Installs everything the test suite needs on a fresh Debian machine
# that has only Node.js and npm, then runs type check, lint and the whole test suite:
#   - pnpm at exactly the version pinned in package.json's packageManager
#   - Debian packages for the real tools the tests use: prometheus (promtool and a real server),
#     prometheus-pushgateway, docker.io + docker-compose (container and compose tests),
#     debootstrap (the locally built node:24-bookworm-slim base image when no registry is reachable),
#     docker-registry (a real registry on loopback that `pnpm images --registry` pushes to)
#   - a Docker daemon (started here if none answers, and then stopped again at the end; a daemon
#     that already answers is used and left running)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

pnpm_version=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]; then
  log "installing pnpm@$pnpm_version"
  # corepack refuses registries without package signatures; a plain global install works everywhere.
  npm install -g "pnpm@$pnpm_version" >/dev/null
fi

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-registry >/dev/null || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize renders k8s/)" >&2; exit 1; }

if bash scripts/ci/dockerd.sh status >/dev/null 2>&1; then
  log "using the Docker daemon that already answers (left running)"
else
  log "starting a Docker daemon (stopped again at the end)"
  # Trap first: a start that times out leaves its daemon running (and its PID file) behind.
  trap 'bash scripts/ci/dockerd.sh stop' EXIT
  bash scripts/ci/dockerd.sh start
fi
log "making the node:24-bookworm-slim base image if it is missing"
bash scripts/ci/base-image.sh

log "pnpm install"
pnpm install --frozen-lockfile
log "type check"
pnpm typecheck
log "lint"
pnpm lint
log "tests"
pnpm test
