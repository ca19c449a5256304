"""The raised rim around a template's coverage holes (reduce.clean.hole_rim) and its use in
the template's smoothing (reduce.clean.template_model)."""

import numpy as np

from reduce.clean import hole_rim as hr
from reduce.clean import template_model as tm


def _template(rim_width=0, rim_excess=0.0, noise=0.01, seed=1, shape=(256, 256)):
    """A flat normalised template (1.0 plus noise) with a 60 px round hole in the middle,
    its first ``rim_width`` pixels raised by ``rim_excess`` (a source's wings), and a few
    isolated NaN pixels (bad pixels) elsewhere."""
    rng = np.random.default_rng(seed)
    t = 1.0 + noise * rng.standard_normal(shape)
    yy, xx = np.indices(shape)
    r = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2)
    t[(r > 30) & (r <= 30 + rim_width)] += rim_excess
    t[r <= 30] = np.nan
    t[rng.integers(0, shape[0], 40), rng.integers(0, 40, 40)] = np.nan
    return t


def test_a_raised_rim_is_measured_as_wide_as_it_is():
    for width in (2, 5):
        band, fig = hr.rim_band(_template(width, 0.01))  # one noise sigma per pixel
        assert band in (width, width + 1)  # the distance bins are Euclidean: a diagonal pixel counts once more
        assert fig["band"] == band and len(fig["excess"]) == band + 1
        assert fig["excess"][0] > hr.RIM_SIGMA * fig["error"][0]


def test_no_rim_no_hole_and_bad_pixels_give_no_band():
    for seed in range(5):
        assert hr.rim_band(_template(seed=seed))[0] == 0
    t = np.ones((64, 64))
    assert hr.rim_band(t) == (0, None)
    t[10, 10] = t[20, :] = np.nan  # a bad pixel and a bad row are no coverage hole
    assert not hr.coverage_holes(t).any()
    assert hr.rim_band(t) == (0, None)


def test_raised_rim_is_the_band_around_the_holes_and_its_reuse_changes_nothing():
    """raised_rim: the finite pixels within the band of the holes (one distance map for the
    band and the mask); a prediction given that mask equals one that measures it again."""
    from scipy import ndimage

    t = _template(4, 0.01)
    rim, fig = hr.raised_rim(t)
    band = hr.rim_band(t)[0]
    assert band >= 4 and fig["band"] == band
    d = ndimage.distance_transform_edt(~hr.coverage_holes(t))
    np.testing.assert_array_equal(rim, np.isfinite(t) & (d <= band))
    assert hr.rim_band(t, distance=hr.distance_to_holes(t)) == hr.rim_band(t)
    twin = tm.TemplateModel(box=33, rim=True)
    again = tm.predictions(t, None, [twin])[twin]
    np.testing.assert_array_equal(tm.predictions(t, None, [twin], rim_mask=rim)[twin], again)
    flat, fig0 = hr.raised_rim(_template())
    assert not flat.any() and fig0["band"] == 0
    assert not hr.raised_rim(np.ones((32, 32)))[0].any() and hr.raised_rim(np.ones((32, 32)))[1] is None


def test_the_rim_is_left_out_of_the_box_mean_and_reported():
    t = _template(4, 0.05)
    info: dict = {}
    pred, _ = tm.apply_model(t, None, tm.TemplateModel(33, rim=True), info)
    plain, _ = tm.apply_model(t, None, tm.TemplateModel(33))
    assert info["rim"]["band"] >= 4
    yy, xx = np.indices(t.shape)
    r = np.hypot(yy - 128, xx - 128)
    near = (r > 36) & (r <= 46)  # beyond the rim, within half a box of it
    # the rim (0.05 above the sky over 4 px) raises this zone by ~0.006 when averaged in (a plain box mean)
    assert abs(float(np.nanmedian(pred[near])) - 1.0) < 0.002
    assert float(np.nanmedian(plain[near])) - 1.0 > 0.004  # without +rim the rim is averaged in
    assert np.isnan(pred[r <= 30]).all()  # the hole stays a hole


