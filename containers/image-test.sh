#!/bin/sh
# image-test.sh OUTDIR : the demo three ways, each timed, products compared bit for bit.
#   native : $VENV/bin/mirim-reduce demo (the host's venv from the same lock)
#   docker : IMAGE with --network none --read-only --tmpfs /tmp --user UID:GID, OUTDIR/docker as /data
#   sif    : SIF built from IMAGE (apptainer.def), run by an unprivileged user in the helper container
# UID:GID is the caller's, or 1000:1000 when the caller is root (CI), so ownership is really tested.
set -eu
OUT=${1:?output folder}
IMAGE=${IMAGE:-mirim-reduce:demo}; SIF=${SIF:-$OUT/mirim-reduce-demo.sif}
HELPER=${HELPER:-mirim-apptainer-helper:sid}; VENV=${VENV:-.venv}; JOBS=${JOBS:-2}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then uid=1000; gid=1000; else uid=$(id -u); gid=$(id -g); fi
rm -rf "$OUT/native" "$OUT/docker" "$OUT/sif"; mkdir -p "$OUT/native" "$OUT/docker" "$OUT/sif"
chown "$uid:$gid" "$OUT/docker" "$OUT/sif"
OUT=$(cd "$OUT" && pwd)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
"$VENV/bin/mirim-reduce" demo --workdir "$OUT/native/mirim-demo" --crds-path "$OUT/native/crds" --jobs "$JOBS" \
    >"$OUT/native.log" 2>&1 || { tail -n 20 "$OUT/native.log"; exit 1; }
t1=$(now)
docker run --rm --network none --read-only --tmpfs /tmp --user "$uid:$gid" \
    -v "$OUT/docker:/data" "$IMAGE" demo --jobs "$JOBS" >"$OUT/docker.log" 2>&1 \
    || { tail -n 20 "$OUT/docker.log"; exit 1; }
t2=$(now)
owners=$(find "$OUT/docker" ! -user "$uid" | head -n 3)
[ -z "$owners" ] || { echo "image-test: files not owned by $uid: $owners"; exit 1; }
"$VENV/bin/python" "$here/compare-products.py" "$OUT/native/mirim-demo" "$OUT/docker/mirim-demo"

HELPER=$HELPER "$here/build-sif.sh" "$IMAGE" "$SIF"
sifdir=$(cd "$(dirname "$SIF")" && pwd)
t3=$(now)
# As on a cluster: an unprivileged user, squashfuse rather than loop devices, read-only image.
docker run --rm --cap-add SYS_ADMIN --cap-add SYS_CHROOT --cap-add SETUID --cap-add SETGID --cap-add MKNOD \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --device /dev/fuse --network none -v "$sifdir:/sif:ro" -v "$OUT/sif:/data" "$HELPER" sh -c "
        chmod 666 /dev/fuse && usermod -u $uid runner >/dev/null 2>&1; groupmod -g $gid runner >/dev/null 2>&1;
        su runner -c 'apptainer run --containall --bind /data:/data /sif/$(basename "$SIF") demo --jobs $JOBS'" \
    >"$OUT/sif.log" 2>&1 || { tail -n 20 "$OUT/sif.log"; exit 1; }
t4=$(now)
"$VENV/bin/python" "$here/compare-products.py" "$OUT/docker/mirim-demo" "$OUT/sif/mirim-demo"
echo "image-test: demo native $(secs "$t0" "$t1")s, docker $(secs "$t1" "$t2")s, apptainer $(secs "$t3" "$t4")s;" \
     "image $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'), SIF $(du -m "$SIF" | cut -f1) MB"
