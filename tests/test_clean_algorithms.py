"""Unit tests of the cleaning algorithms, on small arrays with known answers.

Several cases are the ones the original notebook got wrong (workflow.md section 5).
"""

import warnings

import numpy as np
import pytest

from reduce.clean import masks, median_filter as mf, super_background as sb
from reduce.params import MaskParams, PipelineParams

nan = np.nan


# ----------------------------------------------------------------------------- median filter

def test_adjacent_nans_filled_only_from_original_values():
    img = np.array([[1, 2, 3, 4],
                    [5, nan, nan, 8],
                    [9, 10, 11, 12]], dtype=np.float32)
    res = mf.median_fill(img, half_width=1)
    # (1,1): originals 1,2,3,5,9,10,11 -> 5 ; (1,2): 2,3,4,8,10,11,12 -> 8
    # (the original, filling in place, would have used the fill 5 for (1,2))
    assert res.sci[1, 1] == 5 and res.sci[1, 2] == 8
    assert res.filled.sum() == 2 and res.n_unfilled == 0
    assert np.isnan(img[1, 1])  # input untouched


def test_two_pixel_run_in_flat_ramp_uses_no_fill():
    img = np.tile(np.arange(6, dtype=np.float32), (3, 1))
    img[1, 2:4] = nan
    res = mf.median_fill(img, half_width=1)
    # (1,2): originals in rows 0-2, cols 1-3 minus the two holes; (1,3): cols 2-4 likewise
    assert res.sci[1, 2] == np.median([1, 2, 3, 1, 2, 3, 1])
    assert res.sci[1, 3] == np.median([2, 3, 4, 4, 2, 3, 4])


def test_edges_and_corners_truncate_the_window():
    img = np.arange(1, 26, dtype=np.float32).reshape(5, 5)
    img[0, 0] = img[4, 4] = img[0, 2] = img[2, 4] = nan
    res = mf.median_fill(img, half_width=1)
    assert res.sci[0, 0] == np.median([2, 6, 7])          # corner: 3 neighbours, no wrap
    assert res.sci[4, 4] == np.median([19, 20, 24])
    assert res.sci[0, 2] == np.median([2, 4, 7, 8, 9])    # top edge
    assert res.sci[2, 4] == np.median([9, 10, 14, 19, 20])  # right edge
    assert res.n_filled == 4


def test_right_edge_values_exactly():
    img = np.arange(1, 26, dtype=np.float32).reshape(5, 5)
    img[2, 4] = nan
    res = mf.median_fill(img, half_width=2)
    window = img[0:5, 2:5]
    assert res.sci[2, 4] == np.nanmedian(window)


def test_source_pixels_and_isolated_holes():
    img = np.ones((5, 5), np.float32)
    img[2, 2] = nan
    src = np.zeros((5, 5), bool)
    src[2, 2] = True
    res = mf.median_fill(img, source_mask=src)
    assert np.isnan(res.sci[2, 2]) and res.n_filled == 0
    hole = np.full((5, 5), nan, np.float32)
    hole[0, 0] = 3.0
    res = mf.median_fill(hole, half_width=1)
    assert res.sci[1, 1] == 3.0 and res.sci[0, 1] == 3.0
    assert np.isnan(res.sci[4, 4]) and res.unfilled[4, 4]
    assert res.n_filled + res.n_unfilled == 24


def test_fill_noise_and_variances_consistent():
    rng = np.random.default_rng(3)
    vp, vr, vf = (rng.uniform(0.5, 2, (20, 20)).astype(np.float32) for _ in range(3))
    err = np.sqrt(vp + vr + vf)
    img = rng.normal(10, 1, (20, 20)).astype(np.float32)
    img[rng.random((20, 20)) < 0.2] = nan
    res = mf.median_fill(img, err, variances={"var_poisson": vp, "var_rnoise": vr, "var_flat": vf})
    total = sum(res.variances.values())
    np.testing.assert_allclose(res.err ** 2, total, rtol=1e-5)
    r, c = np.argwhere(res.filled)[0]
    nb = np.isfinite(img[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2])
    assert res.variances["var_rnoise"][r, c] == pytest.approx(np.median(vr[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2][nb]))


