"""The synthetic CRDS context (reduce.demo.crds_context): mappings, references, geometry, and the
real jwst pipelines running on it offline.

The session fixture ``crds_cache`` (tests/conftest.py) builds the cache once; CRDS_PATH and the
serverless URL are set there before crds is imported. The end-to-end test runs the pipelines in a
subprocess whose environment is set before any import.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reduce.demo import detector_model as dm
from reduce import instrument as inst

PROVIDED = ("mask", "saturation", "ipc", "linearity", "rscd", "dark", "reset", "gain", "readnoise",
            "distortion", "filteroffset", "flat", "photom", "area", "apcorr", "abvegaoffset")


def _header(filt, sub, readpatt, ngroups=10):
    return {
        "META.INSTRUMENT.NAME": "MIRI", "META.INSTRUMENT.DETECTOR": "MIRIMAGE",
        "META.INSTRUMENT.FILTER": filt, "META.SUBARRAY.NAME": sub, "META.EXPOSURE.READPATT": readpatt,
        "META.EXPOSURE.TYPE": "MIR_IMAGE", "META.EXPOSURE.NGROUPS": str(ngroups),
        "META.OBSERVATION.DATE": "2024-06-01", "META.OBSERVATION.TIME": "03:00:00",
        "META.INSTRUMENT.BAND": "UNDEFINED", "META.INSTRUMENT.CHANNEL": "UNDEFINED",
    }


def _ref(crds_cache, name):
    return crds_cache / "references" / "jwst" / "miri" / name


@pytest.fixture(scope="module")
def bestrefs(crds_cache):
    """Best references of the whole coverage grid, resolved by the real crds client."""
    import crds

    from reduce.demo.crds_context import DEMO_CONTEXT, required_reference_types

    types = sorted(set().union(*required_reference_types().values()))
    out = {}
    for filt in inst.FILTERS:
        for sub in inst.SUBARRAYS:
            for rp in inst.READ_PATTERNS:
                out[filt, sub, rp] = crds.getrecommendations(_header(filt, sub, rp), reftypes=types,
                                                             context=DEMO_CONTEXT, observatory="jwst")
    return out


# --- required types --------------------------------------------------------------------------

def test_required_types_come_from_the_pipeline_classes():
    from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline

    from reduce.demo.crds_context import required_reference_types

    req = required_reference_types()
    assert set(req) == {"Detector1Pipeline", "Image2Pipeline", "Image3Pipeline"}
    assert {"gain", "readnoise", "dark", "mask"} <= req["Detector1Pipeline"]
    assert {"distortion", "filteroffset", "flat", "photom", "area", "specwcs"} <= req["Image2Pipeline"]
    assert {"apcorr", "abvegaoffset"} <= req["Image3Pipeline"]
    # what stpipe really prefetches (instances, default skips) is covered
    for cls in (Detector1Pipeline, Image2Pipeline, Image3Pipeline):
        assert set(cls().reference_file_types) <= req[cls.__name__]


def test_imap_holds_every_prefetched_and_parameter_type(crds_cache):
    from crds.core import rmap

    from reduce.demo.crds_context import DEMO_CONTEXT, parameter_reference_types, required_reference_types

    pmap = rmap.load_mapping(str(crds_cache / "mappings" / "jwst" / DEMO_CONTEXT))
    imap = pmap.get_imap("MIRI")
    selections = set(imap.selections.keys())
    needed = set().union(*required_reference_types().values())
    assert needed <= selections
    assert parameter_reference_types() <= selections
    assert "pars-detector1pipeline" in selections
    for t in PROVIDED:
        assert imap.selections[t] != "N/A", t
    for t in selections - set(PROVIDED):
        assert imap.selections[t] == "N/A", t


def test_mapping_checksums_verify(crds_cache):
    from crds.core import rmap

    mapdir = crds_cache / "mappings" / "jwst"
    files = sorted(mapdir.glob("*map"))
    assert len(files) == len(PROVIDED) + 2
    for f in files:
        text = f.read_text()
        body = "".join(line for line in text.splitlines(True) if "sha1sum" not in line)
        m = rmap.load_mapping(str(f))  # raises ChecksumError on a bad sha1sum
        assert m.header["sha1sum"] == hashlib.sha1(body.encode()).hexdigest()
    from crds.core import config

    assert not config.get_ignore_checksum()  # the checks above really ran


def test_server_config_and_layout(crds_cache):
    import ast

    from reduce.demo.crds_context import DEMO_CONTEXT

    cfg = ast.literal_eval((crds_cache / "config" / "jwst" / "server_config").read_text())
    for key in ("observatory", "operational_context", "latest_context", "bad_files_list", "last_synced",
                "force_remote_mode"):
        assert key in cfg
    assert cfg["operational_context"] == DEMO_CONTEXT
    assert (crds_cache / "config" / "jwst" / "ref_cache_subdir_mode").read_text().strip() == "instrument"
    for d in ("miri", "fgs", "nircam", "niriss", "nirspec", "system"):
        assert (crds_cache / "references" / "jwst" / d).is_dir()


# --- best references over the coverage grid ---------------------------------------------------

def test_bestrefs_cover_every_filter_subarray_readpatt(crds_cache, bestrefs):
    assert len(bestrefs) == len(inst.FILTERS) * len(inst.SUBARRAYS) * len(inst.READ_PATTERNS)
    darks, flats = {}, {}
    for (filt, sub, rp), refs in bestrefs.items():
        for t, name in refs.items():
            if t in PROVIDED:
                assert not name.startswith("NOT FOUND"), (filt, sub, rp, t, name)
                assert _ref(crds_cache, name).is_file(), name
            else:
                assert name == "NOT FOUND n/a", (t, name)
        darks.setdefault(refs["dark"], set()).add((sub, rp))
        flats.setdefault(refs["flat"], set()).add(filt)
        assert refs["dark"] != refs["reset"]
    assert all(len(v) == 1 for v in darks.values()) and len(darks) == 10
    assert all(len(v) == 1 for v in flats.values()) and len(flats) == 9


def test_getreferences_resolves_local_paths(crds_cache):
    import crds

    from reduce.demo.crds_context import DEMO_CONTEXT

    paths = crds.getreferences(_header("F1000W", "SUB128", "SLOWR1"), reftypes=["dark", "distortion", "apcorr"],
                               context=DEMO_CONTEXT, observatory="jwst")
    for p in paths.values():
        assert Path(p).is_file() and Path(p).parent == crds_cache / "references" / "jwst" / "miri"


# --- reference contents -----------------------------------------------------------------------

def test_dark_convention_and_shape(crds_cache, bestrefs):
    from stdatamodels.jwst.datamodels import DarkMIRIModel

    for sub, rp in (("SUB64", "SLOWR1"), ("SUB128", "FASTR1")):
        name = bestrefs["F560W", sub, rp]["dark"]
        with DarkMIRIModel(str(_ref(crds_cache, name))) as d:
            s = inst.SUBARRAYS[sub]
            assert d.data.shape == (1, inst.MAX_GROUPS, s.ysize, s.xsize)
            assert d.dq.shape == d.data.shape
            assert (d.meta.subarray.name, d.meta.exposure.readpatt) == (sub, rp)
            assert (d.meta.subarray.xstart, d.meta.subarray.ystart) == (s.xstart, s.ystart)
            t = (inst.frame_time(sub, rp) * np.arange(inst.MAX_GROUPS)).astype(np.float32)
            expect = dm.dark_rate()[s.slices][None, None] * t[None, :, None, None]
            np.testing.assert_array_equal(d.data, expect)  # lossless compression, exact convention
            assert d.meta.instrument.name == "MIRI" and d.meta.telescope == "JWST"
            for k in ("description", "reftype", "author", "pedigree", "useafter"):
                assert getattr(d.meta, k)


def test_full_frame_dark_is_small_on_disk(crds_cache, bestrefs):
    from astropy.io import fits

    path = _ref(crds_cache, bestrefs["F560W", "FULL", "SLOWR1"]["dark"])
    assert path.stat().st_size < 20e6  # 60 x 1024 x 1032 float32 + uint32 would be ~0.5 GB
    with fits.open(path) as hdul:
        assert [hdul["SCI"].header[f"NAXIS{i}"] for i in (1, 2, 3, 4)] == [1032, 1024, 60, 1]


def test_detector_references_encode_the_true_detector(crds_cache, bestrefs):
    from stdatamodels.jwst import datamodels
    from stdatamodels.jwst.datamodels import dqflags

    f = dqflags.pixel
    refs = bestrefs["F1500W", "FULL", "FASTR1"]
    with datamodels.MaskModel(str(_ref(crds_cache, refs["mask"]))) as m:
        r, c = dm.bad_pixel_positions("dead")
        assert np.all(m.dq[r, c] & (f["DEAD"] | f["DO_NOT_USE"]) == f["DEAD"] | f["DO_NOT_USE"])
        r, c = dm.bad_pixel_positions("hot_known")
        assert np.all(m.dq[r, c] & (f["HOT"] | f["DO_NOT_USE"]) == f["HOT"] | f["DO_NOT_USE"])
        r, c = dm.bad_pixel_positions("hot_new")
        assert np.all(m.dq[r, c] == 0)  # not catalogued: the cleaning's job
        assert np.all(m.dq[:, :4] & f["REFERENCE_PIXEL"]) and np.all(m.dq[:, -4:] & f["REFERENCE_PIXEL"])
    with datamodels.FlatModel(str(_ref(crds_cache, refs["flat"]))) as fl:
        assert fl.meta.instrument.filter == "F1500W"
        np.testing.assert_array_equal(fl.data, dm.flat_field("F1500W"))
    with datamodels.GainModel(str(_ref(crds_cache, refs["gain"]))) as g:
        assert np.all(g.data == inst.GAIN)
    with datamodels.ReadnoiseModel(str(_ref(crds_cache, refs["readnoise"]))) as rn:
        assert np.all(rn.data == inst.READNOISE_CDS)
    with datamodels.SaturationModel(str(_ref(crds_cache, refs["saturation"]))) as sat:
        assert np.all(sat.data == inst.SATURATION)


def test_photometric_references(crds_cache, bestrefs):
    from stdatamodels.jwst import datamodels

    refs = bestrefs["F560W", "SUB256", "FASTR1"]
    with datamodels.MirImgPhotomModel(str(_ref(crds_cache, refs["photom"]))) as p:
        rows = {(r["filter"], r["subarray"]): r["photmjsr"] for r in p.phot_table}
        assert len(rows) == len(inst.FILTERS) * len(inst.SUBARRAYS)
        for (filt, _), v in rows.items():
            assert v == pytest.approx(inst.PHOTMJSR[filt], rel=1e-6)
        assert not p.hasattr("timecoeff_linear")
    with datamodels.PixelAreaModel(str(_ref(crds_cache, refs["area"]))) as a:
        assert a.data.shape == inst.FULL_SHAPE
        assert a.meta.photometry.pixelarea_steradians == pytest.approx(inst.pixel_area_sr())
        assert a.meta.photometry.pixelarea_arcsecsq == pytest.approx(inst.PIXEL_SCALE**2)
        assert 0.97 < np.median(a.data) < 1.03
    with datamodels.MirImgApcorrModel(str(_ref(crds_cache, refs["apcorr"]))) as ap:
        t = ap.apcorr_table
        sel = (t["filter"] == "F2550W") & (t["subarray"] == "SUB64")
        assert np.all(np.diff(t["radius"][sel]) > 0)
        np.testing.assert_allclose(t["apcorr"][sel] * t["eefraction"][sel], 1.0, rtol=1e-6)
        assert {30, 50, 70} <= set(np.round(t["eefraction"][sel] * 100).astype(int))
    with datamodels.ABVegaOffsetModel(str(_ref(crds_cache, refs["abvegaoffset"]))) as ab:
        assert set(ab.abvega_offset["filter"]) == set(inst.FILTERS)


# --- distortion -------------------------------------------------------------------------------

def test_distortion_round_trip_and_siaf_agreement():
    import warnings

    import pysiaf

    from reduce.demo.crds_context import detector_to_v2v3, v2v3_to_detector

    y, x = np.mgrid[-0.5:1023.5:41j, -0.5:1031.5:43j]
    v2, v3 = detector_to_v2v3(x, y)
    xb, yb = v2v3_to_detector(v2, v3)
    assert max(np.abs(xb - x).max(), np.abs(yb - y).max()) < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap = pysiaf.Siaf("MIRI")["MIRIM_FULL"]
    sv2, sv3 = ap.det_to_tel(x + 1, y + 1)  # SIAF pixels are 1-based
    assert max(np.abs(sv2 - v2).max(), np.abs(sv3 - v3).max()) < 0.01
    # scale ~0.11 arcsec/px
    d = np.hypot(*(np.array(detector_to_v2v3(601.0, 500.0)) - np.array(detector_to_v2v3(600.0, 500.0))))
    assert d == pytest.approx(inst.PIXEL_SCALE, rel=0.01)


def test_distortion_reference_is_the_public_model(crds_cache, bestrefs):
    from stdatamodels.jwst.datamodels import DistortionModel

    from reduce.demo.crds_context import detector_to_v2v3, v2v3_to_detector

    x, y = np.array([10.0, 500.0, 1020.0]), np.array([5.0, 512.0, 1000.0])
    with DistortionModel(str(_ref(crds_cache, bestrefs["F770W", "FULL", "FASTR1"]["distortion"]))) as d:
        v2, v3 = d.model(x, y, with_bounding_box=False)
        np.testing.assert_allclose((v2, v3), detector_to_v2v3(x, y), rtol=0, atol=1e-9)
        np.testing.assert_allclose(d.model.inverse(v2, v3), v2v3_to_detector(v2, v3), rtol=0, atol=1e-9)
        assert d.meta.input_units == "pixel" and d.meta.output_units == "arcsec"


# --- build behaviour --------------------------------------------------------------------------

def test_build_is_idempotent(crds_cache):
    from reduce.demo.crds_context import DEMO_CONTEXT, build_demo_context

    pmap = crds_cache / "mappings" / "jwst" / DEMO_CONTEXT
    before = pmap.stat().st_mtime_ns
    assert build_demo_context(crds_cache) == DEMO_CONTEXT
    assert pmap.stat().st_mtime_ns == before


def test_build_refuses_foreign_directory_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    from reduce.demo.crds_context import build_demo_context
    from reduce.demo.crds_context import references

    foreign = tmp_path / "real-cache"
    (foreign / "mappings").mkdir(parents=True)
    (foreign / "mappings" / "jwst_1584.pmap").write_text("x")
    with pytest.raises(FileExistsError):
        build_demo_context(foreign)

    def boom():
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(references, "mask_model", boom)
    with pytest.raises(RuntimeError):
        build_demo_context(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real-cache"]


# --- the real pipelines, offline --------------------------------------------------------------

def _no_network_prefix() -> list[str]:
    """``unshare -n`` (a network namespace without interfaces) where the system allows it."""
    import shutil

    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


@pytest.mark.slow
def test_pipelines_run_offline_and_calibrate_back_to_truth(crds_cache, tmp_path):
    from reduce.demo.crds_context import DEMO_CONTEXT

    script = tmp_path / "e2e.py"
    script.write_text(E2E_SCRIPT)
    work = tmp_path / "work"
    work.mkdir()
    # CRDS step parameters stay enabled (as in jwst): the demo context maps every pars-* N/A
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRDS_", "STPIPE_DISABLE_CRDS_STEPPARS"))}
    env.update(CRDS_PATH=str(crds_cache), CRDS_CONTEXT=DEMO_CONTEXT,
               CRDS_SERVER_URL="https://jwst-serverless-mode.stsci.edu", CRDS_READONLY_CACHE="1")
    cmd = [sys.executable, str(script), str(work), "1", "SUB256", "FASTR1", "F770W", "10", "1"]
    if _no_network_prefix():
        cmd = _no_network_prefix() + cmd
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    res = json.loads(lines[-1][len("RESULT "):])
    assert "CRDS - ERROR" not in proc.stderr + proc.stdout
    for step in ("dq_init", "saturation", "linearity", "rscd", "dark_sub", "reset", "jump", "ramp_fit",
                 "assign_wcs", "flat_field", "photom"):
        assert res["steps"][step] == "COMPLETE", step
    assert res["rate_npix"] > 50_000
    assert res["rate_ratio_median"] == pytest.approx(1.0, abs=0.01)  # rate = injected sky x flat
    assert res["cal_units"] == "MJy/sr"
    assert res["cal_median_mjysr"] == pytest.approx(res["cal_expect_mjysr"], rel=0.01)
    assert res["wcs_v2v3_maxdiff_arcsec"] < 1e-6
    assert res["wcs_sky_maxdiff_arcsec"] < 1e-3
    assert res["wcs_inverse_maxdiff_px"] < 1e-3
    # Image3 on two dithered exposures: every injected star found where it was put, flux ~ right
    assert res["ncat"] >= 5
    assert max(res["cat_sep_arcsec"]) < 0.02
    np.testing.assert_allclose(res["cat_flux_jy"], res["star_flux_jy"], rtol=0.10)


E2E_SCRIPT = r"""# End-to-end check, run in a subprocess: the caller sets the CRDS environment before any import.
import json, sys, time
from pathlib import Path
import numpy as np

