"""astropy.stats in place of the hand-written robust statistics: old versus new answers.

The old code scaled the median absolute deviation by 1.4826; astropy's ``mad_std`` by
1 / Phi^-1(3/4) = 1.482602218505602, the exact Gaussian consistency factor: new / old =
1 + 1.5e-6, the only difference (better: the exact constant).
"""

import numpy as np
import pytest
from astropy.stats import mad_std

from reduce.clean import masks, median_filter, super_background, template_model
from reduce.demo.evaluate import metrics

RATIO = 1.482602218505602 / 1.4826


def _arrays():
    rng = np.random.default_rng(7)
    out = []
    for n in (17, 400, 5001):
        a = rng.normal(3.0, 2.0, n)
        a[rng.random(n) < 0.1] += 50.0  # bright outliers
        out.append(a)
    out.append(np.r_[np.zeros(10), np.arange(7.0)])
    return out


def _old_mad_sigma(a):
    return 1.4826 * np.median(np.abs(a - np.median(a)))


@pytest.mark.parametrize("a", _arrays())
def test_mad_std_is_the_old_mad_sigma_with_the_exact_constant(a):
    assert mad_std(a) == pytest.approx(_old_mad_sigma(a) * RATIO, rel=1e-12)
    assert mad_std(a) == pytest.approx(_old_mad_sigma(a), rel=2e-6)


def test_white_noise_variance_and_robust_scatter_as_before():
    rng = np.random.default_rng(3)
    img = rng.normal(0, 1.5, (64, 64))
    d = (img[:, 1:] - img[:, :-1]).ravel()
    assert template_model.white_noise_variance(img) == pytest.approx(_old_mad_sigma(d) ** 2 / 2 * RATIO ** 2,
                                                                        rel=1e-12)
    r = rng.normal(1, 0.05, 30)
    assert metrics.robust_scatter(r) == pytest.approx(_old_mad_sigma(r), rel=2e-6)


def _old_fit_scale(sci, template, mask=None, sigma=3.0, maxiters=10):
    """super_background.fit_scale before astropy (verbatim but for the names)."""
    good = np.isfinite(sci) & np.isfinite(template)
    if mask is not None:
        good &= ~mask
    d, t = sci[good].astype(np.float64), template[good].astype(np.float64)
    use = np.ones(d.size, bool)
    scale = float("nan")
    for _ in range(maxiters):
        if use.sum() < 2:
            break
        tt = np.dot(t[use], t[use])
        if tt <= 0:
            break
        scale = float(np.dot(d[use], t[use]) / tt)
        res = d - scale * t
        mad = np.median(np.abs(res[use] - np.median(res[use])))
        if mad == 0:
            break
        new = np.abs(res - np.median(res[use])) <= sigma * 1.4826 * mad
        if np.array_equal(new, use):
            break
        use = new
    return scale, int(use.sum()) if np.isfinite(scale) else 0


def _old_robust_plane(y, x, v, iters=5):
    use = np.ones(v.size, bool)
    coef = np.array([np.median(v), 0.0, 0.0])
    A = np.column_stack([np.ones(v.size), x, y])
    for _ in range(iters):
        if use.sum() < 10:
            break
        coef, *_ = np.linalg.lstsq(A[use], v[use], rcond=None)
        res = v - A @ coef
        mad = 1.4826 * np.median(np.abs(res[use] - np.median(res[use])))
        if mad <= 0:
            break
        new = np.abs(res) <= 3 * mad
        if np.array_equal(new, use):
            break
        use = new
    return coef


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_scale_and_robust_plane_as_before(seed):
    rng = np.random.default_rng(seed)
    t = 1 + 0.1 * rng.random((50, 60))
    sci = 2.5 * t + rng.normal(0, 0.05, t.shape)
    sci[rng.random(t.shape) < 0.05] += 3.0  # sources
    mask = rng.random(t.shape) < 0.02
    assert super_background.fit_scale(sci, t, mask) == pytest.approx(_old_fit_scale(sci, t, mask), rel=1e-12)
    y, x = rng.random(2000), rng.random(2000)
    v = 1 + 0.3 * x - 0.2 * y + rng.normal(0, 0.01, 2000)
    v[:100] += 5
    np.testing.assert_allclose(masks._robust_plane(y, x, v), _old_robust_plane(y, x, v), rtol=1e-12)


