"""Stage 3: cal -> i2d with jwst's Image3Pipeline, one association per mosaic.

Mosaics are grouped, and named, by jwst's level-3 association rules (``asn_rules``): per
(program, observation, target, filter, subarray) by default, or per (program, target,
filter, subarray) with ``mosaic_per = "filter"``. The association file of each is written
with ``asn_from_list`` (level-3 base rule) under that product name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import identity
from ..params import PipelineParams
from ..workspace import Workspace
from .task import Task

log = logging.getLogger(__name__)


def mosaic_groups(cal_files: list[Path], mosaic_per: str) -> dict[str, list[Path]]:
    """Product name -> member cal files, as jwst's level-3 rules group them (see ``asn_rules``).

    ``mosaic_per = "observation"``: the observation candidates' associations; ``"filter"``:
    the group candidate's (``c1000``, over observations) and, for exposures in none, their
    observation's. Targets are never mixed. Files no image3 rule takes (background or TSO
    exposures, say) are in no mosaic, with a warning. The members are the files given, matched
    by exposure (the rules name every member ``<exposure>_cal.fits``), so uncal or rate files
    plan the same mosaics.
    """
    from .asn_rules import image3_associations, members

    if not cal_files:
        return {}
    asns = image3_associations(cal_files, group=(mosaic_per == "filter"))
    if mosaic_per == "filter":
        wide = [a for a in asns if a["asn_id"].startswith("c")]
        taken = {m for a in wide for m in members(a)}
        asns = wide + [a for a in asns if not a["asn_id"].startswith("c") and not set(members(a)) & taken]
    given = {_exposure(f): Path(f) for f in cal_files}
    groups: dict[str, list[Path]] = {}
    for a in asns:
        name = a["products"][0]["name"]
        if name in groups:
            raise ValueError(f"level-3 rules made two associations named {name}")
        groups[name] = sorted(given.get(_exposure(m), Path(m)) for m in members(a))
    left = sorted({str(f) for f in cal_files} - {str(m) for g in groups.values() for m in g})
    if left:
        log.warning("in no level-3 image association (jwst rules), not mosaicked: %s", ", ".join(left))
    return dict(sorted(groups.items()))


def _exposure(path) -> str:
    """A file's path without its product suffix (``.../jw..._mirimage_cal.fits`` -> ``.../jw..._mirimage``)."""
    path = Path(path)
    return str(path.with_name(path.name.rsplit("_", 1)[0]))


def mosaic_steps(pipeline: PipelineParams, members: list[Path], sky_subtracted: set[Path] = frozenset()) -> dict:
    """Image3's ``steps=`` for one mosaic: the config's overrides, and skymatch skipped when every
    member's sky was already removed on source-masked pixels (it would estimate it again over all
    pixels, galaxies included)."""
    steps = pipeline.steps("image3")
    if sky_subtracted and all(Path(m) in sky_subtracted for m in members):
        steps.setdefault("skymatch", {})["skip"] = True
    return steps


def plan(ws: Workspace, cal_files: list[Path], pipeline: PipelineParams, *, crds_context: str, overwrite: bool,
         sky_subtracted: set[Path] = frozenset(), only: list[str] | None = None) -> list[Task]:
    """One task per mosaic whose i2d is missing or was made from other member files (their
    identities), other parameters or other versions; all of them with ``overwrite``. ``only``:
    these mosaics only (by product name; an InputError names one that is not a mosaic).

    ``sky_subtracted``: cal files whose sky (and detector-fixed pattern) the cleaning's super
    background already removed on source-masked pixels. A mosaic made only of such files skips
    skymatch, which would estimate the sky again over all pixels, galaxies included.
    """
    tasks = []
    from ..errors import check_names

    mosaics = mosaic_groups(cal_files, pipeline.mosaic_per)
    check_names(only, mosaics, "mosaic", "mosaics")
    for name, members in mosaics.items():
        if only is not None and name not in only:
            continue
        steps = mosaic_steps(pipeline, members, sky_subtracted)
        final_dir = ws.dir("stage3") / name
        i2d = final_dir / f"{name}_i2d.fits"
        made_of = {"stage": "stage3", "members": {Path(m).name: identity.read(Path(m)) for m in sorted(members)},
                   "steps": steps, "versions": identity.versions(crds_context, "stages")}
        ident = identity.digest(made_of)
        if identity.is_current(i2d, ident) and not overwrite:
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
