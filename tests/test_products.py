"""Packaging, TA box, report, manifest and verify on the demo program (the real pipeline).

Uses the session's two demo runs (tests/conftest.py): the --jobs 2 run is checked in detail,
the independent --jobs 1 run must give the same science bit for bit (``verify --exact``).
"""

import datetime as _dt
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


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    if check and proc.returncode != 0:
        raise AssertionError(f"mirim-reduce {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run[1]


@pytest.fixture(scope="module")
def demo_again(demo_run_jobs1):
    return demo_run_jobs1[0]


def _manifest(ws):
    return json.loads((ws / "products" / "manifest.json").read_text())


def _ta_files(ws):
    return sorted((ws / "products").glob("*/*/*_ta_box.fits"))


# ---------------------------------------------------------------- layout and names

def test_layout_and_names(demo):
    dest = demo / "products"
    date = _manifest(demo)["date"]
    assert date == _dt.datetime.strptime(date, "%d%b%Y").strftime("%d%b%Y")
    products = sorted(p.parent.name for p in (demo / "stage3").glob("*/*_i2d.fits"))
    assert len(products) == 4
    expected = set()
    for prod in products:
        h = fits.getheader(demo / "stage3" / prod / f"{prod}_i2d.fits")
        targ, filt = h["TARGPROP"], h["FILTER"]
        twins = [p for p in products if p.split("_")[3].split("-")[0] == filt.lower()]  # ..._miri_f770w[-sub256]
        base = f"{targ}/{filt}/{targ}_MIRI_{filt}_{date}" + (f"_{prod.split('_')[0].split('-')[1]}" if len(twins) > 1 else "")
        for suffix in ("_i2d.fits", "_segm.fits", "_cat.ecsv"):
            expected.add(base + suffix)
            # copied byte for byte
            assert (dest / (base + suffix)).read_bytes() == (demo / "stage3" / prod / f"{prod}{suffix}").read_bytes()
    made = {p.relative_to(dest).as_posix() for p in dest.glob("MIRIM-DEMO-FIELD/*/*") if not p.name.endswith(("_ta_box.fits", "_ta_box.pdf", "_ta_box.png"))}
    assert made == expected
    assert "MIRIM-DEMO-FIELD/F770W/MIRIM-DEMO-FIELD_MIRI_F770W_%s_o002_i2d.fits" % date in made
    assert (dest / "report.html").is_file() and (dest / "manifest.json").is_file()
    summary = json.loads((demo / "summary.json").read_text())
    assert "package" in summary["stage_seconds"]
    assert any(p.startswith("products/") and p.endswith("_i2d.fits") for p in summary["products"])
    assert not list(dest.rglob(".*")), "scratch files left behind"


def test_config_destination_date_and_no_cutouts(demo, tmp_path):
    from reduce import config
    from reduce.params import PackageParams
    from reduce.products import package
    from reduce.workspace import Workspace

    cfg = config.load(demo / "config.toml", {"DESTINATION_DIRECTORY": str(tmp_path / "dest"), "DATE": "01Jan2025",
                                             "MAKE_CUTOUTS": False})
    res = package(Workspace(demo), PackageParams.from_config(cfg), cfg)
    assert res.dest == tmp_path / "dest"
    names = sorted(p.name for p in (tmp_path / "dest").glob("MIRIM-DEMO-FIELD/*/*"))
    assert names and all("_01Jan2025_" in n for n in names)
    assert not [n for n in names if "_ta_box" in n]
    assert json.loads((tmp_path / "dest" / "manifest.json").read_text())["date"] == "01Jan2025"
    assert not (tmp_path / "dest" / "logs").exists()


def test_rerun_on_a_later_day_keeps_the_date_stamp(demo, tmp_path):
    """DATE = "": the first packaging stamps today; a rerun into the same destination on a later
    day keeps that stamp (no second set of names), unless the destination's manifest is of other
    inputs; a DATE in the config still wins."""
    from reduce import config
    from reduce.params import PackageParams
    from reduce.products import package
    from reduce.workspace import Workspace

    cfg = config.load(demo / "config.toml", {"DESTINATION_DIRECTORY": str(tmp_path / "dest"), "MAKE_CUTOUTS": False})
    first = package(Workspace(demo), PackageParams.from_config(cfg), cfg, today=_dt.date(2030, 1, 31))
    names = sorted(p.name for p in first.dest.rglob("*_i2d.fits"))
    assert first.date == "31Jan2030" and names and all("_31Jan2030" in n for n in names)
    again = package(Workspace(demo), PackageParams.from_config(cfg), cfg, today=_dt.date(2030, 2, 1))
    assert again.date == "31Jan2030" and sorted(p.name for p in again.dest.rglob("*_i2d.fits")) == names
    man = json.loads((again.dest / "manifest.json").read_text())
    man["inputs"] = man["inputs"][1:]  # another program's packaging into the same destination
    (again.dest / "manifest.json").write_text(json.dumps(man))
    assert package(Workspace(demo), PackageParams.from_config(cfg), cfg, today=_dt.date(2030, 2, 3)).date == "03Feb2030"
    cfg = config.load(demo / "config.toml", {"DESTINATION_DIRECTORY": str(tmp_path / "dest"), "MAKE_CUTOUTS": False,
                                             "DATE": "02Feb2030"})
    assert package(Workspace(demo), PackageParams.from_config(cfg), cfg).date == "02Feb2030"


def test_packaging_in_workers_writes_what_this_process_writes(demo, tmp_path):
    """With a worker pool (as `run` packages) the TA boxes, the report's quicklooks, the manifest's
    step parameters and content hashes are made in the workers: same files (figures byte for
    byte, FITS by content), same report and manifest."""
    from reduce import config
    from reduce.params import PackageParams
    from reduce.products import package
    from reduce.workers import WorkerPool
    from reduce.workspace import Workspace

    runs = {}
    for jobs in (0, 2):
        cfg = config.load(demo / "config.toml", {"DESTINATION_DIRECTORY": str(tmp_path / f"dest{jobs}"),
                                                 "DATE": "01Jan2030"})
        if jobs:
            with WorkerPool(jobs) as pool:
                runs[jobs] = package(Workspace(demo), PackageParams.from_config(cfg), cfg, pool=pool)
        else:
            runs[jobs] = package(Workspace(demo), PackageParams.from_config(cfg), cfg)
    a, b = runs[0], runs[2]
    assert [p.relative_to(a.dest) for p in a.products] == [p.relative_to(b.dest) for p in b.products]
    assert a.ta_boxes == b.ta_boxes and len(a.ta_boxes) == 4 and a.notes == b.notes
    figures = [p.relative_to(a.dest) for p in a.products if p.suffix in (".pdf", ".png")]
    assert len(figures) >= 8
    for rel in figures:
        assert (a.dest / rel).read_bytes() == (b.dest / rel).read_bytes(), rel
    ma, mb = (json.loads(r.manifest.read_text()) for r in (a, b))
    assert ma["step_parameters"] == mb["step_parameters"] and ma["step_parameters"]["precedence"]
    assert ({e["path"]: e["content"] for e in ma["products"]} == {e["path"]: e["content"] for e in mb["products"]})
    assert any(str(rel).endswith("_quicklook.png") for rel in figures)
    assert a.report.read_text() == b.report.read_text()


def test_save_outputs_copies_the_logs_beside_the_products(demo, tmp_path):
    """save_outputs: WORKSPACE/logs copied to DEST/logs; records, not products: the manifest does
    not list them and verify does not count them."""
    from reduce import config
    from reduce.params import PackageParams
    from reduce.products import package, verify
    from reduce.workspace import Workspace

    runs = {}
    for save in (False, True):
        cfg = config.load(demo / "config.toml", {"DESTINATION_DIRECTORY": str(tmp_path / f"dest{save}"),
                                                 "save_outputs": save})
        runs[save] = package(Workspace(demo), PackageParams.from_config(cfg), cfg).dest
    logs = sorted(p.relative_to(demo / "logs") for p in (demo / "logs").rglob("*.log"))
    copied = sorted(p.relative_to(runs[True] / "logs") for p in (runs[True] / "logs").rglob("*") if p.is_file())
    assert logs and copied == logs and not (runs[False] / "logs").exists()
    assert (runs[True] / "logs" / logs[0]).read_bytes() == (demo / "logs" / logs[0]).read_bytes()
    listed = json.loads((runs[True] / "manifest.json").read_text())["products"]
    assert not [e for e in listed if e["path"].startswith("logs/")]
    assert verify(runs[True], runs[False], exact=True).ok


def test_safe_names():
    from reduce.products.package import safe_name

    assert safe_name("NGC 1068/ring*") == "NGC_1068_ring"
    assert safe_name("../..") == "UNKNOWN"
    assert safe_name("M-82+SN.2014J") == "M-82+SN.2014J"


# ---------------------------------------------------------------- TA box

def _independent_talrs_sky(crf: Path):
    """TALRS corners on the sky from pysiaf: attitude from the aligned member's full
    detector -> world transform at its aperture reference point, then pysiaf's tel_to_sky."""
    import pysiaf
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    from pysiaf.utils import rotations
    from stdatamodels.jwst import datamodels

    siaf = pysiaf.Siaf("MIRI")
    with datamodels.open(str(crf)) as m:
        w = m.meta.wcs
        sub = siaf["MIRIM_" + m.meta.subarray.name]
        x0, y0 = m.meta.subarray.xstart, m.meta.subarray.ystart  # 1-based: det (1-based) - start = 0-based
        ra0, dec0 = w(sub.XDetRef - x0, sub.YDetRef - y0)
        xd1, yd1 = sub.tel_to_det(sub.V2Ref, sub.V3Ref + 10.0)
        ra1, dec1 = w(xd1 - x0, yd1 - y0)
    pa = SkyCoord(ra0 * u.deg, dec0 * u.deg).position_angle(SkyCoord(ra1 * u.deg, dec1 * u.deg)).deg
    ta = siaf["MIRIM_TALRS"]
    ta.set_attitude_matrix(rotations.attitude(sub.V2Ref, sub.V3Ref, ra0, dec0, pa))
    return ta.tel_to_sky(*ta.corners("tel"))


def test_ta_box_lands_where_pysiaf_says(demo):
    from astropy.coordinates import SkyCoord
    import astropy.units as u
    from astropy.wcs import WCS

    boxes = _manifest(demo)["ta_boxes"]
    assert len(boxes) == 4
    for tb in boxes:
        crf = next((demo / "stage3").glob(f"*/{tb['reference_member']}"))
        assert tb["aligned"] and crf.name.endswith("_crf.fits")
        ra, dec = _independent_talrs_sky(crf)
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
            SkyCoord(*np.array(tb["sky_corners"]).T, unit="deg")).to(u.mas).value
        print(f"{tb['mosaic']}: TALRS corners vs pysiaf {np.round(sep, 3)} mas, coverage {tb['coverage']:.2f}")
        assert sep.max() < 2.0  # mas (0.1 mas measured)
        i2d = next((demo / "products").glob(f"*/*/{tb['mosaic']}"))
        x, y = WCS(fits.getheader(i2d, "SCI")).world_to_pixel_values(ra, dec)
        assert np.allclose(np.column_stack([x, y]), tb["pixel_corners"], atol=1e-3)
        # SUB256 demo: TALRS straddles the subarray edge -> partial coverage, cutout made, said so
        assert 0 < tb["coverage"] < 1 and "partly covered" in tb["note"] and len(tb["files"]) == 3


