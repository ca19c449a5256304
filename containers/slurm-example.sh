#!/bin/bash
# Example Slurm batch script: reduce MIRI imaging with the mirim-reduce SIF (apptainer run).
#
#   sbatch containers/slurm-example.sh raw-3224          # a folder of *_uncal.fits under $DATA
#   sbatch containers/slurm-example.sh 3224              # a program id: fetched from MAST first
#                                                        # (needs network on the compute node)
# Compute nodes without network: fetch on a login node first, then submit the folder:
#   apptainer run --containall --bind "$DATA:/data" "$SIF" fetch 3224 --workdir work-3224
#   sbatch containers/slurm-example.sh work-3224/raw work-3224    (the fetch workspace itself)
#
# Resubmitting the same command resumes a stopped run (time limit, scancel, node failure):
# finished work is skipped. Build the SIF with a real CRDS context (make image
# CRDS_CONTEXT=jwst_NNNN.pmap && make sif SIF_FROM=mirim-reduce:latest); the demo SIF only knows
# the synthetic demo context.
#SBATCH --job-name=mirim-reduce
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --mem-per-cpu=4G
#SBATCH --time=04:00:00
#SBATCH --output=mirim-reduce-%j.out
# SIGTERM to the batch shell (hence to apptainer, which exec replaces it with) 5 minutes before
# the time limit: mirim-reduce stops cleanly (exit 130) and leaves a resumable workspace.
#SBATCH --signal=B:TERM@300
set -euo pipefail

INPUT=${1:?usage: sbatch slurm-example.sh FOLDER_OR_PROGRAM_ID [WORKDIR]}
SIF=${SIF:-$HOME/containers/mirim-reduce.sif}
# The input/output folder, bound to /data in the container (relative paths resolve there).
DATA=${DATA:-${SLURM_SUBMIT_DIR:-$PWD}/mirim-data}
WORKDIR=${2:-work-$(basename "$INPUT")}
mkdir -p "$DATA"

# --containall: no host home or environment inside, except what is passed on purpose.
# MAST_API_TOKEN (exclusive-access data), if set when submitting, goes in through the
# environment, never the command line.
if [ -n "${MAST_API_TOKEN:-}" ]; then export APPTAINERENV_MAST_API_TOKEN=$MAST_API_TOKEN; fi
# Recorded in every product manifest: which SIF made it.
export APPTAINERENV_MIRIM_IMAGE_REF="$SIF"

echo "mirim-reduce: $INPUT -> $DATA/$WORKDIR on $(hostname), ${SLURM_CPUS_PER_TASK:-1} cpus"
# exec: apptainer receives Slurm's signals itself and passes them on to mirim-reduce.
exec apptainer run --containall --bind "$DATA:/data" "$SIF" \
    run "$INPUT" --workdir "$WORKDIR" --jobs "${SLURM_CPUS_PER_TASK:-1}"
