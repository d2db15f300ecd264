#!/usr/bin/env bash
# Build the offline base image for grading containers from Debian packages alone.
#
# Why: no image registry is reachable on the course machines, but the Debian mirror is.
# mmdebstrap makes a minimal bookworm root file system (python3, python3-venv, unzip) and
# `docker import` turns it into an image. Gradescope's own base is Ubuntu 22.04; this one
# only has to run the same bundle's setup.sh and run_autograder.
#
# Idempotent: skips the build when the tag exists (pass --force to rebuild).
# Usage: docker/build-base-image.sh [--force] [TAG]   (default TAG: minitorch-grader-base:bookworm)
set -euo pipefail

FORCE=0
if [ "${1:-}" = "--force" ]; then FORCE=1; shift; fi
TAG=${1:-${GRADER_BASE_IMAGE:-minitorch-grader-base:bookworm}}
SUITE=${GRADER_BASE_SUITE:-bookworm}
MIRROR=${GRADER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "$0")" && pwd)

"$HERE/start-dockerd.sh"

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG already exists (use --force to rebuild)"
    exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap missing: apt-get install mmdebstrap" >&2; exit 1; }

start=$(date +%s)
echo "building $TAG from Debian $SUITE packages (mmdebstrap, minbase) ..."
# security updates too, so the image is not frozen at the point release.
mmdebstrap --variant=minbase --quiet \
    --include=python3,python3-venv,unzip,ca-certificates \
    --aptopt='Acquire::Retries "3"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" - \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $SUITE-security main" \
  | docker import \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' \
      --message "minitorch grader base ($SUITE minbase + python3-venv)" \
      - "$TAG" >/dev/null
echo "built $TAG in $(( $(date +%s) - start ))s"
