"""Typed configuration: a validated configuration parsed once into frozen sections.

:mod:`reduce.config` keeps the one schema (the TOML names, defaults, types, validation,
origins and ``config.toml``). Here every top-level key of that schema belongs to exactly one
field of one section: the field's ``metadata["key"]`` names it, and its default is the
schema's. Each part of the reduction receives its own section instead of the whole dict:

- :class:`RunParams`: the orchestrator (worker processes, OVERWRITE, the workspace);
- :class:`CleanParams`: the cleaning (:mod:`reduce.clean`), with its source masks
  :class:`MaskParams`;
- :class:`PipelineParams`: the stage planners (jwst step parameters, mosaics);
- :class:`PackageParams`: the packaging (:mod:`reduce.products`).

:func:`parse` makes all four (:class:`Params`). What records or checks the whole configuration
(``config.toml``, the manifest and its step-parameter provenance, the check against jwst's
step specifications) still reads the :class:`reduce.config.Config`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Mapping

from .clean.dqflags import JWST_GOOD_BITS
from .config import PIPELINE_CLASSES, PIPELINE_DEFAULTS, RUN_PARAMETERS, SEED_PARAMETERS

__all__ = ["RunParams", "MaskParams", "CleanParams", "PipelineParams", "PackageParams", "Params", "parse",
           "config_values"]

_SCHEMA = {**SEED_PARAMETERS, **RUN_PARAMETERS}


def _key(key: str, *, product: bool = True):
    """A field holding the configuration key ``key``, with the schema's default. ``product``:
    a section's ``parameters()`` (what the task identities record) include it."""
    return field(default=_SCHEMA[key][0], metadata={"key": key, "product": product})


