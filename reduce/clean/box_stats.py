"""NaN-aware box means of a template, and the column / row stripe levels of its residual,
each direction shrunk by its measured signal over signal plus noise (:func:`stripe_levels`).
:mod:`.template_model` builds its models from them. Pure functions: numpy arrays in, numpy
arrays (and figures) out; normalised units.
"""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std

__all__ = ["nan_box", "stripe_length", "shrunk", "level_noise", "stripe_levels"]


def nan_box(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware box mean of ``size`` = (rows, columns) pixels, edges truncated.

    Returns (mean, number of finite pixels averaged); NaN pixels of ``image`` stay NaN."""
    from scipy.ndimage import uniform_filter

    finite = np.isfinite(image)
    num = uniform_filter(np.where(finite, image, 0.0).astype(np.float64, copy=False), size, mode="constant")
    den = uniform_filter(finite.astype(np.float64), size, mode="constant")
    out = np.full(image.shape, np.nan)
    np.divide(num, den, out=out, where=finite & (den > 0))
    return out, den * size[0] * size[1]


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


def level_noise(finite: np.ndarray, pix_var: np.ndarray | float, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise variance of the column and the row stripe levels (:func:`stripe_levels`) at every
    pixel: the per-pixel variance ``pix_var`` averaged over the ``finite`` pixels of each
    window, over their number. It depends only on which pixels are finite, so one call
    serves every box of a template."""
    var = np.where(finite, pix_var, np.nan)
    out = []
    for size in ((length, 1), (1, length)):
        mean, n = nan_box(var, size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(mean / n)
    return out[0], out[1]


def stripe_levels(resid: np.ndarray, noise: tuple[np.ndarray, np.ndarray] | None, length: int,
                  info: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) stripe levels of the template's residual ``resid`` (means along each
    column, then row, over ``length`` pixels), each shrunk by :func:`shrunk` with the
    noise of its mean (``noise``: :func:`level_noise` of the template's variance; None:
    of the residual's robust variance). 0 where undefined. ``info``: filled with each
    direction's figures (``columns``, ``rows``)."""
    if noise is None:
        r = resid[np.isfinite(resid)]
        noise = level_noise(np.isfinite(resid), float(mad_std(r)) ** 2 if r.size else np.inf, length)
    out = []
    for name, size, noise_var in (("columns", (length, 1), noise[0]), ("rows", (1, length), noise[1])):
        level, _ = nan_box(resid, size)
        level, figures = shrunk(level, noise_var)
        if info is not None:
            info[name] = figures
        out.append(level)
        resid = resid - level
    return out[0], out[1]
