"""jwst step parameters as the pipeline applies them, and where each value came from.

stpipe builds a step's parameters in this order, a later source winning (``Step.build_config``):
the step's spec default ("jwst default") < the CRDS parameter reference ``pars-<stepclass>``
(then the ``steps`` table of the pipeline's own ``pars-<pipeline>``) < a config file < the
call's arguments. mirim-reduce passes its configuration as the call's ``steps=`` argument, so
its values win over CRDS; within the configuration, "config default" (PIPELINE_DEFAULTS) <
"config file <path>" < "command line" (:mod:`reduce.config`).

:func:`lookup` finds, offline, which ``pars-*`` references CRDS selects for each exposure (as
stpipe does, from the exposure's CRDS parameters; a mosaic's from its first member) and reads
their values from the cache with stpipe's own reader; it is written to ``WORKSPACE/crds.json``.
:func:`provenance` combines that with the configuration into the manifest's
``step_parameters`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import PIPELINE_CLASSES, origins as config_origins
from ..errors import CrdsCacheError

PRECEDENCE = ["jwst default", "CRDS pars reference", "config default", "config file", "command line"]


def _pipelines() -> dict[str, Any]:
    from jwst import pipeline as jp

    return {section: getattr(jp, name) for section, name in PIPELINE_CLASSES.items()}


def reftypes() -> dict[str, dict[str, str]]:
    """{section: {step name, or "" for the pipeline itself: pars-* reference type}}."""
    return {section: {"": pipe.get_config_reftype(),
                      **{step: cls.get_config_reftype() for step, cls in pipe.step_defs.items()}}
            for section, pipe in _pipelines().items()}


def jsonable(value: Any) -> Any:
    """A parameter value as JSON can hold it (numpy scalars, tuples, configobj sections...)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_reference(path: Path) -> dict[str, Any]:
    """The values of a parameter reference, read as stpipe reads them: {class, name,
    parameters, steps {step: parameters}} (``steps`` only in a pipeline's)."""
    from stpipe import config_parser

    cfg = jsonable(dict(config_parser.load_config_file(str(path))))
    steps = {name: {k: v for k, v in pars.items() if k not in ("class", "name")}
             for name, pars in (cfg.pop("steps", None) or {}).items()}
    out = {"class": cfg.pop("class", ""), "name": cfg.pop("name", ""), "parameters": cfg}
    if steps:
        out["steps"] = steps
    return out


def preflight(cfg: dict) -> dict[str, Any]:
    """In a worker, before stage 1 (it imports jwst's pipelines, which the worker then keeps):
    check the config's step parameters against the step specs and return the reference types
    the CRDS check needs, ``{"required": [reftype], "pars": {section: {step: pars type}}}``."""
    from ..config import check_step_parameters
    from ..reftypes import required_reference_types

    check_step_parameters(cfg)
    return {"required": sorted(set().union(*required_reference_types().values())), "pars": reftypes()}


