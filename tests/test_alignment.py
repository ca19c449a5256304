"""The second pass's alignment correction (reduce.clean.alignment): a known shift and
rotation of the WCS is recovered, the corrected transforms invert each other, the header
keywords round-trip."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from reduce.clean import alignment
from reduce.clean.io import pixel_sky_transforms

SHAPE = (256, 288)


def _header(crpix=(144.0, 128.0), rot_deg=0.0, scale=0.11 / 3600):
    t = np.radians(rot_deg)
    h = fits.Header()
    h.update({"NAXIS": 2, "NAXIS1": SHAPE[1], "NAXIS2": SHAPE[0], "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
              "CRVAL1": 80.5, "CRVAL2": -69.5, "CRPIX1": crpix[0], "CRPIX2": crpix[1], "CUNIT1": "deg",
              "CUNIT2": "deg", "CD1_1": -scale * np.cos(t), "CD1_2": scale * np.sin(t),
              "CD2_1": scale * np.sin(t), "CD2_2": scale * np.cos(t)})
    return h


def test_recovers_a_shift_and_rotation():
    unaligned = pixel_sky_transforms(_header())
    w_aligned = WCS(_header(crpix=(144.0 + 1.7, 128.0 - 2.3), rot_deg=0.05))  # the aligned frame

    def aligned_to_sky(x, y):
        return w_aligned.pixel_to_world_values(x, y)

    c, residual = alignment.fit_correction(aligned_to_sky, unaligned[1], SHAPE)
    assert residual < 1e-3
    # everywhere on the frame the corrected pixel sees (through the unaligned WCS) the aligned sky
    yy, xx = np.mgrid[0:SHAPE[0]:17, 0:SHAPE[1]:23].astype(float)
    xc, yc = alignment.apply(c, xx, yy)
    ra1, dec1 = unaligned[0](xc, yc)
    ra2, dec2 = aligned_to_sky(xx, yy)
    sep_px = np.hypot((ra1 - ra2) * np.cos(np.radians(-69.5)), dec1 - dec2) * 3600 / 0.11
    assert sep_px.max() < 1e-3
    s = alignment.summary(c, SHAPE, residual)
    # moving CRPIX by (+1.7, -2.3) moves the sky at a pixel by (-1.7, +2.3) pixels of the old frame
    assert s["dx_px"] == pytest.approx(-1.7, abs=0.02) and s["dy_px"] == pytest.approx(2.3, abs=0.02)
    assert abs(s["rotation_deg"]) == pytest.approx(0.05, abs=2e-3)


def test_corrected_transforms_invert_each_other_and_follow_the_aligned_sky():
    unaligned = pixel_sky_transforms(_header())
    w_aligned = WCS(_header(crpix=(140.0, 131.0), rot_deg=-0.1))
    c, _ = alignment.fit_correction(lambda x, y: w_aligned.pixel_to_world_values(x, y), unaligned[1], SHAPE)
    to_sky, to_pix = alignment.aligned_transforms(unaligned, c)
    x, y = np.array([0.0, 100.5, 287.0]), np.array([0.0, 50.25, 255.0])
    ra, dec = to_sky(x, y)
    np.testing.assert_allclose(np.array(w_aligned.pixel_to_world_values(x, y)), np.array([ra, dec]), atol=1e-9)
    np.testing.assert_allclose(np.array(to_pix(ra, dec)), np.array([x, y]), atol=1e-6)
    assert alignment.aligned_transforms(unaligned, None) is unaligned
    assert alignment.aligned_transforms(None, c) is None


def test_header_round_trip_and_missing_keywords():
    c = np.array([[1.5, 1.0, 1e-4], [-2.0, -1e-4, 1.0]])
    h = fits.Header(alignment.to_header(c, 0.0123))
    back, res = alignment.from_header(h)
    np.testing.assert_array_equal(back, c)
    assert res == pytest.approx(0.0123)
    for key, bad in (("ALN_XX", 0.0), ("ALN_X0", "shifted")):
        damaged = h.copy()
        damaged[key] = bad
        if key == "ALN_XX":
            damaged["ALN_XY"] = 0.0  # a singular linear part
        assert alignment.from_header(damaged) is None, key
    del h["ALN_YY"]
    assert alignment.from_header(h) is None


def test_no_correction_without_finite_points():
    unaligned = pixel_sky_transforms(_header())
    nowhere = lambda x, y: (np.full_like(x, np.nan), np.full_like(y, np.nan))  # noqa: E731
    assert alignment.fit_correction(nowhere, unaligned[1], SHAPE) is None
