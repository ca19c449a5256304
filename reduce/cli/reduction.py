"""Reduction commands: ``run``, one stage on a workspace (``stage1|stage2|clean|stage3``), ``info``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from .. import config as config_mod
from ..errors import ReduceError, check_folder
from .app import (DEFAULT_WORKDIR, ConfigOpt, CrdsPathOpt, JobsOpt, OverwriteOpt, WorkdirOpt, app, config_from,
                  workdir_from)


def run_reduction(input_dir, workdir, cfg, crds_path, crds_context=None, stages=None, scope=None, package=True):
    from .. import orchestrate

    kwargs = {"stages": stages} if stages else {}
    summary = orchestrate.reduce_folder(input_dir, workdir, cfg, crds_path=crds_path, crds_context=crds_context,
                                        scope=scope or orchestrate.Scope(), package=package, **kwargs)
    orchestrate.print_summary(summary)
    _raise_disk_full(summary)
    orchestrate.raise_on_failures(summary)


def _raise_disk_full(summary) -> None:
    """A task that failed because the disk is full is exit 15 (disk full), not 6 (a task failed)."""
    from ..errors import DISK_FULL_TEXT, DiskFullError

    full = [o for o in summary.failures if any(m in (o["error"] or "") for m in ("[Errno 28]", *DISK_FULL_TEXT))]
    if full:
        raise DiskFullError(f"disk full: {full[0]['stage']} {full[0]['name']} failed ({full[0]['error']}); free some "
                            f"space, then run the same command again (finished work is kept)")


@app.command()
def run(input: Path = typer.Argument(..., help="folder of *_uncal.fits files, or a JWST program id (3224)"),
        workdir: Optional[Path] = WorkdirOpt, config: Optional[Path] = ConfigOpt,
        jobs: Optional[int] = JobsOpt, overwrite: Optional[bool] = OverwriteOpt,
        crds_path: Optional[Path] = CrdsPathOpt):
    """Reduce a folder of MIRI uncal files (or a JWST program id: fetched from MAST first)."""
    cfg = config_from(config, jobs, overwrite)
    workdir = workdir_from(cfg, workdir, DEFAULT_WORKDIR)
    from .acquire import prepare_run_input

    input = prepare_run_input(input, workdir)  # a program id is fetched first
    run_reduction(input, workdir, cfg, crds_path)


def _workspace_config(workspace: Path, config, jobs, overwrite) -> dict:
    check_folder(workspace, "workspace")
    own = workspace / "config.toml"
    return config_from(config or (own if own.is_file() else None), jobs, overwrite)


ExposureOpt = typer.Option(None, "--exposure", "-e", help="only this exposure (repeatable; for HPC arrays)")


def _stage_command(stage: str, doc: str):
    def command(workspace: Path = typer.Argument(..., help="workspace of an earlier run"),
                config: Optional[Path] = ConfigOpt, jobs: Optional[int] = JobsOpt,
                overwrite: Optional[bool] = OverwriteOpt, crds_path: Optional[Path] = CrdsPathOpt,
                exposure: Optional[list[str]] = ExposureOpt):
        from ..orchestrate import Scope

        cfg = _workspace_config(workspace, config, jobs, overwrite)
        run_reduction(None, workspace, cfg, crds_path, stages=(stage,), scope=Scope(exposures=tuple(exposure or ())))

    command.__doc__ = doc
    app.command(name=stage)(command)


_stage_command("stage1", "Run stage 1 (Detector1: uncal -> rate) on a workspace.")
_stage_command("stage2", "Run stage 2 (Image2: rate -> cal) on a workspace.")


@app.command(name="clean")
def clean(workspace: Path = typer.Argument(..., help="workspace of an earlier run"),
          config: Optional[Path] = ConfigOpt, jobs: Optional[int] = JobsOpt,
          overwrite: Optional[bool] = OverwriteOpt, crds_path: Optional[Path] = CrdsPathOpt,
          group: Optional[list[str]] = typer.Option(None, "--group", "-g", help="only this cleaning group "
                                                    "(repeatable; for HPC tasks; names: clean/groups/)"),
          first_pass: bool = typer.Option(False, "--first-pass", help="the first of the two cleaning passes only"),
          mosaic_mask: Optional[list[str]] = typer.Option(None, "--mosaic-mask", help="only the masks of this "
                                                          "first-pass mosaic (repeatable; pass 1 must be done)")):
    """Run the cleaning between stage 2 and stage 3 on a workspace (or one part of it)."""
    from ..errors import ConfigError
    from ..orchestrate import Scope

    if mosaic_mask and (group or first_pass):
        raise ConfigError("--mosaic-mask is a part of its own: give it without --group and --first-pass")
    cfg = _workspace_config(workspace, config, jobs, overwrite)
    scope = Scope(groups=tuple(group or ()), first_pass=first_pass, masks=tuple(mosaic_mask or ()))
    run_reduction(None, workspace, cfg, crds_path, stages=("clean",), scope=scope)


@app.command(name="stage3")
def stage3(workspace: Path = typer.Argument(..., help="workspace of an earlier run"),
           config: Optional[Path] = ConfigOpt, jobs: Optional[int] = JobsOpt,
           overwrite: Optional[bool] = OverwriteOpt, crds_path: Optional[Path] = CrdsPathOpt,
           package: bool = typer.Option(True, "--package/--no-package",
                                        help="package the mosaics afterwards (as run does)"),
           product: Optional[list[str]] = typer.Option(None, "--product", "-p", help="only this mosaic (repeatable; "
                                                       "for HPC tasks: the cleaning must be done; no packaging)")):
    """Run stage 3 (Image3: cal -> i2d mosaics) on a workspace, then package the mosaics."""
    from ..orchestrate import Scope

    cfg = _workspace_config(workspace, config, jobs, overwrite)
    run_reduction(None, workspace, cfg, crds_path, stages=("stage3",), package=package,
                  scope=Scope(products=tuple(product or ())))


@app.command()
def info(config: Optional[Path] = ConfigOpt, crds_path: Optional[Path] = CrdsPathOpt):
    """Versions, CRDS context and cache path, and the configuration in force."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__, crds_setup

    cfg = config_mod.load(config)
    typer.echo(f"mirim-reduce {__version__}")
    for pkg in ("jwst", "crds", "stcal", "stpipe", "stdatamodels", "numpy", "astropy", "photutils", "pysiaf"):
        try:
            typer.echo(f"  {pkg:13s} {version(pkg)}")
        except PackageNotFoundError:
            typer.echo(f"  {pkg:13s} not installed")
    path = crds_path or crds_setup.default_cache_path()
    typer.echo(f"CRDS cache    {path}{'' if path.is_dir() else ' (missing)'}")
    context = os.environ.get("CRDS_CONTEXT")
    if not context and path.is_dir():
        try:
            context = crds_setup._operational_context(path)
        except ReduceError:
            context = None
    typer.echo(f"CRDS context  {context or '(none)'}")
    typer.echo("")
    typer.echo(config_mod.to_toml(cfg), nl=False)


