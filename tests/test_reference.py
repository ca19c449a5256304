"""The committed reference of the demo's products (tests/data/reference, ``make reference``)
and ``verify RUN --reference``: on constructed products (fast), and the session's demo run
against the committed reference (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from fake_products import i2d_of, make_dest, write_manifest
from reduce.products.reference import check_reference, write_reference

REFERENCE = Path(__file__).parent / "data" / "reference"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(DEST of products dated 01Jan2030, its reference written by write_reference)."""
    root = tmp_path_factory.mktemp("reference")
    dest = make_dest(root / "dest")
    write_reference(dest, root / "ref", block=8)
    return dest, root / "ref"


@pytest.fixture
def other_day(tmp_path):
    """The same products packaged on another day (names and the MOSAIC keyword change)."""
    return make_dest(tmp_path / "run", "02Feb2031")


def _change(run, how):
    """Change the run's i2d with ``how(hdul)`` and list it in the manifest as changed (as if made so)."""
    with fits.open(i2d_of(run), mode="update") as h:
        how(h)
    write_manifest(run, "02Feb2031")


def _rows(res):
    return {(r.file.split("/")[-1].split("_")[-1], r.part): r for r in res.rows}


@pytest.mark.parametrize("exact", [False, True], ids=["tolerance", "exact"])
def test_same_products_another_day_pass(made, other_day, exact):
    res = check_reference(other_day, made[1], exact=exact)
    assert res.ok, res.table()
    assert ("i2d.fits", "SCI,1 data") in _rows(res) and ("cat.ecsv", "TABLE data") in _rows(res)


def test_reference_is_small_and_readable(made):
    ref = json.loads((made[1] / "reference.json").read_text())
    assert ref["format"] == "mirim-reduce-reference/1" and ref["block"] == 8
    entry = ref["products"]["T/F770W/T_MIRI_F770W_{DATE}_i2d.fits"]
    assert entry["thumb"] == "thumbs/T/F770W/T_MIRI_F770W_DATE_i2d.fits" and "ASDF,1" in entry["content"]
    with fits.open(made[1] / entry["thumb"]) as h:
        assert [x.name for x in h] == ["PRIMARY", "SCI", "ERR", "CON", "DQ", "HDRTAB"]
        assert h["SCI"].data.shape == (2, 5, 6) and h["SCI"].data.dtype.kind == "f" and h["SCI"].data.itemsize == 4 and h["SCI"].header["MRBLOCK"] == 8
        assert h["SCI"].data[1, 0, 0] == 9 and h["DQ"].data.dtype.kind == "i" and h["DQ"].data.itemsize == 8  # 3x3 NaN corner; integer block sums
        assert "DATE" not in h[0].header and h[0].header["MOSAIC"] == "T_MIRI_F770W_{DATE}_i2d.fits"
        assert "DATE" not in h["HDRTAB"].columns.names


@pytest.mark.parametrize("exact", [False, True], ids=["tolerance", "exact"])
def test_changed_array_fails_with_where(made, other_day, exact):
    _change(other_day, lambda h: h["SCI"].data.__setitem__((10, 12), h["SCI"].data[10, 12] + np.float32(0.25)))
    res = check_reference(other_day, made[1], exact=exact)
    assert not res.ok
    row = _rows(res)[("i2d.fits", "SCI,1 data")]
    assert row.status == "DIFF" and "1 of 60 block values differ" in row.detail
    assert "max |diff| 0.003906 at pixels (8:16, 8:16) (block mean)" in row.detail
    assert [r for r in res.differences] == [row]


def test_tolerance_and_exact(made, other_day):
    def how(h):
        h["SCI"].data[10, 12] = np.nextafter(h["SCI"].data[10, 12], np.float32(np.inf))  # one ulp
        h["CON"].data[0, 1, 1] += 1  # an integer map changed, its block sums kept
        h["CON"].data[0, 2, 2] -= 1

    _change(other_day, how)
    res = check_reference(other_day, made[1])
    assert [(r.part, r.detail) for r in res.differences] == [
        ("CON,1 data", "content hash differs (integer map, compared exactly)")]
    res = check_reference(other_day, made[1], exact=True)
    assert {r.part for r in res.differences} == {"SCI,1 data", "CON,1 data"}


def test_new_nan_and_extra_product_fail(made, other_day):
    _change(other_day, lambda h: h["ERR"].data.__setitem__((30, 30), np.nan))
    i2d = i2d_of(other_day)
    i2d.with_name(i2d.name.replace("_i2d", "_o009_i2d")).write_bytes(i2d.read_bytes())  # not in the manifest
    res = check_reference(other_day, made[1])
    diffs = {(r.file.split("/")[-1], r.part): r for r in res.differences}
    assert "NaN/Inf count" in diffs[("T_MIRI_F770W_{DATE}_i2d.fits", "ERR,1 data")].detail
    assert diffs[("T_MIRI_F770W_{DATE}_o009_i2d.fits", "run manifest")].status == "EXTRA"
    assert diffs[("T_MIRI_F770W_{DATE}_o009_i2d.fits", "file")].status == "EXTRA"


def test_cli(made, other_day):
    assert cli("verify", other_day, "--reference", made[1] / "reference.json", "--exact").returncode == 0
    _change(other_day, lambda h: h[0].header.__setitem__("FILTER", "F560W"))
    proc = cli("verify", other_day, "--reference", made[1])
    assert proc.returncode == 1 and "PRIMARY,1 header" in proc.stdout and "FILTER='F560W' (ref 'F770W')" in proc.stdout
    assert cli("verify", other_day, made[0], "--reference", made[1]).returncode == 2
    assert cli("verify", other_day).returncode == 2


def test_write_reference_is_reproducible(made, tmp_path):
    again = tmp_path / "again"
    assert cli("write-reference", made[0], "--out", again).returncode == 0
    files = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(made[1]) for p in made[1].rglob("*") if p.is_file())
    assert all((again / f).read_bytes() == (made[1] / f).read_bytes() for f in files)


# ---------------------------------------------------------------- the committed reference

def test_committed_reference_is_complete_and_small():
    ref = json.loads((REFERENCE / "reference.json").read_text())
    kinds = [e["kind"] for e in ref["products"].values()]
    assert kinds.count("mosaic") == 4 and kinds.count("catalogue") == 4 and kinds.count("ta_box") == 4
    assert all((REFERENCE / e["thumb"]).is_file() for e in ref["products"].values() if "thumb" in e)
    assert len(ref["inputs"]) == 14
    size = sum(p.stat().st_size for p in REFERENCE.rglob("*") if p.is_file())
    assert size < 1.5e6, f"{size} bytes: keep the reference small (README, make reference)"


@pytest.mark.slow
def test_demo_run_matches_committed_reference(demo_run):
    """The session's demo run (tests/conftest.py; its TA and LRS files are skipped, so its products
    are those of `mirim-reduce demo`) against tests/data/reference, bit for bit."""
    products = demo_run[1] / "products"
    proc = cli("verify", products, "--reference", REFERENCE, "--exact")
    if proc.returncode != 0:
        tol = cli("verify", products, "--reference", REFERENCE)
        pytest.fail("the demo's products differ from tests/data/reference. If the change is intended, "
                    "run `make reference` and say why in the commit.\n" + proc.stdout[-4000:] + proc.stderr[-2000:]
                    + "\nwith tolerances (rtol = atol = 1e-4 on block means):\n" + tol.stdout[-3000:])
    assert "no differences" in proc.stdout