def test_cutout_keeps_planes_and_its_wcs_matches_the_mosaic(demo):
    from astropy.wcs import WCS

    files = _ta_files(demo)
    assert len(files) == 4
    for f in files:
        i2d = f.parent / f.name.replace("_ta_box.fits", "_i2d.fits")
        with fits.open(f) as c, fits.open(i2d) as m:
            assert [h.name for h in c[1:]] == ["SCI", "ERR", "WHT"]
            n = c[0].header["CUTSIZE"]
            assert n == 120 and all(h.data.shape == (n, n) for h in c[1:])
            x0, y0 = c[0].header["CUTX0"], c[0].header["CUTY0"]
            wc, wm = WCS(c["SCI"].header), WCS(m["SCI"].header)
            px = np.array([0, n - 1, n - 1, 0, n / 2])
            py = np.array([0, 0, n - 1, n - 1, n / 2])
            a = np.array(wc.pixel_to_world_values(px, py))
            b = np.array(wm.pixel_to_world_values(px + x0, py + y0))
            assert np.abs(a - b).max() * 3600 < 1e-6  # arcsec
            for ext in ("SCI", "ERR", "WHT"):
                big = m[ext].data
                ys, xs = np.mgrid[0:n, 0:n]
                inside = (xs + x0 >= 0) & (xs + x0 < big.shape[1]) & (ys + y0 >= 0) & (ys + y0 < big.shape[0])
                np.testing.assert_array_equal(c[ext].data[inside], big[ys[inside] + y0, xs[inside] + x0])
            # the aperture reference point is the cutout centre
            assert abs(c[0].header["TA_RA"] - wc.pixel_to_world_values(*wm.world_to_pixel_values(
                c[0].header["TA_RA"], c[0].header["TA_DEC"]) - np.array([x0, y0]))[0]) < 1e-9


