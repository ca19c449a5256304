"""A per-exposure smooth background (photutils Background2D of the masked sky).

For groups too small for a good super background: each exposure's own sky, measured in
boxes outside sources and bad pixels and interpolated, removes gradients, glow and
stray-light structure larger than the box. Its box size, and whether it helps at all, are
decided by two-fold cross-validation on a checkerboard split of the sky pixels: the mesh
fitted on one half predicts the other, so the score (mean squared error, as in
:func:`.template_model.cv_score`) is comparable with the templates' scores.

Pure functions: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

import warnings

import numpy as np

from .template_model import cv_score

__all__ = ["BOX_SIZES", "background2d", "cv_prediction", "cv_background2d", "box_sizes", "choose_box"]

#: Box sizes tried (pixels), each kept only when smaller than a quarter of the image.
BOX_SIZES = (16, 32, 64)


def background2d(image: np.ndarray, excluded: np.ndarray, box: int,
                 exclude_percentile: float = 50.0) -> np.ndarray | None:
    """Background2D (sigma-clipped median per box, 3x3 median filter of the mesh, bicubic
    interpolation) of ``image`` outside ``excluded`` and non-finite pixels; None when
    too few boxes have sky. A box with more than ``exclude_percentile`` % of its pixels
    excluded is left out of the mesh. Units of ``image``."""
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground

    cover = excluded | ~np.isfinite(image)
    data = np.where(cover, 0.0, image).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            bkg = Background2D(data, box, mask=cover, filter_size=3,
                               sigma_clip=SigmaClip(sigma=3.0, maxiters=10),
                               bkg_estimator=MedianBackground(), exclude_percentile=exclude_percentile)
        except ValueError:
            return None
    out = np.asarray(bkg.background, np.float64)
    return np.where(np.isfinite(image), out, np.nan)


def _checkerboard(shape: tuple[int, int], block: int = 1) -> np.ndarray:
    yy, xx = np.indices(shape)
    return ((yy // block + xx // block) % 2) == 0


def cv_prediction(own: np.ndarray, box: int) -> np.ndarray | None:
    """Background2D with ``box`` of a normalised image ``own`` (NaN = source or bad),
    each pixel predicted by the fit to the other half of a checkerboard (None if a fit fails)."""
    half = _checkerboard(own.shape)
    pred = np.full(own.shape, np.nan)
    excluded = ~np.isfinite(own)
    for fold in (half, ~half):  # half the pixels: a box may lose 75 % (50 % of the full fit's)
        b = background2d(own, excluded | ~fold, box, exclude_percentile=75.0)
        if b is None:
            return None
        pred[~fold] = b[~fold]
    return pred


def cv_background2d(own: np.ndarray, box: int) -> tuple[float, int]:
    """Cross-validated score of Background2D with ``box`` (:func:`cv_prediction`)."""
    pred = cv_prediction(own, box)
    return (float("nan"), 0) if pred is None else cv_score(own, pred)


def box_sizes(shape: tuple[int, int]) -> list[int]:
    """The :data:`BOX_SIZES` that fit four times in the image (else a quarter of it)."""
    return [b for b in BOX_SIZES if b <= min(shape) // 4] or [max(4, min(shape) // 4)]


def choose_box(own_planes: list[np.ndarray], predictions: dict[int, list] | None = None
               ) -> tuple[int | None, dict[str, float]]:
    """The box size with the lowest summed cross-validated score over the members.

    ``predictions``: a dict that receives, per box size, each member's cross-validated
    prediction (:func:`cv_prediction`; None where a fit failed), for callers that score
    more models on top of the Background2D without fitting it again.

    Returns (box or None when no size could be fitted, {"background2d_<box>": score})
    with absolute scores (normalised units squared), for comparison with the templates'."""
    totals: dict[int, float] = {}
    for box in box_sizes(own_planes[0].shape):
        preds = [cv_prediction(own, box) for own in own_planes]
        if predictions is not None:
            predictions[box] = preds
        sse, npx = 0.0, 0
        for own, pred in zip(own_planes, preds):
            s, n = (float("nan"), 0) if pred is None else cv_score(own, pred)
            if not np.isfinite(s):
                sse, npx = float("nan"), 0
                break
            sse += s * n
            npx += n
        if npx:
            totals[box] = sse / npx
    if not totals:
        return None, {}
    best = min(totals, key=lambda b: (totals[b], b))
    return best, {f"background2d_{b}": v for b, v in totals.items()}
