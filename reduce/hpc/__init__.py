"""Running a workspace's stages on a batch system (Slurm): :mod:`.slurm_plan` writes the job
scripts and the dependency chain (pure), :mod:`.slurm_state` says what is done, running or
failed, :mod:`.slurm` submits, reports and resubmits through sbatch/squeue/scancel."""
