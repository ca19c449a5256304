"""The demo program simulator: determinism, MAST-like files, truth consistency.

Fast (one small program, ~10 s); the Detector1 round trip is marked slow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from reduce.demo import detector_model as dmod
from reduce import instrument as inst

NAME_RE = re.compile(r"^jw(\d{5})(\d{3})(\d{3})_(\d{2})(\d)(\d{2})_(\d{5})_mirimage_uncal\.fits$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from reduce.demo.simulate import simulate_program

    out = tmp_path_factory.mktemp("sim") / "raw"
    files = simulate_program(out, seed=3, size="small")
    assert files and all(f.is_file() for f in files)
    return out


def _sci(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path) as h:
        return np.array(h["SCI"].data)


def test_demo_program_groupings():
    from reduce.demo.simulate import demo_program

    for size, subarray in (("small", "SUB256"), ("full", "FULL")):
        specs = demo_program(1, size)
        assert len(specs) <= 14
        assert len({s.observation for s in specs}) >= 2
        assert len({s.filter for s in specs}) >= 3
        assert {s.subarray for s in specs} == {subarray}
        assert {s.readpatt for s in specs} == {"FASTR1"} and {s.nints for s in specs} == {1}
        groups: dict = {}
        for s in specs:
            groups.setdefault((s.filter, round(s.duration, 3)), []).append(s)
        sizes = sorted(len(v) for v in groups.values())
        assert sizes[-1] >= 5 and sizes[0] < 5
        assert len({s.filename for s in specs}) == len(specs)
        if size == "small":
            assert all(20 <= s.ngroups <= 60 for s in specs)  # <= the darks' 60 groups
        else:
            assert min(s.ngroups for s in specs) > 8


def test_names_and_metadata(demo):
    from stdatamodels.jwst.datamodels import Level1bModel

    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    files = sorted(demo.glob("*_uncal.fits"))
    assert [e["file"] for e in truth["exposures"]] == sorted(e["file"] for e in truth["exposures"])
    assert {f.name for f in files} == {e["file"] for e in truth["exposures"]}
    for f in files[:1] + files[-1:]:
        m = NAME_RE.match(f.name)
        assert m, f.name
        prog, obs, visit, vgrp, seq, act, expo = m.groups()
        with Level1bModel(str(f)) as model:
            meta = model.meta
            assert model.data.dtype == np.uint16 and model.data.ndim == 4
            nints, ngroups, ny, nx = model.data.shape
            assert (meta.telescope, meta.instrument.name, meta.instrument.detector) == ("JWST", "MIRI", "MIRIMAGE")
            assert meta.exposure.type == "MIR_IMAGE" and meta.instrument.filter in inst.FILTERS
            ob = meta.observation
            assert (ob.program_number, ob.observation_number, ob.visit_number, ob.visit_group, ob.sequence_id,
                    ob.activity_id, ob.exposure_number) == (prog, obs, visit, vgrp, seq, act, expo)
            ex = meta.exposure
            assert (ex.ngroups, ex.nints, ex.nframes, ex.groupgap) == (ngroups, nints, 1, 0)
            assert ex.readpatt == "FASTR1"
            tf = inst.frame_time(meta.subarray.name, ex.readpatt)
            assert ex.frame_time == pytest.approx(tf) and ex.group_time == pytest.approx(tf)
            assert ex.duration == pytest.approx(inst.duration(ngroups, nints, tf))
            assert ex.exposure_time == pytest.approx(inst.effective_exposure_time(ngroups, nints, tf))
            assert ex.effective_exposure_time == pytest.approx(ex.exposure_time)
            assert ex.integration_time == pytest.approx((ngroups - 1) * tf)
            assert ex.start_time < ex.mid_time < ex.end_time
            assert (ex.end_time - ex.start_time) * 86400 == pytest.approx(ex.duration, abs=1e-3)
            assert meta.observation.date and meta.observation.time and meta.date
            assert meta.filename == f.name
            sub = inst.SUBARRAYS[meta.subarray.name]
            assert (meta.subarray.xstart, meta.subarray.ystart, meta.subarray.xsize, meta.subarray.ysize) == \
                (sub.xstart, sub.ystart, sub.xsize, sub.ysize) == (sub.xstart, sub.ystart, nx, ny)
            assert (meta.subarray.fastaxis, meta.subarray.slowaxis) == (1, 2)
            assert meta.target.proposer_name and meta.target.ra is not None and meta.target.dec is not None
            assert meta.aperture.name == f"MIRIM_{meta.subarray.name}"
            w = meta.wcsinfo
            for k in ("ra_ref", "dec_ref", "roll_ref", "v2_ref", "v3_ref", "v3yangle", "vparity",
                      "siaf_xref_sci", "siaf_yref_sci"):
                assert getattr(w, k) is not None, k
            assert meta.velocity_aberration.scale_factor == 1.0
            assert None not in (meta.pointing.ra_v1, meta.pointing.dec_v1, meta.pointing.pa_v3)
            assert meta.dither.position_number >= 1 and meta.dither.total_points >= meta.dither.position_number
            assert len(model.group) == ngroups * nints and len(model.int_times) == nints
    # the header carries the nominal pointing, the truth records both
    e = truth["exposures"][0]
    with Level1bModel(str(demo / e["file"])) as model:
        assert model.meta.wcsinfo.ra_ref == pytest.approx(e["nominal_pointing"]["ra_ref"], abs=1e-12)
    assert e["true_pointing"]["ra_ref"] != e["nominal_pointing"]["ra_ref"]


def test_deterministic(demo, tmp_path):
    from reduce.demo.simulate import demo_program, make_scene, write_exposure
    from reduce.demo.simulate import exposure_rng

    spec = demo_program(3, "small")[0]
    scn = make_scene(3)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fa = write_exposure(tmp_path / "a", spec, scn, rng=exposure_rng(3, 0)).path
    fb = write_exposure(tmp_path / "b", spec, scn, rng=np.random.default_rng([4, 1000])).path
    ref = demo / spec.filename
    assert fa.read_bytes() == ref.read_bytes()  # same seed: same file, byte for byte
    assert np.array_equal(_sci(fa), _sci(ref))
    assert not np.array_equal(_sci(fb), _sci(ref))  # other noise
    other = make_scene(4)
    assert [s.xi for s in other.sources] != [s.xi for s in scn.sources]


def test_idempotent_rerun(demo):
    from reduce.demo.simulate import simulate_program

    before = {p.name: p.stat().st_mtime_ns for p in demo.glob("*_uncal.fits")}
    files = simulate_program(demo, seed=3, size="small")
    assert {p.name: p.stat().st_mtime_ns for p in files} == before
    assert not list(demo.glob(".*"))  # no temporary files left


def test_overrides_make_odd_files(tmp_path):
    from stdatamodels.jwst.datamodels import Level1bModel

    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    spec = demo_program(1, "small")[0]
    scn = make_scene(1)
    rng = np.random.default_rng(0)
    ta = write_exposure(tmp_path, spec, scn, rng=rng, exp_type="MIR_TACQ", subarray="SUB64", ngroups=5,
                        exposure=7).path
    lrs = write_exposure(tmp_path, spec, scn, rng=rng, exp_type="MIR_LRS-FIXEDSLIT", filter="P750L",
                         subarray="FULL", ngroups=4, exposure=8).path
    with Level1bModel(str(ta)) as m:
        assert m.meta.exposure.type == "MIR_TACQ" and m.data.shape == (1, 5, 64, 72)
        assert m.meta.subarray.name == "SUB64" and m.meta.aperture.name == "MIRIM_SUB64"
    with Level1bModel(str(lrs)) as m:
        assert m.meta.exposure.type == "MIR_LRS-FIXEDSLIT" and m.meta.instrument.filter == "P750L"
        assert m.data.shape == (1, 4, 1024, 1032)


def _isolated_bright(truth, e, min_sep=3.0, edge=12):
    src = {s["id"]: s for s in truth["sources"]}
    out = []
    for p in e["point_sources"]:
        if "bright" not in p["tags"] or "saturating" in p["tags"]:
            continue
        s = src[p["id"]]
        near = [t for t in truth["sources"] if t["id"] != s["id"] and
                np.hypot(t["xi"] - s["xi"], t["eta"] - s["eta"]) < (min_sep if t["kind"] == "point" else
                                                                     min_sep + 3 * t["r_e"] + 2)]
        sub = inst.SUBARRAYS[e["subarray"]]
        if not near and edge < p["x"] < sub.xsize - edge and edge < p["y"] < sub.ysize - edge:
            out.append(p)
    return out


def test_point_source_flux_from_truth_rate(demo):
    """Bright point sources: (truth ILLUM / flat - sky - all other sources) * PHOTMJSR * true
    pixel solid angle, summed around the source, gives back the injected flux to < 0.5 %."""
    from astropy.io import fits

    from reduce.demo.simulate import geometry, make_scene
    from reduce.demo.simulate import truth as T
    from reduce.demo.simulate.scene import render_sources

    truth = T.load_truth(demo)
    scn = make_scene(truth["seed"])
    checked = 0
    for e in truth["exposures"][:1] + truth["exposures"][-1:]:
        filt = e["filter"]
        sub = inst.SUBARRAYS[e["subarray"]]
        illum = fits.getdata(demo / "truth" / e["rate_truth_file"], "ILLUM").astype(float)
        flat = dmod.flat_field(filt)[sub.slices]
        canvas = geometry.detector_canvas(geometry.Pointing(**e["true_pointing"]), e["subarray"],
                                          truth["target"]["ra"], truth["target"]["dec"])
        sky = scn.sky(filt, canvas.xi, canvas.eta, e["sky_factor"]) / inst.PHOTMJSR[filt]
        sr = canvas.area_sr
        rate = np.where(flat > 0, illum / np.where(flat > 0, flat, 1) - sky, 0.0)
        yy, xx = np.indices(rate.shape)
        r = 4.0 * inst.psf_fwhm_arcsec(filt) / inst.PIXEL_SCALE
        bright = [p for p in e["point_sources"] if "bright" in p["tags"] and "saturating" not in p["tags"]
                  and r < p["x"] < sub.xsize - r and r < p["y"] < sub.ysize - r]
        for p in bright[:5]:
            m = (xx - p["x"]) ** 2 + (yy - p["y"]) ** 2 <= r**2
            if not flat[m].all():  # a dead pixel inside
                continue
            others = render_sources(scn, filt, canvas, ids={s.id for s in scn.sources} - {p["id"]})
            own = rate - others * 1e-6 / sr / inst.PHOTMJSR[filt]
            flux = (own * inst.PHOTMJSR[filt] * 1e6 * sr)[m].sum()
            assert flux == pytest.approx(p["flux_jy"], rel=5e-3), (e["file"], p)
            checked += 1
    assert checked >= 6


def test_true_pixel_area_matches_area_reference():
    """The simulator's true pixel solid angle is the one the synthetic area reference holds."""
    from reduce.demo.crds_context import references as refs  # an import error must fail, not skip
    from reduce.demo.simulate import demo_program, geometry, make_scene
    from reduce.demo.simulate.uncal import pointings

    spec = demo_program(1, "small")[0]
    scn = make_scene(1)
    _, true = pointings(spec, scn)
    canvas = geometry.detector_canvas(true, spec.subarray, scn.ra0, scn.dec0)
    rel = refs.relative_pixel_area()[inst.SUBARRAYS[spec.subarray].slices]
    np.testing.assert_allclose(canvas.area_sr / inst.pixel_area_sr(), rel, rtol=1e-4)


