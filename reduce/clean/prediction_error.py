"""How well one image predicts another: the cross-validation score of the background models.

:func:`cv_score` measures a prediction's error against an exposure's own masked sky at the
pixel scale and in blocks, each in units of what the exposure's white noise alone gives
there (:func:`white_noise_variance`). :mod:`.template_model` and :mod:`.local_background`
score their candidate models with it. Pure functions: numpy arrays in, floats out.
"""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std

from .fast_stats import clip_by_mad

__all__ = ["SCALES", "CLIP_SIGMA", "white_noise_variance", "cv_score"]

#: Spatial scales (pixels) at which the cross-validated error is measured: the pixel, and
#: blocks of 4 and 16 px (the flatness of a mosaic is judged on 16 px blocks).
SCALES = (1, 4, 16)

#: Squared residuals are clipped at this many robust sigma in the score (cosmic-ray
#: remnants of one exposure must not decide for the whole group).
CLIP_SIGMA = 30.0


def white_noise_variance(image: np.ndarray) -> float:
    """Robust per-pixel white-noise variance of ``image`` (NaN = no value) from the
    differences of horizontally adjacent pixels (structure larger than a pixel cancels)."""
    d = (image[:, 1:] - image[:, :-1]).ravel()
    d = d[np.isfinite(d)]
    if d.size < 16:
        return float("nan")
    return float(mad_std(d) ** 2 / 2.0)


def _block_means(r: np.ndarray, finite: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and counts of ``r`` over its ``finite`` pixels in b x b blocks (edges cropped;
    ``r`` is zero where not ``finite``)."""
    ny, nx = (r.shape[0] // b) * b, (r.shape[1] // b) * b
    shape = (ny // b, b, nx // b, b)
    tot = np.ascontiguousarray(r[:ny, :nx]).reshape(shape).sum(axis=(1, 3))
    cnt = finite[:ny, :nx].reshape(shape).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return tot / cnt, cnt


def cv_score(own: np.ndarray, predicted: np.ndarray, scales: tuple[int, ...] = SCALES,
             noise_var: float | None = None) -> tuple[float, int]:
    """Prediction error of ``predicted`` against ``own`` (both normalised; NaN = no value),
    in units of ``own``'s noise, averaged over spatial scales.

    The residual (median offset removed, values beyond ``CLIP_SIGMA`` robust sigma
    clipped) is averaged in ``b x b`` blocks for each ``b`` in ``scales``; at each scale the
    mean squared block residual is divided by what white noise alone gives there
    (``noise_var / n`` for a block of ``n`` pixels). The own noise contributes 1 at every
    scale for every candidate; the rest is the model's error at that scale. A coherent
    structure far below the per-pixel noise (column stripes, a faint gradient) dominates the
    large-scale terms, as it dominates the mosaic's large-scale flatness.

    Returns (score, pixels used); score is NaN with fewer than 16 pixels.
    """
    good = np.isfinite(own) & np.isfinite(predicted)
    n = int(np.count_nonzero(good))
    if n < 16:
        return float("nan"), n
    if noise_var is None:
        noise_var = white_noise_variance(own)
    if not np.isfinite(noise_var) or noise_var <= 0:
        return float("nan"), n
    r = np.zeros(own.shape)  # the residual where good, 0 elsewhere
    np.subtract(own, predicted, out=r, where=good)  # in float64, own's values cast exactly
    rv = r[good]
    clip_by_mad(rv, CLIP_SIGMA)  # rv -= np.median(rv); s = mad_std(rv); clip at +-CLIP_SIGMA s
    r[good] = rv
    terms = []
    for b in scales:
        if b == 1:
            terms.append(float(np.mean(rv * rv)) / noise_var)
            continue
        mean, cnt = _block_means(r, good, b)
        use = cnt >= (b * b) // 2
        if np.count_nonzero(use) < 4:
            continue
        terms.append(float(np.mean(mean[use] ** 2 * cnt[use])) / noise_var)
    return float(np.mean(terms)), n