def test_find_outliers_without_err_as_before():
    rng = np.random.default_rng(5)
    sci = rng.normal(0, 1, (40, 40))
    sci[5, 5], sci[20, 7] = 30.0, -25.0
    hit = median_filter.find_outliers(sci, None, np.ones(sci.shape, bool), sigma=8.0)
    assert hit[5, 5] and hit[20, 7] and hit.sum() == 2


def _arrays_for_exactness():
    rng = np.random.default_rng(11)
    out = []
    for n in (16, 17, 1000, 1001, 65536, 65537):
        a = rng.normal(-3.3, 7.0, n)
        a[rng.random(n) < 0.05] *= 1e3
        out.append(a)
        out.append(np.round(a, 1))  # ties
    out.append(np.r_[np.full(9, 2.5), np.full(9, 1e-300), np.arange(5.0)])
    return out


@pytest.mark.parametrize("a", _arrays_for_exactness())
def test_fast_stats_equal_numpy_and_astropy_bit_for_bit(a):
    from reduce.clean.fast_stats import mad_std_about, median_middle, shift_by_median

    med, _ = median_middle(a)
    assert med == np.median(a)
    assert mad_std_about(a, np.median(a)) == mad_std(a)
    ref = a.copy()
    ref -= np.median(ref)
    ref_s = float(mad_std(ref))
    x = a.copy()
    s = shift_by_median(x)
    assert np.array_equal(x, ref)
    assert s == ref_s


def _clip_reference(a, nsigma):
    x = a.copy()
    x -= np.median(x)
    s = float(mad_std(x))
    if s > 0:
        np.clip(x, -nsigma * s, nsigma * s, out=x)
    return x


@pytest.mark.parametrize("nsigma", [3.0, 30.0, 1e4])
@pytest.mark.parametrize("a", _arrays_for_exactness() + [np.zeros(20), np.r_[np.zeros(11), np.ones(9)],
                                                         np.random.default_rng(5).normal(0, 1, 100_001)])
def test_clip_by_mad_equals_the_numpy_astropy_expression_bit_for_bit(a, nsigma):
    """Both branches: the shortcut (nothing beyond the clip range) and the MAD's partition."""
    from reduce.clean.fast_stats import clip_by_mad

    x = a.copy()
    clip_by_mad(x, nsigma)
    assert np.array_equal(x, _clip_reference(a, nsigma))


def test_clip_by_mad_clips_an_outlier_beyond_its_range():
    from reduce.clean.fast_stats import clip_by_mad

    a = np.random.default_rng(2).normal(0, 1, 10_001)
    a[17] = 1e3
    x = a.copy()
    clip_by_mad(x, 30.0)
    assert x[17] < 40.0 and np.array_equal(x, _clip_reference(a, 30.0))



def _order_statistic_cases():
    rng = np.random.default_rng(21)
    n = 100_003
    unrepresentative = np.ones(n)
    unrepresentative[::n // 4096] = 0.0  # every sampled value is 0, the median is 1
    steps = np.repeat(np.arange(7.0), n // 7 + 1)[:n]  # long runs of ties at the median
    return [rng.normal(5, 3, n), np.sort(rng.normal(0, 1, n)), np.sort(rng.normal(0, 1, n))[::-1].copy(),
            unrepresentative, steps, rng.standard_cauchy(n), np.round(rng.normal(0, 1, 40_000), 2),
            np.full(30_000, 7.25)]


@pytest.mark.parametrize("x", _order_statistic_cases())
def test_order_statistics_equal_a_full_partition(x):
    from reduce.clean.fast_stats import mad_std_about, median_middle, order_statistics

    n = x.size
    for ks in ([n // 2], [n // 2 - 1, n // 2], [0], [n - 1], [n // 10, n // 10 + 1]):
        assert np.array_equal(order_statistics(x, ks), np.partition(x, ks)[ks])
    assert median_middle(x)[0] == np.median(x)
    assert mad_std_about(x, np.median(x)) == mad_std(x)
