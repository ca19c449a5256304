"""The real jwst pipeline, end to end on the demo program, checked against the simulator's truth.

Runs the CLI in a subprocess (as a user would) on the simulated demo program plus a target
acquisition and an LRS exposure that must be skipped. Tolerances reached are in the asserts.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

pytestmark = pytest.mark.slow


from conftest import cli


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run


def _truth(raw):
    from reduce.demo.simulate.truth import load_truth
    return load_truth(raw)


def test_every_observation_and_filter_has_a_mosaic(demo):
    raw, ws, proc = demo
    truth = _truth(raw)
    sub = {"FULL": ""}  # MAST (jwst's level-3 rules) names a subarray mosaic -<subarray>
    expected = {f"jw{e['program']}-o{int(e['observation']):03d}_t001_miri_{e['filter'].lower()}"
                f"{sub.get(e['subarray'], '-' + e['subarray'].lower())}"
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
    from reduce.demo.simulate.truth import expected_rate

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


def _aperture_flux_jy(img, x, y, r_px, pixar_sr, fwhm_px):
    """Flux (Jy) in a circle minus the annulus (3-5 FWHM) median; image in MJy/sr."""
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    ap = CircularAperture((x, y), r_px)
    ann = CircularAnnulus((x, y), 3 * fwhm_px, 5 * fwhm_px)
    bkg = ApertureStats(img, ann, mask=~np.isfinite(img)).median
    return float(aperture_photometry(img - bkg, ap)["aperture_sum"][0]) * pixar_sr * 1e6


def test_point_sources_in_mosaics(demo):
    """Point sources above 20 sigma in every mosaic.

    Positions: relative to each other within 0.03 arcsec after tweakreg (the mosaic's zero
    point carries its reference exposure's pointing error, simulated at 0.07 arcsec rms per
    axis: bounded at 0.25 arcsec). Fluxes: the same sky apertures (r = 2 FWHM, annulus
    3-5 FWHM) on the mosaic and on the simulator's noise-free scene image, so neighbours and
    galaxy light cancel: median ratio within 2 %. Isolated sources only (the truth aperture
    gives the source's own flux within 2 %), as in ``reduce.demo.evaluate``.
    """
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    from astropy.io import fits
    from astropy.wcs import WCS
    from photutils.centroids import centroid_2dg
    from stdatamodels.jwst import datamodels

    from reduce import instrument as inst

    raw, ws, _ = demo
    truth = _truth(raw)
    checked = 0
    for i2d_file in sorted((ws / "stage3").glob("*/*_i2d.fits")):
        with datamodels.open(i2d_file) as m:
            sci, wht, err = np.array(m.data), np.array(m.wht), np.array(m.err)
            wcs = m.meta.wcs
            filt = m.meta.instrument.filter
            pixar_sr = m.meta.photometry.pixelarea_steradians
        with fits.open(raw / "truth" / f"sky_{filt}.fits") as h:
            scene, scene_wcs = h["SCENE"].data.astype(float), WCS(h["SCENE"].header)
        scene_scale = abs(scene_wcs.wcs.cdelt[0]) * 3600.0
        scene_sr = (scene_scale / 206264.806) ** 2
        scale = np.sqrt(pixar_sr) * 206264.806  # arcsec per mosaic pixel
        fwhm_as = inst.psf_fwhm_arcsec(filt)
        fwhm_px = fwhm_as / scale
        offsets, ratios = [], []
        for src in truth["sources"]:
            if src["kind"] != "point" or "saturating" in src.get("tags", []):
                continue
            x, y = wcs.invert(src["ra"], src["dec"])
            edge = 5 * fwhm_px + 2
            if not (np.isfinite(x) and edge < x < sci.shape[1] - edge and edge < y < sci.shape[0] - edge):
                continue
            ix, iy = int(round(x)), int(round(y))
            h = int(5 * fwhm_px) + 2
            cut = (slice(iy - h, iy + h + 1), slice(ix - h, ix + h + 1))
            if not np.all(np.isfinite(sci[cut])) or np.any(wht[cut] <= 0):
                continue
            flux = _aperture_flux_jy(sci, x, y, 2 * fwhm_px, pixar_sr, fwhm_px)
            noise = np.sqrt(np.nansum(err[iy - 2:iy + 3, ix - 2:ix + 3] ** 2) / 25 * np.pi * (2 * fwhm_px) ** 2)
            if flux < 20 * noise * pixar_sr * 1e6:
                continue
            sx, sy = scene_wcs.world_to_pixel_values(src["ra"], src["dec"])
            true_flux = _aperture_flux_jy(scene, sx, sy, 2 * fwhm_as / scene_scale, scene_sr, fwhm_as / scene_scale)
            if abs(true_flux / src["flux_jy"][filt] - 1) > 0.02:
                continue  # not isolated: neighbours or a galaxy's structure under the aperture
            ratios.append(flux / true_flux)
            hb = int(1.5 * fwhm_px) + 2
            box = sci[iy - hb: iy + hb + 1, ix - hb: ix + hb + 1]
            cx, cy = centroid_2dg(box - np.median(sci[cut]))
            ra, dec = wcs(ix - hb + cx, iy - hb + cy)
            dra, ddec = SkyCoord(src["ra"], src["dec"], unit="deg").spherical_offsets_to(
                SkyCoord(ra, dec, unit="deg"))
            if np.isfinite(dra.value) and np.isfinite(ddec.value):  # centroid fit converged
                offsets.append((dra.to(u.arcsec).value, ddec.to(u.arcsec).value))
        assert len(offsets) >= 3, f"{i2d_file.name}: only {len(offsets)} point sources above 20 sigma"
        offsets = np.array(offsets)
        zero_point = np.median(offsets, axis=0)
        scatter = np.median(np.hypot(*(offsets - zero_point).T))
        assert np.hypot(*zero_point) < 0.25, (i2d_file.name, zero_point)
        assert scatter < 0.03, (i2d_file.name, scatter)
        assert abs(np.median(ratios) - 1) < 0.02, (i2d_file.name, np.round(ratios, 3))
        print(f"{i2d_file.name}: {len(ratios)} sources, zero point {np.hypot(*zero_point):.3f}\", "
              f"scatter {scatter:.4f}\", flux ratio median {np.median(ratios):.4f}")
        checked += 1
    assert checked >= 3


def _image_arrays(path):
    with fits.open(path) as h:
        return {f"{hdu.name}[{i}]": np.array(hdu.data) for i, hdu in enumerate(h)
                if hdu.is_image and hdu.data is not None}


def test_interrupted_jobs1_run_resumes_to_the_same_products_as_jobs2(demo, demo_run_jobs1):
    """SIGTERM mid stage 1 with --jobs 1 stops cleanly (exit 130, one-line message, only whole
    files under final names); the rerun does only the rest, and every data array of every
    rate, cal, cleaned cal and mosaic equals the --jobs 2 run's bit for bit."""
    raw, ws2, _ = demo
    ws1, (code, err, cal_before), done, rerun = demo_run_jobs1
    assert code == 130 and err.strip().splitlines()[-1].startswith("interrupted"), err[-2000:]
    assert "Traceback" not in err and "leaked" not in err, err[-2000:]
    assert 2 <= len(done) < 14 and cal_before == []
    outcomes = json.loads((ws1 / "summary.json").read_text())["outcomes"]
    redone = [o["name"] for o in outcomes if o["stage"] == "stage1"]
    assert len(redone) == 14 - len(done) and not set(redone) & {d.removesuffix("_rate.fits") for d in done}
    compared = 0
    for pattern in ("stage1/*_rate.fits", "stage2/*_cal.fits", "clean/*_cal.fits", "stage3/*/*_i2d.fits"):
        files = sorted(ws2.glob(pattern))
        assert files and [f.name for f in files] == [f.name for f in sorted(ws1.glob(pattern))]
        for f in files:
            a, b = _image_arrays(f), _image_arrays(ws1 / f.relative_to(ws2))
            assert a.keys() == b.keys()
            for key in a:
                assert np.array_equal(a[key], b[key], equal_nan=True), (f.name, key)
                compared += 1
    assert compared > 100
    # the packaged products of both runs are identical through their manifests' content hashes
    proc = cli("verify", ws1 / "products", ws2 / "products", "--exact", check=False)
    assert proc.returncode == 0 and "no differences" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_rerun_skips_finished_work_and_resumes(demo, crds_cache, tmp_path):
    """On a copy of the shared workspace (other tests read the original's files and summary)."""
    raw, ws0, _ = demo
    ws = tmp_path / "ws"
    shutil.copytree(ws0, ws, symlinks=True)  # copy2: modification times kept
    proc = cli("run", raw, "--workdir", ws, "--crds-path", crds_cache, "--jobs", "2")
    assert json.loads((ws / "summary.json").read_text())["outcomes"] == []
    # an interrupted stage 2: one cal missing -> only that exposure and its mosaic are redone
    cal = sorted((ws / "stage2").glob("*_cal.fits"))[0]
    cal.unlink()
    i2d = sorted((ws / "stage3").glob("*/*_i2d.fits"))
    for p in i2d:
        p.unlink()
    cli("run", raw, "--workdir", ws, "--crds-path", crds_cache, "--jobs", "2")
    outcomes = json.loads((ws / "summary.json").read_text())["outcomes"]
    assert [(o["stage"], o["name"]) for o in outcomes if o["stage"] == "stage2"] == \
        [("stage2", cal.name.removesuffix("_cal.fits"))]
    assert len([o for o in outcomes if o["stage"] == "stage3"]) == len(i2d)
    assert all(o["ok"] for o in outcomes) and proc.returncode == 0
