"""The template model the group's data choose (cross-validation), on synthetic groups with
different detector patterns: each pattern must lead to the model that removes it."""

import numpy as np
import pytest

from reduce.clean import box_stats as bs
from reduce.clean import local_background as lb
from reduce.clean import super_background as sb
from reduce.clean import template_model as tm

SHAPE = (128, 128)


def _group(pattern, n=6, noise=0.01, seed=0):
    """n normalised exposures = 1 + pattern + white noise, their leave-one-out templates
    and template variances."""
    rng = np.random.default_rng(seed)
    stack = (1.0 + pattern[None] + noise * rng.normal(size=(n,) + SHAPE)).astype(np.float32)
    loo = sb.leave_one_out(stack)
    own = [stack[i] for i in range(n)]
    tmpls, tvars = [], []
    for i in range(n):
        t, n_others = loo.template(stack[i])
        tmpls.append(t)
        tvars.append(np.full(SHAPE, sb.MEDIAN_EFFICIENCY ** 2 * noise ** 2 / n_others))
    return own, tmpls, tvars


def _smooth_pattern(amp=0.02):
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]] / SHAPE[0]
    return amp * (np.sin(2 * np.pi * xx) * np.cos(np.pi * yy))


def test_smooth_pattern_gets_a_box():
    best, scores, _ = tm.choose_model(*_group(_smooth_pattern()))
    assert best.use_template and best.box > 1
    assert scores["box1"] > 1.0 and scores["none"] > 1.0


def test_column_stripes_are_kept_not_smoothed_away():
    rng = np.random.default_rng(3)
    stripes = np.broadcast_to(0.01 * rng.normal(size=SHAPE[1])[None, :], SHAPE)
    best, scores, _ = tm.choose_model(*_group(_smooth_pattern() + stripes))
    assert best.stripes or best.box == 1
    box_only = min(v for k, v in scores.items() if k.startswith("box") and "+" not in k and k != "box1")
    assert box_only > 1.05  # smoothing without stripes is clearly worse


def test_warm_pixels_are_kept_by_detail():
    rng = np.random.default_rng(4)
    warm = np.zeros(SHAPE)
    idx = rng.choice(warm.size, size=int(0.003 * warm.size), replace=False)
    warm.flat[idx] = rng.uniform(0.1, 0.5, size=idx.size)  # 10-50 sigma, in every exposure
    best, scores, _ = tm.choose_model(*_group(_smooth_pattern() + warm))
    assert best.detail or best.box == 1
    t, v = _group(_smooth_pattern() + warm)[1][0], _group(_smooth_pattern() + warm)[2][0]
    kept, _ = tm.apply_model(t, v, tm.TemplateModel(9, detail=True))
    assert np.median(np.abs(kept.flat[idx] - (1 + _smooth_pattern() + warm).flat[idx])) < 0.05


def test_no_pattern_prefers_no_or_heavily_smoothed_template():
    best, scores, _ = tm.choose_model(*_group(np.zeros(SHAPE)))
    assert (not best.use_template) or best.box >= 9
    assert scores["box1"] > 1.1  # the raw template only adds noise


def test_apply_model_keeps_holes_and_reduces_variance():
    own, tmpls, tvars = _group(_smooth_pattern())
    t = tmpls[0].copy()
    t[10:20, 10:20] = np.nan
    out, var = tm.apply_model(t, tvars[0], tm.TemplateModel(5))
    assert np.isnan(out[10:20, 10:20]).all() and np.isfinite(out[40:50, 40:50]).all()
    assert np.nanmax(var[40:50, 40:50]) == pytest.approx(tvars[0][0, 0] / 25)
    none, _ = tm.apply_model(t, tvars[0], tm.NONE)
    assert np.nanmax(np.abs(none)) == 0


def test_background2d_cross_validation_prefers_it_on_a_gradient():
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]] / SHAPE[0]
    rng = np.random.default_rng(5)
    img = 1 + 0.05 * xx + 0.03 * yy ** 2 + 0.01 * rng.normal(size=SHAPE)
    s_b2d, n = lb.cv_background2d(img, 16)
    s_none, _ = tm.cv_score(img, np.zeros(SHAPE))
    assert n > 0.9 * img.size and s_b2d < 0.05 * s_none
    assert lb.cv_background2d(img, 32)[0] > s_b2d  # the coarser mesh misses the curvature
    best, scores = lb.choose_box([img])
    assert best == 16 and scores["background2d_16"] == pytest.approx(s_b2d)


