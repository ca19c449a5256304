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
else
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
fi

# Free space where the engine keeps its layers: an image build needs about 4 GB (builder stage
# 1.6 GB, image 1.3 GB, the SIF and the test's products). Untagged images of this project
# (labelled in the Dockerfile) are removed first when space is short; nothing else is touched.
DOCKER_MIN_FREE_GB=${DOCKER_MIN_FREE_GB:-6}
root=$(docker info -f '{{.DockerRootDir}}')
free_gb() { df -P -k "$root" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
if [ "$(free_gb)" -lt "$DOCKER_MIN_FREE_GB" ]; then
    echo "start-docker: only $(free_gb) GB free under $root; removing this project's untagged images"
    "$(dirname "$0")/prune-images.sh" >/dev/null
fi
if [ "$(free_gb)" -lt "$DOCKER_MIN_FREE_GB" ]; then
    echo "start-docker: only $(free_gb) GB free under $root (need $DOCKER_MIN_FREE_GB): free disk space" \
         "(e.g. docker image prune, docker builder prune) or set DOCKER_MIN_FREE_GB" >&2
    exit 1
fi
echo "start-docker: $(free_gb) GB free under $root"
