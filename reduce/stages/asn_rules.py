"""Level-3 image associations of cal files with jwst's own association rules.

The pool is made by ``jwst.associations.mkpool`` from the files' primary headers, and the
associations by ``generate_per_candidate`` (the DMS algorithm: one candidate at a time) with the level-3 rules (``rules_level3``); of what
they make, the ``image3`` associations (rule ``Asn_Lv3Image``) are kept. So groups and
product names are those of MAST: one association per (program, observation candidate
``o00N``, target ``t00N``, filter, subarray), named ``jw{program}-o{obs}_t{target}_miri_
{filter}[-{subarray}]`` (no subarray suffix for FULL), and with ``mosaic_per = "filter"``
one per (program, target, filter, subarray) over the observations, named with the group
candidate ``c1000`` when more than one observation has it (a single-observation group is
the observation's own association, as the rules prune it).

Pool columns that headers do not give are filled as the DMS pools have them: ``obs_num``
from OBSERVTN and ``targetid`` numbered 1, 2, ... in order of first appearance (files sorted by
name) of TARGPROP, else TARGNAME (cal headers carry no TARGETID: the DMS pools take it from
the proposal's target list, which the headers do not give; mkpool numbers by TARGNAME).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exposure_pool", "image3_associations", "GROUP_CANDIDATE"]

#: The multi-observation candidate of ``mosaic_per = "filter"``: a DMS 'group' candidate.
GROUP_CANDIDATE = ("c1000", "group")

log = logging.getLogger(__name__)


@contextmanager
def _quiet_rules():
    """Hide the rules' 'not a Level 1b name' and 'path information' warnings: our members are
    cal files already, given by path."""
    logger = logging.getLogger("jwst.associations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Input association file contains path", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _targets(pool) -> list[str]:
    """Target id per pool row, numbered by first appearance of TARGPROP (else TARGNAME)."""
    seen: dict[str, int] = {}
    out = []
    for prop, name in zip(pool["targprop"], pool["targname"]):
        key = str(prop if prop not in (None, "", "null") else name)
        seen.setdefault(key, len(seen) + 1)
        out.append(str(seen[key]))
    return out


def exposure_pool(cal_files: list[Path], *, group: bool = False):
    """An ``AssociationPool`` of ``cal_files`` (one row each, ``filename`` = the path given).

    ``group``: also put every exposure in the multi-observation candidate ``GROUP_CANDIDATE``.
    """
    from jwst.associations.mkpool import mkpool

    files = [str(f) for f in sorted(cal_files, key=lambda p: (Path(p).name, str(p)))]
    pool = mkpool(files)  # FILENAME = the path; targetid by TARGNAME, redone below
    for col in pool.colnames:  # values lower case, as AssociationPool.read makes a DMS pool's
        if col != "filename":  # (the rules test SUBARRAY == 'full' before lowering the name)
            pool[col] = [str(v).lower() for v in pool[col]]
    if "targprop" not in pool.colnames:
        pool["targprop"] = ["null"] * len(pool)
    obs = [f"{int(o):03d}" for o in pool["observtn"]]
    pool["targetid"] = _targets(pool)
    pool["obs_num"] = [str(int(o)) for o in obs]
    extra = [GROUP_CANDIDATE] if group else []
    pool["asn_candidate"] = [str([(f"o{o}", "observation"), *extra]) for o in obs]
    return pool


def image3_associations(cal_files: list[Path], *, group: bool = False) -> list:
    """The finalized ``image3`` associations the level-3 rules make of ``cal_files``."""
    from jwst.associations.generator.generate_per_candidate import generate_per_candidate
    from jwst.associations.lib import rules_level3

    pool = exposure_pool(cal_files, group=group)
    with _quiet_rules():
        asns = generate_per_candidate(pool, rule_defs=[rules_level3.__file__], ignore_default=True,
                                      all_candidates=True, discover=False)
    return [a for a in asns if a["asn_type"] == "image3"]


def members(asn) -> list[str]:
    """The exposure paths of the (single-product) association ``asn``."""
    return [m["expname"] for p in asn["products"] for m in p["members"] if m["exptype"] == "science"]