def test_outlier_option_treats_hot_pixels():
    rng = np.random.default_rng(0)
    img = rng.normal(5, 0.1, (30, 30)).astype(np.float32)
    err = np.full_like(img, 0.1)
    img[10, 10] = 50.0
    img[10, 11] = 40.0  # a hot pair: neither feeds the other's fill
    res = mf.median_fill(img, err, outlier_sigma=10.0)
    assert res.outliers[10, 10] and res.outliers[10, 11] and res.n_outliers == 2
    assert abs(res.sci[10, 10] - 5) < 0.5 and abs(res.sci[10, 11] - 5) < 0.5
    assert not mf.median_fill(img, err).filled.any()


def test_vectorised_fill_matches_bruteforce():
    rng = np.random.default_rng(7)
    img = rng.normal(size=(40, 37)).astype(np.float32)
    img[rng.random(img.shape) < 0.3] = nan
    for w in (1, 2, 3):
        res = mf.median_fill(img, half_width=w)
        ref = img.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for r, c in np.argwhere(np.isnan(img)):
                ref[r, c] = np.nanmedian(img[max(r - w, 0):r + w + 1, max(c - w, 0):c + w + 1])
        np.testing.assert_array_equal(res.sci, ref)


# ----------------------------------------------------------------------------- masks

def test_small_sources_removed_including_the_highest_label():
    segm = np.zeros((8, 8), int)
    segm[0:3, 0:3] = 1          # 9 px: stays
    segm[5, 5] = 2              # 1 px
    segm[7, 0:2] = 3            # 2 px (highest label, the original never checked it)
    out, n = masks.remove_small_sources(segm, 2)
    assert n == 2 and set(np.unique(out)) == {0, 1}
    out, n = masks.remove_small_sources(segm, 1)  # <= 1: label 2 only (original: off by one)
    assert n == 1 and set(np.unique(out)) == {0, 1, 3}
    out, n = masks.remove_small_sources(segm, 0)
    assert n == 0 and np.array_equal(out, segm)
    out, _ = masks.remove_small_sources(segm, 2, relabel=True)
    assert out.max() == 1


def test_dilation_3x3():
    m = np.zeros((7, 7), bool)
    m[3, 3] = True
    assert masks.dilate(m, 1).sum() == 9
    assert masks.dilate(m, 2).sum() == 25
    assert masks.dilate(m, 0).sum() == 1


def test_coverage_mask_original_rule_keeps_dq_0_and_4_only():
    sci = np.ones((1, 6), np.float32)
    err = np.ones((1, 6), np.float32)
    dq = np.array([[0, 4, 1, 5, 2, 0]], np.uint32)
    err[0, 5] = nan
    got = masks.coverage_mask(sci, err, dq, good_bits=masks.GOOD_DQ_BITS)
    assert got.tolist() == [[False, False, True, True, True, True]]


def test_coverage_mask_jwst_rule_by_flag_name():
    """The product's default: bad = DO_NOT_USE or NON_SCIENCE (jwst resample's good_bits),
    through stdatamodels' flag map; SATURATED alone, JUMP_DET, FLUX_ESTIMATED are usable."""
    from stdatamodels.jwst.datamodels import dqflags

    f = dqflags.pixel
    dq = np.array([[0, f["JUMP_DET"], f["DO_NOT_USE"], f["NON_SCIENCE"], f["SATURATED"],
                    f["FLUX_ESTIMATED"], f["DO_NOT_USE"] | f["SATURATED"]]], np.uint32)
    sci = np.ones(dq.shape, np.float32)
    assert masks.coverage_mask(sci, None, dq).tolist() == [[False, False, True, True, False, False, True]]
    only_dnu = masks.coverage_mask(sci, None, dq, good_bits="~DO_NOT_USE")
    assert only_dnu.tolist() == [[False, False, True, False, False, False, True]]


