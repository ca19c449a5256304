"""The typer application, its option types and the helpers every command group shares."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import config as config_mod
from ..errors import check_folder

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


def config_from(config: Optional[Path], jobs: Optional[int], overwrite: Optional[bool]) -> dict:
    return config_mod.load(config, {"jobs": jobs, "OVERWRITE": overwrite})


def workdir_from(cfg: dict, workdir: Optional[Path], default: Path) -> Path:
    from ..params import RunParams

    configured = RunParams.from_config(cfg).working_directory
    path = workdir or (Path(configured) if configured else default)
    check_folder(path, "--workdir" if workdir else "WORKING_DIRECTORY" if configured else "workspace")
    return path


