"""The second cleaning pass (``clean_second_pass``, on by default) in the demo workspace (slow)."""

import json
import shutil
from pathlib import Path

import pytest

from conftest import cli


@pytest.mark.slow
def test_second_pass_products_and_masks(demo_run):
    from astropy.io import fits

    _, ws, _ = demo_run
    stems = sorted(p.name.removesuffix("_cal.fits") for p in ws.glob("stage2/*_cal.fits"))
    # the first pass lives in pass1/: cleaned files and their mosaics with the mosaic masks
    assert sorted(p.name.removesuffix("_cal.fits") for p in ws.glob("pass1/clean/*_cal.fits")) == stems
    summary = json.loads((ws / "clean" / "clean_summary.json").read_text())
    first = json.loads((ws / "pass1" / "clean" / "clean_summary.json").read_text())
    # first-pass mosaics only where the first pass removed a background: every filter here
    # (F770W, F1500W: templates; F2100W, 2 exposures: the small-group model its data chose)
    subtracted = {e["group"].split("_")[0].lower() for e in first["exposures"].values() if e["sky_subtracted"]}
    assert subtracted == {"f770w", "f1500w", "f2100w"}, first["groups"]
    # first-pass mosaics are made in memory (tweakreg, skymatch, resample): only their masks
    # are files, on the mosaic grid and projected onto every member
    assert not list(ws.glob("pass1/stage3/*/*_i2d.fits"))
    masks = sorted(ws.glob("pass1/stage3/*/*_mosaic_mask.fits"))
    assert len(masks) == 4
    projected = sorted(p.name.removesuffix("_mask.fits") for p in ws.glob("pass1/masks/*_mask.fits"))
    assert projected == stems
    for stem in stems:
        with fits.open(ws / "pass1" / "masks" / f"{stem}_mask.fits") as h, \
                fits.open(ws / "clean" / f"{stem}_segm.fits") as s:
            extra = h["MASK"].data.astype(bool)
            source = (s["CLEANMAP"].data & 1).astype(bool)
            bad = (s["CLEANMAP"].data & 2).astype(bool)
        assert 0.05 < extra.mean() < 0.9
        assert not (extra & ~bad & ~source).any()  # every projected source pixel is masked in pass 2
    # the final cleaning is the second pass, and the projected masks added pixels
    assert summary["pass"] == "pass 2" and first["pass"] == "pass 1"
    assert summary["parameters"]["clean_second_pass"] is True
    templated = [e for e in summary["exposures"].values() if e["template"]]
    assert len(templated) >= 12  # F770W (7) and F1500W (5) at least
    assert all(e["n_mosaic_masked"] > 0 for e in summary["exposures"].values() if e["sky_subtracted"])
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
    files = sorted([*ws.glob("pass1/clean/*_cal.fits"), *ws.glob("pass1/masks/*_mask.fits"),
                    *ws.glob("clean/*_cal.fits"), *ws.glob("stage3/*/*_i2d.fits")])
    assert len(files) == 14 + 14 + 14 + 4
    stamps = {p: p.stat().st_mtime_ns for p in files}
    cli("clean", ws, "--crds-path", crds_cache)
    cli("stage3", ws, "--crds-path", crds_cache)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps


