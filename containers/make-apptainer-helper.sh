#!/bin/sh
# A helper image that can build and run SIF files on this kind of machine: Debian stable has no
# apptainer and sid's needs a newer C library than the host, so apptainer lives in a container
# made from a sid root file system (debootstrap, docker import; no registry needed).
# Idempotent: does nothing if IMAGE exists (FORCE=1 rebuilds).
#   IMAGE=mirim-apptainer-helper:sid  SCRATCH=/var/tmp/mirim-containers  MIRROR=http://deb.debian.org/debian
# Run it (as the unprivileged user "runner", uid RUNNER_UID=1000) like containers/build-sif.sh does.
set -eu
IMAGE=${IMAGE:-mirim-apptainer-helper:sid}
SCRATCH=${SCRATCH:-/var/tmp/mirim-containers}
RUNNER_UID=${RUNNER_UID:-1000}
here=$(cd "$(dirname "$0")" && pwd)
"$here/start-docker.sh" >/dev/null

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "make-apptainer-helper: $IMAGE exists; FORCE=1 rebuilds"
    exit 0
fi
SUITE=sid IMAGE=mirim-debian:sid SCRATCH="$SCRATCH" "$here/make-base-image.sh"

start=$(date +%s)
# sid's Release file can look expired to apt on a mirror snapshot: Check-Valid-Until=false.
docker build -q -t "$IMAGE" --build-arg RUNNER_UID="$RUNNER_UID" - <<'DOCKERFILE' >/dev/null
FROM mirim-debian:sid
ARG RUNNER_UID=1000
RUN set -eux; \
    apt-get -o Acquire::Check-Valid-Until=false update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        apptainer squashfs-tools squashfuse fuse2fs fuse3 ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    useradd --uid "$RUNNER_UID" --create-home --shell /bin/sh runner; \
    apptainer --version
DOCKERFILE
echo "make-apptainer-helper: $IMAGE ($(docker run --rm "$IMAGE" apptainer --version)," \
     "$(docker image inspect -f '{{.Size}}' "$IMAGE") bytes), $(( $(date +%s) - start ))s"
