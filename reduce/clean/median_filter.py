"""Median filling of bad pixels outside sources (workflow.md section 5a).

Every fill uses only *original* neighbours: a pixel that is itself being filled never
feeds another fill (the original notebook wrote into the array it was reading, so fills
smeared down and right through NaN runs). Windows are truncated at the image edges
(neighbour indices outside the image are dropped: nothing wraps, no slice starts at a
negative index). The work
is vectorised and touches only the pixels to fill (work and memory grow with their
number, not with the image size).

Pure functions: numpy arrays in, numpy arrays out; no I/O.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.stats import mad_std

__all__ = ["FillResult", "rowwise_nanmedian", "window_values", "window_nanmedian", "find_outliers",
           "median_fill"]


@dataclass
class FillResult:
    """The output of :func:`median_fill`.

    Attributes
    ----------
    sci : 2D `~numpy.ndarray`
        The image with filled pixels (same units as the input, e.g. MJy/sr).
    err : 2D `~numpy.ndarray` or `None`
        The uncertainty (same units as ``sci``); filled pixels get
        ``sqrt(sum of their variances)`` (or the median neighbour ERR without variances).
    variances : dict of str -> 2D `~numpy.ndarray`
        The variance arrays (units of ``sci`` squared), filled pixels updated.
    filled : 2D bool `~numpy.ndarray`
        `True` where a pixel received a value.
    unfilled : 2D bool `~numpy.ndarray`
        `True` where a pixel should have been filled but had no finite original neighbour
        (it keeps its input value, normally NaN).
    outliers : 2D bool `~numpy.ndarray`
        `True` where a finite pixel was treated as a sigma-clipped outlier (hot pixel).
    """

    sci: np.ndarray
    err: np.ndarray | None
    variances: dict[str, np.ndarray] = field(default_factory=dict)
    filled: np.ndarray | None = None
    unfilled: np.ndarray | None = None
    outliers: np.ndarray | None = None

    @property
    def n_filled(self) -> int:
        return int(np.count_nonzero(self.filled))

    @property
    def n_unfilled(self) -> int:
        return int(np.count_nonzero(self.unfilled))

    @property
    def n_outliers(self) -> int:
        return int(np.count_nonzero(self.outliers))


def _neighbour_index(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray,
                     half_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the (2w+1)^2 windows around the given pixels, and which are inside."""
    w = int(half_width)
    if w < 1:
        raise ValueError("half_width must be >= 1")
    ny, nx = shape
    dr, dc = np.mgrid[-w:w + 1, -w:w + 1]
    r = rows[:, None] + dr.ravel()[None, :]
    c = cols[:, None] + dc.ravel()[None, :]
    inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
    return np.where(inside, r * nx + c, 0), inside


def _gather(image: np.ndarray, idx: np.ndarray, usable: np.ndarray) -> np.ndarray:
    vals = np.asarray(image).ravel()[idx]
    if not np.issubdtype(vals.dtype, np.floating):
        vals = vals.astype(np.float64)
    vals[~usable] = np.nan
    return vals


