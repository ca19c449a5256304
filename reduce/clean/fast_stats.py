"""``np.median`` and astropy's ``mad_std`` of one array with fewer partitions, bit for bit.

astropy's ``mad_std(x)`` is ``np.median(np.abs(x - np.median(x))) * 1.482602218505602``: a
caller that also needs ``np.median(x)`` computes it twice, and one that shifts ``x`` by its
median first (``x - np.median(x)``) sorts the array a third time to find the shifted median.
Both are found here from the one partition of the first median: subtracting a constant keeps
the order of the values (IEEE rounding is monotone), so the shifted array's middle values are
the shifted middle values. On large arrays the middle values are selected from a window of
values around them (:func:`order_statistics`), not from the whole array. Every result equals
the numpy / astropy expression exactly (``tests/test_robust_stats.py`` checks it on many
arrays, including ones whose sample misplaces the window).

Pure functions of 1-D float arrays without NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAD_TO_SIGMA", "order_statistics", "median_middle", "mad_std_about", "shift_by_median", "clip_by_mad"]

#: astropy.stats.mad_std's factor 1 / Phi^-1(3/4).
MAD_TO_SIGMA = 1.482602218505602


#: Arrays at least this long find their middle values in a window (:func:`order_statistics`).
WINDOW_MIN_SIZE = 20_000

#: Values sampled to place the window, and its half-width in the sample's rank standard errors.
_SAMPLE, _MARGIN = 4096, 8.0


def order_statistics(x: np.ndarray, ks: list[int]) -> np.ndarray:
    """``np.partition(x, ks)[ks]``: the ``ks``-th smallest values of ``x`` (0-based ranks,
    ascending), exactly.

    For large ``x`` the selection runs on a window of values only: a strided sample of
    ``x`` places bounds ``lo <= hi`` around the ranks, the values below ``lo`` are counted
    and those in ``[lo, hi]`` partitioned, shifting the ranks by the count. The window is
    checked to hold every rank (otherwise the whole array is partitioned), so the sample
    decides the speed, never the result."""
    n = x.size
    if n >= WINDOW_MIN_SIZE:
        sample = np.sort(x[::max(1, n // _SAMPLE)])
        m = sample.size
        half = _MARGIN * 0.5 * np.sqrt(m)  # rank standard error of a sample quantile <= sqrt(m) / 2
        lo = sample[max(0, int(ks[0] / n * m - half))]
        hi = sample[min(m - 1, int(np.ceil(ks[-1] / n * m + half)))]
        below = int(np.count_nonzero(x < lo))
        window = x[(x >= lo) & (x <= hi)]
        if below <= ks[0] and ks[-1] < below + window.size:
            local = [k - below for k in ks]
            return np.partition(window, local)[local]
    return np.partition(x, ks)[ks]


def median_middle(x: np.ndarray) -> tuple[float, np.ndarray]:
    """(``np.median(x)``, the middle value(s) it is the mean of: 1 for odd ``x.size``, 2 for even)."""
    n = x.size
    k = n // 2
    middle = order_statistics(x, [k] if n % 2 else [k - 1, k])
    return np.mean(middle), middle


def mad_std_about(x: np.ndarray, median) -> float:
    """astropy's ``mad_std(x)`` given ``median = np.median(x)`` (scratch memory: one copy of ``x``)."""
    return float(median_middle(np.abs(x - median))[0]) * MAD_TO_SIGMA


def shift_by_median(x: np.ndarray) -> float:
    """Subtract ``np.median(x)`` from ``x`` in place; return ``mad_std`` of the shifted ``x``
    (what ``x -= np.median(x); mad_std(x)`` gives, with two partitions instead of three)."""
    med, middle = median_middle(x)
    x -= med
    shifted = np.mean(middle - med)  # np.median of the shifted x: its middle values, shifted
    return mad_std_about(x, shifted)


def clip_by_mad(x: np.ndarray, nsigma: float) -> None:
    """Subtract ``np.median(x)`` from ``x`` and clip it at ``nsigma`` times its ``mad_std``, in
    place: what ``x -= np.median(x); s = mad_std(x); if s > 0: np.clip(x, -nsigma * s,
    nsigma * s, out=x)`` gives, bit for bit."""
    s = shift_by_median(x)
    if s > 0:
        np.clip(x, -nsigma * s, nsigma * s, out=x)
