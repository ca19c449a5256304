"""Bad input: one clear line on stderr, a non-zero exit code, no traceback."""

import os
import subprocess
import sys

import numpy as np


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True,
                          text=True, env=os.environ.copy())


def assert_one_line_error(proc, code, text):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_empty_folder(tmp_path):
    proc = run_cli("run", tmp_path, "--workdir", tmp_path / "ws")
    assert_one_line_error(proc, 3, "no *_uncal.fits files")
    assert not (tmp_path / "ws").exists()


def test_missing_crds_cache(tmp_path, crds_cache):
    from reduce.simulate import demo_program, make_scene, write_exposure

    write_exposure(tmp_path, demo_program()[0], make_scene(1), rng=np.random.default_rng(1))
    proc = run_cli("run", tmp_path, "--workdir", tmp_path / "ws", "--crds-path", tmp_path / "no-cache")
    assert_one_line_error(proc, 4, "does not exist")


def test_uncovered_subarray_names_the_reference_before_any_stage(tmp_path, crds_cache):
    from reduce.simulate import demo_program, make_scene, write_exposure

    raw = tmp_path / "raw"
    raw.mkdir()
    write_exposure(raw, demo_program()[0], make_scene(1), rng=np.random.default_rng(1))
    f = next(raw.glob("*_uncal.fits"))
    # The same exposure labelled with a subarray the context does not cover.
    from astropy.io import fits
    fits.setval(f, "SUBARRAY", value="MASK1065")
    proc = run_cli("run", raw, "--workdir", tmp_path / "ws", "--crds-path", crds_cache)
    assert_one_line_error(proc, 4, "has no")
    assert "MASK1065" in proc.stderr and f.name in proc.stderr
    assert not list((tmp_path / "ws" / "stage1").glob("*.fits"))


def test_bad_config_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("DETECT_TRESH = 3\n")
    proc = run_cli("run", tmp_path, "--config", cfg)
    assert_one_line_error(proc, 2, "DETECT_TRESH")


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("run", tmp_path, "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