work = Path(sys.argv[1]); run_image3 = sys.argv[2] == "1"
from astropy.time import Time
from stdatamodels.jwst.datamodels import Level1bModel
from pysiaf.utils import rotations
from reduce import instrument as inst
from reduce.demo import detector_model as dm
from reduce.demo.crds_context import detector_to_v2v3, v2v3_to_detector

SUB, RP, FILT = sys.argv[3], sys.argv[4], sys.argv[5]
NGROUPS, NINTS = int(sys.argv[6]), int(sys.argv[7])
SKY = 40.0          # DN/s before the flat
STAR_DN = 4000.0    # DN/s total per star
RA0, DEC0, ROLL = 80.5, -69.5, 20.0
s = inst.SUBARRAYS[SUB]
tframe = inst.frame_time(SUB, RP)
# pointing: reference point = subarray centre, through our own distortion
xc, yc = s.xstart - 1 + (s.xsize - 1) / 2, s.ystart - 1 + (s.ysize - 1) / 2
V2REF, V3REF = (float(v) for v in detector_to_v2v3(xc, yc))
sigma_px = inst.psf_fwhm_arcsec(FILT) / 2.3548 / inst.PIXEL_SCALE

def sky_to_full_pixel(ra, dec, ra_ref, dec_ref):
    att = rotations.attitude(V2REF, V3REF, ra_ref, dec_ref, ROLL)
    v2, v3 = rotations.getv2v3(att, ra, dec)
    return v2v3_to_detector(v2, v3)

