"""reduce.clean.mosaic_mask (second cleaning pass): known answers on small arrays."""

import numpy as np

from reduce.clean.mosaic_mask import mosaic_source_mask, project_mask
from reduce.clean.masks import source_mask
from reduce.params import MaskParams


def _galaxy(shape, amp, r_e=25.0, x0=100.0, y0=100.0):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    return amp * np.exp(-np.hypot(xx - x0, yy - y0) / r_e)


def test_project_mask_shift_and_outside():
    m = np.zeros((50, 60), bool)
    m[20:25, 30:33] = True

    def shift(x, y):  # exposure pixel (x, y) lies on mosaic pixel (x + 10.3, y - 4.6)
        return x + 10.3, y - 4.6

    out = project_mask(m, shift, (40, 40), grow=0)
    ys, xs = np.nonzero(out)
    # mosaic rows 20..24 <- exposure rows 25..29 (nearest pixel: y - 4.6 rounds to y - 5),
    # mosaic columns 30..32 <- exposure columns 20..22 (x + 10.3 rounds to x + 10)
    assert set(ys) == set(range(25, 30)) and set(xs) == set(range(20, 23))
    assert out.sum() == 15
    # beyond the mosaic (and NaN transforms) -> not masked
    far = project_mask(np.ones((50, 60), bool), lambda x, y: (x + 100.0, y), (40, 40))
    assert not far.any()
    nan = project_mask(np.ones((50, 60), bool), lambda x, y: (np.where(x > 5, np.nan, x), y), (40, 40))
    assert nan[:, :6].all() and not nan[:, 6:].any()
    # grow dilates the mosaic mask by one pixel before the lookup
    grown = project_mask(m, shift, (40, 40), grow=1)
    assert grown.sum() == (5 + 2) * (3 + 2) - 4 and (grown & out).sum() == 15


def test_project_mask_rotation_keeps_area():
    m = np.zeros((200, 200), bool)
    yy, xx = np.mgrid[0:200, 0:200]
    m[(xx - 100) ** 2 + (yy - 100) ** 2 <= 30 ** 2] = True
    th = np.deg2rad(33.0)

    def rot(x, y):  # exposure -> mosaic: rotation about (64, 64) -> (100, 100)
        dx, dy = x - 64.0, y - 64.0
        return 100 + np.cos(th) * dx - np.sin(th) * dy, 100 + np.sin(th) * dx + np.cos(th) * dy

    out = project_mask(m, rot, (128, 128), grow=0)
    assert abs(out.sum() - np.pi * 30 ** 2) < 0.03 * np.pi * 30 ** 2
    ey, ex = np.nonzero(out)
    assert np.all((ex - 64) ** 2 + (ey - 64) ** 2 <= 31.5 ** 2)


def test_mosaic_mask_reaches_wings_one_exposure_misses():
    rng = np.random.default_rng(3)
    shape = (200, 200)
    gal = _galaxy(shape, amp=6.0)
    sigma1 = 1.0  # noise of one exposure
    # one exposure carries the sky (10 sigma): its extended-emission threshold is at least
    # a quarter of the sky (masks.extended_mask); the cleaned mosaic has the sky removed
    one = gal + 10.0 + rng.normal(0, sigma1, shape)
    mosaic = gal + rng.normal(0, sigma1 / 3.0, shape)  # nine exposures
    wht = np.ones(shape)
    wht[:, :10] = 0.0                                   # not covered
    mosaic[:, :10] = np.nan
    m1 = source_mask(one.astype(np.float32), None, None, params=MaskParams(detect_thresh=3.0)).mask
    mm = mosaic_source_mask(mosaic.astype(np.float32), wht, MaskParams(detect_thresh=3.0))
    assert not mm[:, :10].any()
    r = np.hypot(*np.mgrid[-100:100, -100:100])
    ring = (r > 25) & (r < 50)  # wings at 0.8-2.2 sigma of one exposure per pixel
    assert m1[ring].mean() < 0.1 and mm[ring].mean() > 0.95
    # pure noise far from the galaxy stays mostly unmasked
    assert mm[r > 95].mean() < 0.2


def _gwcs(crpix, scale_arcsec, rot_deg, shape):
    """A TAN gwcs: pixel -> (ra, dec) around (150, 2) deg, rotated by ``rot_deg``."""
    from astropy import coordinates as coord
    from astropy.modeling import models as mm
    from gwcs import coordinate_frames as cf
    from gwcs import wcs

    s = scale_arcsec / 3600.0
    t = ((mm.Shift(-crpix[0]) & mm.Shift(-crpix[1])) | mm.Rotation2D(rot_deg) | (mm.Scale(s) & mm.Scale(s))
         | mm.Pix2Sky_TAN() | mm.RotateNative2Celestial(150.0, 2.0, 180.0))
    w = wcs.WCS([(cf.Frame2D(name="detector"), t),
                 (cf.CelestialFrame(reference_frame=coord.ICRS(), name="world"), None)])
    w.bounding_box = ((-0.5, shape[1] - 0.5), (-0.5, shape[0] - 0.5))
    w.array_shape = shape
    return w


def test_project_mask_wcs_with_stcal_pixmap_equals_the_callable():
    """stcal's calc_pixmap (as resample uses it) gives the same mask as gwcs invert(forward)."""
    from reduce.clean.mosaic_mask import project_mask_wcs

    eshape, mshape = (70, 80), (120, 130)
    ewcs = _gwcs((40.2, 35.7), 0.11, 23.0, eshape)
    mwcs = _gwcs((20.0, 58.0), 0.09, 0.0, mshape)  # finer pixels, another orientation
    yy, xx = np.mgrid[0:mshape[0], 0:mshape[1]]
    m = ((xx - 30) ** 2 + (yy - 50) ** 2 <= 18 ** 2) | ((xx > 40) & (yy > 80))
    bbox = (ewcs.bounding_box.bounding_box(), mwcs.bounding_box.bounding_box())
    for grow in (0, 1):
        old = project_mask(m, lambda x, y: mwcs.invert(*ewcs(x, y)), eshape, grow=grow)
        new = project_mask_wcs(m, ewcs, mwcs, eshape, grow=grow)
        np.testing.assert_array_equal(new, old)
        assert 200 < old.sum() < old.size  # a real, partial mask
    off = project_mask_wcs(np.ones(mshape, bool), ewcs, mwcs, eshape, grow=0)
    assert 0 < off.sum() < off.size  # part of the exposure is off the mosaic: False there
    # calc_pixmap puts the bounding boxes back
    assert (ewcs.bounding_box.bounding_box(), mwcs.bounding_box.bounding_box()) == bbox
