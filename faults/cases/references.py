"""The CRDS cache damaged: a truncated or missing reference, a context that is not a pipeline's."""

from __future__ import annotations

import shutil

from ..harness import copy_tree, listing, truncate
from . import case

FLAT = "references/jwst/miri/jwst_miri_flat_9002.fits"
PHOTOM = "references/jwst/miri/jwst_miri_photom_9001.fits"


def _damaged(s, c, damage, mentions) -> None:
    d = s.case_dir(c.name)
    crds = d / "crds"
    copy_tree(s.crds, crds)
    ws = s.new_workspace(d)
    before = listing(ws)
    damage(crds)
    res = s.cli(*s.run_args(s.raw, ws, crds), case=c, log=d / "fault")
    s.check_one_line(c, res, 4, mentions=mentions)
    c.check("the workspace is untouched", listing(ws) == before)
    return d, crds, ws


@case("truncated-reference", f"{FLAT.rsplit('/', 1)[1]} truncated to half its size in a copy of the cache")
def truncated_reference(s, c):
    def damage(crds):
        p = crds / FLAT
        truncate(p, p.stat().st_size // 2)

    d, crds, ws = _damaged(s, c, damage, ("jwst_miri_flat_9002.fits",))
    shutil.copy2(s.crds / FLAT, crds / FLAT)  # the fix: restore the file
    s.rerun_and_verify(c, ws, crds=crds)


@case("missing-reference", f"{PHOTOM.rsplit('/', 1)[1]} deleted from a copy of the cache")
def missing_reference(s, c):
    d, crds, ws = _damaged(s, c, lambda crds: (crds / PHOTOM).unlink(), ("jwst_miri_photom_9001.fits",))
    shutil.copy2(s.crds / PHOTOM, crds / PHOTOM)
    s.rerun_and_verify(c, ws, crds=crds)


@case("crds-context-imap", "CRDS_CONTEXT=jwst_miri_9000.imap (an instrument mapping, not a pipeline context)")
def crds_context_imap(s, c):
    d = s.case_dir(c.name)
    ws = s.new_workspace(d)
    before = listing(ws)
    res = s.cli(*s.run_args(s.raw, ws), case=c, log=d / "fault", env=s.env(CRDS_CONTEXT="jwst_miri_9000.imap"))
    s.check_one_line(c, res, 4, mentions=("jwst_miri_9000.imap",))
    c.check("the workspace is untouched", listing(ws) == before)
    s.rerun_and_verify(c, ws)  # the fix: CRDS_CONTEXT unset (or a .pmap)