def test_min_area():
    assert masks.min_source_area(0.1108) == 3           # pi * (0.1/0.1108)^2 = 2.56 -> 3
    assert masks.min_source_area(0.05) == 13


def test_detection_masks_a_large_galaxy_and_a_star():
    rng = np.random.default_rng(1)
    ny = nx = 128
    y, x = np.mgrid[:ny, :nx]
    img = rng.normal(10, 0.1, (ny, nx))
    img += 5 * np.exp(-((x - 40) ** 2 + (y - 60) ** 2) / (2 * 15.0 ** 2))   # extended: ~1400 px
    img += 20 * np.exp(-((x - 100) ** 2 + (y - 20) ** 2) / (2 * 1.2 ** 2))
    img = img.astype(np.float32)
    err = np.full_like(img, 0.1)
    dq = np.zeros(img.shape, np.uint32)
    dq[5, 5] = 1
    res = masks.source_mask(img, err, dq, params=MaskParams(detect_thresh=5.0, dilate_iterations=2), box_size=32)
    assert res.mask[60, 40] and res.mask[20, 100] and res.mask[60, 60]  # no maximum-area cut
    assert not res.mask[120, 120]
    assert res.bad[5, 5]
    assert res.segm.max() >= 2


@pytest.mark.parametrize("small", [0, 10])
def test_mask_is_the_same_with_and_without_deblending(small):
    """Deblending splits segments but never changes their union (small objects are removed
    before it), so masks skip it; a blended pair becomes two labels only with deblend."""
    rng = np.random.default_rng(3)
    ny = nx = 160
    y, x = np.mgrid[:ny, :nx]
    img = rng.normal(10, 0.1, (ny, nx))
    for (cx, cy, amp, s) in [(50, 50, 8, 2.0), (56, 52, 6, 2.0), (120, 40, 3, 6.0), (125, 50, 4, 3.0),
                             (30, 130, 20, 1.2), (100, 120, 2, 12.0), (140, 140, 0.8, 1.0)]:
        img += amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s ** 2))
    img = img.astype(np.float32)
    err = np.full_like(img, 0.1)
    kw = dict(params=MaskParams(detect_thresh=5.0, dilate_iterations=2, small_source_thresh=small), box_size=32)
    plain = masks.source_mask(img, err, **kw)
    deblended = masks.source_mask(img, err, deblend=True, **kw)
    assert np.array_equal(plain.mask, deblended.mask)
    assert np.array_equal(plain.segm > 0, deblended.segm > 0)
    assert deblended.n_sources > plain.n_sources
    assert plain.n_removed == deblended.n_removed


# ----------------------------------------------------------------------------- grouping

def test_original_key_merges_durations_ours_does_not():
    a = ("F770W", 88.81)
    b = ("F770W", 88.85)
    assert sb.original_group_key(*a) == sb.original_group_key(*b) == "F770W88"
    assert sb.group_key(*a) != sb.group_key(*b)
    # even a factor of ten collides under the original
    assert sb.original_group_key("F770W", 277.5) == sb.original_group_key("F770W", 27.75)
    assert sb.group_key("F770W", 277.5) != sb.group_key("F770W", 27.75)
    # 88.8 vs 88.85: the rule as written gives "F770W8" vs "F770W88" (no collision), ours differs too
    assert sb.group_key("F770W", 88.8) != sb.group_key("F770W", 88.85)
    # floating-point noise does not split a group
    assert sb.group_key("F770W", 88.8) == sb.group_key("f770w", 88.80000000001)
    assert sb.group_key("F770W", 88.8, "MIRIMAGE", "FULL") != sb.group_key("F770W", 88.8, "MIRIMAGE", "BRIGHTSKY")


def test_group_by_key_sorted():
    g = sb.group_by_key({"b": ("F", "1"), "a": ("F", "1"), "c": ("G", "1")})
    assert g == {("F", "1"): ["a", "b"], ("G", "1"): ["c"]}


# ----------------------------------------------------------------------------- leave-one-out

