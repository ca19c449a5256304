"""The ``mirim-reduce`` command line: parses arguments and calls the package. Nothing else."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from . import config as config_mod
from .errors import ReduceError, check_folder, from_os_error

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Reproducible reduction of JWST MIRI imaging with the jwst pipeline.")
crds_app = typer.Typer(no_args_is_help=True, help="The local CRDS cache.")
app.add_typer(crds_app, name="crds")

DEFAULT_DEMO_WORKDIR = Path("mirim-demo")
DEFAULT_WORKDIR = Path("mirim-work")

WorkdirOpt = typer.Option(None, "--workdir", "-w", help="workspace folder")
ConfigOpt = typer.Option(None, "--config", "-c", help="TOML configuration file")
JobsOpt = typer.Option(None, "--jobs", "-j", help="parallel worker processes")
OverwriteOpt = typer.Option(None, "--overwrite/--no-overwrite", help="redo finished work (OVERWRITE)")
CrdsPathOpt = typer.Option(None, "--crds-path", help="CRDS cache (default $CRDS_PATH or ~/.cache/mirim-reduce/crds)")


def _config(config: Optional[Path], jobs: Optional[int], overwrite: Optional[bool]) -> dict:
    return config_mod.load(config, {"jobs": jobs, "OVERWRITE": overwrite})


def _workdir(cfg: dict, workdir: Optional[Path], default: Path) -> Path:
    path = workdir or (Path(cfg["WORKING_DIRECTORY"]) if cfg["WORKING_DIRECTORY"] else default)
    check_folder(path, "--workdir" if workdir else "WORKING_DIRECTORY" if cfg["WORKING_DIRECTORY"] else "workspace")
    return path


def _run(input_dir, workdir, cfg, crds_path, crds_context=None, stages=None, only=None):
    from . import orchestrate

    kwargs = {"stages": stages} if stages else {}
    summary = orchestrate.reduce_folder(input_dir, workdir, cfg, crds_path=crds_path,
                                        crds_context=crds_context, only=only, **kwargs)
    orchestrate.print_summary(summary)
    _raise_disk_full(summary)
    orchestrate.raise_on_failures(summary)


def _raise_disk_full(summary) -> None:
    """A task that failed because the disk is full is exit 15 (disk full), not 6 (a task failed)."""
    from .acquire.errors import DiskFullError

    full = [o for o in summary.failures if any(m in (o["error"] or "") for m in
                                               ("[Errno 28]", "No space left on device", "Disk quota exceeded"))]
    if full:
        raise DiskFullError(f"disk full: {full[0]['stage']} {full[0]['name']} failed ({full[0]['error']}); free some "
                            f"space, then run the same command again (finished work is kept)")


@app.command()
def demo(workdir: Optional[Path] = WorkdirOpt, config: Optional[Path] = ConfigOpt,
         jobs: Optional[int] = JobsOpt, overwrite: Optional[bool] = OverwriteOpt,
         crds_path: Optional[Path] = CrdsPathOpt,
         seed: int = typer.Option(1, help="simulator seed"),
         size: str = typer.Option("small", help="small (subarray) or full (full frame)")):
    """Simulate the demo program and its CRDS context, then reduce it (no network needed)."""
    from .crds_context import DEMO_CONTEXT
    from .simulate import simulate_program
    from . import crds_setup

    cfg = _config(config, jobs, overwrite)
    workdir = _workdir(cfg, workdir, DEFAULT_DEMO_WORKDIR)
    crds_path = ensure_demo_context(crds_path or crds_setup.default_cache_path())
    simulate_program(workdir / "raw", seed=seed, size=size)
    _run(workdir / "raw", workdir, cfg, crds_path, DEMO_CONTEXT)


def ensure_demo_context(crds_path: Path) -> Path:
    """Build the synthetic demo CRDS context into ``crds_path`` unless it is there already."""
    from .crds_context import DEMO_CONTEXT, build_demo_context

    if not (crds_path / "mappings" / "jwst" / DEMO_CONTEXT).is_file():
        typer.echo(f"building the demo CRDS context {DEMO_CONTEXT} in {crds_path}", err=True)
        build_demo_context(crds_path)
    return crds_path


@app.command()
def run(input: Path = typer.Argument(..., help="folder of *_uncal.fits files, or a JWST program id (3224)"),
        workdir: Optional[Path] = WorkdirOpt, config: Optional[Path] = ConfigOpt,
        jobs: Optional[int] = JobsOpt, overwrite: Optional[bool] = OverwriteOpt,
        crds_path: Optional[Path] = CrdsPathOpt):
    """Reduce a folder of MIRI uncal files (or a JWST program id: fetched from MAST first)."""
    cfg = _config(config, jobs, overwrite)
    workdir = _workdir(cfg, workdir, DEFAULT_WORKDIR)
    input = cli_acquire.prepare_run_input(input, workdir)  # a program id is fetched first
    _run(input, workdir, cfg, crds_path)


def _stage_command(stage: str, doc: str):
    def command(workspace: Path = typer.Argument(..., help="workspace of an earlier run"),
                config: Optional[Path] = ConfigOpt, jobs: Optional[int] = JobsOpt,
                overwrite: Optional[bool] = OverwriteOpt, crds_path: Optional[Path] = CrdsPathOpt,
                exposure: Optional[list[str]] = typer.Option(None, "--exposure", "-e",
                                                             help="only this exposure (repeatable; for HPC arrays)")):
        check_folder(workspace, "workspace")
        cfg = _config(config or (workspace / "config.toml" if (workspace / "config.toml").is_file() else None),
                      jobs, overwrite)
        _run(None, workspace, cfg, crds_path, stages=(stage,), only=exposure)

    command.__doc__ = doc
    app.command(name=stage)(command)


_stage_command("stage1", "Run stage 1 (Detector1: uncal -> rate) on a workspace.")
_stage_command("stage2", "Run stage 2 (Image2: rate -> cal) on a workspace.")
_stage_command("clean", "Run the cleaning between stage 2 and stage 3 on a workspace.")
_stage_command("stage3", "Run stage 3 (Image3: cal -> i2d mosaics) on a workspace.")


@app.command()
def info(config: Optional[Path] = ConfigOpt, crds_path: Optional[Path] = CrdsPathOpt):
    """Versions, CRDS context and cache path, and the configuration in force."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__, crds_setup

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


