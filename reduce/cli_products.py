"""``mirim-reduce`` commands of the products part, registered on the main typer app.

    mirim-reduce package WORKSPACE [--dest DIR] [--date 25Nov2026] [--cutout-size 120] [--no-cutouts]
    mirim-reduce verify RUN_DEST REFERENCE_DEST [--rtol 1e-4] [--atol 1e-4] [--exact] [--all]
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli import app, crds_app  # noqa: F401  (commands register on these)


@app.command()
def package(workspace: Path = typer.Argument(..., help="workspace of a finished run"),
            dest: Optional[Path] = typer.Option(None, "--dest", help="DESTINATION_DIRECTORY (default: the config's, "
                                                                      "else WORKSPACE/products)"),
            date: Optional[str] = typer.Option(None, "--date", help="DATE stamp of product names, %d%b%Y"),
            cutouts: Optional[bool] = typer.Option(None, "--cutouts/--no-cutouts", help="MAKE_CUTOUTS"),
            cutout_size: int = typer.Option(120, "--cutout-size", min=8, help="TA-box cutout size in mosaic pixels"),
            config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML configuration file "
                                                                               "(default WORKSPACE/config.toml)")):
    """Package a workspace's mosaics: sorted names, TA-box cutouts, report.html, manifest.json."""
    from . import config as config_mod
    from .errors import InputError
    from .products import package as run_package
    from .workspace import Workspace

    if not (workspace / "stage3").is_dir():
        raise InputError(f"{workspace} is not a mirim-reduce workspace with stage 3 results")
    cfg_file = config or (workspace / "config.toml" if (workspace / "config.toml").is_file() else None)
    cfg = config_mod.load(cfg_file, {"DESTINATION_DIRECTORY": str(dest) if dest else None, "DATE": date,
                                     "MAKE_CUTOUTS": cutouts})
    ws = Workspace(workspace)
    with ws:
        result = run_package(ws, cfg, None, cutout_size=cutout_size)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{len(result.products)} products in {result.dest}; report {result.report}; manifest {result.manifest}")


@app.command()
def verify(run_dest: Path = typer.Argument(..., help="packaged products of the run to check (a DEST folder)"),
           reference_dest: Path = typer.Argument(..., help="reference products (a DEST folder)"),
           rtol: float = typer.Option(1e-4, help="relative tolerance on data arrays"),
           atol: float = typer.Option(1e-4, help="absolute tolerance on data arrays"),
           exact: bool = typer.Option(False, "--exact", help="bit identity of every content hash"),
           show_all: bool = typer.Option(False, "--all", help="also list the parts that agree")):
    """Compare products with reference products; exit 1 on any difference."""
    from .products import verify as run_verify

    result = run_verify(run_dest, reference_dest, rtol=rtol, atol=atol, exact=exact)
    mode = "exact" if exact else f"rtol={rtol:g} atol={atol:g}"
    typer.echo(f"verify {run_dest} against {reference_dest} ({mode})")
    typer.echo(result.table(show_ok=show_all))
    if not result.ok:
        raise typer.Exit(1)
