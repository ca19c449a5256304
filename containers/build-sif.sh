#!/bin/sh
# build-sif.sh DOCKER_IMAGE OUT.sif : apptainer.def -> OUT.sif from a local docker image, with
# apptainer from the sid helper container (containers/make-apptainer-helper.sh) talking to the
# host's engine through its socket (Bootstrap: docker-daemon). The CRDS context is read from the
# image's label so that %environment matches what the image was built with. --notest: %test
# needs to run the image, which as root here fails (user namespaces); image-test runs it unprivileged.
set -eu
FROM=${1:?docker image}; OUT=${2:?output .sif}
HELPER=${HELPER:-mirim-apptainer-helper:sid}
here=$(cd "$(dirname "$0")" && pwd); top=$(dirname "$here")
"$here/start-docker.sh" >/dev/null
ctx=$(docker image inspect -f '{{ index .Config.Labels "io.github.mirim-reduce.crds.context" }}' "$FROM")
outdir=$(cd "$(dirname "$OUT")" && pwd); name=$(basename "$OUT")
start=$(date +%s)
docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
    -v "$top/apptainer.def:/build/apptainer.def:ro" -v "$outdir:/out" "$HELPER" \
    apptainer --quiet build --force --notest --build-arg FROM="$FROM" --build-arg CRDS_CONTEXT="$ctx" \
        "/out/$name" /build/apptainer.def
echo "build-sif: $OUT ($(du -m "$OUT" | cut -f1) MB) from $FROM, $(( $(date +%s) - start ))s"