def test_every_box_predicts_the_rim_pixels():
    """A rim wider than half a small box leaves that box nothing but rim: it takes the rim's
    own mean there, so every model predicts (and is scored on) the same pixels."""
    t = _template(4, 0.05)
    preds = tm.predictions(t, None, [tm.TemplateModel(b, rim=True) for b in (3, 5, 33)])
    finite = np.isfinite(t)
    for p in preds.values():
        assert np.array_equal(np.isfinite(p), finite)


def _dithered_group(wing_amp, seed, n=6, shape=(200, 200), noise=0.02, dither=30.0):
    """A group of normalised exposures: a smooth detector pattern, a galaxy fixed on the sky
    (its core masked in every exposure, its exponential wings beyond the mask left in) and
    dithers of up to ``dither`` px."""
    from reduce.clean.group_model import GroupStack

    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    pattern = 0.03 * np.cos(2 * np.pi * xx / 150.0) * np.cos(2 * np.pi * yy / 170.0)
    group = GroupStack(shape, n)
    for i in range(n):
        dy, dx = rng.uniform(-dither, dither, 2)
        r = np.hypot(yy - 100 - dy, xx - 100 - dx)
        wings = np.where(r > 35, wing_amp * np.exp(-(r - 35) / 3.0), 0)
        img = 1.0 + pattern + wings + noise * rng.standard_normal(shape)
        img[r <= 35] = np.nan
        group.put(i, img.astype(np.float32), None, None)
    group.finish(n)
    return group, [f"e{i}" for i in range(n)]


def test_the_held_out_exposures_decide_whether_the_rim_is_left_out():
    """The chosen smooth model's ``+rim`` twin is scored on the same members and kept only
    when it predicts them better: leaked wings may be sky the exposure has too (subtracting
    them is what the held-out data reward) or light a box spreads where it has none."""
    from reduce.clean.group_model import choose_background
    from reduce.params import CleanParams

    chosen = {}
    for seed in (0, 2):
        group, names = _dithered_group(0.05, seed)
        _, model, _, scores, _ = choose_background(group, names, "large", CleanParams())
        twin = [k for k in scores if k.endswith("+rim")]
        assert len(twin) == 1 and twin[0].removesuffix("+rim") in scores
        assert model.rim == (scores[twin[0]] < scores[twin[0].removesuffix("+rim")])
        chosen[seed] = model.rim
    assert chosen == {0: True, 2: False}  # these groups: one each way
    group, names = _dithered_group(0.0, 0)  # no wings: no rim, no twin
    _, model, _, scores, _ = choose_background(group, names, "large", CleanParams())
    assert not model.rim and not any(k.endswith("+rim") for k in scores)
    _, model, _, scores, _ = choose_background(group, names, "large", CleanParams(template_smooth=9))
    assert not any(k.endswith("+rim") for k in scores)  # a box the user fixed is used as it is


def test_the_structure_on_top_of_background2d_gets_the_same_twin_test():
    """Small groups' Background2D + template structure (group_model.background2d_plus_structure):
    the chosen structure model's ``+rim`` twin is scored (relative to Background2D alone, like
    the others) and taken only when lower."""
    from reduce.clean.group_model import GroupStack, background2d_plus_structure

    rng = np.random.default_rng(3)
    shape = (200, 200)
    yy, xx = np.indices(shape)
    stripes = 0.02 * rng.standard_normal(shape[1])[None, :]  # column stripes: structure Background2D lacks
    group = GroupStack(shape, 4)
    for i in range(4):
        dy, dx = rng.uniform(-30, 30, 2)
        r = np.hypot(yy - 100 - dy, xx - 100 - dx)
        img = 1.0 + stripes + np.where(r > 35, 0.05 * np.exp(-(r - 35) / 3.0), 0) + 0.02 * rng.standard_normal(shape)
        img[r <= 35] = np.nan
        group.put(i, img.astype(np.float32), None, None)
    group.finish(4)
    scores: dict = {}
    model = background2d_plus_structure(group, [0, 1, 2, 3], 16, [np.ones(shape)] * 4, 4, scores)
    assert model is not None
    plain = model.name.removesuffix("+rim")
    twin = f"background2d_16+{plain}+rim"
    assert twin in scores and f"background2d_16+{plain}" in scores
    assert model.rim == (scores[twin] < scores[f"background2d_16+{plain}"])
