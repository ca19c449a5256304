"""Typed sections of the configuration: parsed once, the schema's defaults, frozen, and the
parameters the task identities record exactly as the dict gave them."""

import dataclasses
import json
import typing

import pytest

from reduce import config, identity
from reduce.clean.provenance import PARAMETER_KEYWORDS
from reduce.params import (CleanParams, MaskParams, PackageParams, Params, PipelineParams, RunParams, config_values,
                           parse)

SECTIONS = (RunParams, MaskParams, CleanParams, PipelineParams, PackageParams)
#: What the identities recorded before the sections (``{k: cfg[k] for k in ...}``).
CLEAN_KEYS = ("MEDIAN_FILTER", "WINDOW_SIZE", "SUPER_BKG_SUB", "SMALL_SOURCE_THRESH", "DILATE_SEG",
              "DILATE_ITERATIONS", "MEDIAN_THRESH", "DETECT_THRESH", "template_smooth",
              "small_group_background", "clean_outlier_sigma", "clean_second_pass", "clean_mask_pixmap_stepsize")
MASK_KEYS = ("DETECT_THRESH", "SMALL_SOURCE_THRESH", "DILATE_SEG", "DILATE_ITERATIONS")


def _configs(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('DETECT_THRESH = 4\nDILATE_SEG = false\nWINDOW_SIZE = 3\nclean_outlier_sigma = 6\n'
                 'small_group_background = "none"\nmosaic_per = "filter"\nDATE = "01Jan2025"\n'
                 '[image3.resample]\ngood_bits = "~DO_NOT_USE"\npixfrac = 0.8\n[image2.bkg_subtract]\nskip = true\n')
    return [config.defaults(), config.load(f), config.load(f, {"SKIP_BKGSUB": True, "jobs": 2, "OVERWRITE": True})]


def _keyed_fields():
    return [(cls, f) for cls in SECTIONS for f in dataclasses.fields(cls) if "key" in f.metadata]


def test_every_schema_key_is_in_one_section_with_its_type():
    schema = {**config.SEED_PARAMETERS, **config.RUN_PARAMETERS}
    keys = [f.metadata["key"] for _, f in _keyed_fields()]
    assert sorted(keys) == sorted(schema)  # each once
    for cls, f in _keyed_fields():
        assert typing.get_type_hints(cls)[f.name] is schema[f.metadata["key"]][1], f.name


def test_defaults_are_the_schemas():
    schema = {**config.SEED_PARAMETERS, **config.RUN_PARAMETERS}
    assert parse(config.defaults()) == Params()
    for section in (RunParams(), CleanParams(), PipelineParams(), PackageParams()):
        for key, value in config_values(section).items():
            assert value == schema[key][0] and type(value) is type(schema[key][0]), key
    assert PipelineParams().tables == config.PIPELINE_DEFAULTS


def test_parsed_once_from_a_config(tmp_path):
    cfg = _configs(tmp_path)[2]
    p = parse(cfg)
    assert p.run == RunParams(jobs=2, overwrite=True, working_directory="")
    assert p.clean.mask == MaskParams(detect_thresh=4.0, small_source_thresh=0, dilate_seg=False, dilate_iterations=2)
    assert (p.clean.window_size, p.clean.outlier_sigma, p.clean.good_bits) == (3, 6.0, "~DO_NOT_USE")
    assert p.clean.small_group_background == "none" and p.clean.two_passes
    assert p.pipeline.mosaic_per == "filter" and p.pipeline.skip_bkgsub
    assert p.package == PackageParams(destination_directory="", date="01Jan2025", make_cutouts=True)
    assert not CleanParams(second_pass=True, super_bkg_sub=False).two_passes


def test_sections_are_immutable(tmp_path):
    p = parse(_configs(tmp_path)[1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.clean.window_size = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.clean.mask.detect_thresh = 1.0
    with pytest.raises(TypeError):
        p.pipeline.tables["image3"]["resample"]["pixfrac"] = 1.0
    steps = p.pipeline.steps("image3")
    steps["resample"]["pixfrac"] = 1.0  # a fresh dict: the section keeps its value
    assert p.pipeline.steps("image3")["resample"]["pixfrac"] == 0.8


def _old_step_overrides(cfg, section):
    """reduce.config.step_overrides before the sections."""
    import copy

    steps = copy.deepcopy(cfg[section])
    if section == "image3" and cfg["SKIP_BKGSUB"]:
        steps.setdefault("skymatch", {})["skip"] = True
    return steps


def test_identity_parameters_are_unchanged(tmp_path):
    """Same keys, values and types as the dict lookups they replace: identities hash as before
    (a rerun of an existing workspace redoes nothing)."""
    for cfg in _configs(tmp_path):
        p = parse(cfg)
        pairs = [(p.clean.parameters(), {k: cfg[k] for k in CLEAN_KEYS}),
                 (p.clean.mask.parameters(), {k: cfg[k] for k in MASK_KEYS}),
                 (p.clean.good_bits, cfg["image3"].get("resample", {}).get("good_bits") or "~DO_NOT_USE+NON_SCIENCE")]
        pairs += [(p.pipeline.steps(s), _old_step_overrides(cfg, s)) for s in config.PIPELINE_CLASSES]
        for new, old in pairs:
            assert json.dumps(new, sort_keys=True) == json.dumps(old, sort_keys=True)
            assert identity.digest(new) == identity.digest(old)
    # the defaults' cleaning parameters, as recorded in every workspace made since
    # clean_mask_pixmap_stepsize (a change of this digest redoes every cleaning)
    assert identity.digest(CleanParams().parameters()) == (
        "8a269942ba453c5d6ed94ba6678397d22b91b3d725fb2599266cc11916fe9182")
    assert set(PARAMETER_KEYWORDS) == set(CleanParams().parameters())
