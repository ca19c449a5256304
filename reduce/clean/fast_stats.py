"""``np.median`` and astropy's ``mad_std`` of one array with fewer partitions, bit for bit.

astropy's ``mad_std(x)`` is ``np.median(np.abs(x - np.median(x))) * 1.482602218505602``: a
caller that also needs ``np.median(x)`` computes it twice, and one that shifts ``x`` by its
median first (``x - np.median(x)``) sorts the array a third time to find the shifted median.
Both are found here from the one partition of the first median: subtracting a constant keeps
the order of the values (IEEE rounding is monotone), so the shifted array's middle values are
the shifted middle values. Every result equals the numpy / astropy expression exactly
(``tests/test_robust_stats.py`` checks it on many arrays).

Pure functions of 1-D float arrays without NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAD_TO_SIGMA", "median_middle", "mad_std_about", "shift_by_median"]

#: astropy.stats.mad_std's factor 1 / Phi^-1(3/4).
MAD_TO_SIGMA = 1.482602218505602


def median_middle(x: np.ndarray) -> tuple[float, np.ndarray]:
    """(``np.median(x)``, the middle value(s) it is the mean of: 1 for odd ``x.size``, 2 for even)."""
    n = x.size
    k = n // 2
    kth = [k] if n % 2 else [k - 1, k]
    part = np.partition(x, kth)
    middle = part[k:k + 1] if n % 2 else part[k - 1:k + 1]
    return np.mean(middle), np.array(middle)


def mad_std_about(x: np.ndarray, median) -> float:
    """astropy's ``mad_std(x)`` given ``median = np.median(x)`` (scratch memory: one copy of ``x``)."""
    return float(np.median(np.abs(x - median), overwrite_input=True)) * MAD_TO_SIGMA


def shift_by_median(x: np.ndarray) -> float:
    """Subtract ``np.median(x)`` from ``x`` in place; return ``mad_std`` of the shifted ``x``
    (what ``x -= np.median(x); mad_std(x)`` gives, with two partitions instead of three)."""
    med, middle = median_middle(x)
    x -= med
    shifted = np.mean(middle - med)  # np.median of the shifted x: its middle values, shifted
    return mad_std_about(x, shifted)