@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 11, 20])
def test_leave_one_out_fast_equals_bruteforce(n):
    rng = np.random.default_rng(n)
    stack = rng.normal(size=(n, 17, 23)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.35] = nan
    stack[:, 0, 0] = nan                  # no value at all
    stack[1:, 0, 1] = nan                 # one value
    stack[:, 2, :] = np.round(stack[:, 2, :])  # ties
    loo = sb.leave_one_out(stack, block_rows=5)
    ref = sb.leave_one_out_bruteforce(stack)
    for i in range(n):
        t, n_others = loo.template(stack[i])
        np.testing.assert_array_equal(np.isnan(t), np.isnan(ref[i]))
        np.testing.assert_allclose(t, ref[i], rtol=1e-6)
        expected = np.isfinite(np.delete(stack, i, axis=0)).sum(axis=0)
        np.testing.assert_array_equal(n_others, expected)


def test_source_in_its_own_template_gets_no_self_bias():
    stack = np.ones((5, 4, 4), np.float32)
    stack[:, 1, 1] = [1.0, 1.1, 0.9, 1.05, 100.0]  # exposure 4 has a source at (1, 1)
    loo = sb.leave_one_out(stack)
    t, _ = loo.template(stack[4])
    assert t[1, 1] == pytest.approx(np.median([1.0, 1.1, 0.9, 1.05]))
    # the original's median including the exposure itself is biased upward
    assert np.median(stack[:, 1, 1]) > t[1, 1]


def test_robust_scale_and_subtraction():
    rng = np.random.default_rng(5)
    tmpl = (1 + 0.1 * rng.random((50, 50))).astype(np.float32)
    sci = (7.0 * tmpl + rng.normal(0, 0.01, tmpl.shape)).astype(np.float32)
    sci[10:15, 10:15] += 100  # a source not in the mask: clipped
    scale, n = sb.fit_scale(sci, tmpl)
    assert scale == pytest.approx(7.0, rel=1e-3) and n < 2500 - 20
    mask = np.zeros(sci.shape, bool)
    mask[10:15, 10:15] = True
    assert sb.fit_scale(sci, tmpl, mask)[0] == pytest.approx(7.0, rel=1e-3)


def test_uncovered_pixels_reported_not_nand_and_variances_consistent():
    sci = np.full((3, 3), 10.0, np.float32)
    sci[2, 2] = nan
    tmpl = np.ones((3, 3), np.float32)
    tmpl[0, 0] = nan
    vp = np.full((3, 3), 0.5, np.float32)
    vr = np.full((3, 3), 0.3, np.float32)
    vf = np.full((3, 3), 0.2, np.float32)
    err = np.sqrt(vp + vr + vf)
    tvar = np.full((3, 3), 0.01)
    res = sb.subtract_template(sci, tmpl, 10.0, err, tvar, {"var_poisson": vp, "var_rnoise": vr, "var_flat": vf})
    assert res.sci[0, 0] == 10.0 and res.uncovered[0, 0] and res.uncovered.sum() == 1
    assert res.sci[1, 1] == 0.0 and np.isnan(res.sci[2, 2])
    np.testing.assert_allclose(res.err ** 2, sum(res.variances.values()), rtol=1e-6)
    assert res.err[1, 1] ** 2 == pytest.approx(1.0 + 100 * 0.01, rel=1e-6)
    assert res.err[0, 0] ** 2 == pytest.approx(1.0, rel=1e-6)  # no template, no template noise
    assert res.variances["var_rnoise"][1, 1] == vr[1, 1]


def test_template_variance_is_leave_one_out():
    var_sum = np.array([[3.0]])
    var_cnt = np.array([[3]])
    own = np.array([[1.0]])
    v = sb.template_variance(var_sum, var_cnt, own, np.array([[2]]))
    assert v[0, 0] == pytest.approx(np.pi / 2 * 1.0 / 2)


