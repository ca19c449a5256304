"""The rim of a template's coverage holes, where source light beyond the masks remains.

A template has a hole where every other member masked a source (a galaxy larger than the
dither pattern). Its first pixels around such a hole are sky in some member, but sky close to
the source: the source's wings beyond the masks raise them. A box mean spreads that excess over
half the box on every side (a 65 px box: 32 px). How wide the raised rim is, is measured
here on the template itself: the median of its pixels at each distance from the holes,
against the median of a ring farther out. Where holes are placed by the sky's sources, the
detector's own pattern has no preferred sign at their rims, so a rim that stands out,
distance after distance from the hole, is the sources' light; the caller leaves those pixels
out of its box means and stripe levels (as it leaves the template's hot pixels out).

Pure functions: numpy arrays in, numpy arrays and figures out; normalised units.
"""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std

__all__ = ["coverage_holes", "distance_to_holes", "rim_band", "raised_rim", "RIM_SEARCH_PX", "RIM_SIGMA"]

#: The widest rim examined (pixels); the reference ring lies beyond it, out to twice that.
RIM_SEARCH_PX = 16

#: A distance belongs to the rim when its median exceeds the ring's by this many standard
#: errors (one-sided; 0.13 % false positives for Gaussian noise at the first distance).
RIM_SIGMA = 3.0


def coverage_holes(template: np.ndarray) -> np.ndarray:
    """The template's holes (NaN regions) that hold at least a 3 x 3 block of pixels: the
    footprints of masked sources, not isolated bad pixels or bad columns."""
    from scipy import ndimage

    return ndimage.binary_opening(~np.isfinite(template), structure=np.ones((3, 3), bool))


def distance_to_holes(template: np.ndarray) -> np.ndarray | None:
    """Euclidean distance (pixels) of every pixel to the nearest pixel of the template's
    :func:`coverage_holes` (0 on them); None without holes."""
    from scipy import ndimage

    holes = coverage_holes(template)
    return ndimage.distance_transform_edt(~holes) if holes.any() else None


def rim_band(template: np.ndarray, search: int = RIM_SEARCH_PX, sigma: float = RIM_SIGMA,
             distance: np.ndarray | None = None) -> tuple[int, dict | None]:
    """Width (pixels) of the raised rim around the template's coverage holes, and its figures.

    The template's finite pixels are binned by their distance ``d`` to the nearest hole pixel
    (``k - 1 < d <= k``, ``k = 1 .. search``); the rim is the run of distances from
    ``k = 1`` whose median exceeds the median of the ring ``search < d <= 2 search`` by more
    than ``sigma`` standard errors (each median's 1.2533 x robust standard deviation over the
    square root of its pixel count, the two combined in quadrature).

    Returns
    -------
    band : int
        0 when there is no hole, no ring or no significant excess at ``d <= 1``.
    figures : dict or None
        ``excess`` (median minus the ring's, per distance out to the band plus one),
        ``error`` (their standard errors) and ``band``; None without holes.

    ``distance``: :func:`distance_to_holes` of ``template`` when the caller has it.
    """
    t = np.asarray(template, np.float64)
    d = distance_to_holes(t) if distance is None else distance
    finite = np.isfinite(t)
    if d is None or not finite.any():
        return 0, None
    near = finite & (d <= 2 * search)  # every pixel used below: a small part of a large frame
    d, t = d[near], t[near]
    ring = t[d > search]
    if ring.size < 2:
        return 0, None
    ref = float(np.median(ring))
    ref_err2 = (1.2533 * float(mad_std(ring))) ** 2 / ring.size
    band, excess, error = 0, [], []
    for k in range(1, search + 1):
        v = t[(d > k - 1) & (d <= k)]
        if v.size < 2:
            break
        e = float(np.median(v)) - ref
        err = float(np.sqrt((1.2533 * float(mad_std(v))) ** 2 / v.size + ref_err2))
        excess.append(round(e, 6))
        error.append(round(err, 6))
        if not e > sigma * err:
            break
        band = k
    return band, {"band": band, "excess": excess, "error": error}


def raised_rim(template: np.ndarray, search: int = RIM_SEARCH_PX, sigma: float = RIM_SIGMA
               ) -> tuple[np.ndarray, dict | None]:
    """The template's finite pixels within :func:`rim_band`'s width of its holes (boolean;
    none without a significant rim), and :func:`rim_band`'s figures (None without holes)."""
    t = np.asarray(template, np.float64)
    finite = np.isfinite(t)
    d = distance_to_holes(t)
    band, figures = rim_band(t, search, sigma, distance=d)
    return (finite & (d <= band) if band else np.zeros_like(finite)), figures
