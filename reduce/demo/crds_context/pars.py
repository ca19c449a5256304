"""CRDS parameter references (``pars-<stepclass>``) for a context derived from an existing one.

The demo context maps every ``pars-*`` type to N/A: jwst's step defaults and mirim-reduce's
configuration apply. An operational context maps some of them (MIRI imaging: tweakreg,
skymatch, outlier_detection, resample, source_catalog, ...) to ASDF files holding the
instrument team's values, which stpipe applies between the step defaults and the call's
arguments. :func:`derive_context` writes such references into a *writable* cache, next to an
existing context, as a new context (``jwst_<serial>.pmap``) that is the base one plus those
references: the way to test that they are honoured offline, or to try a parameter set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import mappings

#: Match keys of the pars rmaps written here (the operational MIRI pars rmaps use EXP_TYPE too).
PARS_PARKEY = ("META.EXPOSURE.TYPE",)


def step_class(reftype: str):
    """The jwst Step (or Pipeline) class whose parameter reference type is ``reftype``."""
    from jwst import pipeline as jp

    from ...reftypes import PIPELINES

    for name in PIPELINES:
        pipe = getattr(jp, name)
        for cls in (pipe, *pipe.step_defs.values()):
            if cls.get_config_reftype() == reftype:
                return cls
    raise ValueError(f"no step of {', '.join(PIPELINES)} has the parameter reference type {reftype!r}")


def write_pars_reference(path: Path, reftype: str, parameters: Mapping[str, Any],
                         steps: Mapping[str, Mapping[str, Any]] | None = None,
                         description: str = "mirim-reduce test parameters") -> Path:
    """Write an ASDF parameter reference as stpipe exports them (``Step.export_config`` with the
    CRDS metadata): class, name, ``parameters``; for a pipeline also ``steps`` {step: parameters}."""
    from stpipe._config import StepConfig
    from stpipe.utilities import get_fully_qualified_class_name

    cls = step_class(reftype)
    sub = [StepConfig(get_fully_qualified_class_name(cls.step_defs[name]), name, dict(pars), [])
           for name, pars in (steps or {}).items()]
    name = getattr(cls, "class_alias", None) or cls.__name__
    with StepConfig(get_fully_qualified_class_name(cls), name, dict(parameters), sub).to_asdf(
            include_metadata=True) as af:
        af["meta"].update(author="mirim-reduce", description=description, origin="mirim-reduce",
                          pedigree="DUMMY", reftype=reftype.upper(), telescope="JWST",
                          useafter=mappings.MATCH_USEAFTER.replace(" ", "T"), instrument={"name": "MIRI"})
        af.write_to(path)
    return path


def derive_context(crds_path: Path, references: Mapping[str, Mapping[str, Any]], *, serial: int,
                   base: str | None = None, exp_type: str = "MIR_IMAGE") -> str:
    """Add a context to the cache at ``crds_path``: ``base`` (default: the operational context)
    with the parameter references ``references`` {reftype: parameters} (a pipeline's may hold a
    ``"steps"`` table), each selected for exposures of ``exp_type``. Returns the new pmap name.

    Writes ``references/jwst/miri/jwst_miri_<reftype>_<serial+1>.asdf``, one rmap per reftype, a
    new imap and a new pmap, with crds' own checksums; the base context is left as it is.
    """
    from crds.core import rmap

    from ...crds_setup import _operational_context

    crds_path = Path(crds_path)
    base = base or _operational_context(crds_path)
    mapdir = crds_path / "mappings" / "jwst"
    refdir = crds_path / "references" / "jwst" / "miri"
    pmap = rmap.load_mapping(str(mapdir / base))
    imap = rmap.load_mapping(str(mapdir / pmap.selector["MIRI"]))
    selections = dict(imap.selector)
    for reftype, params in references.items():
        if reftype not in selections:
            raise ValueError(f"{reftype} is not a reference type of {imap.name}")
        params = dict(params)
        ref = f"jwst_miri_{reftype}_{serial + 1:04d}.asdf"
        write_pars_reference(refdir / ref, reftype, {k: v for k, v in params.items() if k != "steps"},
                             steps=params.get("steps"))
        selections[reftype] = mappings.write_rmap(mapdir, reftype, [((exp_type,), ref)], serial=serial,
                                                  file_ext=".asdf", parkey=PARS_PARKEY)
    new_imap = mappings.write_imap(mapdir, selections, serial=serial)
    instruments = {k: v for k, v in pmap.selector.items()}
    instruments["MIRI"] = new_imap
    return mappings.write_pmap(mapdir, instruments, serial=serial)
