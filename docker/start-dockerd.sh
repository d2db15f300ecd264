#!/usr/bin/env bash
# Start the Docker engine if it is not answering yet, and wait until it does.
#
# Idempotent: CI and the test-suite call it before anything that needs Docker. Exits non-zero
# (with the tail of the engine's log) when the engine cannot be started, so CI fails loudly
# instead of silently skipping the container tests.
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT=${DOCKERD_WAIT:-60}

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-dockerd: dockerd is not installed (apt-get install docker.io)" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "start-dockerd: the engine is not running and only root can start it" >&2
    exit 1
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
    # containerd is started by dockerd itself when not running as a service.
    nohup dockerd >"$LOG" 2>&1 </dev/null &
fi
for _ in $(seq "$WAIT"); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 1
done
echo "start-dockerd: the engine did not answer within ${WAIT}s; last lines of $LOG:" >&2
tail -n 30 "$LOG" >&2 || true
exit 1
