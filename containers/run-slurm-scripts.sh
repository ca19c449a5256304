#!/bin/sh
# run-slurm-scripts.sh WORKSPACE : the job scripts that `mirim-reduce slurm submit` wrote into
# WORKSPACE/slurm, run in their afterok order without a scheduler: every array task with
# SLURM_ARRAY_TASK_ID set (two at a time), the next stage only when every task succeeded.
# Used by image-test.sh to run the --sif scripts where Apptainer is (the helper container).
set -eu
ws=${1:?workspace}
lines() { grep -c . "$ws/slurm/$1.txt" || true; }
for stage in prepare stage1 stage2 clean1 masks clean stage3 package; do
    script="$ws/slurm/$stage.sh"
    [ -f "$script" ] || continue
    list=$(sed -n 's|^NAME=.*\$WS/slurm/\([a-z]*\)\.txt.*|\1|p' "$script")
    start=$(date +%s)
    if [ -z "$list" ]; then
        SLURM_JOB_ID=1 bash "$script" >"$ws/slurm/logs/$stage.out" 2>&1 || { tail -n 20 "$ws/slurm/logs/$stage.out"; exit 1; }
        n=1
    else
        n=$(lines "$list")
        i=0
        while [ "$i" -lt "$n" ]; do echo "$i"; i=$((i + 1)); done | xargs -P 2 -I{} sh -c \
            'SLURM_ARRAY_JOB_ID=1 SLURM_ARRAY_TASK_ID={} SLURM_JOB_ID=1 bash "$1" >"$2/slurm/logs/$3_{}.out" 2>&1 \
             || { tail -n 20 "$2/slurm/logs/$3_{}.out"; exit 255; }' _ "$script" "$ws" "$stage" || exit 1
    fi
    echo "run-slurm-scripts: $stage: $n task(s) in $(( $(date +%s) - start )) s"
done
