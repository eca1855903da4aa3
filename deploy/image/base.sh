#!/usr/bin/env bash
# Makes the Python base image from Debian's own packages, for machines that reach no container
# registry (the Dockerfile's default, python:3.11-slim-bookworm, comes from Docker Hub):
# debootstrap's minimal bookworm plus python3.11 and python3.11-venv (and python3-distutils,
# which python3.11-venv needs and debootstrap does not resolve by itself), imported into buildah's
# storage. Does nothing when the image already exists. Needs root, buildah and debootstrap.
# Usage: deploy/image/base.sh [IMAGE]   (default localhost/holotrack-python:3.11-bookworm)
set -euo pipefail

image=${1:-${HOLOTRACK_BASE_IMAGE:-localhost/holotrack-python:3.11-bookworm}}
# This machine's certificate authorities, for pip and npm in the build (see below).
ca=/usr/local/share/holotrack/build-ca.crt
if buildah inspect --type image "$image" >/dev/null 2>&1; then
  # A base made before the Dockerfile ran npm names the bundle for pip only: name it for Node
  # too (a new configuration, same files; the build's cached layers are then rebuilt once).
  env=$(buildah inspect --type image --format '{{.Docker.Config.Env}}' "$image")
  if [[ $env != *NODE_EXTRA_CA_CERTS=* ]]; then
    ctr=$(buildah from --pull-never --quiet "$image")
    buildah config --env NODE_EXTRA_CA_CERTS="$ca" "$ctr"
    buildah commit --quiet --rm --format docker "$ctr" "$image" >/dev/null
    echo "base image $image: added NODE_EXTRA_CA_CERTS"
  fi
  echo "base image $image exists"
  exit 0
fi

# The Debian mirror apt already uses here (deb822 sources or the one-line format).
mirror=$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -m1 -E '/debian/?$' || true
)
mirror=${HOLOTRACK_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}

rootfs=$(mktemp -d /var/tmp/holotrack-rootfs.XXXXXX)
ctr=
cleanup() {
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$rootfs"
}
trap cleanup EXIT

echo "debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-distutils bookworm "$rootfs" "$mirror" \
  >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# What the official python image offers too: `python` and `python3` on PATH.
ln -s /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
ln -s /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
# Nothing in the image runs apt again: drop the downloaded packages and the indexes.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/log/* "$rootfs"/tmp/*

# This sandbox reaches PyPI through a proxy that re-signs TLS, so pip inside the build must
# trust this machine's certificate authorities, and so must npm (the Dockerfile's vendor stage).
# That belongs to the machine, not to the Dockerfile: the bundle goes into the base image here,
# named by PIP_CERT and NODE_EXTRA_CA_CERTS (Node adds it to its own authorities).
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs$ca"

ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
tar -C "$rootfs" --numeric-owner --xattrs -cf - . | tar -C "$mnt" --numeric-owner --xattrs -xf -
buildah umount "$ctr" >/dev/null
buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --env PIP_CERT="$ca" \
  --env NODE_EXTRA_CA_CERTS="$ca" \
  --cmd python3 \
  --label org.opencontainers.image.description="Debian bookworm minbase + python3.11, python3.11-venv (deploy/image/base.sh)" \
  "$ctr"
buildah commit --quiet --rm --format docker "$ctr" "$image" >/dev/null
ctr=
echo "made base image $image"
