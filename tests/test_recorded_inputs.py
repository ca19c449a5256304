"""``inputs.json``: input paths that hold from any folder (issue 12, defect 1)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from reduce import inputs
from reduce.errors import InputError

GOOD = dict(TELESCOP="JWST", INSTRUME="MIRI", DETECTOR="MIRIMAGE", EXP_TYPE="MIR_IMAGE", PROGRAM="09999",
            OBSERVTN="001", VISIT="001", EXPOSURE=1, FILTER="F770W", SUBARRAY="SUB256", READPATT="FASTR1",
            NGROUPS=5, NINTS=1, DURATION=1.8, TARGPROP="DEMO")


def _write(path):
    fits.HDUList([fits.PrimaryHDU(header=fits.Header(GOOD)),
                  fits.ImageHDU(np.zeros((1, 5, 8, 8), np.uint16), name="SCI")]).writeto(path)


def test_outside_paths_are_absolute_inside_paths_relative_to_the_workspace(tmp_path, monkeypatch):
    (tmp_path / "raw").mkdir()
    (tmp_path / "ws" / "raw").mkdir(parents=True)
    _write(tmp_path / "raw" / "a_uncal.fits")
    _write(tmp_path / "ws" / "raw" / "b_uncal.fits")
    monkeypatch.chdir(tmp_path)
    outside = inputs.select(Path("raw"))
    inside = inputs.select(Path("ws/raw"))
    rec = inputs.record(inputs.Selection(outside.exposures + inside.exposures), Path("ws"))
    paths = [e["path"] for e in rec["exposures"]]
    assert paths == [str((tmp_path / "raw" / "a_uncal.fits").resolve()), "raw/b_uncal.fits"]
    (tmp_path / "ws" / "inputs.json").write_text(json.dumps(rec))
    monkeypatch.chdir("/")
    loaded = inputs.load_record(tmp_path / "ws")
    assert [e.path for e in loaded.exposures] == [(tmp_path / "raw" / "a_uncal.fits").resolve(),
                                                  tmp_path / "ws" / "raw" / "b_uncal.fits"]
    assert loaded.exposures[0].filter == "F770W"


def test_old_relative_entries_and_missing_files_are_one_line_errors(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    entry = {"path": "raw/a_uncal.fits", "program": "09999", "observation": "001", "visit": "001", "exposure": 1,
             "filter": "F770W", "subarray": "SUB256", "readpatt": "FASTR1", "ngroups": 5, "nints": 1,
             "duration": 1.8, "targprop": "DEMO"}
    (ws / "inputs.json").write_text(json.dumps({"exposures": [entry], "skipped": []}))  # the old format
    with pytest.raises(InputError, match="relative to the folder its run started in"):
        inputs.load_record(ws)
    (ws / "inputs.json").write_text(json.dumps({"format": inputs.RECORD_FORMAT, "exposures": [entry], "skipped": []}))
    with pytest.raises(InputError, match="does not exist"):
        inputs.load_record(ws)
    (ws / "inputs.json").write_text("{not json")
    with pytest.raises(InputError, match="not readable"):
        inputs.load_record(ws)


def test_stage_rerun_from_another_folder(tmp_path, crds_cache, monkeypatch):
    """`run raw --workdir ws` started in one folder, then `cd / && stage1 /abs/ws`."""
    from reduce import config, orchestrate
    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    raw = tmp_path / "raw"
    raw.mkdir()
    write_exposure(raw, demo_program()[0], make_scene(1), rng=np.random.default_rng(1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    orchestrate.reduce_folder(Path("raw"), Path("ws"), config.defaults(), crds_path=crds_cache, stages=())
    recorded = json.loads((tmp_path / "ws" / "inputs.json").read_text())["exposures"]
    assert all(Path(e["path"]).is_absolute() for e in recorded)
    for e in recorded:  # stage 1 finished already: the rerun only checks and skips
        (tmp_path / "ws" / "stage1" / f"{Path(e['path']).name.removesuffix('_uncal.fits')}_rate.fits").touch()
    proc = subprocess.run([sys.executable, "-m", "reduce.cli", "stage1", str(tmp_path / "ws"),
                           "--crds-path", str(crds_cache)], cwd="/", capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-2000:]