def test_rowwise_nanmedian_equals_numpy():
    rng = np.random.default_rng(11)
    vals = rng.normal(size=(3000, 9)).astype(np.float32)
    vals[rng.random(vals.shape) < 0.5] = nan
    med, count = mf.rowwise_nanmedian(vals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(med, np.nanmedian(vals, axis=1))
    np.testing.assert_array_equal(count, np.isfinite(vals).sum(axis=1))


def test_template_box_mean_nan_aware_and_variance_count():
    from reduce.clean.template_model import nan_box

    t = np.ones((9, 9), np.float32)
    t[4, 4] = 10.0          # one noisy pixel spreads as a 3x3 box mean
    t[0, 0] = np.nan        # an uncovered pixel stays uncovered
    out, n = nan_box(t, (3, 3))
    assert np.isnan(out[0, 0])
    assert out[4, 4] == pytest.approx((8 + 10) / 9)
    assert out[8, 8] == pytest.approx(1.0)            # edge: truncated window, no bias
    assert n[4, 4] == 9 and n[8, 8] == 4 and n[0, 1] == 5   # finite pixels averaged (edge, one NaN)


def test_stage3_skips_skymatch_only_for_mosaics_whose_members_all_had_a_template(tmp_path):
    from astropy.io import fits as _fits

    from reduce.stages import stage3
    from reduce.workspace import Workspace

    ws = Workspace(tmp_path).create()
    files = []
    for i, (obs, filt) in enumerate([(1, "F770W"), (1, "F770W"), (1, "F1500W")]):
        f = ws.output("clean", f"jw09999{obs:03d}001_02101_{i:05d}_mirimage")
        _fits.PrimaryHDU(header=_fits.Header({"PROGRAM": "09999", "OBSERVTN": str(obs), "FILTER": filt,
                                              "INSTRUME": "MIRI", "EXP_TYPE": "MIR_IMAGE", "SUBARRAY": "FULL",
                                              "TARGNAME": "FIELD"})).writeto(f)
        files.append(f)
    tasks = {t.name: t for t in stage3.plan(ws, files, PipelineParams(), crds_context="jwst_9000.pmap", overwrite=False,
                                            sky_subtracted={files[0], files[1]})}
    assert tasks["jw09999-o001_t001_miri_f770w"].steps["skymatch"]["skip"] is True
    assert "skip" not in tasks["jw09999-o001_t001_miri_f1500w"].steps["skymatch"]


def _fill_whole_frame(template, valid, sigma=16.0):
    """fill_template_holes as it was written first: every filter on the whole frame."""
    from scipy import ndimage

    t = np.asarray(template, np.float64)
    have = np.isfinite(t)
    todo = ~have & valid
    out = np.array(template, np.float32, copy=True)
    s, base = sigma, np.where(have, t, 0.0)
    while todo.any() and s <= 4 * max(t.shape):
        num = ndimage.gaussian_filter(base, s, mode="constant")
        den = ndimage.gaussian_filter(have.astype(np.float64), s, mode="constant")
        ok = todo & (den > 1e-3)
        out[ok] = (num[ok] / den[ok]).astype(np.float32)
        todo &= ~ok
        s *= 2
    if todo.any():
        out[todo] = np.float32(np.median(t[have]))
    return out


@pytest.mark.parametrize("shape, holes", [
    ((300, 280), [(150, 140, 6)]),  # one small hole in the middle: the filters see a small box
    ((300, 280), [(5, 270, 12), (290, 3, 20)]),  # holes at opposite corners: the box is the frame
    ((256, 256), [(128, 0, 90)]),  # a hole larger than the kernel, at an edge: sigma doubles
])
def test_template_holes_filled_on_a_box_as_on_the_whole_frame(shape, holes):
    rng = np.random.default_rng(7)
    t = (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for cy, cx, r in holes:
        t[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = np.nan
    valid = rng.random(shape) > 0.05
    filled, where = sb.fill_template_holes(t, valid)
    assert where.sum() > 0 and np.array_equal(where, ~np.isfinite(t) & valid)
    # bit for bit: the box holds every pixel each hole's value depends on
    assert np.array_equal(filled, _fill_whole_frame(t, valid), equal_nan=True)
    assert np.all(np.isfinite(filled[where]))
