"""Demo commands (the only ones that import :mod:`reduce.demo` parts, inside the command):
``demo``, ``simulate``, ``crds build-demo-context``, ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .app import ConfigOpt, CrdsPathOpt, DEFAULT_DEMO_WORKDIR, JobsOpt, OverwriteOpt, WorkdirOpt, app, config_from, crds_app, workdir_from
from .reduction import run_reduction


@app.command()
def demo(workdir: Optional[Path] = WorkdirOpt, config: Optional[Path] = ConfigOpt,
         jobs: Optional[int] = JobsOpt, overwrite: Optional[bool] = OverwriteOpt,
         crds_path: Optional[Path] = CrdsPathOpt,
         seed: int = typer.Option(1, help="simulator seed"),
         size: str = typer.Option("small", help="small (subarray) or full (full frame)")):
    """Simulate the demo program and its CRDS context, then reduce it (no network needed)."""
    from ..demo.crds_context import DEMO_CONTEXT
    from ..demo.simulate import simulate_program
    from .. import crds_setup

    cfg = config_from(config, jobs, overwrite)
    workdir = workdir_from(cfg, workdir, DEFAULT_DEMO_WORKDIR)
    crds_path = ensure_demo_context(crds_path or crds_setup.default_cache_path())
    simulate_program(workdir / "raw", seed=seed, size=size)
    run_reduction(workdir / "raw", workdir, cfg, crds_path, DEMO_CONTEXT)


def ensure_demo_context(crds_path: Path) -> Path:
    """Build the synthetic demo CRDS context into ``crds_path`` unless it is there already."""
    from ..demo.crds_context import DEMO_CONTEXT, build_demo_context

    if not (crds_path / "mappings" / "jwst" / DEMO_CONTEXT).is_file():
        typer.echo(f"building the demo CRDS context {DEMO_CONTEXT} in {crds_path}", err=True)
        build_demo_context(crds_path)
    return crds_path


@app.command()
def simulate(outdir: Path = typer.Argument(..., help="folder for the *_uncal.fits files and truth/"),
             seed: int = typer.Option(1, help="random seed"),
             size: str = typer.Option("small", help="small (subarray) or full (full frame)"),
             program: str = typer.Option("demo", help="demo, or a test program: brightsky, fullframe, "
                                                     "smalldither")):
    """Write a simulated program's uncal files and the truth they were made from."""
    from ..errors import InputError
    from ..demo.simulate import PROGRAMS, simulate_program

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
    from ..demo.crds_context import build_demo_context as build

    name = build(crds_path, overwrite=overwrite)
    typer.echo(f"CRDS context {name} in {crds_path}")


@app.command()
def evaluate(workspace: Path = typer.Argument(..., help="workspace of a reduced simulated program"),
             truth: Optional[Path] = typer.Option(None, "--truth",
                                                  help="simulator truth folder (default WORKSPACE/raw/truth)"),
             as_json: bool = typer.Option(False, "--json", help="machine-readable output, one object per mosaic")):
    """Compare the mosaics with the simulator's truth: background RMS / noise floor, mean
    residual in noise units, background flatness (scatter of 16x16-pixel block medians of
    the sky / that of pure noise), and for point sources above 20 sigma the median, robust
    scatter (%) and trend (% per decade of flux) of recovered / true flux."""
    from ..errors import InputError
    from ..demo.evaluate import GOALS, evaluate_workspace, find_truth, format_table

    if not workspace.is_dir():
        raise InputError(f"workspace {workspace} does not exist")
    find_truth(workspace, truth)  # one-line error before any work
    rows = evaluate_workspace(workspace, truth)
    if as_json:
        typer.echo(json.dumps([r.brief() for r in rows], indent=2))
        return
    typer.echo(format_table(rows))
    typer.echo(f"goals: rms_ratio <= {GOALS['rms_ratio']}, |mean_sigma| <= {GOALS['mean_sigma']}, "
               f"|flux_ratio - 1| <= {GOALS['flux_ratio']}")