def rowwise_nanmedian(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of the finite values of each row (NaN for a row without any) and their count.

    One sort per row (NaN sorts last), then the middle element(s) picked by the count:
    the same numbers as ``np.nanmedian(vals, axis=1)``, much faster for short rows.
    """
    srt = np.sort(vals, axis=1)
    count = np.count_nonzero(~np.isnan(srt), axis=1)
    if srt.shape[1] == 0:
        return np.full(len(srt), np.nan, vals.dtype), count
    i = np.arange(len(srt))
    lo = srt[i, np.maximum(count - 1, 0) // 2]
    hi = srt[i, np.minimum(count // 2, srt.shape[1] - 1)]
    med = np.where(count % 2 == 1, lo, (lo + hi) / vals.dtype.type(2))
    med[count == 0] = np.nan
    return med.astype(vals.dtype, copy=False), count


def window_values(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, half_width: int,
                  exclude: np.ndarray | None = None) -> np.ndarray:
    """The values of the (2w+1) x (2w+1) windows centred on the given pixels.

    Parameters
    ----------
    image : 2D `~numpy.ndarray`
        The image (any units).
    rows, cols : 1D int `~numpy.ndarray`
        The pixel coordinates of the window centres.
    half_width : int
        The half-width ``w`` of the window, in pixels (>= 1).
    exclude : 2D bool `~numpy.ndarray`, optional
        Pixels whose values must not be used (treated as NaN), e.g. the pixels being filled.

    Returns
    -------
    values : 2D `~numpy.ndarray`
        Shape ``(len(rows), (2w+1)**2)``, float. Parts of a window beyond the image edges,
        and excluded pixels, are NaN (windows are truncated, never wrapped). Work and
        memory are proportional to the number of windows, not to the image size.
    """
    idx, inside = _neighbour_index(image.shape, rows, cols, half_width)
    usable = inside if exclude is None else inside & ~np.asarray(exclude).ravel()[idx]
    return _gather(image, idx, usable)


def window_nanmedian(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, half_width: int,
                     exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring median of the windows centred on the given pixels.

    Returns
    -------
    median : 1D `~numpy.ndarray`
        The median of the finite, non-excluded window values (NaN where there are none);
        units of ``image``.
    count : 1D int `~numpy.ndarray`
        The number of values that entered each median.
    """
    return rowwise_nanmedian(window_values(image, rows, cols, half_width, exclude))


def find_outliers(sci: np.ndarray, err: np.ndarray | None, candidates: np.ndarray,
                  sigma: float, half_width: int = 1, chunk: int = 262144) -> np.ndarray:
    """Finite pixels that deviate from the median of their neighbours by > ``sigma``.

    The deviation ``|sci - median(neighbours)|`` is compared with ``sigma`` times the
    pixel's ERR (when given) or, without ERR, the robust (MAD) standard deviation of the
    deviations of all candidate pixels. The pixel itself is not part of its median.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        The image (e.g. MJy/sr).
    err : 2D `~numpy.ndarray` or `None`
        The 1-sigma uncertainty of ``sci`` (same units).
    candidates : 2D bool `~numpy.ndarray`
        Pixels that may be outliers (e.g. finite pixels outside the source mask).
    sigma : float
        The clipping threshold in standard deviations.
    half_width : int
        The half-width of the neighbour window in pixels.
    chunk : int
        Pixels processed at a time (bounds the memory).

    Returns
    -------
    outliers : 2D bool `~numpy.ndarray`
    """
    out = np.zeros(sci.shape, dtype=bool)
    rows, cols = np.nonzero(candidates & np.isfinite(sci))
    if len(rows) == 0:
        return out
    dev = np.empty(len(rows), np.float64)
    k = (2 * half_width + 1) ** 2 // 2
    for a in range(0, len(rows), chunk):
        r, c = rows[a:a + chunk], cols[a:a + chunk]
        vals = window_values(sci, r, c, half_width)
        vals[:, k] = np.nan  # the pixel itself never enters its own median
        med, _ = rowwise_nanmedian(vals)
        dev[a:a + chunk] = sci[r, c] - med
    if err is not None:
        scale = err[rows, cols]
    else:
        good = np.isfinite(dev)
        scale = np.full(len(rows), mad_std(dev[good]) if good.any() else np.nan)
    with np.errstate(invalid="ignore"):
        hit = np.isfinite(dev) & np.isfinite(scale) & (np.abs(dev) > sigma * scale)
    out[rows[hit], cols[hit]] = True
    return out


def median_fill(sci: np.ndarray, err: np.ndarray | None = None, *, half_width: int = 1,
                source_mask: np.ndarray | None = None, targets: np.ndarray | None = None,
                protect: np.ndarray | None = None, unusable: np.ndarray | None = None,
                variances: dict[str, np.ndarray] | None = None,
                outlier_sigma: float | None = None, suppress_warnings: bool = True) -> FillResult:
    """Fill bad pixels outside sources with the median of their original neighbours.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        The science image (e.g. MJy/sr). Not modified.
    err : 2D `~numpy.ndarray`, optional
        Its 1-sigma uncertainty (same units). Not modified.
    half_width : int
        ``WINDOW_SIZE``: the window is (2w+1) x (2w+1) pixels, truncated at the edges.
    source_mask : 2D bool `~numpy.ndarray`, optional
        `True` on sources: never filled (the original's rule).
    targets : 2D bool `~numpy.ndarray`, optional
        The pixels to fill. Default: non-finite ``sci`` (or ``err``) outside ``source_mask``.
    protect : 2D bool `~numpy.ndarray`, optional
        Pixels never filled whatever ``targets`` says (e.g. NON_SCIENCE, reference pixels).
    unusable : 2D bool `~numpy.ndarray`, optional
        Pixels never used as neighbours even when finite (e.g. DO_NOT_USE). Targets and
        non-finite pixels are never used either.
    variances : dict of str -> 2D `~numpy.ndarray`, optional
        Variance arrays (e.g. ``var_poisson``, ``var_rnoise``, ``var_flat``; units of
        ``sci`` squared) with ``err**2 == sum(variances)``. Not modified.
    outlier_sigma : float, optional
        Also treat finite pixels outside sources that deviate by more than this many
        sigma from their neighbours' median (hot pixels) as targets.
    suppress_warnings : bool
        Silence numpy's all-NaN RuntimeWarnings (locally, never globally).

    Returns
    -------
    result : `FillResult`

    Notes
    -----
    Noise of a filled pixel: each variance array gets the median of that variance over the
    same neighbours, and ERR becomes ``sqrt(sum of the variances)``; without variance
    arrays ERR is the median neighbour ERR. So a filled pixel carries the noise of a
    typical neighbour. It is deliberately not reduced to the noise of a median of n values
    (``1.2533 sigma / sqrt(n)``): a fill is an interpolation that lacks the pixel's own
    noise, and stage 3 weights pixels by inverse variance, so an interpolated pixel must
    not outweigh measured ones.
    """
    sci = np.asarray(sci)
    shape = sci.shape
    smask = np.zeros(shape, bool) if source_mask is None else np.asarray(source_mask, bool)
    if targets is None:
        bad = ~np.isfinite(sci)
        if err is not None:
            bad |= ~np.isfinite(err)
        targets = bad & ~smask
    else:
        targets = np.asarray(targets, bool) & ~smask
    if protect is not None:
        targets = targets & ~protect
    variances = dict(variances or {})

    with warnings.catch_warnings():
        if suppress_warnings:
            warnings.simplefilter("ignore", RuntimeWarning)
        outliers = np.zeros(shape, bool)
        if outlier_sigma is not None:
            cand = np.isfinite(sci) & ~smask & ~targets
            if protect is not None:
                cand &= ~protect
            outliers = find_outliers(sci, err, cand, outlier_sigma, half_width)
            targets = targets | outliers

        rows, cols = np.nonzero(targets)
        exclude = targets if unusable is None else (targets | unusable)
        out_sci = sci.copy()
        out_err = None if err is None else np.array(err, copy=True)
        out_var = {k: np.array(v, copy=True) for k, v in variances.items()}
        filled = np.zeros(shape, bool)
        unfilled = np.zeros(shape, bool)
        if len(rows):
            idx, usable = _neighbour_index(shape, rows, cols, half_width)
            usable &= ~exclude.ravel()[idx]
            usable &= np.isfinite(sci.ravel()[idx])
            if err is not None:  # a neighbour is usable only with a finite ERR as well
                usable &= np.isfinite(err.ravel()[idx])
            ok = usable.any(axis=1)
            med, _ = rowwise_nanmedian(_gather(sci, idx[ok], usable[ok]))
            r, c = rows[ok], cols[ok]
            out_sci[r, c] = med
            filled[r, c] = True
            unfilled[rows[~ok], cols[~ok]] = True
            if ok.any():
                if out_var:
                    total = np.zeros(len(r), np.float64)
                    for name, var in variances.items():
                        vmed, _ = rowwise_nanmedian(_gather(var, idx[ok], usable[ok]))
                        out_var[name][r, c] = vmed
                        total += out_var[name][r, c]
                    if out_err is not None:
                        out_err[r, c] = np.sqrt(total)
                elif out_err is not None:
                    out_err[r, c], _ = rowwise_nanmedian(_gather(err, idx[ok], usable[ok]))
    return FillResult(sci=out_sci, err=out_err, variances=out_var, filled=filled,
                      unfilled=unfilled, outliers=outliers & filled)