def _keyed(cls, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """{field name: cfg[key]} of the fields of ``cls`` that hold a configuration key."""
    return {f.name: cfg[f.metadata["key"]] for f in fields(cls) if "key" in f.metadata}


def config_values(section, *, product_only: bool = False) -> dict[str, Any]:
    """{configuration key: value} of a section's keyed fields, nested sections' included
    (``product_only``: only those the products depend on)."""
    out = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if "key" in f.metadata and (f.metadata["product"] or not product_only):
            out[f.metadata["key"]] = value
        elif "key" not in f.metadata and is_dataclass(value):
            out.update(config_values(value, product_only=product_only))
    return out


@dataclass(frozen=True)
class RunParams:
    """How the run goes; nothing here changes a product."""

    jobs: int = _key("jobs")  #: worker processes (tasks run in parallel)
    overwrite: bool = _key("OVERWRITE")  #: redo work whose outputs are current
    working_directory: str = _key("WORKING_DIRECTORY")  #: the workspace ('' = --workdir or the default)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RunParams:
        return cls(**_keyed(cls, cfg))


@dataclass(frozen=True)
class MaskParams:
    """Source masks (:func:`reduce.clean.masks.source_mask`) of an exposure or a mosaic."""

    detect_thresh: float = _key("DETECT_THRESH")  #: detection threshold, in local background RMS
    small_source_thresh: int = _key("SMALL_SOURCE_THRESH")  #: pixels: smaller-or-equal sources leave the mask (0: none)
    dilate_seg: bool = _key("DILATE_SEG")  #: dilate the mask
    dilate_iterations: int = _key("DILATE_ITERATIONS")  #: 3x3 dilations (each grows the mask by 1 pixel)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MaskParams:
        return cls(**_keyed(cls, cfg))

    def parameters(self) -> dict[str, Any]:
        """{configuration key: value}: what a mask depends on (for task identities)."""
        return config_values(self, product_only=True)


@dataclass(frozen=True)
class CleanParams:
    """The cleaning between stage 2 and stage 3 (:mod:`reduce.clean`)."""

    mask: MaskParams = field(default_factory=MaskParams)  #: the exposures' and the mosaics' source masks
    median_filter: bool = _key("MEDIAN_FILTER")  #: fill bad pixels outside sources with their neighbours' median
    window_size: int = _key("WINDOW_SIZE")  #: pixels: half-width w of the (2w+1) x (2w+1) median window
    super_bkg_sub: bool = _key("SUPER_BKG_SUB")  #: subtract a background built from the group's other exposures
    median_thresh: int = _key("MEDIAN_THRESH")  #: exposures: fewer in a group make it a small group
    template_smooth: int = _key("template_smooth")  #: pixels: template smoothing box (0 = chosen, 1 = none)
    small_group_background: str = _key("small_group_background")  #: auto, template, background2d or none
    outlier_sigma: float = _key("clean_outlier_sigma")  #: sigma: also fill finite pixels this far above (0 = off)
    second_pass: bool = _key("clean_second_pass")  #: clean again with the first-pass mosaics' masks
    #: pixels: the first-pass mosaics' pixel maps are computed on this grid and interpolated
    mask_pixmap_stepsize: int = _key("clean_mask_pixmap_stepsize")
    suppress_warnings: bool = _key("SUPPRESS_WARNINGS", product=False)  #: Python warnings off the console
    #: DQ flags stage 3's resample accepts (``[image3.resample] good_bits``, else jwst's default):
    #: the others make a pixel bad for the masks and the median fill
    good_bits: str | int = JWST_GOOD_BITS

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> CleanParams:
        good_bits = cfg["image3"].get("resample", {}).get("good_bits")
        return cls(mask=MaskParams.from_config(cfg), **_keyed(cls, cfg),
                   good_bits=JWST_GOOD_BITS if good_bits is None else good_bits)

    @property
    def two_passes(self) -> bool:
        """The second pass runs (``clean_second_pass`` and ``SUPER_BKG_SUB``)."""
        return self.second_pass and self.super_bkg_sub

    def parameters(self) -> dict[str, Any]:
        """{configuration key: value} the cleaned files depend on (all but SUPPRESS_WARNINGS;
        ``good_bits`` is recorded on its own)."""
        return config_values(self, product_only=True)


def _frozen(tables: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Mapping:
    """A read-only copy of {pipeline: {step: {parameter: value}}}."""
    return MappingProxyType({p: MappingProxyType({s: MappingProxyType(copy.deepcopy(dict(v)))
                                                  for s, v in tables[p].items()})
                             for p in PIPELINE_CLASSES})


@dataclass(frozen=True)
class PipelineParams:
    """jwst's pipelines (stages 1 to 3) and the mosaics stage 3 makes. Read-only mappings:
    not sent to worker processes (tasks carry :meth:`steps`)."""

    #: {"detector1" | "image2" | "image3": {step: {parameter: value}}}, the configuration's tables
    tables: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=lambda: _frozen(PIPELINE_DEFAULTS))
    skip_bkgsub: bool = _key("SKIP_BKGSUB")  #: skip stage 3's skymatch
    mosaic_per: str = _key("mosaic_per")  #: 'observation' or 'filter': one mosaic per (observation,) filter

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PipelineParams:
        return cls(tables=_frozen(cfg), **_keyed(cls, cfg))

    def steps(self, pipeline: str) -> dict[str, dict[str, Any]]:
        """The ``steps=`` argument of a call of ``pipeline`` ("detector1", "image2", "image3"):
        a fresh dict (SKIP_BKGSUB skips stage 3's skymatch)."""
        steps = {step: copy.deepcopy(dict(params)) for step, params in self.tables[pipeline].items()}
        if pipeline == "image3" and self.skip_bkgsub:
            steps.setdefault("skymatch", {})["skip"] = True
        return steps


@dataclass(frozen=True)
class PackageParams:
    """The packaging of the mosaics (:mod:`reduce.products`)."""

    destination_directory: str = _key("DESTINATION_DIRECTORY")  #: where products go ('' = WORKSPACE/products)
    date: str = _key("DATE")  #: date stamp of product names, %d%b%Y ('' = the destination's earlier stamp, else today)
    make_cutouts: bool = _key("MAKE_CUTOUTS")  #: TA-box cutouts of the mosaics
    save_outputs: bool = _key("save_outputs", product=False)  #: also copy WORKSPACE/logs to DEST/logs

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> PackageParams:
        return cls(**_keyed(cls, cfg))


@dataclass(frozen=True)
class Params:
    """Every section of one configuration."""

    run: RunParams = field(default_factory=RunParams)
    clean: CleanParams = field(default_factory=CleanParams)
    pipeline: PipelineParams = field(default_factory=PipelineParams)
    package: PackageParams = field(default_factory=PackageParams)


def parse(cfg: Mapping[str, Any]) -> Params:
    """The sections of a validated configuration (:func:`reduce.config.load`)."""
    return Params(run=RunParams.from_config(cfg), clean=CleanParams.from_config(cfg),
                  pipeline=PipelineParams.from_config(cfg), package=PackageParams.from_config(cfg))
