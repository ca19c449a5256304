"""remove_small_sources with photutils' SegmentationImage equals the hand-written version."""

import numpy as np
import pytest
from scipy import ndimage

from reduce.clean.masks import remove_small_sources


def _old(segm, max_pixels, relabel=False):
    """reduce.clean.masks.remove_small_sources before photutils (verbatim)."""
    segm = np.asarray(segm)
    out = segm.astype(np.int32, copy=True)
    if segm.size == 0 or segm.max(initial=0) <= 0:
        return out, 0
    counts = np.bincount(segm.ravel().clip(min=0))
    present = counts > 0
    present[0] = False
    small = present & (counts <= max_pixels)
    if small.any():
        out[small[out]] = 0
    if relabel:
        keep = np.flatnonzero(present & ~small)
        lut = np.zeros(len(counts), np.int32)
        lut[keep] = np.arange(1, len(keep) + 1, dtype=np.int32)
        out = lut[out]
    return out, int(np.count_nonzero(small))


def _segm(seed):
    rng = np.random.default_rng(seed)
    lab, n = ndimage.label(ndimage.gaussian_filter(rng.random((80, 90)), 1.5) > 0.52)
    gaps = rng.permutation(np.arange(1, 3 * n + 1))[:n]  # non-consecutive labels
    return np.r_[0, gaps][lab]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_pixels", [0, 1, 5, 40])
@pytest.mark.parametrize("relabel", [False, True])
def test_same_as_hand_written(seed, max_pixels, relabel):
    segm = _segm(seed)
    new, n_new = remove_small_sources(segm, max_pixels, relabel=relabel)
    old, n_old = _old(segm, max_pixels, relabel=relabel)
    assert n_new == n_old and new.dtype == old.dtype == np.int32
    np.testing.assert_array_equal(new, old)
    assert (max_pixels < 5) or n_new > 0  # the cases remove something


def test_empty_and_input_untouched():
    z = np.zeros((5, 5), int)
    assert remove_small_sources(z, 3, relabel=True)[1] == 0
    segm = _segm(4)
    keep = segm.copy()
    remove_small_sources(segm, 10, relabel=True)
    np.testing.assert_array_equal(segm, keep)
