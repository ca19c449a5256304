"""Reference types the jwst pipelines ask CRDS for, read from the installed pipeline classes."""

from __future__ import annotations

PIPELINES = ("Detector1Pipeline", "Image2Pipeline", "Image3Pipeline")


def _pipeline_classes():
    from jwst import pipeline as jp

    return {name: getattr(jp, name) for name in PIPELINES}


def required_reference_types() -> dict[str, set[str]]:
    """{pipeline class name: reference types prefetched by its steps}.

    The union over *all* steps in ``step_defs`` (also those skipped by default, since a
    user may enable them): stpipe prefetches every type of every non-skipped step before
    running, and a type missing from the imap is fatal.
    """
    out = {}
    for name, pipe in _pipeline_classes().items():
        types: set[str] = set()
        for step in pipe.step_defs.values():
            types.update(step.reference_file_types)
        out[name] = types
    return out


def parameter_reference_types() -> set[str]:
    """``pars-<stepclass>`` types of the three pipelines and all their steps (step parameters)."""
    types = set()
    for pipe in _pipeline_classes().values():
        types.add(pipe.get_config_reftype())
        types.update(step.get_config_reftype() for step in pipe.step_defs.values())
    return types