def full_pixel_to_sky(x, y, ra_ref, dec_ref):
    att = rotations.attitude(V2REF, V3REF, ra_ref, dec_ref, ROLL)
    v2, v3 = detector_to_v2v3(x, y)
    return rotations.pointing(att, v2, v3)

# stars at fixed sky positions (offsets in arcsec from the pointing centre)
offs = np.array([(-8.0, -6.0), (7.0, -9.0), (-5.0, 8.0), (9.0, 6.5), (0.5, 0.3)])
star_ra = RA0 + offs[:, 0] / 3600 / np.cos(np.deg2rad(DEC0)); star_dec = DEC0 + offs[:, 1] / 3600

def make_uncal(path, k, ra_ref, dec_ref, seed):
    rng = np.random.default_rng(seed)
    sl = s.slices
    flat = dm.flat_field(FILT)[sl].astype(np.float64)
    dark = dm.dark_rate()[sl].astype(np.float64)
    yy, xx = np.mgrid[sl]
    scene = np.full(flat.shape, SKY)
    xs, ys = sky_to_full_pixel(star_ra, star_dec, ra_ref, dec_ref)
    from scipy.special import erf
    def box(u, u0):  # Gaussian integrated over the pixel [u - 0.5, u + 0.5]
        return 0.5 * (erf((u + 0.5 - u0) / (np.sqrt(2) * sigma_px)) - erf((u - 0.5 - u0) / (np.sqrt(2) * sigma_px)))
    for x0, y0 in zip(xs, ys):
        scene += STAR_DN * box(xx, x0) * box(yy, y0)
    rate = scene * flat + dark          # DN/s
    g = np.arange(1, NGROUPS + 1)[:, None, None]
    ramp = inst.PEDESTAL + rate[None] * tframe * g
    ramp += rng.normal(0, inst.READNOISE_READ, ramp.shape)
    data = np.clip(np.round(ramp), 0, 65535).astype(np.uint16)[None].repeat(NINTS, 0)
    m = Level1bModel(data=data)
    m.meta.instrument.name, m.meta.instrument.detector, m.meta.instrument.filter = "MIRI", "MIRIMAGE", FILT
    m.meta.telescope = "JWST"
    m.meta.exposure.type = "MIR_IMAGE"; m.meta.exposure.readpatt = RP
    m.meta.exposure.ngroups, m.meta.exposure.nints, m.meta.exposure.nframes, m.meta.exposure.groupgap = NGROUPS, NINTS, 1, 0
    m.meta.exposure.frame_time = tframe; m.meta.exposure.group_time = tframe
    m.meta.exposure.integration_time = tframe * NGROUPS
    m.meta.exposure.exposure_time = tframe * NGROUPS * NINTS
    m.meta.exposure.effective_exposure_time = inst.effective_exposure_time(NGROUPS, NINTS, tframe)
    m.meta.exposure.duration = inst.duration(NGROUPS, NINTS, tframe)
    m.meta.exposure.nresets_at_start = 1; m.meta.exposure.nresets_between_ints = 1
    m.meta.exposure.sample_time = 10; m.meta.exposure.frame_divisor = 1
    t0 = Time("2024-06-01T03:00:00") + k * 600 / 86400
    m.meta.exposure.start_time = t0.mjd; m.meta.exposure.mid_time = t0.mjd + m.meta.exposure.duration / 2 / 86400
    m.meta.exposure.end_time = t0.mjd + m.meta.exposure.duration / 86400
    m.meta.observation.date, m.meta.observation.time = t0.isot.split("T")
    m.meta.observation.program_number = "09999"; m.meta.observation.observation_number = "001"
    m.meta.observation.visit_number = "001"; m.meta.observation.visit_group = "01"
    m.meta.observation.sequence_id = "1"; m.meta.observation.activity_id = "01"
    m.meta.observation.exposure_number = f"{k + 1:05d}"
    m.meta.observation.visit_id = "09999001001"; m.meta.observation.obs_id = "V09999001001P0000000001101"
    m.meta.subarray.name = SUB
    m.meta.subarray.xstart, m.meta.subarray.ystart, m.meta.subarray.xsize, m.meta.subarray.ysize = s.xstart, s.ystart, s.xsize, s.ysize
    m.meta.subarray.fastaxis, m.meta.subarray.slowaxis = 1, 2
    m.meta.target.ra, m.meta.target.dec = RA0, DEC0
    w = m.meta.wcsinfo
    w.ra_ref, w.dec_ref, w.roll_ref = ra_ref, dec_ref, ROLL
    w.v2_ref, w.v3_ref, w.v3yangle, w.vparity = V2REF, V3REF, 4.83544897, -1
    w.siaf_xref_sci, w.siaf_yref_sci = xc - s.xstart + 2, yc - s.ystart + 2
    m.meta.pointing.ra_v1, m.meta.pointing.dec_v1, m.meta.pointing.pa_v3 = ra_ref, dec_ref, ROLL
    m.meta.velocity_aberration.scale_factor = 1.0
    m.meta.aperture.name = "MIRIM_" + SUB
    m.meta.dither.primary_type = "NONE"
    m.meta.filename = path.name
    m.save(path)
    return path

