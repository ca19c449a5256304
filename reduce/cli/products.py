"""``mirim-reduce`` commands of the products part, registered on the main typer app.

    mirim-reduce package WORKSPACE [--dest DIR] [--date 25Nov2026] [--cutout-size 120] [--no-cutouts]
    mirim-reduce verify RUN_DEST REFERENCE_DEST [--rtol 1e-4] [--atol 1e-4] [--exact] [--all]
    mirim-reduce verify RUN_DEST --reference tests/data/reference [--rtol ...] [--exact] [--all]
    mirim-reduce write-reference DEST [--out tests/data/reference] [--block 8]
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, crds_app  # noqa: F401  (commands register on these)


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
    from .. import config as config_mod
    from ..errors import InputError
    from ..params import PackageParams
    from ..products import package as run_package
    from ..workspace import Workspace

    if not (workspace / "stage3").is_dir():
        raise InputError(f"{workspace} is not a mirim-reduce workspace with stage 3 results")
    cfg_file = config or (workspace / "config.toml" if (workspace / "config.toml").is_file() else None)
    cfg = config_mod.load(cfg_file, {"DESTINATION_DIRECTORY": str(dest) if dest else None, "DATE": date,
                                     "MAKE_CUTOUTS": cutouts})
    ws = Workspace(workspace)
    with ws:
        result = run_package(ws, PackageParams.from_config(cfg), cfg, None, cutout_size=cutout_size)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{len(result.products)} products in {result.dest}; report {result.report}; manifest {result.manifest}")


@app.command()
def verify(run_dest: Path = typer.Argument(..., help="packaged products of the run to check (a DEST folder)"),
           reference_dest: Optional[Path] = typer.Argument(None, help="reference products (a DEST folder)"),
           reference: Optional[Path] = typer.Option(None, "--reference", help="a committed reference "
                                                    "(reference.json or its folder, e.g. tests/data/reference) "
                                                    "instead of REFERENCE_DEST"),
           rtol: float = typer.Option(1e-4, help="relative tolerance on data arrays"),
           atol: float = typer.Option(1e-4, help="absolute tolerance on data arrays"),
           exact: bool = typer.Option(False, "--exact", help="bit identity of every content hash"),
           show_all: bool = typer.Option(False, "--all", help="also list the parts that agree")):
    """Compare products with reference products (or a committed reference); exit 1 on any difference."""
    from ..products import verify as run_verify
    from ..products.reference import check_reference

    if (reference_dest is None) == (reference is None):
        raise typer.BadParameter("give either REFERENCE_DEST or --reference FILE")
    if reference is not None:
        result = check_reference(run_dest, reference, rtol=rtol, atol=atol, exact=exact)
    else:
        result = run_verify(run_dest, reference_dest, rtol=rtol, atol=atol, exact=exact)
    mode = "exact" if exact else f"rtol={rtol:g} atol={atol:g}"
    typer.echo(f"verify {run_dest} against {reference or reference_dest} ({mode})")
    typer.echo(result.table(show_ok=show_all))
    if not result.ok:
        raise typer.Exit(1)


@app.command("write-reference")
def write_reference(dest: Path = typer.Argument(..., help="packaged products of a run (a DEST folder with manifest.json)"),
                    out: Path = typer.Option(Path("tests/data/reference"), "--out", help="folder to (re)write"),
                    block: int = typer.Option(8, "--block", min=1, help="block size of the block means, pixels")):
    """Write a small reference of a run's products (content hashes, block means) for `verify --reference`."""
    from ..products.reference import write_reference as run_write

    ref = run_write(dest, out, block=block)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    typer.echo(f"reference of {len(ref['products'])} products in {out} ({size / 1e3:.0f} kB)")
