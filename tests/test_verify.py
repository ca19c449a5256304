"""verify on small constructed products (no pipeline): FITSDiff gives the answers the earlier
home-made comparison gave, and the file sets cover files outside the manifests."""

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from fake_products import copy_dest, i2d_of, make_dest, old_verdicts
from reduce.products import verify


def _rows(res, name_part="_i2d.fits"):
    return {r.part: r for r in res.rows if name_part in r.file}


def _sci_within(h):
    h["SCI"].data[10, 12] += np.float32(5e-5)


def _sci_beyond(h):
    h["SCI"].data[10, 12] += np.float32(0.25)


def _sci_nan(h):
    h["SCI"].data[20, 20] = np.nan


def _filter(h):
    h[0].header["FILTER"] = "F560W"


def _volatile(h):
    h[0].header["DATE"] = "2031-02-02T00:00:00"
    h[0].header["CAL_VER"] = "9.9.9"
    h["HDRTAB"].data["DATE"][0] = "2031-02-02T00:00:00"


def _photmjsr_within(h):
    h[0].header["PHOTMJSR"] = 0.25 * (1 + 1e-6)


def _dq_high_bit(h):
    h["DQ"].data[6, 6] += 1  # 2**30 + 1: within 1e-4 relative, but an integer map is exact


def _history(h):
    h[0].header.add_history("another step")


def _table_beyond(h):
    h["HDRTAB"].data["EXPTIME"][1] = 12.0


CASES = {"identical": None, "within tolerance": _sci_within, "beyond tolerance": _sci_beyond, "NaN appears": _sci_nan,
         "header keyword": _filter, "volatile keywords": _volatile, "header float within tolerance": _photmjsr_within,
         "DQ high bit": _dq_high_bit, "HISTORY": _history, "table column": _table_beyond}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    return make_dest(tmp_path_factory.mktemp("ref") / "dest")


@pytest.mark.parametrize("exact", [False, True], ids=["tolerance", "exact"])
@pytest.mark.parametrize("case", list(CASES))
def test_fitsdiff_gives_the_old_answers(ref, tmp_path, case, exact):
    run = copy_dest(ref, tmp_path / "run")
    (run / "manifest.json").unlink()
    if CASES[case]:
        with fits.open(i2d_of(run), mode="update") as h:
            CASES[case](h)
    old = old_verdicts(i2d_of(run), i2d_of(ref), 1e-4, 1e-4, exact)
    new = _rows(verify(run, ref, exact=exact))
    assert {p: ok for p, (ok, _) in old.items()} == {p: new[p].status == "ok" for p in old}, new
    assert (case in ("identical", "volatile keywords") or (not exact and "within" in case)) == all(ok for ok, _ in old.values())
    if case == "beyond tolerance" and not exact:  # the figures of the report too
        assert new["SCI,1 data"].detail == old["SCI,1 data"][1]
        assert "1 of 1760 values differ" in new["SCI,1 data"].detail and "max |diff| 0.25 at (10, 12)" in new["SCI,1 data"].detail
    assert new["ASDF,1"].status == "skipped"


def test_structure_differences(ref, tmp_path):
    run = copy_dest(ref, tmp_path / "run")
    (run / "manifest.json").unlink()
    with fits.open(i2d_of(run)) as h:
        hdus = [x.copy() for x in h if x.name != "ERR"]
    hdus[1].data = hdus[1].data[:, :40]
    fits.HDUList(hdus).writeto(i2d_of(run), overwrite=True)
    rows = _rows(verify(run, ref))
    assert rows["ERR,1"].status == "MISSING" and "shape (40, 40) != reference (40, 44)" in rows["SCI,1 data"].detail
    assert rows["CON,1 data"].status == "ok"  # HDUs are matched by name, not by position


def test_catalogue_columns_and_metadata(ref, tmp_path):
    from astropy.table import Table

    run = copy_dest(ref, tmp_path / "run")
    (run / "manifest.json").unlink()
    cat = next(run.glob("T/F770W/*_cat.ecsv"))
    t = Table.read(cat)
    t.meta["date"], t.meta["version"] = "2031-01-01", {"photutils": "3"}
    t.write(cat, overwrite=True)
    assert verify(run, ref, exact=True).ok  # run metadata ignored
    t["flux"][2] *= 1.01
    t["is_extended"][4] = True
    t.meta["aper"] = 4
    t.write(cat, overwrite=True)
    rows = _rows(verify(run, ref), "_cat.ecsv")
    detail = rows["TABLE data"].detail
    assert rows["TABLE data"].status == "DIFF" and detail.startswith("2 values differ"), detail
    assert "column flux: 1 of 5 values differ beyond rtol=0.0001 atol=0.0001, max |diff|" in detail and "at (2,)" in detail
    assert "column is_extended: 1 of 5 values differ (exact)" in detail and rows["TABLE meta"].status == "DIFF"


# ---------------------------------------------------------------- file sets (issue 12)

@pytest.mark.parametrize("exact", [False, True], ids=["tolerance", "exact"])
def test_unlisted_file_on_disk_fails(ref, tmp_path, exact):
    run = copy_dest(ref, tmp_path / "run")
    extra = i2d_of(run).with_name("T_MIRI_F770W_01Jan2030_o009_i2d.fits")
    extra.write_bytes(i2d_of(run).read_bytes())
    res = verify(run, ref, exact=exact)
    assert not res.ok
    rows = [r for r in res.differences if "o009" in r.file]
    assert {r.status for r in rows} == {"EXTRA"} and any("not in the run's manifest" in r.detail for r in rows)
    # the same unlisted file on both sides: still a difference, on each side
    ref2 = copy_dest(run, tmp_path / "ref2")
    res = verify(run, ref2, exact=exact)
    assert {r.part for r in res.differences} == {"run manifest", "reference manifest"}
    # the reference side alone
    res = verify(ref, ref2, exact=exact)
    assert [(r.part, r.status) for r in res.differences] == [("reference manifest", "EXTRA"), ("file", "MISSING")]


@pytest.mark.parametrize("exact", [False, True], ids=["tolerance", "exact"])
def test_listed_file_missing_from_disk_fails(ref, tmp_path, exact):
    run = copy_dest(ref, tmp_path / "run")
    next(run.glob("T/F770W/*_cat.ecsv")).unlink()
    res = verify(run, ref, exact=exact)
    assert [(r.part, r.status) for r in res.differences] == [("run manifest", "MISSING")]
    res = verify(ref, run, exact=exact)
    assert [(r.part, r.status) for r in res.differences] == [("reference manifest", "MISSING")]


def test_cli_exit_codes(ref, tmp_path):
    run = copy_dest(ref, tmp_path / "run")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    call = [sys.executable, "-m", "reduce.cli", "verify", str(run), str(ref), "--exact"]
    assert subprocess.run(call, capture_output=True, text=True, env=env).returncode == 0
    (run / "T" / "F770W" / "T_MIRI_F770W_01Jan2030_o009_i2d.fits").write_bytes(i2d_of(run).read_bytes())
    proc = subprocess.run(call, capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "o009_i2d.fits" in proc.stdout and "EXTRA" in proc.stdout
