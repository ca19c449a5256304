"""The cleaning step on a tiny synthetic workspace of stage-2 cal files."""

import hashlib
import shutil
import json

import numpy as np
import pytest

from reduce import config
from reduce.clean import CleanReport, run
from reduce.params import parse
from reduce.workspace import Workspace

SHAPE = (48, 56)
DNU, FLUX_ESTIMATED = 1, 268435456


def _cal(path, seed, sky, duration=88.8, filt="F770W", star=None):
    from stdatamodels.jwst.datamodels import ImageModel

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SHAPE[0], :SHAPE[1]]
    flat = 1 + 0.2 * np.sin(x / 7.0) * np.cos(y / 9.0)   # structure the template must remove
    sci = sky * flat + rng.normal(0, 0.05, SHAPE)
    if star is not None:
        sci += 50 * np.exp(-((x - star[1]) ** 2 + (y - star[0]) ** 2) / 2.0)
    vp = np.full(SHAPE, 0.0016, np.float32)
    vr = np.full(SHAPE, 0.0008, np.float32)
    vf = np.full(SHAPE, 0.0001, np.float32)
    err = np.sqrt(vp + vr + vf)
    dq = np.zeros(SHAPE, np.uint32)
    sci = sci.astype(np.float32)
    bad = [(3, 4), (3, 5), (0, 0), (SHAPE[0] - 1, 20)]
    for r, c in bad:
        sci[r, c] = np.nan
        dq[r, c] = DNU
    m = ImageModel(data=sci, err=err, dq=dq, var_poisson=vp, var_rnoise=vr, var_flat=vf)
    m.meta.instrument.name = "MIRI"
    m.meta.instrument.filter = filt
    m.meta.instrument.detector = "MIRIMAGE"
    m.meta.subarray.name = "FULL"
    m.meta.exposure.readpatt = "FASTR1"
    m.meta.exposure.effective_exposure_time = duration
    m.meta.exposure.duration = duration + 2.775
    m.meta.photometry.pixelarea_arcsecsq = 0.1108 ** 2  # PIXAR_A2: the cleaning's pixel scale
    m.save(str(path))
    m.close()


def _digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


N_BIG = 4  # one group of 4 (MEDIAN_THRESH = 4 in these tests)


@pytest.fixture(scope="module")
def cal_files(tmp_path_factory):
    """Stage-2 cal files, made once per module."""
    d = tmp_path_factory.mktemp("cal")
    stems = []
    for i in range(N_BIG):
        stem = f"jw01_{i:02d}_mirimage"
        _cal(d / f"{stem}_cal.fits", i, sky=10 + i, star=(10 + 7 * i, 12 + 8 * i))
        stems.append(stem)
    for i in range(2):  # 88.81 s: its own group, below MEDIAN_THRESH
        stem = f"jw02_{i:02d}_mirimage"
        _cal(d / f"{stem}_cal.fits", 100 + i, sky=12, duration=88.81)
        stems.append(stem)
    return d, stems


@pytest.fixture
def workspace(tmp_path, cal_files):
    src, stems = cal_files
    ws = Workspace(tmp_path / "ws").create()
    for s in stems:
        shutil.copy2(src / f"{s}_cal.fits", ws.output("stage2", s))
    return ws, stems


def _cfg(**kw):
    cfg = config.defaults()
    cfg["MEDIAN_THRESH"] = N_BIG
    cfg.update(kw)
    return cfg


def _run(ws, stems, cfg):
    """The cleaning as the orchestrator runs it: its section of ``cfg``, and OVERWRITE."""
    p = parse(cfg)
    return run(ws, stems, p.clean, overwrite=p.run.overwrite)


def _arrays(path):
    from stdatamodels.jwst.datamodels import ImageModel

    with ImageModel(str(path)) as m:
        return {k: np.array(getattr(m, k)) for k in ("data", "err", "dq", "var_poisson", "var_rnoise", "var_flat")}


