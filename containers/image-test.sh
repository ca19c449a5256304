#!/bin/sh
# image-test.sh OUTDIR : the demo three ways, each timed, products compared bit for bit.
#   native : $VENV/bin/mirim-reduce demo (the host's venv from the same lock)
#   docker : IMAGE with --network none --read-only --tmpfs /tmp --user UID:GID, OUTDIR/docker as /data;
#            stopped by SIGINT (in stage 1) and by SIGTERM (docker stop, in stage 2), each time
#            resumed by the same command: exit 130 and the one-line message are checked
#   sif    : SIF built from IMAGE (apptainer.def), run by an unprivileged user in the helper container
#   slurm-sif: the job scripts of `mirim-reduce slurm submit --sif` run task by task (run-slurm-scripts.sh)
#            by that user in the helper container (no scheduler there: tests/test_slurm_cluster.py
#            runs the --native scripts under a real Slurm), on the demo's observation 2, against
#            a native `run` of the same files
# Products: `mirim-reduce verify --exact` of WORKSPACE/products (manifest content hashes, figure
# bytes), and compare-products.py for every FITS array of the workspaces (rate, cal, i2d ...).
# Also: `docker run --network none IMAGE 3224` fails with the one-line "cannot reach MAST" (exit 10),
# and the docker run's manifest records the image's build labels and digest.
# UID:GID is the caller's, or 1000:1000 when the caller is root (CI), so ownership is really tested.
set -eu
OUT=${1:?output folder}
IMAGE=${IMAGE:-mirim-reduce:demo}; SIF=${SIF:-$OUT/mirim-reduce-demo.sif}
HELPER=${HELPER:-mirim-apptainer-helper:sid}; VENV=${VENV:-.venv}; JOBS=${JOBS:-2}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then uid=1000; gid=1000; else uid=$(id -u); gid=$(id -g); fi
rm -rf "$OUT/native" "$OUT/native-o002" "$OUT/docker" "$OUT/sif" "$OUT/net" "$OUT/slurm-sif"; mkdir -p "$OUT/native" "$OUT/docker" "$OUT/sif" "$OUT/net"
chown "$uid:$gid" "$OUT/docker" "$OUT/sif" "$OUT/net"
OUT=$(cd "$OUT" && pwd)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "image-test: FAILED: $*" >&2; exit 1; }
verify() {  # verify RUN_WORKSPACE REF_WORKSPACE: packaged products, then every FITS array
    "$VENV/bin/mirim-reduce" verify --exact "$1/products" "$2/products" >"$OUT/verify-$3.txt" 2>&1 \
        || { cat "$OUT/verify-$3.txt"; fail "verify --exact $3"; }
    echo "image-test: verify --exact $3: $(tail -n 1 "$OUT/verify-$3.txt")"
    "$VENV/bin/python" "$here/compare-products.py" "$1" "$2" || fail "compare-products $3"
}
digest=$(docker image inspect -f '{{.Id}}' "$IMAGE")

# No network: a program id needs MAST, and says so in one line with exit code 10.
set +e
docker run --rm --network none --user "$uid:$gid" -v "$OUT/net:/data" "$IMAGE" 3224 >"$OUT/net.out" 2>"$OUT/net.err"
rc=$?
set -e
[ "$rc" = 10 ] && [ "$(wc -l <"$OUT/net.err")" = 1 ] && grep -q "cannot reach MAST" "$OUT/net.err" \
    || { cat "$OUT/net.out" "$OUT/net.err"; fail "run 3224 without network: exit $rc, expected 10 and one line"; }
echo "image-test: no network: exit 10, $(cat "$OUT/net.err")"

t0=$(now)
"$VENV/bin/mirim-reduce" demo --workdir "$OUT/native/mirim-demo" --crds-path "$OUT/native/crds" --jobs "$JOBS" \
    >"$OUT/native.log" 2>&1 || { tail -n 20 "$OUT/native.log"; fail "native demo"; }
t1=$(now)

