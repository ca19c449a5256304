"""Stage 3: cal -> i2d with jwst's Image3Pipeline, one association per mosaic.

Mosaics are grouped per (program, observation, filter) by default, or per (program,
filter) with ``mosaic_per = "filter"``. Associations are made with ``jwst.associations``
(``asn_from_list`` with the level-3 base rule), product names as MAST names them.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .. import identity
from ..config import step_overrides
from ..workspace import Workspace
from .task import Task


def mosaic_groups(cal_files: list[Path], mosaic_per: str) -> dict[str, list[Path]]:
    """Product name -> member cal files, from the files' primary headers."""
    from astropy.io import fits

    groups: dict[str, list[Path]] = defaultdict(list)
    for f in sorted(cal_files):
        h = fits.getheader(f)
        program = str(h["PROGRAM"]).zfill(5)
        filt = str(h["FILTER"]).lower()
        if mosaic_per == "filter":
            name = f"jw{program}-c1000_t001_miri_{filt}"
        else:
            name = f"jw{program}-o{str(h['OBSERVTN']).zfill(3)}_t001_miri_{filt}"
        groups[name].append(Path(f))
    return dict(sorted(groups.items()))


def plan(ws: Workspace, cal_files: list[Path], cfg: dict, *, crds_context: str,
         sky_subtracted: set[Path] = frozenset()) -> list[Task]:
    """One task per mosaic whose i2d is missing or was made from other member files (their
    identities), other parameters or other versions; all of them with OVERWRITE.

    ``sky_subtracted``: cal files whose sky (and detector-fixed pattern) the cleaning's super
    background already removed on source-masked pixels. A mosaic made only of such files skips
    skymatch, which would estimate the sky again over all pixels, galaxies included.
    """
    tasks = []
    for name, members in mosaic_groups(cal_files, cfg["mosaic_per"]).items():
        steps = step_overrides(cfg, "image3")
        if sky_subtracted and all(Path(m) in sky_subtracted for m in members):
            steps.setdefault("skymatch", {})["skip"] = True
        final_dir = ws.dir("stage3") / name
        i2d = final_dir / f"{name}_i2d.fits"
        made_of = {"stage": "stage3", "members": {Path(m).name: identity.read(Path(m)) for m in sorted(members)},
                   "steps": steps, "versions": identity.versions(crds_context)}
        ident = identity.digest(made_of)
        if identity.is_current(i2d, ident) and not cfg["OVERWRITE"]:
            continue
        tasks.append(Task(stage="stage3", name=name, inputs=[str(m) for m in members],
                          outputs=[str(i2d)], log=str(ws.log("stage3", name)),
                          steps=steps, final_dir=str(final_dir), identity=ident, made_of=made_of))
    return tasks


def association_text(members: list[str], product: str) -> str:
    """A level-3 association (JSON) of the cal files ``members`` with product name ``product``."""
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level3_base import DMS_Level3_Base

    asn = asn_from_list.asn_from_list(sorted(members), rule=DMS_Level3_Base, product_name=product)
    _, text = asn.dump(format="json")
    return text


def prepare_association(task: Task, workdir: Path) -> Path:
    """Write the level-3 association of ``task`` into ``workdir`` and return its path."""
    path = workdir / f"{task.name}_asn.json"
    path.write_text(association_text(task.inputs, task.name))
    return path
