#!/usr/bin/env bash
# Makes these machines able to build and run the project's container image for real.
# (The repository's own copy of the development machines' shared setup script, so that
# `.ci/run` and scripts/container-smoke.sh work from a clean clone on a fresh machine.)
#
# There is no Docker engine here and no image registry, but podman runs containers (with
# runc), and Debian's packages and the npm registry are reachable. This script:
#   1. installs podman + runc and sets them up for this sandbox (no rlimit changes, runc);
#   2. builds a local stand-in for the official `node:20-bookworm-slim` image (Debian
#      bookworm minbase + this machine's Node 20 and npm, and this machine's TLS trust) and
#      tags it with that exact name, so an unmodified `FROM node:20-bookworm-slim` resolves
#      locally without a pull.
# After it: `podman build --network=host -t localhost/ratchet .` and
#           `podman run --rm --network=host localhost/ratchet` work as docker build/run would.
# `docker` itself is only a client here; use `podman` (same flags) in scripts and tests.
# Idempotent: a second run only checks. Takes ~1 minute the first time.
set -euo pipefail
BASE=docker.io/library/node:20-bookworm-slim

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
mkdir -p /etc/containers
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' >/etc/containers/containers.conf
grep -q '^unqualified-search-registries' /etc/containers/registries.conf 2>/dev/null ||
  echo 'unqualified-search-registries = ["docker.io"]' >>/etc/containers/registries.conf

if podman image exists "$BASE"; then
  echo "container-env: $BASE present"
  exit 0
fi

mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1
# the same apt sources as the host, so apt-get inside a build reaches the same mirrors
cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules" "$root/usr/local/etc"
cp "$(readlink -f "$(command -v node)")" "$root/usr/local/bin/node"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# this sandbox's TLS trust (its egress re-signs certificates): the host's CA bundle, so npm
# and node inside builds and containers trust what the host trusts
mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$root/usr/local/etc/npmrc"
# node-gyp cannot download Node's headers here: ship them, as the host does (its npm nodedir)
mkdir -p "$root/usr/local/include"
cp -a /usr/include/node "$root/usr/local/include/node"
echo "nodedir=/usr/local" >>"$root/usr/local/etc/npmrc"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
tar -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' - "$BASE" >/dev/null
echo "container-env: built $BASE ($(podman run --rm --network=host "$BASE" node --version))"
