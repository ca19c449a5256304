"""``mirim-reduce slurm``: a workspace's stages as a chain of Slurm jobs (:mod:`reduce.hpc.slurm`).

    mirim-reduce slurm submit WORKSPACE [--input RAW] (--sif PATH | --native) [--partition P] [--account A]
                              [--time STAGE=HH:MM:SS ...] [--mem STAGE=SIZE ...] [--array-limit N] [--dry-run]
    mirim-reduce slurm status WORKSPACE [--json]
    mirim-reduce slurm resubmit WORKSPACE [--dry-run]
    mirim-reduce slurm prepare WORKSPACE --input RAW      (the first job: records, no stage)
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .app import ConfigOpt, CrdsPathOpt, app, config_from

slurm_app = typer.Typer(no_args_is_help=True, help="Run a workspace's stages as Slurm jobs (arrays over exposures, "
                        "cleaning groups and mosaics).")
app.add_typer(slurm_app, name="slurm")

WorkspaceArg = typer.Argument(..., help="workspace folder (on the cluster's shared file system)")
DryRunOpt = typer.Option(False, "--dry-run", help="write the scripts, print the sbatch commands, submit nothing")


def _per_stage(values: Optional[list[str]], option: str) -> dict[str, str]:
    from ..hpc.slurm_plan import STAGES

    out = {}
    for v in values or []:
        stage, sep, value = v.partition("=")
        if not sep or stage not in STAGES or not value:
            raise ConfigError(f"{option} {v!r}: expected STAGE=VALUE with STAGE one of {', '.join(STAGES)}")
        out[stage] = value
    return out


def _print_round(rnd, dry_run: bool) -> None:
    for job_id in rnd.cancelled:
        typer.echo(f"scancel {job_id} (blocked by a failed dependency)")
    if not rnd.jobs:
        typer.echo("nothing to submit: every task is done")
    for job, argv in zip(rnd.jobs, rnd.argv):
        typer.echo(f"{'would submit' if dry_run else job['job_id']:>12}  {shlex.join(argv)}")


@slurm_app.command()
def submit(workspace: Path = WorkspaceArg,
           input: Optional[Path] = typer.Option(None, "--input", "-i", help="folder of *_uncal.fits (a first job "
                                                "records it); default: the workspace's recorded inputs"),
           sif: Optional[Path] = typer.Option(None, "--sif", help="run every job in this SIF (apptainer run)"),
           native: bool = typer.Option(False, "--native", help="run this installation's mirim-reduce instead"),
           config: Optional[Path] = ConfigOpt, crds_path: Optional[Path] = CrdsPathOpt,
           partition: Optional[str] = typer.Option(None, "--partition", "-p"),
           account: Optional[str] = typer.Option(None, "--account", "-A"),
           time: Optional[list[str]] = typer.Option(None, "--time", help="STAGE=HH:MM:SS per task (repeatable; "
                                                    "stages: prepare stage1 stage2 clean1 masks clean stage3 package)"),
           mem: Optional[list[str]] = typer.Option(None, "--mem", help="STAGE=SIZE per job or array task, e.g. "
                                                   "stage1=3G (repeatable)"),
           array_limit: Optional[int] = typer.Option(None, "--array-limit", min=1, help="at most N array tasks "
                                                     "at once (%N)"),
           dry_run: bool = DryRunOpt):
    """Write WORKSPACE/slurm/*.sh and submit the chain: prepare; stage 1 and 2 arrays over exposures; the cleaning's
    arrays over groups (first pass, then the first-pass mosaics' masks, then the final pass); stage 3 over mosaics;
    package. Every task runs on one core."""
    from ..hpc import slurm
    from ..hpc.slurm_plan import Options

    if (sif is None) == (not native):
        raise ConfigError("give --sif PATH (the image users run) or --native (this installation)")
    if sif is not None and crds_path is not None:
        raise ConfigError("--crds-path is for --native: a SIF uses the CRDS cache in the image")
    if sif is not None and not sif.is_file():
        raise ConfigError(f"--sif {sif}: no such file")
    opts = Options(sif=sif.absolute() if sif else None,
                   native=[sys.executable, "-m", "reduce.cli"] if native else None,
                   input=input, config=config.absolute() if config else None,
                   crds_path=crds_path.absolute() if crds_path else None, partition=partition, account=account,
                   time=_per_stage(time, "--time"), mem=_per_stage(mem, "--mem"), array_limit=array_limit)
    rnd = slurm.submit(workspace, opts, dry_run=dry_run)
    _print_round(rnd, dry_run)


@slurm_app.command()
def status(workspace: Path = WorkspaceArg,
           as_json: bool = typer.Option(False, "--json", help="one JSON list of tasks")):
    """Each stage's tasks: done, running, pending, blocked (a dependency failed), failed; with logs."""
    from ..hpc import slurm

    rows = slurm.status(workspace)
    if as_json:
        from ..hpc.slurm_state import as_json as rows_json

        typer.echo(json.dumps(rows_json(rows), indent=1))
        return
    for r in rows:
        detail = f" ({r.reason})" if r.reason else ""
        log = f"  {r.log}" if r.log and r.state in ("running", "failed") else ""
        typer.echo(f"{r.stage:8s} {r.task or '-':40s} {r.state:13s} {r.job:12s}{detail}{log}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    typer.echo("; ".join(f"{n} {s}" for s, n in sorted(counts.items())))


@slurm_app.command()
def resubmit(workspace: Path = WorkspaceArg, dry_run: bool = DryRunOpt):
    """Submit only the tasks that are not done (and what depends on them), with the same scripts."""
    from ..hpc import slurm

    _print_round(slurm.resubmit(workspace, dry_run=dry_run), dry_run)


@slurm_app.command()
def prepare(workspace: Path = WorkspaceArg,
            input: Path = typer.Option(..., "--input", "-i", help="folder of *_uncal.fits"),
            config: Optional[Path] = ConfigOpt, crds_path: Optional[Path] = CrdsPathOpt):
    """Record the inputs, configuration and CRDS check in WORKSPACE without running a stage (the first job)."""
    from ..errors import check_folder
    from ..hpc import slurm

    check_folder(workspace, "workspace")
    slurm.prepare(workspace, input, config_from(config, None, None), crds_path)