def test_cv_score_is_in_noise_units_and_sees_faint_coherent_structure():
    rng = np.random.default_rng(6)
    noise = 0.01 * rng.normal(size=SHAPE)
    assert tm.cv_score(1 + noise, np.ones(SHAPE))[0] == pytest.approx(1.0, abs=0.2)
    stripes = np.broadcast_to(0.002 * rng.normal(size=SHAPE[1])[None, :], SHAPE)  # 0.2 sigma per pixel
    img = 1 + noise + stripes
    missed = tm.cv_score(img, np.ones(SHAPE))[0] - tm.cv_score(img, 1 + stripes)[0]
    missed_pixel = (tm.cv_score(img, np.ones(SHAPE), scales=(1,))[0]
                    - tm.cv_score(img, 1 + stripes, scales=(1,))[0])
    assert missed_pixel < 0.06 and missed > 3 * missed_pixel  # faint per pixel, clear in blocks


def test_small_templates_get_no_pixel_scale_models():
    """With fewer than 3 exposures in a template, one exposure's unmasked source would enter
    it at full strength: no raw template and no detail among the candidates."""
    few = tm.candidates(n_others=1)
    assert all(m.box > 1 and not m.detail for m in few if m.use_template)
    assert any(m.stripes for m in few) and tm.NONE in few
    many = tm.candidates(n_others=4)
    assert tm.TemplateModel(1) in many and any(m.detail for m in many)


def test_stripes_keep_real_columns_and_drop_noise_rows():
    """A template with column stripes well above its noise and no row structure: the
    columns are kept at nearly full strength, the rows (noise only) are driven to ~0, and
    the figures recorded say so (signal over noise measured, not set)."""
    rng = np.random.default_rng(5)
    shape, sigma = (256, 256), 0.02
    L = tm.stripe_length(shape)                                   # 64 px: noise of a level 0.0025
    cols = 0.01 * rng.normal(size=shape[1])                       # 4x the noise of a column level
    resid = cols[None, :] + sigma * rng.normal(size=shape)
    resid[100:140, 30:90] = np.nan                                # a masked source
    info: dict = {}
    col, row = bs.stripe_levels(resid, bs.level_noise(np.isfinite(resid), np.full(shape, sigma ** 2), L), L, info)
    inner = (slice(L, -L), slice(L, -L))                          # away from the windows' edges
    truth = np.broadcast_to(cols[None, :], shape)
    err_kept = np.sqrt(np.mean((col - truth)[inner] ** 2))
    assert err_kept < 0.4 * np.std(cols)                          # the stripes are measured and kept
    assert info["columns"]["kept"] > 0.85
    assert info["columns"]["signal_rms"] == pytest.approx(0.01, rel=0.2)
    assert info["columns"]["noise_rms"] == pytest.approx(sigma / np.sqrt(L), rel=0.15)
    assert info["rows"]["kept"] < 0.3                             # rows: noise, not structure
    assert np.sqrt(np.mean(row[inner] ** 2)) < 0.3 * sigma / np.sqrt(L)
    # unshrunk, the rows would add the full noise of a mean of L pixels
    raw_rows, _ = tm.nan_box(resid - col, (1, L))
    assert np.sqrt(np.nanmean(raw_rows[inner] ** 2)) > 0.8 * sigma / np.sqrt(L)


def test_isolated_spikes_are_hot_pixels_not_stripes():
    """Single hot pixels are found with the template's noise or without it; a column stripe
    of 10 sigma is not (its neighbours along the column share it)."""
    rng = np.random.default_rng(8)
    sigma = 0.01
    t = 1.0 + sigma * rng.normal(size=SHAPE)
    t[:, 40] += 10 * sigma                                        # a strong column stripe
    hot = [(10, 10), (64, 40), (0, 5), (127, 127)]                # one on the stripe, two on edges
    for r, c in hot:
        t[r, c] += 50 * sigma
    t[90, 90] = np.nan
    t[91, 90] += 50 * sigma                                       # beside a NaN
    for var in (np.full(SHAPE, sigma ** 2), None):
        found = set(map(tuple, np.argwhere(bs.isolated_spikes(t, var, tm.DETAIL_SIGMA)).tolist()))
        assert set(hot) | {(91, 90)} <= found
        assert len(found - set(hot) - {(91, 90)}) <= 2            # 4 sigma in two tests: rare false positives
        assert sum(1 for r, c in found if c == 40) == 1           # the stripe itself is not a spike


