# The pod's three images from one file: a shared build stage and one target per app.
# Build from the repository root (the build context is the whole workspace):
#   docker build --target sample-app       -t sidecar-pod/sample-app:0.1.0 .
#   docker build --target log-shipper      -t sidecar-pod/log-shipper:0.1.0 .
#   docker build --target metrics-exporter -t sidecar-pod/metrics-exporter:0.1.0 .
# (or all three at once, loaded into a local cluster or pushed to a registry: `pnpm images`)
# Multi-stage: `builder` installs the whole workspace from the frozen lockfile once; each app's
# build stage bundles its src/main.ts into dist/main.js and copies its production dependencies
# out with `pnpm deploy`; each app's target holds only dist/, those node_modules and package.json,
# and runs as uid 1000 with `node dist/main.js` as PID 1 (the program handles SIGTERM itself;
# npm/pnpm would swallow signals). Without --target, docker builds the last stage (metrics-exporter).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS builder
# Exactly the pnpm of package.json's packageManager. npm i -g rather than corepack: corepack
# refuses registries that do not serve package signatures.
ARG PNPM_VERSION=10.34.9
ENV CI=true
RUN npm install -g "pnpm@${PNPM_VERSION}" && npm cache clean --force
WORKDIR /repo
# The lockfile alone decides what is downloaded; source edits do not invalidate this layer.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch
# Every workspace manifest: a frozen-lockfile install checks them all.
COPY package.json tsconfig.base.json ./
COPY packages/shared/package.json packages/shared/
COPY apps/sample-app/package.json apps/sample-app/
COPY apps/log-shipper/package.json apps/log-shipper/
COPY apps/metrics-exporter/package.json apps/metrics-exporter/
# The whole workspace and the root (esbuild lives there), from the store only: one install that
# the three apps' builds share.
RUN pnpm install --frozen-lockfile --offline
COPY scripts/build-app.mjs scripts/
COPY packages/shared packages/shared

# One build stage per app, so an edit to one app rebuilds only that app's image.
# `pnpm deploy` copies the app's production dependencies, at the lockfile's versions, into /out
# (injecting @sidecar/shared as a real copy rather than a workspace symlink).
FROM builder AS build-sample-app
COPY apps/sample-app apps/sample-app
RUN pnpm --filter "@sidecar/sample-app" run build \
 && pnpm --filter "@sidecar/sample-app" deploy --prod --offline --config.inject-workspace-packages=true /out

FROM builder AS build-log-shipper
COPY apps/log-shipper apps/log-shipper
RUN pnpm --filter "@sidecar/log-shipper" run build \
 && pnpm --filter "@sidecar/log-shipper" deploy --prod --offline --config.inject-workspace-packages=true /out

FROM builder AS build-metrics-exporter
COPY apps/metrics-exporter apps/metrics-exporter
RUN pnpm --filter "@sidecar/metrics-exporter" run build \
 && pnpm --filter "@sidecar/metrics-exporter" deploy --prod --offline --config.inject-workspace-packages=true /out

# What the three targets have in common.
FROM ${NODE_IMAGE} AS runtime
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
WORKDIR /app

# The pod's main container.
FROM runtime AS sample-app
LABEL org.opencontainers.image.title="sidecar-pod/sample-app" \
      org.opencontainers.image.description="The pod's main container: a fastify service writing rotated pino logs and a Prometheus metrics file to the shared volume."
# Mount points owned by the runtime user, so the image also works with plain `docker run`
# (in Kubernetes and compose the shared volume is mounted over them).
RUN mkdir -p /app/logs /app/metrics && chown 1000:1000 /app/logs /app/metrics
# Root-owned and read-only for the runtime user: the program cannot modify itself.
COPY --from=build-sample-app /out/node_modules ./node_modules
COPY --from=build-sample-app /repo/apps/sample-app/package.json ./package.json
COPY --from=build-sample-app /repo/apps/sample-app/dist ./dist
# Numeric, so runAsNonRoot can verify it (the official image's `node` user is uid 1000).
USER 1000:1000
EXPOSE 8080
# No curl in the slim image, and a node process per check would cost ~0.08 CPU s and ~60 MiB inside
# the container's limits: bash's /dev/tcp asks /healthz (HTTP/1.0, answer 200), ~3 MiB and a few
# ms. Follows PORT when it is overridden.
HEALTHCHECK --interval=10s --timeout=10s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /healthz HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && read -r -t 5 _ code _ <&3 && [ \"$code\" = 200 ]"]
CMD ["node", "dist/main.js"]