def _png_stats(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    grey = img.mean(axis=2)
    return img.shape, float(np.percentile(grey, 99) - np.percentile(grey, 1)), len(np.unique(img.reshape(-1, 3), axis=0))


def test_ta_box_figures_open_and_are_not_trivial(demo):
    for f in _ta_files(demo):
        pdf, png = f.with_name(f.name.replace(".fits", ".pdf")), f.with_name(f.name.replace(".fits", ".png"))
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
        shape, spread, colours = _png_stats(png)
        assert shape[0] > 400 and shape[1] > 400 and spread > 0.3 and colours > 100


def test_report_quicklooks_are_not_blank(demo):
    """What a person sees: every mosaic has a quicklook in the report, with real dynamic range."""
    dest = demo / "products"
    html = (dest / "report.html").read_text()
    looks = sorted((dest / "report").glob("*_quicklook.png"))
    assert len(looks) == 4
    for q in looks:
        assert f"report/{q.name}" in html
        shape, spread, colours = _png_stats(q)
        import matplotlib.image as mpimg
        img = mpimg.imread(q)[..., :3].mean(axis=2)
        h, w = img.shape
        centre = img[h // 4: 3 * h // 4, w // 6: 2 * w // 3]  # inside the image axes
        assert np.percentile(centre, 99) - np.percentile(centre, 5) > 0.3, q.name  # sources stand out of the sky
        assert len(np.unique(np.round(centre, 3))) > 50, q.name
        assert q.stat().st_size < 300_000
    for needle in ("Skipped files", "Times", "exposure used", "stage3", "_template.png", "_clean.png"):
        assert needle in html, needle
    assert sum(p.stat().st_size for p in (dest / "report").rglob("*")) < 3_000_000


def test_outside_aperture_makes_no_cutout(demo, tmp_path, monkeypatch):
    from reduce import config
    from reduce.params import PackageParams
    from reduce.products import package, tabox
    from reduce.workspace import Workspace

    far = tabox.aperture_v2v3("MIRIM_CORON1065")  # another corner of the imager: off the SUB256 field
    monkeypatch.setattr(tabox, "aperture_v2v3", lambda name=tabox.APERTURE: far)
    cfg = config.load(demo / "config.toml", {"DESTINATION_DIRECTORY": str(tmp_path / "dest")})
    res = package(Workspace(demo), PackageParams.from_config(cfg), cfg)
    assert not list((tmp_path / "dest").rglob("*_ta_box.*"))
    assert len([n for n in res.notes if "falls outside the mosaic" in n and "no cutout" in n]) == 4
    assert all(not b["inside"] and b["files"] == [] for b in res.ta_boxes)


def test_aperture_fully_inside_a_larger_mosaic(demo, tmp_path):
    """The inside path: a mosaic grid (the demo mosaic's WCS, extended to 600 x 600 px) that
    holds the whole aperture; placement with the real aligned member."""
    from astropy.wcs import WCS
    from reduce.products import tabox

    i2d = sorted((demo / "stage3").glob("*/*_i2d.fits"))[0]
    hdr = WCS(fits.getheader(i2d, "SCI")).to_header()
    hdr["CRPIX1"] += 300
    hdr["CRPIX2"] += 300
    rng = np.random.default_rng(3)
    sci = rng.normal(1.0, 0.1, (600, 600)).astype(np.float32)
    big = tmp_path / "big_i2d.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, hdr, name="SCI"),
                  fits.ImageHDU(np.full_like(sci, 0.1), hdr, name="ERR"),
                  fits.ImageHDU(np.ones_like(sci), hdr, name="WHT")]).writeto(big)
    member, aligned = tabox.reference_member(i2d.parent)
    box = tabox.place(big, member, aligned)
    assert box.inside and box.coverage == 1.0 and box.note == ""
    files = tabox.make_cutout(big, box, tmp_path / "T_MIRI_F770W_x_ta_box", size=64, target="T", filt="F770W")
    with fits.open(files[0]) as c:
        assert c["SCI"].data.shape == (64, 64) and np.isfinite(c["SCI"].data).all()
    assert all(f.is_file() for f in files)


