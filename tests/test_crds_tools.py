"""`crds check` (offline, lists every missing reference) and `crds sync` (wraps crds.sync)."""

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from reduce import crds_tools
from reduce.acquire.errors import CrdsSyncError
from reduce.errors import CrdsCacheError

BASE = {"TELESCOP": "JWST", "INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "EXP_TYPE": "MIR_IMAGE", "PROGRAM": "09999",
        "OBSERVTN": "001", "VISIT": "001", "EXPOSURE": "1", "FILTER": "F770W", "SUBARRAY": "SUB256",
        "READPATT": "FASTR1", "NGROUPS": 5, "NINTS": 1, "DURATION": 1.8, "TARGPROP": "DEMO",
        "DATE-OBS": "2024-06-01", "TIME-OBS": "03:00:00", "DATAMODL": "Level1bModel",
        "SUBSTRT1": 413, "SUBSTRT2": 51, "SUBSIZE1": 256, "SUBSIZE2": 256}
SUB128 = {"SUBARRAY": "SUB128", "SUBSTRT1": 1, "SUBSTRT2": 889, "SUBSIZE1": 136, "SUBSIZE2": 128}


def _uncal(path, **changes):
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({**BASE, **changes})),
                  fits.ImageHDU(np.zeros((1, 5, 8, 8), np.uint16), name="SCI")]).writeto(path)


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    _uncal(d / "jw09999001001_02101_00001_mirimage_uncal.fits")
    _uncal(d / "jw09999001001_02101_00002_mirimage_uncal.fits")
    _uncal(d / "jw09999002001_02101_00001_mirimage_uncal.fits", FILTER="F2100W", **SUB128)
    _uncal(d / "jw09999003001_02101_00001_mirimage_uncal.fits", EXP_TYPE="MIR_TACQ")  # not checked: not imaging
    return d


@pytest.fixture
def cache_copy(crds_cache, tmp_path, monkeypatch):
    """A private copy of the demo cache (references can be deleted); CRDS env restored afterwards."""
    copy = tmp_path / "crds"
    shutil.copytree(crds_cache, copy)
    monkeypatch.setenv("CRDS_PATH", str(copy))
    monkeypatch.setenv("CRDS_CONTEXT", os.environ["CRDS_CONTEXT"])
    monkeypatch.delenv("CRDS_READONLY_CACHE", raising=False)
    return copy