out = {}
from jwst.pipeline import Detector1Pipeline, Image2Pipeline, Image3Pipeline
nexp = 2 if run_image3 else 1
cals = []
for k in range(nexp):
    dra, ddec = (k * 1.3) / 3600 / np.cos(np.deg2rad(DEC0)), (k * 0.9) / 3600
    ra_ref, dec_ref = RA0 + dra, DEC0 + ddec
    uncal = make_uncal(work / f"jw09999001001_01101_{k + 1:05d}_mirimage_uncal.fits", k, ra_ref, dec_ref, k)
    t = time.time()
    rate = Detector1Pipeline.call(str(uncal), output_dir=str(work), save_results=True)
    out[f"det1_s_{k}"] = time.time() - t
    t = time.time()
    cal = Image2Pipeline.call(rate, output_dir=str(work), save_results=True)[0]
    out[f"img2_s_{k}"] = time.time() - t
    cals.append(work / cal.meta.filename)
    if k == 0:
        sl = s.slices
        expect = SKY * dm.flat_field(FILT)[sl]
        good = (rate.dq == 0)
        yy, xx = np.mgrid[0:s.ysize, 0:s.xsize]
        # sky-only pixels: away from the stars
        xs, ys = sky_to_full_pixel(star_ra, star_dec, ra_ref, dec_ref)
        far = np.ones_like(good)
        for x0, y0 in zip(xs - s.xstart + 1, ys - s.ystart + 1):
            far &= (xx - x0)**2 + (yy - y0)**2 > (8 * sigma_px)**2
        sel = good & far
        out["rate_ratio_median"] = float(np.median(rate.data[sel] / expect[sel]))
        out["rate_npix"] = int(sel.sum())
        out["cal_median_mjysr"] = float(np.median(cal.data[sel]))
        out["cal_expect_mjysr"] = SKY * inst.PHOTMJSR[FILT]
        out["cal_units"] = cal.meta.bunit_data
        out["steps"] = {k2: v for k2, v in cal.meta.cal_step.instance.items()}
        out["rate_steps"] = {k2: v for k2, v in rate.meta.cal_step.instance.items()}
        # WCS: detector -> v2v3 and -> sky
        px, py = np.array([10.0, 128.0, 240.0]), np.array([20.0, 128.0, 200.0])
        v2w, v3w = cal.meta.wcs.get_transform("detector", "v2v3")(px, py)
        v2e, v3e = detector_to_v2v3(px + s.xstart - 1, py + s.ystart - 1)
        out["wcs_v2v3_maxdiff_arcsec"] = float(max(np.abs(v2w - v2e).max(), np.abs(v3w - v3e).max()))
        raw, decw = cal.meta.wcs(px, py)
        rae, dece = full_pixel_to_sky(px + s.xstart - 1, py + s.ystart - 1, ra_ref, dec_ref)
        out["wcs_sky_maxdiff_arcsec"] = float(np.max(np.hypot((raw - rae) * np.cos(np.deg2rad(dece)), decw - dece)) * 3600)
        xb, yb = cal.meta.wcs.invert(raw, decw)
        out["wcs_inverse_maxdiff_px"] = float(max(np.abs(xb - px).max(), np.abs(yb - py).max()))