# ---------------------------------------------------------------- manifest and hashes

def test_manifest(demo):
    from reduce.products.hashing import sha256_file

    man = _manifest(demo)
    dest = demo / "products"
    assert man["format"] == "mirim-reduce-manifest/1" and man["tool"]["name"] == "mirim-reduce"
    for pkg in ("jwst", "crds", "stcal", "numpy", "astropy"):
        assert man["versions"][pkg][0].isdigit()
    assert man["crds"]["context"] == "jwst_9000.pmap" and man["crds"]["references"]
    assert man["config"]["MAKE_CUTOUTS"] is True and "image3" in man["config"]
    reduced = json.loads((demo / "inputs.json").read_text())["exposures"]
    raw = sorted(demo / e["path"] for e in reduced)  # absolute, or relative to the workspace
    assert len(raw) == 14  # the skipped TA and LRS files are not inputs of the products
    assert {e["name"]: e["sha256"] for e in man["inputs"]} == {p.name: sha256_file(p) for p in raw}
    listed = {e["path"] for e in man["products"]}
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} - {"manifest.json", "report.html"}
    assert listed == on_disk
    for e in man["products"]:
        assert e["sha256"] == sha256_file(dest / e["path"])
        if e["path"].endswith("_i2d.fits"):
            assert {"SCI,1", "ERR,1", "WHT,1", "HDRTAB,1"} <= set(e["content"]) and "skipped" in e["content"]["ASDF,1"]
    assert {"DATE", "CAL_VER", "CRDS_VER"} <= set(man["volatile_keywords"])
    assert "DATE-OBS" not in man["volatile_keywords"]