def _main(monkeypatch, capsys, *args):
    from reduce import cli

    monkeypatch.setattr(sys, "argv", ["mirim-reduce", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_check_complete(cache_copy, data, monkeypatch, capsys):
    report = crds_tools.check(data, cache_copy)
    assert report.ok and len(report.exposures) == 3
    assert report.references["jw09999001001_02101_00001_mirimage"]["gain"].startswith("jwst_miri_gain")
    code, out, err = _main(monkeypatch, capsys, "crds", "check", data, "--crds-path", cache_copy)
    assert code == 0 and "ok: every reference" in out and not err


def test_check_names_every_missing_file_and_its_exposures(cache_copy, data, monkeypatch, capsys):
    refs = crds_tools.check(data, cache_copy).references
    dark_sub256 = refs["jw09999001001_02101_00001_mirimage"]["dark"]
    dark_sub128 = refs["jw09999002001_02101_00001_mirimage"]["dark"]
    gain = refs["jw09999001001_02101_00001_mirimage"]["gain"]
    assert dark_sub256 != dark_sub128
    for name in (dark_sub256, gain):
        (cache_copy / "references" / "jwst" / "miri" / name).unlink()

    report = crds_tools.check(data, cache_copy)
    assert not report.ok
    assert sorted(report.missing) == sorted([dark_sub256, gain])
    assert sorted(report.missing[dark_sub256]["exposures"]) == ["jw09999001001_02101_00001_mirimage",
                                                                "jw09999001001_02101_00002_mirimage"]
    assert len(report.missing[gain]["exposures"]) == 3

    code, out, err = _main(monkeypatch, capsys, "crds", "check", data, "--crds-path", cache_copy)
    assert code == CrdsCacheError.exit_code == 4
    assert f"missing {dark_sub256} (dark) needed by jw09999001001_02101_00001_mirimage, " in out
    assert f"missing {gain} (gain)" in out
    assert len(err.strip().splitlines()) == 1 and dark_sub256 in err and gain in err and "crds sync" in err


def test_run_checks_the_cache_before_any_stage(cache_copy, data, tmp_path):
    from reduce import config
    from reduce.orchestrate import reduce_folder

    refs = crds_tools.check(data, cache_copy).references
    gain = refs["jw09999001001_02101_00001_mirimage"]["gain"]
    (cache_copy / "references" / "jwst" / "miri" / gain).unlink()
    with pytest.raises(CrdsCacheError, match=gain):
        reduce_folder(data, tmp_path / "ws", config.defaults(), crds_path=cache_copy)
    assert not (tmp_path / "ws").exists()


def _damage(cache_copy, data):
    """Truncate a FITS reference by its last 2880-byte block, empty another, cut an ASDF one at its
    last block: {reference name: reftype}."""
    refs = crds_tools.check(data, cache_copy).references["jw09999001001_02101_00001_mirimage"]
    miri = cache_copy / "references" / "jwst" / "miri"
    dark, gain, distortion = (miri / refs[t] for t in ("dark", "gain", "distortion"))
    dark.write_bytes(dark.read_bytes()[:-2880])
    gain.write_bytes(b"")
    raw = distortion.read_bytes()
    distortion.write_bytes(raw[:raw.rfind(b"\xd3BLK")])
    return {refs[t]: t for t in ("dark", "gain", "distortion")}


def test_check_finds_damaged_references(cache_copy, data, monkeypatch, capsys):
    damaged = _damage(cache_copy, data)
    report = crds_tools.check(data, cache_copy)
    assert not report.ok and not report.missing and sorted(report.damaged) == sorted(damaged)
    assert {n: i["reftype"] for n, i in report.damaged.items()} == damaged
    problems = " ".join(i["problem"] for i in report.damaged.values())
    assert "truncated FITS file" in problems and "empty file" in problems and "truncated ASDF file" in problems
    code, out, err = _main(monkeypatch, capsys, "crds", "check", data, "--crds-path", cache_copy)
    assert code == CrdsCacheError.exit_code == 4
    assert sum(ln.startswith("damaged ") for ln in out.splitlines()) == 3
    first = sorted(damaged)[0]
    assert len(err.strip().splitlines()) == 1 and str(cache_copy / "references" / "jwst" / "miri" / first) in err
    assert "is damaged" in err and "crds sync --context jwst_9000.pmap" in err


def test_run_stops_on_a_damaged_reference_before_any_stage(cache_copy, data, tmp_path):
    from reduce import config
    from reduce.orchestrate import reduce_folder

    damaged = _damage(cache_copy, data)
    with pytest.raises(CrdsCacheError, match=sorted(damaged)[0]):
        reduce_folder(data, tmp_path / "ws", config.defaults(), crds_path=cache_copy)
    assert not (tmp_path / "ws").exists()


def test_every_demo_reference_is_whole_and_checked_quickly(crds_cache):
    import time

    from reduce import reference_check

    files = sorted(p for p in (crds_cache / "references").rglob("*") if p.is_file())
    assert len(files) > 30
    t0 = time.perf_counter()
    assert [(p.name, reference_check.problem(p)) for p in files if reference_check.problem(p)] == []
    assert time.perf_counter() - t0 < 10  # ~0.3 s for the ~40 demo references (twice here)


def test_sync_command_is_restricted_to_the_data():
    cmd = crds_tools.sync_command("jwst_1584.pmap", [Path("a_uncal.fits"), Path("b_uncal.fits")])
    assert cmd[1:3] == ["-m", "crds.sync"]
    i = cmd.index("--contexts")
    assert cmd[i + 1] == "jwst_1584.pmap" and "--check-sha1sum" in cmd and "--fetch-references" in cmd
    assert cmd[cmd.index("--dataset-files") + 1:] == ["a_uncal.fits", "b_uncal.fits"]
    assert "--fetch-references" not in crds_tools.sync_command("jwst_1584.pmap")


def test_sync_without_server_is_one_clear_error(cache_copy, data, monkeypatch, capsys):
    monkeypatch.setenv("MIRIM_CRDS_SERVER_URL", "https://127.0.0.1:9")   # unreachable everywhere
    code, out, err = _main(monkeypatch, capsys, "crds", "sync", "--context", "jwst_9000.pmap", "--for", data,
                           "--crds-path", cache_copy)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == CrdsSyncError.exit_code == 18
    assert len(lines) == 1 and "cannot reach the CRDS server https://127.0.0.1:9" in lines[0]


def test_sync_refuses_a_read_only_cache(cache_copy, monkeypatch):
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    with pytest.raises(CrdsSyncError, match="read-only"):
        crds_tools.sync("jwst_9000.pmap", None, cache_copy)


def test_check_honours_read_only_cache(cache_copy, data, monkeypatch):
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    assert crds_tools.check(data, cache_copy).ok


@pytest.mark.remote_data
def test_live_sync_mappings(tmp_path, monkeypatch):
    monkeypatch.delenv("MIRIM_CRDS_SERVER_URL", raising=False)
    crds_tools.sync("jwst_1584.pmap", None, tmp_path / "crds", echo=lambda s: None)
    assert (tmp_path / "crds" / "mappings" / "jwst" / "jwst_1584.pmap").is_file()