if run_image3:
    from jwst.associations import asn_from_list
    asn = asn_from_list.asn_from_list([str(c) for c in cals], product_name="demo_i2d_test")
    asn_path = work / "asn.json"
    _, ser = asn.dump(format="json"); asn_path.write_text(ser)
    t = time.time()
    Image3Pipeline.call(str(asn_path), output_dir=str(work), save_results=True,
                        steps={"tweakreg": {"skip": True}})
    out["img3_s"] = time.time() - t
    from astropy.table import Table
    cat = Table.read(work / "demo_i2d_test_cat.ecsv")
    out["ncat"] = len(cat)
    ra_c, dec_c = cat["sky_centroid"].ra.deg, cat["sky_centroid"].dec.deg
    seps, fl = [], []
    for r, d in zip(star_ra, star_dec):
        sep = np.hypot((ra_c - r) * np.cos(np.deg2rad(d)), dec_c - d) * 3600
        i = int(np.argmin(sep)); seps.append(float(sep[i])); fl.append(float(cat["aper_total_flux"][i]))
    out["cat_sep_arcsec"] = seps
    out["cat_flux_jy"] = fl
    out["star_flux_jy"] = STAR_DN * inst.PHOTMJSR[FILT] * inst.pixel_area_sr() * 1e12 / 1e6
print("RESULT " + json.dumps(out))
"""
