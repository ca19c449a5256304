"""The configuration schema: the seed's names and defaults, overrides, and errors that name the key."""

import tomllib

import pytest

from reduce import config
from reduce.errors import ConfigError

SEED_DEFAULTS = {
    "save_outputs": False, "DETECT_THRESH": 10.0, "OVERWRITE": False, "MEDIAN_FILTER": True,
    "WINDOW_SIZE": 1, "SUPER_BKG_SUB": True, "SMALL_SOURCE_THRESH": 0, "DILATE_SEG": True,
    "DILATE_ITERATIONS": 2, "MEDIAN_THRESH": 5, "SUPPRESS_WARNINGS": True,
    "DESTINATION_DIRECTORY": "", "WORKING_DIRECTORY": "", "DATE": "", "MAKE_CUTOUTS": True,
    "SKIP_BKGSUB": False,
}


def test_defaults_are_the_seeds():
    cfg = config.defaults()
    for key, value in SEED_DEFAULTS.items():
        assert cfg[key] == value and type(cfg[key]) is type(value), key


def test_file_then_flags_override(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('DETECT_THRESH = 5\nWINDOW_SIZE = 2\n[image3.tweakreg]\nsearchrad = 2.5\n')
    cfg = config.load(f, {"WINDOW_SIZE": 3, "jobs": None})
    assert cfg["DETECT_THRESH"] == 5.0 and isinstance(cfg["DETECT_THRESH"], float)
    assert cfg["WINDOW_SIZE"] == 3
    assert cfg["jobs"] == 1
    assert cfg["image3"]["tweakreg"] == {"minobj": 7, "searchrad": 2.5, "separation": 1.0, "tolerance": 0.7}


@pytest.mark.parametrize("text, key", [
    ("NOT_A_KEY = 1", "NOT_A_KEY"),
    ("WINDOW_SIZE = 'big'", "WINDOW_SIZE"),
    ("MEDIAN_FILTER = 1", "MEDIAN_FILTER"),
    ("WINDOW_SIZE = true", "WINDOW_SIZE"),
    ("DATE = '2024-05-22'", "DATE"),
    ("mosaic_per = 'visit'", "mosaic_per"),
    # numbers: finite and in a sensible range (issue 12, defect 6)
    ("DETECT_THRESH = -3.0", "DETECT_THRESH"),
    ("DETECT_THRESH = 0", "DETECT_THRESH"),
    ("DETECT_THRESH = nan", "DETECT_THRESH"),
    ("DETECT_THRESH = inf", "DETECT_THRESH"),
    ("WINDOW_SIZE = 0", "WINDOW_SIZE"),
    ("WINDOW_SIZE = 100000", "WINDOW_SIZE"),
    ("DILATE_ITERATIONS = -1", "DILATE_ITERATIONS"),
    ("DILATE_ITERATIONS = 5000", "DILATE_ITERATIONS"),
    ("MEDIAN_THRESH = 0", "MEDIAN_THRESH"),
    ("SMALL_SOURCE_THRESH = -2", "SMALL_SOURCE_THRESH"),
    ("template_smooth = -1", "template_smooth"),
    ("jobs = 0", "jobs"),
    ("clean_outlier_sigma = -1.0", "clean_outlier_sigma"),
    ("clean_outlier_sigma = nan", "clean_outlier_sigma"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    f = tmp_path / "c.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError, match=key):
        config.load(f)


def test_invalid_toml_and_missing_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("WINDOW_SIZE = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(f)
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_effective_config_round_trips():
    cfg = config.load(None, {"DETECT_THRESH": 3.5, "DATE": "22May2024"})
    again = config.load(None)
    again = config.merge(again, tomllib.loads(config.to_toml(cfg)), "round trip")
    assert again == cfg


def test_step_parameters_checked_against_the_pipeline():
    cfg = config.defaults()
    config.check_step_parameters(cfg)  # the built-in set is valid for the installed jwst
    for section, step, name, value, match in [
        ("image3", "tweakreg", "searchradius", 1.0, "image3.tweakreg.searchradius"),
        ("image3", "tweakreg", "minobj", "seven", "image3.tweakreg.minobj"),
        ("image3", "resample", "kernel", "box", "image3.resample.kernel"),
        ("detector1", "no_such_step", "skip", True, "no_such_step"),
    ]:
        bad = config.merge(config.defaults(), {section: {step: {name: value}}}, "test")
        with pytest.raises(ConfigError, match=match):
            config.check_step_parameters(bad)


def test_skip_bkgsub_skips_skymatch():
    from reduce.params import parse

    cfg = config.load(None, {"SKIP_BKGSUB": True})
    assert parse(cfg).pipeline.steps("image3")["skymatch"]["skip"] is True
    assert "skip" not in parse(config.defaults()).pipeline.steps("image3")["skymatch"]


def test_origins_follow_the_load_order(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('DETECT_THRESH = 5\n[image3.tweakreg]\nsearchrad = 2.5\n[image3.source_catalog]\nnpixels = 30\n')
    cfg = config.load(f, {"WINDOW_SIZE": 3, "jobs": None})
    where = config.origins(cfg)
    assert where["DETECT_THRESH"] == where["image3.tweakreg.searchrad"] == f"config file {f.absolute()}"
    assert where["image3.source_catalog.npixels"] == f"config file {f.absolute()}"
    assert where["WINDOW_SIZE"] == "command line"
    assert where["jobs"] == where["image3.tweakreg.minobj"] == where["detector1.jump.maximum_cores"] == "config default"
    assert config.origins(config.defaults()) == {k: "config default" for k in config.origins(config.defaults())}


def test_effective_config_keeps_origins_and_gains_only_comments(tmp_path):
    import re

    f = tmp_path / "c.toml"
    f.write_text('[image3.tweakreg]\nsearchrad = 2.5\n')
    cfg = config.load(f, {"DETECT_THRESH": 4.0})
    text = config.to_toml(cfg)
    assert re.sub(r"  # from: .*", "", text) == config.to_toml(dict(cfg))  # the content as before
    assert "searchrad = 2.5  # from: config file" in text and "DETECT_THRESH = 4.0  # from: command line" in text
    eff = tmp_path / "config.toml"
    eff.write_text(text)
    again = config.load(eff)
    assert again == cfg and again.origins == cfg.origins  # a stage rerun keeps the run's origins
    eff.write_text(text.replace("minobj = 7", "minobj = 8"))  # edited by hand: that file is the origin
    assert config.origins(config.load(eff))["image3.tweakreg.minobj"] == f"config file {eff.absolute()}"
    user = tmp_path / "user.toml"  # a user's file: comments are just comments
    user.write_text('WINDOW_SIZE = 2  # from: command line\n')
    assert config.origins(config.load(user))["WINDOW_SIZE"] == f"config file {user.absolute()}"


def test_numbers_in_range_are_accepted(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("DETECT_THRESH = 0.5\nWINDOW_SIZE = 516\nDILATE_ITERATIONS = 0\nclean_outlier_sigma = 0\n"
                 "template_smooth = 65\nMEDIAN_THRESH = 2\n")
    cfg = config.load(f)
    assert (cfg["DETECT_THRESH"], cfg["WINDOW_SIZE"], cfg["clean_outlier_sigma"]) == (0.5, 516, 0.0)


def test_bad_number_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    f = tmp_path / "c.toml"
    f.write_text("DETECT_THRESH = nan\n")
    proc = subprocess.run([sys.executable, "-m", "reduce.cli", "run", tmp_path, "--config", f],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: config key 'DETECT_THRESH' must be a finite number > 0, got nan"], proc.stderr
