#!/usr/bin/env bash
# The one place that knows which Debian packages the test suite needs. Run as root it
# installs what is missing; run as anyone else it names the exact command and stops.
# Usage: deploy/system-deps.sh test|run
set -euo pipefail
# nginx and debootstrap live in /usr/sbin, which an ordinary user's PATH leaves out.
export PATH="$PATH:/usr/sbin:/sbin"

# Commands the tests run, each with the Debian package that brings it.
declare -A TEST_NEEDS=(
  [chromium]=chromium            # browser tests (Playwright drives Debian's build)
  [nginx]=nginx-light            # the cluster tests put a real nginx in front of replicas
  [prometheus]=prometheus        # make cluster --prometheus scrapes the replicas for real
  [promtool]=prometheus          # checks the shipped scrape configuration
  [buildah]=buildah              # make image builds the Dockerfile without a Docker engine
  [debootstrap]=debootstrap      # the local base image when no registry is reachable
  [curl]=curl                    # the avatar page's expression command is run as shown
)
# What `make run` needs beyond Python.
declare -A RUN_NEEDS=(
  [npm]=npm                      # npm ci installs the avatar page's three.js and three-vrm
)

case "${1:-}" in
  test) declare -n needs=TEST_NEEDS ;;
  run) declare -n needs=RUN_NEEDS ;;
  *) echo "usage: $0 test|run" >&2; exit 2 ;;
esac

missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages; run: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
