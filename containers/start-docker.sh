#!/bin/sh
# Make sure a Docker engine answers on this machine (idempotent).
#   - installs Debian's docker.io if dockerd is missing (root, apt),
#   - starts dockerd in the background if `docker info` does not answer,
#   - waits (up to DOCKER_WAIT seconds, default 60) for `docker info`.
# Log: ${DOCKERD_LOG:-/var/log/dockerd.log}. Used by .ci/run and containers/Makefile.inc.
set -eu
DOCKER_WAIT=${DOCKER_WAIT:-60}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}

if docker info >/dev/null 2>&1; then
    echo "start-docker: engine already running ($(docker version -f '{{.Server.Version}}'))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-docker: installing docker.io from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends keeps it small; iptables etc. come as dependencies
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "start-docker: starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >"$DOCKERD_LOG" 2>&1 &
fi

i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge "$DOCKER_WAIT" ]; then
        echo "start-docker: dockerd did not answer within ${DOCKER_WAIT}s; last log lines:" >&2
        tail -n 20 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
    sleep 1
done
echo "start-docker: engine ready ($(docker version -f '{{.Server.Version}}'), storage $(docker info -f '{{.Driver}}'))"