def lookup(files: list[Path], context: str, *, strict: bool = True,
           pars_types: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Which parameter references the CRDS ``context`` selects for each exposure, offline.

    Returns ``{"disabled": bool, "exposures": {stem: {reftype: file}}, "files": {file: values},
    "missing": {file: [stems]}}`` where only selected references are listed (N/A, no match and
    types the context does not know mean "no CRDS parameters", as in stpipe). ``disabled``:
    STPIPE_DISABLE_CRDS_STEPPARS is set, and stpipe ignores CRDS parameters (then nothing is
    looked up). ``missing``: selected but not in the cache, where stpipe would silently run
    without them: with ``strict``, a CrdsCacheError naming them instead.
    """
    import crds
    from stpipe.step import get_disable_crds_steppars

    from ..crds_tools import crds_parameters

    out: dict[str, Any] = {"disabled": get_disable_crds_steppars(), "exposures": {}, "files": {}, "missing": {}}
    if out["disabled"]:
        return out
    types = sorted({t for section in (pars_types or reftypes()).values() for t in section.values()})
    for f in files:
        stem = Path(f).name.removesuffix("_uncal.fits")
        params = crds_parameters(f)
        best = crds.getrecommendations(params, reftypes=types, context=context, observatory="jwst")
        chosen = {t: ref for t, ref in sorted(best.items()) if not ref.startswith("NOT FOUND")}
        out["exposures"][stem] = chosen
        for ref in chosen.values():
            path = Path(crds.locate_file(ref, "jwst"))
            if not path.is_file():
                out["missing"].setdefault(ref, []).append(stem)
            elif ref not in out["files"]:
                out["files"][ref] = read_reference(path)
    if strict and out["missing"]:
        shown = "; ".join(f"{ref} ({', '.join(stems[:3])}{'...' if len(stems) > 3 else ''})"
                          for ref, stems in sorted(out["missing"].items()))
        raise CrdsCacheError(f"CRDS context {context} selects parameter references the cache lacks: {shown}; "
                             f"fill it with `mirim-reduce crds sync --context {context} --for DIR`")
    return out


def jwst_defaults() -> dict[str, dict[str, dict[str, Any]]]:
    """{section: {step: {parameter: the installed jwst's default}}}."""
    return {section: {step: jsonable(pars) for step, pars in pipe().get_pars()["steps"].items()}
            for section, pipe in _pipelines().items()}


def _layers(section: str, step: str, refs: dict[str, str], pars: dict[str, Any], cfg: dict[str, Any],
            where: dict[str, str], types: dict[str, str]) -> dict[str, list[tuple[str, Any]]]:
    """{parameter: [(origin, value), ...]} in precedence order, jwst default excluded."""
    layers: dict[str, list[tuple[str, Any]]] = {}

    def add(origin: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            layers.setdefault(name, []).append((origin, jsonable(value)))

    step_ref, pipe_ref = refs.get(types[step]), refs.get(types[""])
    if step_ref in pars["files"]:
        add(f"CRDS pars reference {step_ref}", pars["files"][step_ref]["parameters"])
    if pipe_ref in pars["files"]:
        add(f"CRDS pars reference {pipe_ref}", pars["files"][pipe_ref].get("steps", {}).get(step, {}))
    for name, value in cfg[section].get(step, {}).items():
        if value is not None:
            layers.setdefault(name, []).append((where[f"{section}.{step}.{name}"], jsonable(value)))
    if section == "image3" and step == "skymatch" and cfg["SKIP_BKGSUB"]:
        layers.setdefault("skip", []).append((f"{where['SKIP_BKGSUB']} (SKIP_BKGSUB = true)", True))
    return layers


def provenance(cfg: dict[str, Any], pars: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's ``step_parameters``: for each pipeline, groups of exposures that share their
    parameter references, each with every step parameter that something sets: its value, origin
    (``"jwst default"``, ``"CRDS pars reference <file>"``, ``"config default"``, ``"config file
    <path>"``, ``"command line"``), the jwst default and the values it superseded.

    ``pars`` is :func:`lookup`'s result (None: no record, e.g. a workspace of an older version).
    Imports jwst (the CRDS environment is made serverless first if crds is not imported yet).
    """
    import sys

    from ..crds_setup import offline_environment

    if "crds" not in sys.modules:
        offline_environment()
    pars = pars or {"disabled": None, "exposures": {}, "files": {}}
    where, defaults, all_types = config_origins(cfg), jwst_defaults(), reftypes()
    out: dict[str, Any] = {"precedence": " < ".join(PRECEDENCE), "crds_disabled": pars.get("disabled")}
    for section, pipe in _pipelines().items():
        types = all_types[section]
        groups: dict[tuple, list[str]] = {}
        for stem, refs in sorted(pars.get("exposures", {}).items()):
            key = tuple(sorted((t, f) for t, f in refs.items() if t in types.values()))
            groups.setdefault(key, []).append(stem)
        entries = []
        for key, stems in (groups or {(): []}).items():
            refs = dict(key)
            steps: dict[str, Any] = {}
            for step in pipe.step_defs:
                default = defaults[section].get(step, {})
                params = {}
                for name, chain in sorted(_layers(section, step, refs, pars, cfg, where, types).items()):
                    origin, value = chain[-1]
                    entry = {"value": value, "origin": origin, "jwst_default": default.get(name)}
                    if len(chain) > 1:
                        entry["superseded"] = [{"origin": o, "value": v} for o, v in chain[:-1]]
                    params[name] = entry
                if params:
                    steps[step] = params
            pipe_ref = refs.get(types[""])
            if pipe_ref in pars["files"] and pars["files"][pipe_ref]["parameters"]:
                steps[pipe.__name__] = {n: {"value": v, "origin": f"CRDS pars reference {pipe_ref}"}
                                        for n, v in pars["files"][pipe_ref]["parameters"].items()}
            entries.append({"exposures": stems, "pars_references": refs, "steps": steps})
        out[section] = entries
    return out
