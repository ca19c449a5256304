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