def test_step_outputs_inputs_untouched_and_rerun(workspace):
    ws, stems = workspace
    inputs = [ws.output("stage2", s) for s in stems]
    before = _digest(inputs)
    report = _run(ws, stems, _cfg(small_group_background="none"))  # the original's small groups
    assert isinstance(report, CleanReport)
    assert report.files == [ws.output("clean", s) for s in stems]
    assert all(p.exists() for p in report.files)
    assert _digest(inputs) == before                      # stage-2 files never modified
    summary = json.loads((ws.dir("clean") / "clean_summary.json").read_text())
    groups = summary["groups"]
    assert len(groups) == 2
    big = next(g for g in groups.values() if len(g["members"]) == N_BIG)
    small = next(g for g in groups.values() if len(g["members"]) == 2)
    assert big["template"] and not small["template"] and "MEDIAN_THRESH" in small["reason"]
    assert any("no background removed" in n for n in report.notes)
    assert big["method"] == "template" and big["model"] in big["cv_scores"] and min(big["cv_scores"].values()) == 1.0
    e0 = summary["exposures"][stems[0]]
    assert e0["scale"] == pytest.approx(10.0, rel=0.02) and e0["n_filled"] == 4
    assert e0["n_uncovered"] == 0 and 0 < e0["fraction_masked"] < 0.2
    assert (ws.dir("clean") / f"{stems[0]}_segm.fits").exists()
    assert list((ws.dir("clean") / "qa").glob("*.png"))

    out = _arrays(ws.output("clean", stems[0]))
    inp = _arrays(ws.output("stage2", stems[0]))
    # filled pixels: finite, DO_NOT_USE cleared, FLUX_ESTIMATED set; edges and corners too
    for r, c in [(3, 4), (3, 5), (0, 0), (SHAPE[0] - 1, 20)]:
        assert np.isfinite(out["data"][r, c])
        assert out["dq"][r, c] & FLUX_ESTIMATED and not out["dq"][r, c] & DNU
    # the sky structure is gone (away from the star); ERR**2 == sum of variances
    sky = np.ones(SHAPE, bool)
    sky[0:25, 5:25] = False
    assert abs(np.nanmedian(out["data"][sky])) < 0.05
    assert np.nanstd(out["data"][sky]) < 0.3 * np.nanstd(inp["data"][sky])
    total = out["var_poisson"] + out["var_rnoise"] + out["var_flat"]
    np.testing.assert_allclose(out["err"] ** 2, total, rtol=1e-5)
    assert np.all(out["err"][sky] > inp["err"][sky])       # template noise added ...
    # ... its floor where ivm weights see it, the same at every pixel (no weight structure
    # across sources), the pixel-to-pixel rest in VAR_FLAT
    measured = sky & ((out["dq"] & FLUX_ESTIMATED) == 0)  # filled pixels: see below
    d_rn = (out["var_rnoise"] - inp["var_rnoise"])[measured]
    assert np.all(d_rn > 0) and np.ptp(d_rn) <= 1e-6 * d_rn.max() + 1e-9
    assert np.all(out["var_flat"][sky] >= inp["var_flat"][sky])
    # filled pixels weigh 1e-4 of a measured one in the drizzle (VAR_RNOISE x 1e4)
    r, c = 3, 4
    assert out["var_rnoise"][r, c] > 1e3 * np.median(inp["var_rnoise"])
    # provenance in the cleaned file: keywords and HISTORY
    from astropy.io import fits
    h = fits.getheader(ws.output("clean", stems[0]))
    assert h["S_MRCLN"] == "COMPLETE" and h["MRC_BKG"] == "template" and h["MRC_MODL"] == big["model"]
    assert h["MRC_SCAL"] == pytest.approx(e0["scale"]) and h["MRC_DTHR"] == 10.0 and h["MRC_NFIL"] == 4
    assert any("mirim-reduce clean: background template" in str(v) for v in h.get("HISTORY", []))
    # the small group: median filter only, no background subtraction
    s_out = _arrays(ws.output("clean", stems[-1]))
    s_in = _arrays(ws.output("stage2", stems[-1]))
    good = np.isfinite(s_in["data"])
    np.testing.assert_array_equal(s_out["data"][good], s_in["data"][good])

    # rerun: groups complete -> skipped, outputs unchanged
    first = {s: _arrays(ws.output("clean", s)) for s in stems}
    digests = _digest(report.files)
    report2 = _run(ws, stems, _cfg(small_group_background="none"))
    assert _digest(report2.files) == digests
    assert any("2 group(s) already done" in n for n in report2.notes)
    # OVERWRITE: recomputed, identical arrays
    _run(ws, stems, _cfg(OVERWRITE=True, small_group_background="none"))
    for s in stems:
        again = _arrays(ws.output("clean", s))
        for k in first[s]:
            np.testing.assert_array_equal(again[k], first[s][k])
    assert _digest(inputs) == before


