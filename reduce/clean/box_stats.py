"""NaN-aware box means of a template, and the column / row stripe levels of its residual,
each direction shrunk by its measured signal over signal plus noise (:func:`stripe_levels`);
the template's isolated hot or warm pixels (:func:`isolated_spikes`), which both leave out.
:mod:`.template_model` builds its models from them. Pure functions: numpy arrays in, numpy
arrays (and figures) out; normalised units.
"""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std

__all__ = ["nan_box", "isolated_spikes", "stripe_length", "shrunk", "level_noise", "stripe_levels"]


def nan_box(image: np.ndarray, size: tuple[int, int], valid: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware box mean of ``size`` = (rows, columns) pixels, edges truncated: the mean of
    the finite pixels of each box.

    Returns (mean, number of finite pixels averaged); the mean is NaN outside ``valid``
    (default: the finite pixels of ``image``) and where a box has no finite pixel."""
    from scipy.ndimage import uniform_filter

    finite = np.isfinite(image)
    num = uniform_filter(np.where(finite, image, 0.0).astype(np.float64, copy=False), size, mode="constant")
    den = uniform_filter(finite.astype(np.float64), size, mode="constant")
    out = np.full(image.shape, np.nan)
    np.divide(num, den, out=out, where=(finite if valid is None else valid) & (den > 0))
    return out, den * size[0] * size[1]


def isolated_spikes(t: np.ndarray, var: np.ndarray | None, sigma: float) -> np.ndarray:
    """Pixels of ``t`` that stand out, in the same sense, from both their vertical and their
    horizontal neighbours (each pair's mean) by more than ``sigma`` times the noise of that difference
    (``var``: the pixels' variance, the difference's is 1.5 times it; None: the robust
    variance of the differences): hot and warm pixels, cosmic-ray residue.

    A column or row stripe is shared by a pixel's neighbours along it, so it never passes
    both tests and stays in the stripe levels (nor does a hot pixel's neighbour on a stripe:
    below its vertical pair, above its horizontal one); a hot pixel left in would add its value over
    the window's length to its column's and its row's levels (one 25 MJy/sr hot pixel
    raised a column of the demo's F1500W template by 0.4 MJy/sr along 64 rows) and its
    value over the box's area to a smoothed template. Neighbours off the image or NaN are
    left out of the pair's mean; with neither, no test (not a spike)."""
    t = np.asarray(t, np.float64)
    p = np.pad(t, 1, constant_values=np.nan)

    def pair_difference(a: np.ndarray, b: np.ndarray, at=slice(None)) -> np.ndarray:
        fa, fb = np.isfinite(a), np.isfinite(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            return t[at] - (np.where(fa, a, 0.0) + np.where(fb, b, 0.0)) / (fa.astype(np.int8) + fb)

    dv = pair_difference(p[:-2, 1:-1], p[2:, 1:-1])
    if var is None:
        d = dv[np.isfinite(dv)]
        thr = sigma * (float(mad_std(d)) if d.size else np.inf)
    else:
        thr = sigma * np.sqrt(1.5 * np.maximum(var, 0.0))
    with np.errstate(invalid="ignore"):
        out = np.abs(dv) > thr
    rows, cols = np.nonzero(out)  # few: the horizontal test only there
    dh = pair_difference(p[rows + 1, cols], p[rows + 1, cols + 2], (rows, cols))
    with np.errstate(invalid="ignore"):
        out[rows, cols] = ((np.abs(dh) > (thr if np.ndim(thr) == 0 else thr[rows, cols]))
                           & (np.sign(dh) == np.sign(dv[rows, cols])))
    return out


def stripe_length(shape: tuple[int, int]) -> int:
    """Pixels averaged along a column or row for its stripe level: a quarter of the
    image's smaller side, at least 32 (stripes span the detector; a local mean follows a
    slow change along them)."""
    return int(max(32, min(shape) // 4))


def shrunk(level: np.ndarray, noise_var: np.ndarray) -> tuple[np.ndarray, dict]:
    """``level`` (a stripe profile, NaN = none) times ``S / (S + noise_var)``, ``S`` its
    variance beyond the noise over the image: the linear least-squares estimate of a stripe
    pattern under white noise, kept where it stands well above the noise and driven to 0
    where it is noise (no threshold to set). 0 where NaN. Also its figures (normalised
    units): ``signal_rms`` (sqrt S), ``noise_rms`` and the mean factor ``kept``."""
    ok = np.isfinite(level) & np.isfinite(noise_var)
    out = np.zeros(level.shape)
    if not ok.any():
        return out, {"signal_rms": 0.0, "noise_rms": None, "kept": 0.0}
    noise = float(np.mean(noise_var[ok]))
    signal = max(0.0, float(np.mean(level[ok] ** 2)) - noise)
    factor = signal / (signal + noise_var[ok]) if signal > 0 else np.zeros(int(np.count_nonzero(ok)))
    out[ok] = level[ok] * factor
    return out, {"signal_rms": round(float(np.sqrt(signal)), 7), "noise_rms": round(float(np.sqrt(noise)), 7),
                 "kept": round(float(np.mean(factor)), 4)}


def level_noise(finite: np.ndarray, pix_var: np.ndarray | float, length: int,
                valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Noise variance of the column and the row stripe levels (:func:`stripe_levels`) at every
    pixel of ``valid`` (default ``finite``): the per-pixel variance ``pix_var`` averaged over
    the ``finite`` pixels (those the levels average) of each window, over their number. It
    depends only on which pixels are finite, so one call serves every box of a template."""
    var = np.where(finite, pix_var, np.nan)
    out = []
    for size in ((length, 1), (1, length)):
        mean, n = nan_box(var, size, valid)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(mean / n)
    return out[0], out[1]


def stripe_levels(resid: np.ndarray, noise: tuple[np.ndarray, np.ndarray] | None, length: int,
                  info: dict | None = None, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) stripe levels of the template's residual ``resid`` (means along each
    column, then row, over ``length`` pixels, leaving out the pixels of ``exclude``:
    :func:`isolated_spikes`), each shrunk by :func:`shrunk` with the noise of its mean
    (``noise``: :func:`level_noise` of the template's variance over the same pixels; None:
    of the residual's robust variance). 0 where undefined. ``info``: filled with each
    direction's figures (``columns``, ``rows``)."""
    valid = np.isfinite(resid)
    used = valid if exclude is None else valid & ~exclude
    if noise is None:
        r = resid[used]
        noise = level_noise(used, float(mad_std(r)) ** 2 if r.size else np.inf, length, valid)
    out = []
    averaged = resid if exclude is None else np.where(used, resid, np.nan)  # NaN where left out
    for name, size, noise_var in (("columns", (length, 1), noise[0]), ("rows", (1, length), noise[1])):
        level, _ = nan_box(averaged, size, valid)
        level, figures = shrunk(level, noise_var)
        if info is not None:
            info[name] = figures
        out.append(level)
        averaged = averaged - level
    return out[0], out[1]