def test_point_source_flux_from_sky_model(demo):
    """The truth sky-model image (MJy/sr on a regular grid) holds the catalogue fluxes."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    e = truth["exposures"][0]
    filt = e["filter"]
    with fits.open(demo / "truth" / truth["sky"]["model_files"][filt]) as h:
        img, hdr = h["SCENE"].data.astype(float), h["SCENE"].header
    w = WCS(hdr)
    scale_sr = (abs(hdr["CDELT1"]) * np.pi / 180) ** 2
    src = {s["id"]: s for s in truth["sources"]}
    yy, xx = np.indices(img.shape)
    for p in _isolated_bright(truth, e)[:5]:
        s = src[p["id"]]
        x, y = w.world_to_pixel_values(s["ra"], s["dec"])
        m = (xx - x) ** 2 + (yy - y) ** 2 <= (4.0 * inst.psf_fwhm_arcsec(filt) / 0.11) ** 2
        assert img[m].sum() * scale_sr * 1e6 == pytest.approx(s["flux_jy"][filt], rel=5e-3)


def test_truth_positions_match_rendered_peaks(demo):
    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    e = truth["exposures"][2]
    rate = T.expected_rate(demo, e["file"])
    assert rate.shape == (inst.SUBARRAYS[e["subarray"]].ysize, inst.SUBARRAYS[e["subarray"]].xsize)
    for p in _isolated_bright(truth, e)[:6]:
        x0, y0 = int(round(p["x"])), int(round(p["y"]))
        box = rate[y0 - 3:y0 + 4, x0 - 3:x0 + 4] - np.median(rate[y0 - 8:y0 + 9, x0 - 8:x0 + 9])
        yy, xx = np.mgrid[y0 - 3:y0 + 4, x0 - 3:x0 + 4]
        cx, cy = (box * xx).sum() / box.sum(), (box * yy).sum() / box.sum()
        assert abs(cx - p["x"]) < 0.15 and abs(cy - p["y"]) < 0.15


def test_ramp_slope_matches_truth(demo):
    """OLS slopes over the groups Detector1 uses: residuals against truth + dark are
    consistent with read + Poisson noise (pixels without cosmic rays or saturation)."""
    from astropy.io import fits

    from reduce.demo.simulate import ramps
    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    for e in (truth["exposures"][0], truth["exposures"][-1]):
        sub = inst.SUBARRAYS[e["subarray"]]
        data = _sci(demo / e["file"])[0]
        expected = T.expected_rate(demo, e["file"])
        dark = dmod.dark_rate()[sub.slices]
        crs = fits.getdata(demo / "truth" / e["rate_truth_file"], "CRS")
        ok = data.max(axis=0) < inst.SATURATION
        ok[crs["y"], crs["x"]] = False
        ok &= expected > 0
        n = e["ngroups"] - 2  # groups 1 .. ngroups-2
        tf = e["tframe_s"]
        slope = ramps.fit_slope(data, tf)
        total = expected + dark
        var_read = inst.READNOISE_READ**2 * 12.0 / (n * (n * n - 1)) / tf**2
        var_pois = total / (inst.GAIN * tf) * 6.0 * (n * n + 1) / (5.0 * n * (n * n - 1))
        z = ((slope - total) / np.sqrt(var_read + var_pois))[ok]
        assert ok.sum() > 0.9 * ok.size
        assert abs(z.mean()) < 0.03
        assert 0.95 < z.std() < 1.05
        # pixels with a cosmic ray show it as a jump
        hit = crs[crs["dn"] > 1000]
        d = np.diff(data.astype(float), axis=0)[hit["group"] - 1, hit["y"], hit["x"]]
        assert np.median(d) > 800


def test_saturating_star_saturates_late(demo):
    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    e = truth["exposures"][0]  # F770W
    assert e["n_saturated_pixels"] > 0
    assert 4 <= e["first_saturated_group_min"] <= e["ngroups"] - 2
    data = _sci(demo / e["file"])[0]
    assert data.max() > inst.SATURATION and data.max() < 65535
    assert data.dtype == np.uint16


def test_large_galaxy_and_bright_sources(demo):
    from reduce.demo.simulate import geometry, make_scene
    from reduce.demo.simulate.scene import render_sources
    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    scn = make_scene(truth["seed"])
    big = [s for s in truth["sources"] if "large" in s["tags"]][0]
    per_filter = {}
    for e in truth["exposures"]:
        per_filter.setdefault(e["filter"], e)
    for filt, e in per_filter.items():
        n = e["ngroups"] - 2
        tf = e["tframe_s"]
        sky = e["sky_dn_s"] + truth["pattern"][filt]["mean_dn_s"]
        sigma = np.sqrt(inst.READNOISE_READ**2 * 12.0 / (n * (n * n - 1)) / tf**2
                        + sky / (inst.GAIN * tf) * 6.0 * (n * n + 1) / (5.0 * n * (n * n - 1)))
        canvas = geometry.detector_canvas(geometry.Pointing(**e["true_pointing"]), e["subarray"], scn.ra0, scn.dec0)
        g = render_sources(scn, filt, canvas, ids={big["id"]}) * 1e-6 / canvas.area_sr / inst.PHOTMJSR[filt]
        assert (g > 10 * sigma).sum() > np.pi * (5.0 / inst.PIXEL_SCALE) ** 2, filt
        # >= 10 point sources above 20 sigma (aperture of radius 1.5 FWHM, 80 % of the light)
        r = 1.5 * inst.psf_fwhm_arcsec(filt) / inst.PIXEL_SCALE
        snr = [0.8 * p["flux_jy"] * 1e-6 / inst.pixel_area_sr() / inst.PHOTMJSR[filt] / (sigma * np.sqrt(np.pi) * r)
               for p in e["point_sources"]]
        assert sum(s > 20 for s in snr) >= 10, filt


def test_truth_json_is_complete(demo):
    truth = json.loads((demo / "truth" / "truth.json").read_text())
    for k in ("seed", "size", "sources", "exposures", "sky", "pattern", "detector", "psf", "target"):
        assert k in truth
    e = truth["exposures"][0]
    for k in ("true_pointing", "nominal_pointing", "sky_mjysr", "sky_dn_s", "point_sources", "sha256"):
        assert k in e
    err = np.array([x["pointing_error_v2v3_arcsec"] for x in truth["exposures"]])
    assert 0.02 < np.sqrt((err**2).mean()) < 0.2
    skies = np.array([x["sky_factor"] for x in truth["exposures"]])
    assert skies.std() > 0.005
    assert {s["kind"] for s in truth["sources"]} == {"point", "sersic"}
    for f, p in truth["pattern"].items():
        assert (demo / "truth" / p["file"]).is_file() and p["std_dn_s"] > 0


@pytest.mark.slow
def test_detector1_round_trip(demo, crds_cache, tmp_path):
    """Detector1 with the synthetic context returns the injected rates."""
    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    e = truth["exposures"][0]
    code = textwrap.dedent(f"""
        from jwst.pipeline import Detector1Pipeline
        Detector1Pipeline.call({str(demo / e['file'])!r}, save_results=True, output_dir={str(tmp_path)!r})
    """)
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, timeout=600)
    from stdatamodels.jwst.datamodels import ImageModel

    with ImageModel(str(tmp_path / f"{e['stem']}_rate.fits")) as r:
        good = (r.dq & 1) == 0
        expected = T.expected_rate(demo, e["file"])
        res = (r.data - expected)[good]
        z = res / r.err[good]
        assert abs(np.median(res)) < 0.1
        assert 0.9 < 1.4826 * np.median(np.abs(z - np.median(z))) < 1.15
        bright = good & (expected > 50)
        assert abs(np.median(r.data[bright] / expected[bright]) - 1) < 2e-3


# ---------------------------------------------------------------- test programs (not the demo)

def _groups(specs) -> dict:
    out: dict = {}
    for s in specs:
        key = (s.filter, s.subarray, s.readpatt, round(s.duration, 3))
        out[key] = out.get(key, 0) + 1
    return out


def test_program_registry_and_layouts():
    from reduce.demo.simulate.program import PROGRAMS, TEST_PROGRAMS, demo_program

    assert PROGRAMS["demo"] is demo_program
    assert TEST_PROGRAMS == ("brightsky", "fullframe", "smalldither")
    assert set(TEST_PROGRAMS) < set(PROGRAMS)
    expect = {  # subarray, {filter: exposures}, dither radius range (arcsec)
        "brightsky": ("BRIGHTSKY", {"F770W": 7, "F1500W": 3}, (0.5, 1.7)),
        "fullframe": ("FULL", {"F560W": 4, "F1000W": 4}, (5.0, 10.0)),
        "smalldither": ("SUB256", {"F1130W": 6, "F2100W": 3}, (0.1, 0.5)),
    }
    names, ngroups, small_groups = set(), set(), 0
    for name in TEST_PROGRAMS:
        specs = PROGRAMS[name](1, "small")
        sub, counts, (rlo, rhi) = expect[name]
        groups = _groups(specs)
        assert {k[0]: v for k, v in groups.items()} == counts and {k[1] for k in groups} == {sub}
        assert {s.readpatt for s in specs} == {"FASTR1"} and {s.nints for s in specs} == {1}
        assert all(10 <= s.ngroups <= 30 for s in specs)
        small_groups += sum(3 <= n < 5 for n in groups.values())  # below MEDIAN_THRESH
        r = [np.hypot(*s.dither_offset) for s in specs if s.dither_position > 1]
        assert rlo <= min(r) and max(r) <= rhi, (name, r)
        assert len({s.dither_offset for s in specs if s.filter == specs[0].filter}) == counts[specs[0].filter]
        assert [s.start_mjd for s in specs] == sorted(s.start_mjd for s in specs)
        names |= {s.filename for s in specs}
        ngroups.add(tuple(sorted({s.ngroups for s in specs})))
        assert PROGRAMS[name](1) == specs and PROGRAMS[name](2) != specs  # seeded pointing errors
        full = PROGRAMS[name](1, "full")
        assert {s.subarray for s in full} == {"FULL"} and all(5 <= s.ngroups <= 25 for s in full)
    assert small_groups >= 3 and len(ngroups) == 3
    assert len(names) == sum(len(PROGRAMS[n](1)) for n in TEST_PROGRAMS)  # distinct program ids


@pytest.mark.parametrize("name", ["brightsky", "fullframe", "smalldither"])
def test_program_scene_point_sources(name):
    """>= 30 bright isolated point sources on the first exposure, over >= 1.5 dex, below
    saturation; seeded scenes."""
    from reduce.demo.simulate import geometry
    from reduce.demo.simulate.programs import setup
    from reduce.demo.simulate.uncal import pointings

    st = setup(name, 1)
    scn = st.scene
    pts = [s for s in scn.sources if s.kind == "point" and "bright" in s.tags]
    nominal, _ = pointings(st.specs[0], scn)
    ra, dec = zip(*(scn.radec(s) for s in pts))
    x, y = geometry.sky_to_detector(nominal, np.array(ra), np.array(dec))
    sub = inst.SUBARRAYS[st.specs[0].subarray]
    on = (x > sub.xstart + 5) & (x < sub.xstart + sub.xsize - 7) & (y > sub.ystart + 5) & (y < sub.ystart + sub.ysize - 7)
    assert on.sum() >= 30
    flux = np.array([s.flux_ref for s in pts])[on]
    assert np.log10(flux.max() / flux.min()) >= 1.5
    xy = np.array([(s.xi, s.eta) for s in pts])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)) + np.eye(len(xy)) * 99
    assert d.min() >= 2.4  # isolated from each other
    assert any(s.kind == "sersic" and s.r_e >= 4.0 for s in scn.sources)  # extended emission
    assert [s.xi for s in setup(name, 1).scene.sources] == [s.xi for s in scn.sources]
    assert [s.xi for s in setup(name, 2).scene.sources] != [s.xi for s in scn.sources]


def test_artefact_amplitudes():
    """Each artefact alone has the amplitude its parameter states."""
    from reduce.demo import detector_model as dm
    from reduce.demo.simulate import artefacts as A

    r4 = inst.REFERENCE_COLUMNS
    sky = A.nominal_sky_rate("F770W")
    cols = A.fixed_additive(A.Artefacts(seed=7, additive_fraction=0.0, column_stripes=0.01), "F770W")[:, r4:-r4]
    assert np.allclose(cols, cols[:1]) and cols[0].std() / sky == pytest.approx(0.01, rel=0.1)
    rows = A.fixed_additive(A.Artefacts(seed=7, additive_fraction=0.0, row_stripes=0.005), "F1000W")[:, r4:-r4]
    assert rows[:, 0].std() / A.nominal_sky_rate("F1000W") == pytest.approx(0.005, rel=0.1)
    art = A.Artefacts(seed=7, additive_fraction=0.0, warm_fraction=0.003, warm_rate_dn_s=(0.3, 3.0))
    warm = A.fixed_additive(art, "F560W")
    n = (warm > 0).sum()
    assert n == round(0.003 * 1024 * 1024) and 0.3 <= warm[warm > 0].min() and warm.max() <= 3.0
    assert np.array_equal(warm > 0, A.fixed_additive(art, "F2100W") > 0)  # detector-fixed
    grad = A.multiplicative(A.Artefacts(seed=7, mult_gradient=0.04), "F770W")[:, r4:-r4]
    assert grad.max() - grad.min() == pytest.approx(0.04, rel=0.03)
    glow = A.multiplicative(A.Artefacts(seed=7, mult_glow=0.08), "F770W")
    assert glow[0, r4] == pytest.approx(0.08, rel=0.01) and 0.6 * 0.08 <= glow[0, -r4 - 1] <= 0.081
    assert glow[512, 516] < 1e-6
    fld = A.multiplicative(A.Artefacts(seed=7, mult_field_rms=0.015), "F770W")[:, r4:-r4]
    assert fld.std() == pytest.approx(0.015, rel=0.02)
    add = A.fixed_additive(A.Artefacts(seed=7, additive_fraction=0.05), "F770W")[:, r4:-r4]
    assert add.mean() / sky == pytest.approx(0.05, rel=0.02)
    # the program seed, not the detector's: other patterns; the demo: the fixed pattern only
    assert not np.allclose(add, A.fixed_additive(A.Artefacts(seed=8, additive_fraction=0.05), "F770W")[:, r4:-r4])
    from reduce.demo.simulate.rates import background_pattern

    assert A.fixed_additive(A.Artefacts(), "F770W") is background_pattern("F770W")
    assert not A.multiplicative(A.Artefacts(), "F770W").any()
    assert not dm.flat_field("F770W").flags.writeable  # the detector model is untouched


def test_program_artefacts_recorded():
    from reduce.demo.simulate.programs import DESIGNS, program_artefacts

    arts = {n: program_artefacts(n, 1) for n in DESIGNS}
    assert len({a.seed for a in arts.values()}) == 3 and program_artefacts("brightsky", 2).seed != arts["brightsky"].seed
    b, f, s = arts["brightsky"], arts["fullframe"], arts["smalldither"]
    assert b.column_stripes == 0.01 and b.warm_fraction == 0.003 and b.mult_glow > 0 and b.mult_gradient > 0
    assert f.row_stripes > 0 and f.column_stripes > 0 and f.additive_fraction > 0 and f.mult_gradient > 0
    assert s.column_stripes > 0 and s.warm_fraction > 0


@pytest.mark.parametrize("name", ["brightsky", "smalldither", "fullframe"])
def test_background_truth(name, tmp_path):
    """BACKGROUND = sky*flat*(1+MULT) + additive + new hot pixels + exposure stripes, and
    RATE = BACKGROUND + SOURCES; the same inputs give the same bytes."""
    from astropy.io import fits

    from reduce.demo import detector_model as dm
    from reduce.demo.simulate import artefacts as A
    from reduce.demo.simulate import exposure_rng, geometry, write_exposure
    from reduce.demo.simulate import truth as T
    from reduce.demo.simulate.programs import setup

    st = setup(name, 1)
    spec = st.specs[-1]
    res = write_exposure(tmp_path, spec, st.scene, rng=exposure_rng(1, len(st.specs) - 1, name), artefacts=st.artefacts)
    T.write_rate_truth(tmp_path / "t.fits", res)
    with fits.open(tmp_path / "t.fits") as h:
        rate, bg, src = (np.asarray(h[k].data, np.float64) for k in ("RATE", "BACKGROUND", "SOURCES"))
    assert np.abs(rate - bg - src).max() < 1e-3
    sub = inst.SUBARRAYS[spec.subarray]
    canvas = geometry.detector_canvas(res.true, spec.subarray, st.scene.ra0, st.scene.dec0)
    sky = st.scene.sky(spec.filter, canvas.xi, canvas.eta, spec.sky_factor) / inst.PHOTMJSR[spec.filter]
    sky = sky * dm.flat_field(spec.filter)[sub.slices]
    hot = np.zeros(inst.FULL_SHAPE)
    hot[dm.bad_pixel_positions("hot_new")] = dm.hot_pixel_excess("hot_new")
    want = (sky * (1 + A.multiplicative(st.artefacts, spec.filter)) [sub.slices]
            + A.fixed_additive(st.artefacts, spec.filter)[sub.slices] + hot[sub.slices]
            + A.exposure_rows(st.artefacts, spec.filter, A.exposure_key(spec))[sub.slices[0]]) * res.rates.sensitive
    assert np.allclose(bg, want, rtol=1e-5, atol=1e-5)
    assert (bg != rate).any() and src.max() > 3 * np.median(bg)
    ps = res.rates.expected
    assert np.array_equal(ps, rate.astype(np.float32))
    if name == "smalldither":  # extended emission over most of the subarray
        assert np.mean(src > 0.02 * np.median(bg)) > 0.5
        (tmp_path / "b").mkdir()
        again = write_exposure(tmp_path / "b", spec, st.scene, rng=exposure_rng(1, len(st.specs) - 1, name),
                               artefacts=st.artefacts)
        assert again.path.read_bytes() == res.path.read_bytes()


def test_simulate_test_program_truth(tmp_path):
    """A whole (small) test program: truth.json names it, records the artefacts, groups."""
    from typer.testing import CliRunner

    from reduce.cli import app
    from reduce.demo.simulate import simulate_program
    from reduce.demo.simulate import truth as T

    out = tmp_path / "raw"
    files = simulate_program(out, seed=1, program="smalldither")
    truth = T.load_truth(out)
    assert truth["program"] == "smalldither" and truth["artefacts"]["column_stripes"] == 0.008
    assert truth["artefacts"]["n_warm_pixels"] > 3000
    assert sorted(truth["groups_filter_subarray_readpatt_duration"].values()) == [3, 6]
    assert len(files) == 9 and all(f.is_file() for f in files)
    from astropy.io import fits

    with fits.open(out / "truth" / truth["exposures"][0]["rate_truth_file"]) as h:
        assert h["BACKGROUND"].data.dtype.str[1:] == "f4" and h["BACKGROUND"].data.shape == (256, 256)
    with fits.open(out / "truth" / "pattern_F1130W.fits") as h:
        assert "MULT" in h and h["PATTERN"].data.shape == inst.FULL_SHAPE
    before = {p.name: p.stat().st_mtime_ns for p in files}
    assert {p.name: p.stat().st_mtime_ns for p in simulate_program(out, seed=1, program="smalldither")} == before
    r = CliRunner().invoke(app, ["simulate", str(tmp_path / "x"), "--program", "nosuch"])
    assert r.exit_code != 0


def test_demo_truth_has_background(demo):
    from astropy.io import fits

    from reduce.demo.simulate import truth as T

    truth = T.load_truth(demo)
    assert truth["program"] == "demo" and truth["artefacts"]["seed"] is None
    with fits.open(demo / "truth" / truth["exposures"][0]["rate_truth_file"]) as h:
        rate, bg, src = (np.asarray(h[k].data, np.float64) for k in ("RATE", "BACKGROUND", "SOURCES"))
    assert np.abs(rate - bg - src).max() < 2e-3 * max(1.0, rate.max() / 1000)