def test_a_hot_pixel_neither_raises_its_column_nor_its_box():
    """One hot pixel of 100 sigma in a template with column stripes: the column's stripe
    level and the box mean around it stay what they are without it (left in, it adds its
    value over the window's length to 64 rows of its column, and over the box's area to
    the smoothed template), and ``detail`` still subtracts the pixel itself."""
    rng = np.random.default_rng(9)
    shape, sigma = (256, 256), 0.01
    cols = 0.005 * rng.normal(size=shape[1])
    clean = 1.0 + cols[None, :] + sigma * rng.normal(size=shape)
    hot = clean.copy()
    hot[128, 100] += 100 * sigma
    var = np.full(shape, sigma ** 2)
    for model in (tm.TemplateModel(65, stripes=True), tm.TemplateModel(5), tm.TemplateModel(65, stripes=True, detail=True)):
        p_clean, _ = tm.apply_model(clean, var, model)
        p_hot, _ = tm.apply_model(hot, var, model)
        diff = (p_hot - p_clean).astype(np.float64)
        diff[128, 100] = 0.0
        # left in: +1.0 / 64 = 1.6 sigma along the column (box 5: 1.0 / 25 = 4 sigma); left
        # out: only a mean of one pixel fewer (~ sigma / 24 for box 5)
        assert np.abs(diff).max() < 0.15 * sigma, model.name
        if model.detail:
            assert p_hot[128, 100] == pytest.approx(hot[128, 100], rel=1e-6)


def test_stripes_without_template_variance_use_the_residual_noise():
    rng = np.random.default_rng(6)
    shape = (128, 128)
    resid = 0.02 * rng.normal(size=shape)                         # no stripes at all
    info: dict = {}
    col, row = bs.stripe_levels(resid, None, tm.stripe_length(shape), info)
    assert info["columns"]["kept"] < 0.3 and info["rows"]["kept"] < 0.3
    assert np.abs(col).max() < 0.02 / np.sqrt(32) and np.abs(row).max() < 0.02 / np.sqrt(32)


def test_apply_model_reports_the_stripes_it_used():
    """What the subtraction records per exposure: the stripes' figures of the model used
    (and nothing for a model without stripes); the prediction is the same with or without
    asking for them."""
    own, tmpls, tvars = _group(np.broadcast_to(0.01 * np.random.default_rng(7).normal(size=SHAPE[1])[None, :], SHAPE))
    info: dict = {}
    pred, _ = tm.apply_model(tmpls[0], tvars[0], tm.TemplateModel(5, stripes=True), info)
    assert set(info["stripes"]) == {"columns", "rows"}
    assert info["stripes"]["columns"]["kept"] > 0.8 > 0.3 > info["stripes"]["rows"]["kept"]
    assert np.array_equal(pred, tm.apply_model(tmpls[0], tvars[0], tm.TemplateModel(5, stripes=True))[0])
    plain: dict = {}
    tm.apply_model(tmpls[0], tvars[0], tm.TemplateModel(5), plain)
    assert plain == {}


def test_select_model_takes_the_lowest_score_and_none_unless_clearly_beaten():
    a, b = tm.TemplateModel(65, stripes=True, detail=True), tm.TemplateModel(65)
    models = [tm.NONE, b, a]
    # a scores lowest, b within one standard error of it (smoother, less noise): a is taken
    members = [{tm.NONE: 3.0, b: 1.10, a: 1.00}, {tm.NONE: 3.1, b: 1.00, a: 1.02},
               {tm.NONE: 2.9, b: 1.20, a: 1.01}, {tm.NONE: 3.0, b: 1.08, a: 0.99}]
    chosen, scores, score = tm.select_model(members, models)
    assert chosen == a and scores[a.name] == 1.0 and score == pytest.approx(1.005)
    # no template within one paired standard error of the best: none is taken
    members = [{tm.NONE: 1.02, b: 1.10, a: 1.00}, {tm.NONE: 0.98, b: 1.00, a: 1.02},
               {tm.NONE: 1.05, b: 1.20, a: 1.01}, {tm.NONE: 0.99, b: 1.08, a: 0.99}]
    assert tm.select_model(members, models)[0] == tm.NONE
