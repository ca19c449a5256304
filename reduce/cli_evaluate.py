"""``mirim-reduce`` commands of the evaluate part, registered on the main typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .cli import app, crds_app  # noqa: F401  (commands register on these)


@app.command()
def evaluate(workspace: Path = typer.Argument(..., help="workspace of a reduced simulated program"),
             truth: Optional[Path] = typer.Option(None, "--truth",
                                                  help="simulator truth folder (default WORKSPACE/raw/truth)"),
             as_json: bool = typer.Option(False, "--json", help="machine-readable output, one object per mosaic")):
    """Compare the mosaics with the simulator's truth: background RMS / noise floor, mean
    residual in noise units, background flatness (scatter of 16x16-pixel block medians of
    the sky / that of pure noise), and for point sources above 20 sigma the median, robust
    scatter (%) and trend (% per decade of flux) of recovered / true flux."""
    from .errors import InputError
    from .evaluate import GOALS, evaluate_workspace, find_truth, format_table

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