@pytest.mark.slow
def test_group_without_projected_mask_is_pass_one_promoted(demo_run, crds_cache, tmp_path):
    """A group none of whose members got a projected mask would be cleaned exactly as in pass
    1: its pass-1 files are copied (MRC_PASS relabelled), and they equal a recomputation."""
    import numpy as np
    from astropy.io import fits

    _, ws0, _ = demo_run
    ws = tmp_path / "ws"
    shutil.copytree(ws0, ws, symlinks=True)
    for p in ws.glob(".lock*"):
        p.unlink()
    f2100w = sorted(p.name.removesuffix("_cal.fits") for p in ws.glob("stage2/*_cal.fits")
                    if fits.getval(p, "FILTER") == "F2100W")
    assert len(f2100w) == 2
    # no background model for groups below MEDIAN_THRESH: F2100W (2 exposures) is only filled, so
    # its mosaic gets no first-pass mask and its second pass would repeat its first
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('small_group_background = "none"\n')
    cli("clean", ws, "--crds-path", crds_cache, "--config", cfg, "--jobs", "2")
    assert not any((ws / "pass1" / "masks" / f"{stem}_mask.fits").exists() for stem in f2100w)
    summary = json.loads((ws / "clean" / "clean_summary.json").read_text())
    group = summary["exposures"][f2100w[0]]["group"]
    assert summary["groups"][group]["promoted_from"].startswith("pass 1")
    assert all("promoted_from" not in g for n, g in summary["groups"].items() if n != group)
    for stem in f2100w:
        with fits.open(ws / "clean" / f"{stem}_cal.fits") as a, fits.open(ws / "pass1" / "clean" / f"{stem}_cal.fits") as b:
            assert a[0].header["MRC_PASS"] == "pass 2" and b[0].header["MRC_PASS"] == "pass 1"
            for ext in ("SCI", "ERR", "DQ", "VAR_RNOISE", "VAR_FLAT"):
                assert np.array_equal(a[ext].data, b[ext].data, equal_nan=True), ext
    # recomputed from the stage-2 files with no projected mask: the same arrays
    from reduce import config
    from reduce.clean.step import run_clean
    from reduce.params import parse
    from reduce.workspace import Workspace

    fresh = Workspace(tmp_path / "fresh").create()
    for stem in f2100w:
        shutil.copy(ws / "stage2" / f"{stem}_cal.fits", fresh.dir("stage2"))
    run_clean(fresh, f2100w, parse(config.load(cfg)).clean, overwrite=False, qa=False, label="pass 2")
    for stem in f2100w:
        with fits.open(fresh.output("clean", stem)) as a, fits.open(ws / "clean" / f"{stem}_cal.fits") as b:
            assert a[0].header["MRC_PASS"] == "pass 2"
            for ext in ("SCI", "ERR", "DQ", "VAR_RNOISE", "VAR_FLAT"):
                assert np.array_equal(a[ext].data, b[ext].data, equal_nan=True), ext


@pytest.mark.slow
def test_second_pass_reuses_pass_one_masks_exactly(demo_run, crds_cache, tmp_path):
    """Pass 2 takes each member's own source masks from pass 1 (same stage-2 file, parameters
    and versions: the detection would repeat itself) and adds the projected mask; detecting
    again, when pass 1's maps are gone, gives the same files."""
    import numpy as np
    from astropy.io import fits

    _, ws0, _ = demo_run
    logs = sorted((ws0 / "logs" / "clean").glob("*.log"))
    stems = sorted(p.name.removesuffix("_cal.fits") for p in ws0.glob("stage2/*_cal.fits"))
    reused = {line.split("clean ")[1].split(":")[0] for p in logs for line in p.read_text().splitlines()
              if "pass 1's own masks reused" in line}
    assert reused == set(stems)  # every member of every group cleaned again in pass 2
    assert not any("own masks reused" in p.read_text() for p in (ws0 / "logs" / "pass1" / "clean").glob("*.log"))

    ws = tmp_path / "ws"
    shutil.copytree(ws0, ws, symlinks=True)
    for p in ws.glob(".lock*"):
        p.unlink()
    group = "F1500W"
    members = sorted(s for s in stems if fits.getval(ws / "stage2" / f"{s}_cal.fits", "FILTER") == group)
    assert len(members) == 5
    for stem in members:  # pass 1's maps gone: pass 2 must detect again (pass 1 stays current)
        (ws / "pass1" / "clean" / f"{stem}_segm.fits").unlink()
    record = next((ws / "clean" / "groups").glob(f"{group}_*.json"))
    record.unlink()
    before = {s: (ws / "clean" / f"{s}_cal.fits").stat().st_mtime_ns for s in members}
    cli("clean", ws, "--crds-path", crds_cache, "--jobs", "2")
    log = (ws / "logs" / "clean" / record.with_suffix(".log").name).read_text()  # this run's (mode "w")
    assert "masks" in log and "own masks reused" not in log
    for stem in members:
        assert (ws / "clean" / f"{stem}_cal.fits").stat().st_mtime_ns != before[stem]  # recomputed
        for name in (f"{stem}_cal.fits", f"{stem}_segm.fits"):
            with fits.open(ws / "clean" / name) as a, fits.open(ws0 / "clean" / name) as b:
                for ha, hb in zip(a[1:], b[1:]):
                    assert ha.name == hb.name
                    if ha.data is not None and ha.is_image:
                        assert np.array_equal(ha.data, hb.data, equal_nan=True), (name, ha.name)