@app.command()
def simulate(outdir: Path = typer.Argument(..., help="folder for the *_uncal.fits files and truth/"),
             seed: int = typer.Option(1, help="random seed"),
             size: str = typer.Option("small", help="small (subarray) or full (full frame)"),
             program: str = typer.Option("demo", help="demo, or a test program: brightsky, fullframe, "
                                                     "smalldither")):
    """Write a simulated program's uncal files and the truth they were made from."""
    from .errors import InputError
    from .simulate import PROGRAMS, simulate_program

    if program not in PROGRAMS:
        raise InputError(f"unknown program {program!r}: one of {', '.join(PROGRAMS)}")
    if size not in ("small", "full"):
        raise InputError(f"unknown size {size!r}: small or full")
    files = simulate_program(outdir, seed=seed, size=size, program=program)
    typer.echo(f"{len(files)} uncal files ({program}) in {outdir}")


@crds_app.command("build-demo-context")
def build_demo_context(crds_path: Path = typer.Argument(..., help="cache folder to create or complete"),
                       overwrite: bool = typer.Option(False, help="rebuild even if present")):
    """Build the synthetic MIRI imaging CRDS context and its reference files."""
    from .crds_context import build_demo_context as build

    name = build(crds_path, overwrite=overwrite)
    typer.echo(f"CRDS context {name} in {crds_path}")


# Commands of the other parts register themselves on ``app`` / ``crds_app``.
from . import cli_acquire, cli_evaluate, cli_products  # noqa: E402,F401


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry: one-line errors with an exit code, tracebacks only with --debug."""
    from .crds_setup import offline_environment

    offline_environment()  # before anything imports crds
    # pysiaf logs a warning at import when it cannot reach GitHub to compare SIAF versions.
    logging.getLogger("pysiaf").setLevel(logging.ERROR)
    # SIGTERM (docker stop, batch schedulers) stops like Ctrl-C: workers finish or are
    # cancelled, the lock is released, and the workspace stays resumable.
    signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--debug"]
    try:
        rc = app(args=args, prog_name="mirim-reduce", standalone_mode=False)
        if rc == 130:  # typer turns KeyboardInterrupt (Ctrl-C, our SIGTERM handler) into 130
            raise KeyboardInterrupt
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except ReduceError as exc:
        _fail(exc, debug)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted: the workspace is resumable, run the same command again", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: typer's own message and exit code
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        mapped = from_os_error(exc)  # disk full, read-only or forbidden files: documented codes
        if mapped is not None:
            _fail(mapped, debug)
        if debug:
            traceback.print_exc()
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}"
                   f"{'' if debug else ' (rerun with --debug for a traceback)'}", err=True)
        sys.exit(70)


def _fail(exc: ReduceError, debug: bool) -> None:
    """``error: <message>`` and the error's own exit code (with --debug, the traceback first)."""
    if debug:
        traceback.print_exc()
    typer.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


if __name__ == "__main__":
    # ``python -m reduce.cli``: run the importable module's app, on which the other parts'
    # commands (cli_acquire, cli_products, cli_evaluate) are registered, not this __main__ copy.
    from reduce.cli import main as _main

    _main()
