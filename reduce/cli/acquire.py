"""``mirim-reduce`` commands of the acquire part, registered on the main typer app.

``fetch PROGRAM`` (MAST), ``crds sync`` (CRDS server) and ``crds check`` (offline), and the
hook ``run`` calls first: fetch when INPUT is a program id, then check the CRDS cache.
The MAST token comes from ``$MAST_API_TOKEN`` or ``--token-file``, never from an argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import DEFAULT_WORKDIR, CrdsPathOpt, app, crds_app  # noqa: F401  (commands register on these)


@app.command()
def fetch(program: str = typer.Argument(..., help="JWST program id: 3224, 03224 or jw03224"),
          workdir: Optional[Path] = typer.Option(None, "--workdir", "-w", help="workspace folder (files go to WORKDIR/raw)"),
          token_file: Optional[Path] = typer.Option(None, "--token-file",
                                                    help="file holding the MAST API token (else $MAST_API_TOKEN)"),
          dry_run: bool = typer.Option(False, "--dry-run", help="list what would be fetched, download nothing"),
          jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=16, help="parallel downloads")):
    """Download the MIRI imager uncal files of a JWST program from MAST (resumable, verified)."""
    from ..acquire import fetch as do_fetch
    from ..acquire.download import DownloadSettings

    do_fetch(program, workdir or DEFAULT_WORKDIR, token_file=token_file, dry_run=dry_run,
             settings=DownloadSettings(jobs=jobs), echo=typer.echo)


@crds_app.command("sync")
def crds_sync(context: str = typer.Option(..., "--context", help="CRDS context, e.g. jwst_1584.pmap"),
              for_dir: Optional[Path] = typer.Option(None, "--for", help="folder of *_uncal.fits: also fetch their references"),
              crds_path: Optional[Path] = CrdsPathOpt):
    """Fill the CRDS cache from the CRDS server: the context's mappings and the data's best references."""
    from .. import crds_tools

    report = crds_tools.sync(context, for_dir, crds_path, echo=lambda s: typer.echo(s, err=True))
    if report is not None:
        for line in report.lines():
            typer.echo(line)


@crds_app.command("check")
def crds_check(folder: Path = typer.Argument(..., help="folder of *_uncal.fits (e.g. WORKDIR/raw)"),
               context: Optional[str] = typer.Option(None, "--context", help="CRDS context (default $CRDS_CONTEXT or the cache's)"),
               crds_path: Optional[Path] = CrdsPathOpt):
    """Offline: is every reference these data need in the cache? Lists everything missing."""
    from .. import crds_tools

    report = crds_tools.check(folder, crds_path, context)
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise report.error()


def prepare_run_input(input: Path, workdir: Path) -> Path:
    """For ``run``: fetch a program id into WORKDIR/raw (the reduction then checks the CRDS
    cache for the data before it touches the workspace).

    Returns the folder to reduce. Raises before anything is written when MAST cannot be reached.
    """
    from ..acquire import is_program_argument

    if is_program_argument(input):
        from ..acquire import fetch as do_fetch

        input = do_fetch(str(input), workdir, echo=lambda s: typer.echo(s, err=True)).raw
    return input
