"""The second cleaning pass (``clean_second_pass``, on by default) in the demo workspace (slow)."""

import json
import shutil

import pytest

from conftest import cli


@pytest.mark.slow
def test_second_pass_products_and_masks(demo_run):
    from astropy.io import fits

    _, ws, _ = demo_run
    stems = sorted(p.name.removesuffix("_cal.fits") for p in ws.glob("stage2/*_cal.fits"))
    # the first pass lives in pass1/: cleaned files and their mosaics with the mosaic masks
    assert sorted(p.name.removesuffix("_cal.fits") for p in ws.glob("pass1/clean/*_cal.fits")) == stems
    # first-pass mosaics only where a super background was subtracted (not F2100W: 2 exposures)
    firsts = sorted(p.name for p in ws.glob("pass1/stage3/*/*_i2d.fits"))
    assert len(firsts) == 3 and not any("f2100w" in n for n in firsts), firsts
    masks = sorted(ws.glob("pass1/stage3/*/*_mosaic_mask.fits"))
    assert len(masks) == 3
    # the final cleaning is the second pass, and the projected masks added pixels
    summary = json.loads((ws / "clean" / "clean_summary.json").read_text())
    first = json.loads((ws / "pass1" / "clean" / "clean_summary.json").read_text())
    assert summary["pass"] == "pass 2" and first["pass"] == "pass 1"
    assert summary["parameters"]["clean_second_pass"] is True
    templated = [e for e in summary["exposures"].values() if e["template"]]
    assert len(templated) == 12  # F770W (7) and F1500W (5); F2100W (2) < MEDIAN_THRESH
    assert all(e["n_mosaic_masked"] > 0 for e in templated)
    for stem, e in summary["exposures"].items():  # a deeper mask: never fewer masked pixels
        assert e["fraction_masked"] >= first["exposures"][stem]["fraction_masked"] - 1e-9
    for m in masks:  # a mask on the mosaic grid: not empty, not everything
        with fits.open(m) as h:
            frac = h["MASK"].data.astype(bool).mean()
        assert 0.05 < frac < 0.8, (m.name, frac)
    notes = json.loads((ws / "summary.json").read_text())["notes"]
    assert any("second pass" in n and "mosaic mask" in n for n in notes), notes
    assert len(list(ws.glob("stage3/*/*_i2d.fits"))) == 4


@pytest.mark.slow
def test_second_pass_resumes_without_redoing(demo_run, crds_cache, tmp_path):
    _, ws0, _ = demo_run
    ws = tmp_path / "ws"
    shutil.copytree(ws0, ws, symlinks=True)  # copy2: modification times kept
    for p in ws.glob(".lock*"):
        p.unlink()
    files = sorted([*ws.glob("pass1/clean/*_cal.fits"), *ws.glob("pass1/stage3/*/*_i2d.fits"),
                    *ws.glob("clean/*_cal.fits"), *ws.glob("stage3/*/*_i2d.fits")])
    assert len(files) == 14 + 3 + 14 + 4
    stamps = {p: p.stat().st_mtime_ns for p in files}
    cli("clean", ws, "--crds-path", crds_cache)
    cli("stage3", ws, "--crds-path", crds_cache)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