def test_small_group_background_chosen_from_the_data(workspace):
    """Below MEDIAN_THRESH the default tries a leave-one-out template, a Background2D and
    nothing, and keeps the best cross-validated one; the scores are in the summary."""
    ws, stems = workspace
    _run(ws, stems, _cfg())
    summary = json.loads((ws.dir("clean") / "clean_summary.json").read_text())
    small = next(g for g in summary["groups"].values() if len(g["members"]) == 2)
    assert small["method"] in ("template", "background2d", "none")
    assert any(k.startswith("background2d_") for k in small["cv_scores"]) and "none" in small["cv_scores"]
    chosen = small["model"] if small["method"] == "template" else (
        "none" if small["method"] == "none" else f"background2d_{small['model'].removeprefix('box')}")
    assert chosen in small["cv_scores"]
    s_out = _arrays(ws.output("clean", stems[-1]))
    s_in = _arrays(ws.output("stage2", stems[-1]))
    good = np.isfinite(s_in["data"])
    # a treated small group is flatter than the input (its sky and structure removed)
    if small["method"] != "none":
        assert np.nanstd(s_out["data"][good]) < np.nanstd(s_in["data"][good])
        assert all(summary["exposures"][s]["sky_subtracted"] for s in small["members"])


def test_stage2_file_without_pixel_area_is_an_input_error(workspace):
    from astropy.io import fits

    from reduce.errors import InputError

    ws, stems = workspace
    path = ws.output("stage2", stems[0])
    with fits.open(path) as h:
        h["SCI"].header.remove("PIXAR_A2", ignore_missing=True)
        h[0].header.remove("PIXAR_A2", ignore_missing=True)
        h.writeto(path, overwrite=True)
    with pytest.raises(InputError, match=f"{stems[0]}_cal.fits has no PIXAR_A2.*rerun stage 2"):
        _run(ws, stems, _cfg())


def test_resumability_is_per_group(workspace):
    ws, stems = workspace
    _run(ws, stems, _cfg())
    big = stems[:N_BIG]
    ws.output("clean", big[2]).unlink()            # an interrupted group
    keep = {s: ws.output("clean", s).stat().st_mtime_ns for s in stems if s != big[2]}
    report = _run(ws, stems, _cfg())
    assert any("1 group(s) already done" in n for n in report.notes)
    assert ws.output("clean", big[2]).exists()
    for s in big[:2] + big[3:]:                     # the whole group was redone
        assert ws.output("clean", s).stat().st_mtime_ns != keep[s]
    for s in stems[N_BIG:]:                             # the complete group was not
        assert ws.output("clean", s).stat().st_mtime_ns == keep[s]
    assert not list(ws.dir("clean").glob(".*part"))  # no temporary files left


def test_cleaning_off_uses_stage2_files(workspace):
    ws, stems = workspace
    report = _run(ws, stems, _cfg(MEDIAN_FILTER=False, SUPER_BKG_SUB=False))
    assert report.files == [ws.output("stage2", s) for s in stems]
    assert any("stage 3 uses the stage-2 cal files" in n for n in report.notes)
    assert not list(ws.dir("clean").glob("*_cal.fits"))


def test_each_group_logs_its_phase_seconds_for_the_benchmarks(workspace):
    """One line per group in its log (never in a record: records must not vary between runs),
    which ``benchmarks.clean_phases`` sums per pass."""
    from benchmarks.clean_phases import PHASE_ITEM, PHASE_LINE, phase_seconds

    ws, stems = workspace
    _run(ws, stems, _cfg(small_group_background="none"))
    per = phase_seconds(ws.root)["pass 2"]  # this workspace's only pass writes to clean/ (logs/clean/)
    assert set(per) == {"masks", "stack and frame test", "model choice", "self-calibration", "subtraction"}
    assert all(v >= 0 for v in per.values()) and per["masks"] > 0 and per["subtraction"] > 0
    logs = {p.name: p.read_text() for p in (ws.root / "logs" / "clean").glob("*.log")}
    assert len(logs) == 2 and all(text.count(": phases masks ") == 1 for text in logs.values())
    lines = [next(m for ln in t.splitlines() if (m := PHASE_LINE.search(ln))) for t in logs.values()]
    listed = sorted(tuple(k for k, _ in PHASE_ITEM.findall(m.group(2))) for m in lines)
    assert listed == [("masks",), ("masks", "stack and frame test", "model choice", "self-calibration",
                                   "subtraction")]  # the group below MEDIAN_THRESH is not treated
    summary = (ws.dir("clean") / "clean_summary.json").read_text()
    assert "phases" not in summary and "perf" not in summary