# docker: started, interrupted (SIGINT once a rate file exists, SIGTERM once a cal file exists),
# each time rerun; the third run finishes. tini -g forwards the signal to the whole process group.
name=mirim-image-test-$$
ws="$OUT/docker/mirim-demo"
docker_demo() {  # docker_demo N SIGNAL GLOB : run; when GLOB matches, send SIGNAL (none: run to the end)
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --network none --read-only --tmpfs /tmp --user "$uid:$gid" \
        -e MIRIM_IMAGE_DIGEST="$digest" -v "$OUT/docker:/data" "$IMAGE" demo --jobs "$JOBS" >/dev/null
    if [ "$2" != none ]; then
        i=0
        until ls $ws/$3 >/dev/null 2>&1; do
            [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || break
            i=$((i + 1)); [ "$i" -lt 1800 ] || fail "docker run $1: $3 did not appear"
            sleep 0.5
        done
        if [ "$2" = TERM ]; then docker stop -t 120 "$name" >/dev/null; else docker kill -s "$2" "$name" >/dev/null; fi
    fi
    rc=$(docker wait "$name")
    docker logs "$name" >"$OUT/docker-$1.log" 2>&1
    docker rm "$name" >/dev/null
    if [ "$2" = none ]; then
        [ "$rc" = 0 ] || { tail -n 20 "$OUT/docker-$1.log"; fail "docker run $1: exit $rc"; }
    else
        # the message is the CLI's last line; the resource tracker may add a warning after it
        [ "$rc" = 130 ] && tail -n 3 "$OUT/docker-$1.log" | grep -q "^interrupted: the workspace is resumable" \
            || { tail -n 20 "$OUT/docker-$1.log"; fail "docker run $1 stopped by SIG$2: exit $rc"; }
        echo "image-test: docker run $1 stopped by SIG$2: exit 130, $(grep "^interrupted" "$OUT/docker-$1.log")"
    fi
}
docker_demo 1 INT 'stage1/*_rate.fits'
docker_demo 2 TERM 'stage2/*_cal.fits'
docker_demo 3 none
t2=$(now)
owners=$(find "$OUT/docker" ! -user "$uid" | head -n 3)
[ -z "$owners" ] || fail "files not owned by $uid: $owners"
"$VENV/bin/python" - "$ws/products/manifest.json" "$digest" <<'PY' || fail "manifest image labels"
import json, sys
img = json.load(open(sys.argv[1]))["image"] or {}
need = ("MIRIM_IMAGE_DIGEST", "MIRIM_IMAGE_REF", "MIRIM_BUILD_VERSION", "MIRIM_BUILD_REVISION",
        "MIRIM_BUILD_JWST", "MIRIM_BUILD_CRDS_CONTEXT")
missing = [k for k in need if not img.get(k) or img[k] == "unknown"]
assert not missing and img["MIRIM_IMAGE_DIGEST"] == sys.argv[2] and img.get("in_container"), (missing, img)
print("image-test: manifest image:", ", ".join(f"{k}={img[k]}" for k in need[1:]))
PY
verify "$ws" "$OUT/native/mirim-demo" docker-vs-native

HELPER=$HELPER "$here/build-sif.sh" "$IMAGE" "$SIF"
sifdir=$(cd "$(dirname "$SIF")" && pwd)
t3=$(now)
# As on a cluster: an unprivileged user, squashfuse rather than loop devices, read-only image.
docker run --rm --cap-add SYS_ADMIN --cap-add SYS_CHROOT --cap-add SETUID --cap-add SETGID --cap-add MKNOD \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --device /dev/fuse --network none -v "$sifdir:/sif:ro" -v "$OUT/sif:/data" "$HELPER" sh -c "
        chmod 666 /dev/fuse && usermod -u $uid runner >/dev/null 2>&1; groupmod -g $gid runner >/dev/null 2>&1;
        su runner -c 'apptainer run --containall --bind /data:/data /sif/$(basename "$SIF") demo --jobs $JOBS'" \
    >"$OUT/sif.log" 2>&1 || { tail -n 20 "$OUT/sif.log"; fail "apptainer demo"; }
t4=$(now)
verify "$OUT/sif/mirim-demo" "$ws" sif-vs-docker

# The Slurm job scripts of `slurm submit --sif` (the same files sbatch would run), each array task
# run by the unprivileged user in the helper container with Slurm's variables set, two at a time,
# stage after stage as the afterok chain orders them; paths are the host's (bound at the same place).
# On the demo's observation 2 (4 exposures, 2 cleaning groups, 2 mosaics: tasks of every kind),
# against a native run of the same files: every task is its own process (~6 s of start-up), and
# the whole demo's 43 tasks took 301 s here.
sws="$OUT/slurm-sif/ws"; raw="$OUT/slurm-sif/raw"; nws="$OUT/native-o002/ws"; sif_abs="$sifdir/$(basename "$SIF")"
mkdir -p "$sws" "$raw"
cp "$OUT/native/mirim-demo/raw"/jw09999002001_*_uncal.fits "$raw/"
CRDS_CONTEXT=${DEMO_CONTEXT:-jwst_9000.pmap} "$VENV/bin/mirim-reduce" run "$raw" --workdir "$nws" \
    --crds-path "$OUT/native/crds" --jobs "$JOBS" >"$OUT/native-o002.log" 2>&1 \
    || { tail -n 20 "$OUT/native-o002.log"; fail "native run of observation 2"; }
chown -R "$uid:$gid" "$OUT/slurm-sif"
"$VENV/bin/mirim-reduce" slurm submit "$sws" --input "$raw" --sif "$sif_abs" --dry-run >"$OUT/slurm-sif.plan" 2>&1 \
    || { cat "$OUT/slurm-sif.plan"; fail "slurm submit --sif --dry-run"; }
chown -R "$uid:$gid" "$OUT/slurm-sif"
t5=$(now)
docker run --rm --cap-add SYS_ADMIN --cap-add SYS_CHROOT --cap-add SETUID --cap-add SETGID --cap-add MKNOD \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --device /dev/fuse --network none -v "$sifdir:$sifdir:ro" -v "$raw:$raw:ro" -v "$OUT/slurm-sif:$OUT/slurm-sif" -v "$here:$here:ro" \
    "$HELPER" sh -c "
        chmod 666 /dev/fuse && usermod -u $uid runner >/dev/null 2>&1; groupmod -g $gid runner >/dev/null 2>&1;
        su runner -c 'sh $here/run-slurm-scripts.sh $sws'" \
    >"$OUT/slurm-sif.log" 2>&1 || { tail -n 30 "$OUT/slurm-sif.log"; fail "slurm job scripts with the SIF"; }
t6=$(now)
verify "$sws" "$nws" slurm-sif-vs-native
echo "image-test: passed. demo native $(secs "$t0" "$t1")s, docker $(secs "$t1" "$t2")s (3 runs: SIGINT, SIGTERM, resumed)," \
     "apptainer $(secs "$t3" "$t4")s, Slurm job scripts with the SIF $(secs "$t5" "$t6")s (observation 2); image $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}')," \
     "SIF $(du -m "$SIF" | cut -f1) MB"
