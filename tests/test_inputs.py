"""Input selection: only MIRI imager science exposures, everything else skipped with a reason."""

import numpy as np
import pytest
from astropy.io import fits

from reduce import inputs
from reduce.errors import InputError

GOOD = dict(TELESCOP="JWST", INSTRUME="MIRI", DETECTOR="MIRIMAGE", EXP_TYPE="MIR_IMAGE", PROGRAM="09999",
            OBSERVTN="001", VISIT="001", EXPOSURE=1, FILTER="F770W", SUBARRAY="SUB256", READPATT="FASTR1",
            NGROUPS=5, NINTS=1, DURATION=1.8, TARGPROP="DEMO")


def _write(path, **changes):
    hdr = fits.Header({**GOOD, **changes})
    fits.HDUList([fits.PrimaryHDU(header=hdr),
                  fits.ImageHDU(np.zeros((1, 5, 8, 8), np.uint16), name="SCI")]).writeto(path)
    return path


def test_selection_keeps_imaging_and_explains_skips(tmp_path):
    _write(tmp_path / "a_uncal.fits")
    _write(tmp_path / "ta_uncal.fits", EXP_TYPE="MIR_TACQ")
    _write(tmp_path / "lrs_uncal.fits", EXP_TYPE="MIR_LRS-FIXEDSLIT")
    _write(tmp_path / "mrs_uncal.fits", DETECTOR="MIRIFUSHORT", EXP_TYPE="MIR_MRS")
    _write(tmp_path / "nrc_uncal.fits", INSTRUME="NIRCAM", DETECTOR="NRCA1", EXP_TYPE="NRC_IMAGE")
    full = _write(tmp_path / "trunc_uncal.fits")
    data = full.read_bytes()
    (tmp_path / "t_uncal.fits").write_bytes(data[: len(data) - 3000])
    full.unlink()
    (tmp_path / "junk_uncal.fits").write_bytes(b"not a fits file at all")
    (tmp_path / "notes.txt").write_text("ignored: not *_uncal.fits")

    sel = inputs.select(tmp_path)
    assert [e.path.name for e in sel.exposures] == ["a_uncal.fits"]
    e = sel.exposures[0]
    assert (e.program, e.observation, e.filter, e.subarray, e.stem) == ("09999", "001", "F770W", "SUB256", "a")
    reasons = dict(sel.skipped)
    assert "EXP_TYPE=MIR_TACQ" in reasons["ta_uncal.fits"]
    assert "EXP_TYPE=MIR_LRS-FIXEDSLIT" in reasons["lrs_uncal.fits"]
    assert "DETECTOR=MIRIFUSHORT" in reasons["mrs_uncal.fits"]
    assert "INSTRUME=NIRCAM" in reasons["nrc_uncal.fits"]
    assert "truncated" in reasons["t_uncal.fits"]
    assert "not a readable FITS" in reasons["junk_uncal.fits"]
    assert len(sel.skipped) == 6


def test_empty_folder_and_nothing_usable(tmp_path):
    with pytest.raises(InputError, match="no \\*_uncal.fits files"):
        inputs.select(tmp_path)
    _write(tmp_path / "ta_uncal.fits", EXP_TYPE="MIR_TACQ")
    with pytest.raises(InputError, match="no MIRI imager science exposures.*MIR_TACQ"):
        inputs.select(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        inputs.select(tmp_path / "missing")


# -------------------------------------- invalid or inconsistent header values (issue 12, defect 8)

@pytest.fixture(scope="module")
def f2100w(tmp_path_factory):
    """A simulated F2100W uncal file (primary header and ASDF metadata agree)."""
    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    spec = next(s for s in demo_program() if s.filter == "F2100W")
    d = tmp_path_factory.mktemp("sim")
    write_exposure(d, spec, make_scene(1), rng=np.random.default_rng(1))
    return next(d.glob("*_uncal.fits"))


def _edited(f2100w, folder, **cards):
    folder.mkdir()
    f = folder / f2100w.name
    f.write_bytes(f2100w.read_bytes())
    for key, value in cards.items():
        fits.setval(f, key, value=value)
    return f


def test_simulated_file_is_consistent(f2100w):
    e = inputs.classify(f2100w)
    assert isinstance(e, inputs.Exposure) and e.filter == "F2100W"


@pytest.mark.parametrize("key, value, asdf_value", [
    ("FILTER", "F999W", "F2100W"),      # not a filter at all
    ("FILTER", "F070W", "F2100W"),      # a NIRCam filter
    ("SUBARRAY", "BOGUS99", "SUB256"),
    ("READPATT", "NRSRAPID", "FASTR1"),  # a NIRSpec read pattern
])
def test_invalid_header_value_is_an_input_error(f2100w, tmp_path, key, value, asdf_value):
    f = _edited(f2100w, tmp_path / "raw", **{key: value})
    before = f.read_bytes()
    with pytest.raises(InputError) as exc:
        inputs.select(tmp_path / "raw")
    msg = str(exc.value)
    assert f.name in msg and f"{key}={value}" in msg and asdf_value in msg and "MIRI imager" in msg, msg
    assert f.read_bytes() == before  # never modified


def test_header_disagreeing_with_asdf_metadata_is_an_input_error(f2100w, tmp_path):
    f = _edited(f2100w, tmp_path / "raw", FILTER="F770W")  # valid, but not what the file's ASDF says
    with pytest.raises(InputError, match=f"{f.name}: the primary header says FILTER=F770W but the file's ASDF "
                                         "metadata says F2100W"):
        inputs.select(tmp_path / "raw")


def test_invalid_subarray_fails_crds_check(tmp_path):
    import subprocess
    import sys

    _write(tmp_path / "a_uncal.fits", SUBARRAY="BOGUS99")  # no ASDF extension: the header alone
    proc = subprocess.run([sys.executable, "-m", "reduce.cli", "crds", "check", tmp_path], capture_output=True,
                          text=True)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: a_uncal.fits: SUBARRAY=BOGUS99 in the primary header is not a MIRI imager "
                                  "subarray") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
