"""Detector-fixed or sky-fixed smooth structure (reduce.clean.frame_test), on synthetic
dithered exposures with a pure-shift 'WCS'."""

import numpy as np

from reduce.clean import frame_test as ft

SHAPE = (256, 256)
SHIFTS = [(0, 0), (37, 11), (-23, 41), (45, -30), (-40, -19)]  # pixels


def _field(seed, scale=40.0, size=1024):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=(size, size)), scale, mode="wrap")
    return 0.05 * f / f.std()


def _exposures(detector, sky, noise=0.01, seed=0):
    """planes = 1 + detector[y, x] + sky[y + dy + 400, x + dx + 400] + noise; transforms
    map pixel (x, y) to 'sky' (x + dx, y + dy)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    planes, to_sky, to_pix = [], [], []
    for dx, dy in SHIFTS:
        p = 1 + detector + sky[yy + dy + 400, xx + dx + 400] + noise * rng.normal(size=SHAPE)
        planes.append(p)
        to_sky.append(lambda x, y, dx=dx, dy=dy: (np.asarray(x) + dx, np.asarray(y) + dy))
        to_pix.append(lambda a, d, dx=dx, dy=dy: (np.asarray(a) - dx, np.asarray(d) - dy))
    return planes, to_sky, to_pix, [noise ** 2] * len(planes)


def test_sky_fixed_emission_is_recognised():
    planes, ts, tp, nv = _exposures(np.zeros(SHAPE), _field(1))
    r = ft.frame_test(planes, ts, tp, nv)
    assert r.sky_dominated and r.sky_var < r.detector_var, r.as_dict()


def test_detector_fixed_pattern_is_not_called_sky():
    det = _field(2)[:SHAPE[0], :SHAPE[1]]
    planes, ts, tp, nv = _exposures(det, np.zeros((1200, 1200)))
    r = ft.frame_test(planes, ts, tp, nv)
    assert not r.sky_dominated and r.sky_var > r.detector_var, r.as_dict()
    assert r.smooth_on_detector


def test_dithers_smaller_than_a_block_are_uninformative():
    global SHIFTS
    saved, SHIFTS = SHIFTS, [(0, 0), (1, 2), (-2, 1)]
    try:
        planes, ts, tp, nv = _exposures(np.zeros(SHAPE), _field(3))
        r = ft.frame_test(planes, ts, tp, nv)
    finally:
        SHIFTS = saved
    # block centres never move to another block: no evidence either way, so no smooth model
    assert r.n_informative == 0 and not r.informative
    assert not r.sky_dominated and not r.smooth_on_detector