@pytest.mark.slow
def test_second_pass_puts_exposures_on_the_aligned_sky(demo_run):
    """The projected masks carry tweakreg's correction of each exposure's FITS WCS: through
    it, the simulator's true source positions land where the true pointing put them, to
    within a common offset (tweakreg aligns the exposures to each other, not to the truth),
    far better than through the unaligned (commanded-pointing) WCS."""
    import numpy as np
    from astropy.io import fits

    from reduce.clean import alignment
    from reduce.clean.io import pixel_sky_transforms

    raw, ws, _ = demo_run
    truth = json.loads((raw / "truth" / "truth.json").read_text())
    sky = {s["id"]: (s["ra"], s["dec"]) for s in truth["sources"]}
    summary = json.loads((ws / "clean" / "clean_summary.json").read_text())
    recorded = {s: a for g in summary["groups"].values() for s, a in g.get("alignment", {}).items()}
    by_mosaic: dict[str, list] = {}
    for e in truth["exposures"]:
        stem = e["stem"]
        if not (ws / "stage2" / f"{stem}_cal.fits").is_file():  # not imaging (target acquisition)
            continue
        with fits.open(ws / "pass1" / "masks" / f"{stem}_mask.fits") as h:
            fit = alignment.from_header(h[0].header)
            mosaic = h[0].header["MOSAIC"]
        assert fit is not None, stem
        c, residual = fit
        assert residual < 0.05, (stem, residual)  # an affine map follows the aligned WCS
        unaligned = pixel_sky_transforms(fits.getheader(ws / "stage2" / f"{stem}_cal.fits", "SCI"))
        aligned = alignment.aligned_transforms(unaligned, c)
        pts = [p for p in e["point_sources"] if p["id"] in sky]
        ra, dec = np.array([sky[p["id"]] for p in pts]).T
        true_xy = np.array([[p["x"], p["y"]] for p in pts])
        offsets = [np.median(np.column_stack(t[1](ra, dec)) - true_xy, axis=0) for t in (unaligned, aligned)]
        by_mosaic.setdefault(mosaic, []).append(offsets)
        if summary["exposures"][stem]["template"]:
            assert set(recorded[stem]) == {"dx_px", "dy_px", "rotation_deg", "residual_px"}
    spreads = []
    for mosaic, offs in by_mosaic.items():
        off = np.array(offs)  # (exposure, unaligned|aligned, xy)
        spread = np.sqrt(((off - off.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))  # rms about the mosaic's mean
        spreads.append(spread)
        assert spread[1] < 0.1, (mosaic, spread)  # pixels
    unaligned_spread = max(s[0] for s in spreads)
    assert unaligned_spread > 0.3  # the simulator's pointing errors (~0.07"/axis) are there to correct


@pytest.mark.slow
def test_mosaics_with_a_templated_member_get_masks_even_without_sky_removed(demo_run, tmp_path):
    """A template of structure only (the smooth sky left on, e.g. extended emission filling the
    field) still carries the other exposures' unmasked sources: such mosaics get a first-pass
    mask too. Mosaics without any templated member get none."""
    from reduce.clean import CleanReport
    from reduce.clean.second_pass import plan_masks
    from reduce.params import CleanParams, PipelineParams
    from reduce.stages.stage3 import mosaic_groups
    from reduce.workspace import FirstPass

    _, ws, _ = demo_run
    files = sorted((ws / "pass1" / "clean").glob("*_cal.fits"))
    mosaics = mosaic_groups(files, "observation")
    product = next(p for p in mosaics if "f770w" in p)
    first = FirstPass(tmp_path / "ws").create()
    for templated, expected in ((set(mosaics[product][:1]), [product]), (set(), [])):
        report = CleanReport(files=files, sky_subtracted=set(), templated=templated)
        jobs, notes, covered = plan_masks(first, report, CleanParams(), PipelineParams(), "jwst_9000.pmap",
                                          overwrite=False)
        assert [j.product for j in jobs] == expected and not notes
        assert covered == ({Path(m).name.removesuffix("_cal.fits") for m in mosaics[product]} if expected else set())
