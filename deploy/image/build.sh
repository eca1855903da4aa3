#!/usr/bin/env bash
# `make image`: builds the Dockerfile as holotrack:0.1.0 (HOLOTRACK_IMAGE to change it).
# With Docker where an engine answers; otherwise with Debian's buildah, on a Python base
# image made here from Debian's packages (deploy/image/base.sh), because no registry may be
# reachable. deploy/README.md has both ways and what each takes.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${HOLOTRACK_IMAGE:-holotrack:0.1.0}
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exec docker build -t "$image" .
fi

for cmd in buildah debootstrap; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    echo "no Docker engine answers and $cmd is missing: apt-get install --no-install-recommends buildah debootstrap" >&2
    exit 1
  fi
done
base=${HOLOTRACK_BASE_IMAGE:-localhost/holotrack-python:3.11-bookworm}
bash deploy/image/base.sh "$base"
# chroot isolation: no runtime (runc, crun) nor user namespaces needed, as root. Docker
# format keeps HEALTHCHECK (OCI has no field for it). --layers caches each step, so a code
# edit rebuilds from the code on.
exec buildah bud --isolation=chroot --format docker --layers \
  --build-arg PYTHON_IMAGE="$base" -t "$image" .
