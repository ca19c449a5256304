"""The real jwst pipeline, end to end on the demo program, checked against the simulator's truth.

Runs the CLI in a subprocess (as a user would) on the simulated demo program plus a target
acquisition and an LRS exposure that must be skipped. Tolerances reached are in the asserts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

pytestmark = pytest.mark.slow


def cli(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"mirim-reduce {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def demo(crds_cache, tmp_path_factory):
    from reduce.simulate import make_scene, demo_program, write_exposure

    root = tmp_path_factory.mktemp("e2e")
    raw = root / "raw"
    cli("simulate", raw)
    spec = demo_program()[0]
    scn = make_scene(1)
    rng = np.random.default_rng(5)
    write_exposure(raw / "jw09999003001_02101_00001_mirimage_uncal.fits", spec, scn, rng=rng,
                   exp_type="MIR_TACQ", observation=3, ngroups=5)
    write_exposure(raw / "jw09999004001_02101_00001_mirimage_uncal.fits", spec, scn, rng=rng,
                   exp_type="MIR_LRS-FIXEDSLIT", observation=4, ngroups=5)
    ws = root / "ws"
    proc = cli("run", raw, "--workdir", ws, "--jobs", "2", "--crds-path", crds_cache)
    return raw, ws, proc


def _truth(raw):
    from reduce.simulate.truth import load_truth
    return load_truth(raw)


def test_every_observation_and_filter_has_a_mosaic(demo):
    raw, ws, proc = demo
    truth = _truth(raw)
    expected = {f"jw{e['program']}-o{int(e['observation']):03d}_t001_miri_{e['filter'].lower()}"
                for e in truth["exposures"]}
    made = {p.parent.name for p in (ws / "stage3").glob("*/*_i2d.fits")}
    assert made == expected and len(made) >= 3
    summary = json.loads((ws / "summary.json").read_text())
    assert not [o for o in summary["outcomes"] if not o["ok"]]
    assert len(summary["exposures"]) == len(truth["exposures"])
    assert "products (" in proc.stderr + proc.stdout  # the console summary was printed


def test_non_imaging_exposures_are_skipped_with_reason(demo):
    raw, ws, _ = demo
    skipped = dict(json.loads((ws / "summary.json").read_text())["skipped"])
    assert "EXP_TYPE=MIR_TACQ" in skipped["jw09999003001_02101_00001_mirimage_uncal.fits"]
    assert "EXP_TYPE=MIR_LRS-FIXEDSLIT" in skipped["jw09999004001_02101_00001_mirimage_uncal.fits"]
    assert not list((ws / "stage1").glob("jw0999900[34]*"))


def test_rate_matches_injected_count_rate(demo):
    """Detector1 returns the injected rate: normalised residuals centred on 0 with unit width."""
    from reduce.simulate.truth import expected_rate

    raw, ws, _ = demo
    for rate_file in sorted((ws / "stage1").glob("*_rate.fits")):
        with fits.open(rate_file) as h:
            sci, err, dq = h["SCI"].data, h["ERR"].data, h["DQ"].data
        truth = expected_rate(raw, rate_file.name)
        good = (dq == 0) & np.isfinite(sci) & (err > 0)
        assert good.mean() > 0.9, rate_file.name
        z = ((sci - truth) / err)[good]
        med = np.median(z)
        width = 1.4826 * np.median(np.abs(z - med))
        assert abs(med) < 0.1, (rate_file.name, med)
        assert 0.85 < width < 1.15, (rate_file.name, width)
        bright = good & (truth > 20 * np.median(truth[good]))
        if bright.sum() > 20:  # source pixels: the gain of the chain is right to 1 %
            ratio = np.median(sci[bright] / truth[bright])
            assert abs(ratio - 1) < 0.01, (rate_file.name, ratio)


def test_point_sources_in_mosaics(demo):
    """Point sources above 20 sigma: relative positions within 0.03 arcsec after tweakreg (the
    mosaic's absolute zero point carries its reference exposure's pointing error, simulated
    at 0.07 arcsec rms per axis: bounded at 0.25 arcsec), aperture fluxes within 3 %."""
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    from photutils.aperture import CircularAnnulus, CircularAperture, ApertureStats, aperture_photometry
    from photutils.centroids import centroid_2dg
    from stdatamodels.jwst import datamodels

    from reduce import instrument as inst

    raw, ws, _ = demo
    truth = _truth(raw)
    checked = 0
    for i2d_file in sorted((ws / "stage3").glob("*/*_i2d.fits")):
        with datamodels.open(i2d_file) as m:
            sci, wht = np.array(m.data), np.array(m.wht)
            wcs = m.meta.wcs
            filt = m.meta.instrument.filter
            pixar_sr = m.meta.photometry.pixelarea_steradians
        fwhm_px = inst.psf_fwhm_arcsec(filt) / inst.PIXEL_SCALE
        offsets, ratios = [], []
        for src in truth["sources"]:
            if src["kind"] != "point" or "saturating" in src.get("tags", []):
                continue
            x, y = wcs.invert(src["ra"], src["dec"])
            r_ap = 4.0 * fwhm_px
            if not (np.isfinite(x) and r_ap + 8 < x < sci.shape[1] - r_ap - 8 and r_ap + 8 < y < sci.shape[0] - r_ap - 8):
                continue
            ix, iy = int(round(x)), int(round(y))
            h = int(2 * fwhm_px) + 2
            box = sci[iy - h: iy + h + 1, ix - h: ix + h + 1]
            if not np.all(np.isfinite(box)) or np.any(wht[iy - h: iy + h + 1, ix - h: ix + h + 1] <= 0):
                continue
            ap = CircularAperture((x, y), r_ap)
            ann = CircularAnnulus((x, y), r_ap + 2, r_ap + 8)
            bkg = ApertureStats(sci, ann, mask=~np.isfinite(sci)).median
            flux = (aperture_photometry(sci - bkg, ap)["aperture_sum"][0]) * pixar_sr * 1e6  # Jy
            noise = np.nanstd(sci[ann.to_mask().to_image(sci.shape) > 0]) * np.sqrt(ap.area) * pixar_sr * 1e6
            if flux < 20 * noise:
                continue
            cx, cy = centroid_2dg(box - bkg)
            ra, dec = wcs(ix - h + cx, iy - h + cy)
            dra, ddec = SkyCoord(src["ra"], src["dec"], unit="deg").spherical_offsets_to(
                SkyCoord(ra, dec, unit="deg"))
            offsets.append((dra.to(u.arcsec).value, ddec.to(u.arcsec).value))
            ratios.append(flux / src["flux_jy"][filt])
        assert len(offsets) >= 3, f"{i2d_file.name}: only {len(offsets)} point sources above 20 sigma"
        offsets = np.array(offsets)
        zero_point = np.median(offsets, axis=0)
        scatter = np.median(np.hypot(*(offsets - zero_point).T))
        assert np.hypot(*zero_point) < 0.25, (i2d_file.name, zero_point)
        assert scatter < 0.03, (i2d_file.name, scatter)
        assert abs(np.median(ratios) - 1) < 0.03, (i2d_file.name, ratios)
        checked += 1
    assert checked >= 3


def test_rerun_skips_finished_work_and_resumes(demo, crds_cache):
    raw, ws, _ = demo
    proc = cli("run", raw, "--workdir", ws, "--crds-path", crds_cache)
    assert json.loads((ws / "summary.json").read_text())["outcomes"] == []
    # an interrupted stage 2: one cal missing -> only that exposure and its mosaic are redone
    cal = sorted((ws / "stage2").glob("*_cal.fits"))[0]
    cal.unlink()
    i2d = sorted((ws / "stage3").glob("*/*_i2d.fits"))
    for p in i2d:
        p.unlink()
    cli("run", raw, "--workdir", ws, "--crds-path", crds_cache)
    outcomes = json.loads((ws / "summary.json").read_text())["outcomes"]
    assert [(o["stage"], o["name"]) for o in outcomes if o["stage"] == "stage2"] == \
        [("stage2", cal.name.removesuffix("_cal.fits"))]
    assert len([o for o in outcomes if o["stage"] == "stage3"]) == len(i2d)
    assert all(o["ok"] for o in outcomes) and proc.returncode == 0