# The log-shipper sidecar.
FROM runtime AS log-shipper
LABEL org.opencontainers.image.title="sidecar-pod/log-shipper" \
      org.opencontainers.image.description="Sidecar that tails the shared volume's log files from acknowledged positions and pushes them to Loki."
# /shared itself too: Docker copies an image directory's owner onto an empty volume mounted over
# it, and the shipper creates its state directory there.
RUN mkdir -p /shared/logs /var/lib/log-shipper && chown 1000:1000 /shared /shared/logs /var/lib/log-shipper
# Memory for the sidecar's 128Mi box (measured with bench/log-shipper.mjs at 50k lines/s on this
# Node 24, apps/log-shipper/README.md "Performance"): a 1 MiB V8 semi-space instead of Node's
# default (which grows to 16 MiB, 48 MiB of young generation in all) — the shipper's garbage is
# short-lived and small; and two malloc arenas instead of 8 per core. V8's top tier is the
# program's own choice (src/v8-flags.ts): with Loki its only destination it turns TurboFan off at
# start (Maglev only: TurboFan's code is ~5 MiB of the node binary that stays resident once used),
# with OTLP or Elasticsearch configured it keeps TurboFan (their encoders' byte loops: 2.8-3.0
# against 5.3-5.4 CPU s per million lines for the fan-out). A tier flag before dist/main.js (say
# --max-opt=2 or --turbofan) overrides that choice. test/image-memory.test.ts runs the built
# program with exactly these settings, read from this file. Your own NODE_OPTIONS replaces the first.
ENV NODE_OPTIONS=--max-semi-space-size=1 \
    MALLOC_ARENA_MAX=2
COPY --from=build-log-shipper /out/node_modules ./node_modules
COPY --from=build-log-shipper /repo/apps/log-shipper/package.json ./package.json
COPY --from=build-log-shipper /repo/apps/log-shipper/dist ./dist
USER 1000:1000
EXPOSE 9080
# bash's /dev/tcp, not a node process (see sample-app); follows HTTP_PORT when it is overridden.
HEALTHCHECK --interval=10s --timeout=10s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HTTP_PORT:-9080} && printf 'GET /healthz HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && read -r -t 5 _ code _ <&3 && [ \"$code\" = 200 ]"]
CMD ["node", "dist/main.js"]

# The metrics-exporter sidecar.
FROM runtime AS metrics-exporter
LABEL org.opencontainers.image.title="sidecar-pod/metrics-exporter" \
      org.opencontainers.image.description="Sidecar that collects the shared volume's Prometheus text files and serves them, with its own metrics, on /metrics."
# Memory for the sidecar's 128Mi box: a 1 MiB V8 semi-space (Node's default grows to 16 MiB, 48 MiB
# of young generation in all) keeps the parser's short-lived garbage small; two malloc arenas
# instead of 8 per core; and a fixed mmap threshold, so the megabyte-sized buffers of a superseded
# collection go back to the system when they are freed instead of staying in malloc's heap.
# Measured at 100k series by bench/metrics-exporter.mjs (apps/metrics-exporter/README.md,
# "Memory"). Your own NODE_OPTIONS replaces the first.
ENV NODE_OPTIONS=--max-semi-space-size=1 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072
RUN mkdir -p /shared/metrics && chown 1000:1000 /shared /shared/metrics
COPY --from=build-metrics-exporter /out/node_modules ./node_modules
COPY --from=build-metrics-exporter /repo/apps/metrics-exporter/package.json ./package.json
COPY --from=build-metrics-exporter /repo/apps/metrics-exporter/dist ./dist
USER 1000:1000
EXPOSE 9100
# bash's /dev/tcp, not a node process (see sample-app); follows HTTP_PORT when it is overridden.
HEALTHCHECK --interval=10s --timeout=10s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HTTP_PORT:-9100} && printf 'GET /healthz HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && read -r -t 5 _ code _ <&3 && [ \"$code\" = 200 ]"]
# --max-opt=1: V8's interpreter and Sparkplug only, no Maglev or TurboFan. Their compilations were
# the largest memory cost left on Node 24 (issue 10.5, a typical pod's ≈ 2k series, peak RSS:
# ≈ 75 MiB → ≈ 61.5 MiB; README "Memory"). On the command line because NODE_OPTIONS refuses V8's
# tiering flags and Node 24 ignores them when set at run time (src/tiering.ts still does it for Node 20).
CMD ["node", "--max-opt=1", "dist/main.js"]
