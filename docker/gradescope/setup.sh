#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source when it builds the image for
# assignment @ASSIGNMENT@ (`grader image` does the same locally). It installs the grader into
# /autograder/venv from the wheels shipped in this zip, so nothing is fetched from PyPI, and
# locks the course files (reference solution, hidden tests) away from the unprivileged user
# that runs student code.
set -euo pipefail

SRC=$(cd "$(dirname "$0")" && pwd)
VENV=/autograder/venv
WORKER_UID=@WORKER_UID@

log() { echo "setup.sh: $*"; }

# 1. A Python with venv + ensurepip: the newest one the wheels serve (@PYTHONS@), so code
#    is graded with the newest syntax the image can run; else python3. The offline base
#    image and python:3.11-slim have it; Gradescope's Ubuntu image may need python3-venv,
#    which only works with a network.
PY=""
for candidate in @PYTHONS@; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
        PY=$(command -v "$candidate")
        break
    fi
done
if [ -z "$PY" ]; then
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        if command -v apt-get >/dev/null 2>&1; then
            log "installing python3-venv with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv \
                || { log "python3-venv is missing and apt-get failed (no network?)"; exit 1; }
        else
            log "python3 with the venv module is required"; exit 1
        fi
    fi
    PY=$(command -v python3)
fi
log "$("$PY" -V) at $PY"
# The course states the Python it grades with (assignment.toml [runtime] python): say so
# when this image's is older (its students are told a version their code does not get).
COURSE_PYTHON="@COURSE_PYTHON@"
if [ -n "$COURSE_PYTHON" ] && ! "$PY" -c "import sys; sys.exit(sys.version_info[:2] < tuple(map(int, '$COURSE_PYTHON'.split('.'))))"; then
    log "warning: assignment.toml says this course grades with Python $COURSE_PYTHON, but this image's is $("$PY" -V): set [runtime] python to it, or use a newer image"
fi

# 2. The grader and its pinned dependencies, offline.
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --no-index --find-links "$SRC/wheels" \
    --disable-pip-version-check --no-warn-script-location minitorch-grader
"$VENV/bin/grader" --help >/dev/null || { log "the grader does not start"; exit 1; }

# 3. A name for the uid student code runs as (the sandbox drops to it; a name only makes
#    `ps` readable, the uid works without one).
if ! getent passwd "$WORKER_UID" >/dev/null && command -v useradd >/dev/null 2>&1; then
    groupadd -g "$WORKER_UID" grader-worker 2>/dev/null || true
    useradd -u "$WORKER_UID" -g "$WORKER_UID" -M -d /nonexistent -s /usr/sbin/nologin \
        grader-worker 2>/dev/null || log "could not name uid $WORKER_UID (not needed)"
fi

# 4. Course files are root-only: the worker cannot read the reference or hidden tests, even
#    without a mount namespace. The venv stays readable (it holds public code only).
rm -rf "$SRC/wheels"
chown -R root:root "$SRC"
chmod -R go-rwx "$SRC"
chmod 755 /autograder
mkdir -p /autograder/results /autograder/submission
log "done: $("$VENV/bin/python" -c 'import grader, sys; print(sys.version.split()[0])') venv ready"
