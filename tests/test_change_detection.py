"""A rerun redoes exactly the tasks whose identity changed (reduce.identity), and the
workspace's records then describe the products on disk (slow: reruns on the demo workspace)."""

import json
import shutil

import pytest

from conftest import cli


def _stamps(ws):
    pats = ["stage1/*_rate.fits", "stage2/*_cal.fits", "pass1/clean/*_cal.fits", "pass1/masks/*_mask.fits",
            "clean/*_cal.fits", "stage3/*/*_i2d.fits"]
    return {str(p.relative_to(ws)): p.stat().st_mtime_ns for pat in pats for p in ws.glob(pat)}


def _copy(ws0, dst):
    shutil.copytree(ws0, dst, symlinks=True)
    for p in dst.glob(".lock*"):
        p.unlink()
    return dst


def _changed(before, after, prefix):
    return sorted(k for k in before if k.startswith(prefix) and after.get(k) != before[k])


@pytest.mark.slow
def test_changed_detect_thresh_redoes_cleaning_and_stage3_only(demo_run, crds_cache, tmp_path):
    raw, ws0, _ = demo_run
    ws = _copy(ws0, tmp_path / "ws")
    before = _stamps(ws)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("DETECT_THRESH = 8.0\n")
    cli("run", raw, "--workdir", ws, "--crds-path", crds_cache, "--config", cfg, "--jobs", "2")
    after = _stamps(ws)
    assert _changed(before, after, "stage1") == [] and _changed(before, after, "stage2") == []
    assert len(_changed(before, after, "pass1/clean")) == 14 and len(_changed(before, after, "clean/")) == 14
    assert len(_changed(before, after, "stage3")) == 4
    manifest = json.loads((ws / "products" / "manifest.json").read_text())
    assert "DETECT_THRESH = 8.0" in (ws / "config.toml").read_text()
    assert json.dumps(manifest).count('"DETECT_THRESH": 8.0') >= 1
    summary = json.loads((ws / "clean" / "clean_summary.json").read_text())
    assert summary["parameters"]["DETECT_THRESH"] == 8.0
    for p in ws.glob("clean/*_cal.fits"):  # every product's identity says what made it
        made = json.loads((p.parent / (p.name + ".task.json")).read_text())["made_of"]
        assert made["parameters"]["DETECT_THRESH"] == 8.0
    # the same command again: nothing to redo
    again = _stamps(ws)
    cli("run", raw, "--workdir", ws, "--crds-path", crds_cache, "--config", cfg, "--jobs", "2")
    assert _stamps(ws) == again


@pytest.mark.slow
def test_changed_input_redoes_its_chain_and_its_group(demo_run, crds_cache, tmp_path):
    import numpy as np
    from astropy.io import fits

    raw0, ws0, _ = demo_run
    raw = tmp_path / "raw"
    shutil.copytree(raw0, raw)
    ws = _copy(ws0, tmp_path / "ws")
    before = _stamps(ws)
    stem = "jw09999002001_02103_00001_mirimage"  # F2100W, observation 2: a group of two
    with fits.open(raw / f"{stem}_uncal.fits", mode="update") as h:  # the copy, never the session's
        h["SCI"].data[0, -1, 100, 100] = np.uint16(h["SCI"].data[0, -1, 100, 100] + 50)
    cli("run", raw, "--workdir", ws, "--crds-path", crds_cache, "--jobs", "2")
    after = _stamps(ws)
    assert _changed(before, after, "stage1") == [f"stage1/{stem}_rate.fits"]
    assert _changed(before, after, "stage2") == [f"stage2/{stem}_cal.fits"]
    f2100w = ["jw09999002001_02103_00001_mirimage", "jw09999002001_02103_00002_mirimage"]
    assert _changed(before, after, "pass1/clean") == [f"pass1/clean/{s}_cal.fits" for s in f2100w]
    assert _changed(before, after, "clean/") == [f"clean/{s}_cal.fits" for s in f2100w]
    assert _changed(before, after, "stage3") == ["stage3/jw09999-o002_t001_miri_f2100w-sub256/jw09999-o002_t001_miri_f2100w-sub256_i2d.fits"]
    manifest = json.loads((ws / "products" / "manifest.json").read_text())
    text = json.dumps(manifest)
    from reduce.fsutil import sha256_file

    assert sha256_file(raw / f"{stem}_uncal.fits") in text