def test_image_info_from_environment():
    from reduce.products.manifest import image_info

    env = {"MIRIM_IMAGE_DIGEST": "sha256:abc", "MIRIM_BUILD_REVISION": "1234", "HOME": "/root"}
    info = image_info(env)
    assert info["MIRIM_IMAGE_DIGEST"] == "sha256:abc" and info["MIRIM_BUILD_REVISION"] == "1234" and "HOME" not in info


def test_content_hash_ignores_volatile_keywords_only(demo, tmp_path):
    from reduce.products.hashing import content_hashes, sha256_file

    src = next((demo / "products").glob("*/*/*_i2d.fits"))
    a, b = tmp_path / "a.fits", tmp_path / "b.fits"
    shutil.copyfile(src, a)
    shutil.copyfile(src, b)
    with fits.open(b, mode="update") as h:
        h[0].header["DATE"] = "2031-01-01T00:00:00"
        h[0].header["CAL_VER"] = "9.9.9"
    assert sha256_file(a) != sha256_file(b) and content_hashes(a) == content_hashes(b)
    with fits.open(b, mode="update") as h:
        h[0].header["FILTER"] = "F560W"
        v = h["SCI"].data[140, 140]
        assert np.isfinite(v)
        h["SCI"].data[140, 140] = np.nextafter(v, np.float32(np.inf))  # one ulp
    ca, cb = content_hashes(a), content_hashes(b)
    assert ca["PRIMARY,1"]["header"] != cb["PRIMARY,1"]["header"]
    assert ca["SCI,1"]["data"] != cb["SCI,1"]["data"] and ca["ERR,1"] == cb["ERR,1"]


# ---------------------------------------------------------------- verify and reproducibility

def test_two_demo_runs_are_identical(demo, demo_again):
    proc = cli("verify", demo_again / "products", demo / "products", "--exact")
    assert "no differences" in proc.stdout and proc.returncode == 0
    print(proc.stdout[-600:])


def test_perturbed_product_fails_verify_naming_file_extension_and_size(demo, tmp_path):
    pert = tmp_path / "pert"
    shutil.copytree(demo / "products", pert)
    (pert / "manifest.json").unlink()  # a reference without a manifest is fine too
    i2d = sorted(pert.glob("*/F770W/*_o001_i2d.fits"))[0]
    with fits.open(i2d, mode="update") as h:
        h["SCI"].data[100, 120] += np.float32(0.25)
    proc = cli("verify", pert, demo / "products", check=False)
    assert proc.returncode == 1, proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if "DIFF" in ln)
    assert i2d.name.replace(_manifest(demo)["date"], "{DATE}") in line and "SCI,1 data" in line
    assert "1 of " in line and "max |diff| 0.25 at (100, 120)" in line
    # within the tolerance: passes by default, fails with --exact
    with fits.open(i2d, mode="update") as h:
        h["SCI"].data[100, 120] -= np.float32(0.25)
        h["SCI"].data[140, 140] = np.nextafter(h["SCI"].data[140, 140], np.float32(np.inf))
    assert cli("verify", pert, demo / "products", check=False).returncode == 0
    proc = cli("verify", pert, demo / "products", "--exact", check=False)
    assert proc.returncode == 1 and "SCI,1 data" in proc.stdout
    # a product missing from the run
    next(pert.glob("*/*/*_segm.fits")).unlink()
    proc = cli("verify", pert, demo / "products", check=False)
    assert proc.returncode == 1 and "MISSING" in proc.stdout
