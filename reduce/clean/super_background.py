"""Super background: a leave-one-out median template per exposure (workflow.md section 5b).

Length: the grouping key, the leave-one-out medians, the scale fit, the template variance
and the hole fill are the super background's parts, each short; kept as one algorithm module.

Exposures are grouped by an exact key (filter, effective exposure time rounded to
0.01 s, detector, subarray, readout pattern). In a group of at least ``MEDIAN_THRESH``
exposures, each exposure's template is the pixel-wise median of the *other* members'
masked images, each normalised by its own sky level; the template is scaled to the
exposure by a robust fit on its unmasked sky pixels and subtracted.

All leave-one-out medians come from one sort of the stack (done in row blocks, so the
extra memory is a small fraction of the stack): with the finite values of a pixel sorted,
``s_0 <= ... <= s_{n-1}``, removing one copy of the exposure's own value ``v`` leaves a
sequence whose ``j``-th element is ``s_j`` if ``s_j < v`` else ``s_{j+1}``. The median of
the others needs that element at one or two ranks that depend only on ``n``, so three
order-statistic planes per pixel (plus the all-member median, for exposures whose own
value is masked) give every exposure's template.

Pure functions: numpy arrays in, numpy arrays out; no I/O.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .fast_stats import mad_std_about

__all__ = ["group_key", "original_group_key", "group_by_key", "robust_sky", "masked_normalised",
           "LeaveOneOut", "leave_one_out", "leave_one_out_bruteforce", "fit_scale",
           "template_variance", "SubtractResult", "subtract_template", "MEDIAN_EFFICIENCY",
           "fill_template_holes"]

#: Standard error of a median of n Gaussian values is MEDIAN_EFFICIENCY * sigma / sqrt(n).
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)  # 1.2533

#: Rounding of the exposure time in the grouping key, in decimal places of a second.
DURATION_DECIMALS = 2


def group_key(filter: str, duration: float, detector: str = "", subarray: str = "",
              readpatt: str = "", decimals: int = DURATION_DECIMALS) -> tuple[str, str, str, str, str]:
    """The exact grouping key of an exposure.

    Parameters
    ----------
    filter : str
        ``FILTER`` (e.g. ``F770W``).
    duration : float
        Effective exposure time in seconds (``EFFEXPTM``), rounded to ``decimals`` places
        (MIRI frame times are >= 0.085 s, so 0.01 s only absorbs floating-point noise).
    detector, subarray, readpatt : str
        ``DETECTOR``, ``SUBARRAY``, ``READPATT``: a template must come from the same pixels
        read the same way.

    Returns
    -------
    key : tuple of str
        ``(filter, duration formatted with the given decimals, detector, subarray, readpatt)``.
    """
    return (str(filter).strip().upper(), f"{round(float(duration), decimals):.{decimals}f}",
            str(detector).strip().upper(), str(subarray).strip().upper(), str(readpatt).strip().upper())


def original_group_key(filter: str, duration: float) -> str:
    """The original notebook's key, kept to document its defect: ``FILTER`` followed by
    ``str(DURATION)`` without its decimal point and without its last two characters.
    Different durations collide (e.g. 88.81 s and 88.85 s, or 277.5 s and 27.75 s)."""
    return f"{filter}{str(duration).replace('.', '')[:-2]}"


def group_by_key(keys: dict[str, tuple]) -> dict[tuple, list[str]]:
    """``{name: key}`` -> ``{key: sorted names}`` (deterministic order)."""
    groups: dict[tuple, list[str]] = {}
    for name in sorted(keys):
        groups.setdefault(tuple(keys[name]), []).append(name)
    return dict(sorted(groups.items()))


def robust_sky(sci: np.ndarray, mask: np.ndarray | None = None, sigma: float = 3.0,
               maxiters: int = 10) -> float:
    """Sigma-clipped median of the finite, unmasked pixels (the sky level, units of ``sci``);
    NaN when there is no such pixel."""
    from astropy.stats import sigma_clipped_stats

    good = np.isfinite(sci)
    if mask is not None:
        good &= ~mask
    if not good.any():
        return float("nan")
    _, med, _ = sigma_clipped_stats(sci[good], sigma=sigma, maxiters=maxiters)
    return float(med)


def masked_normalised(sci: np.ndarray, mask: np.ndarray, sky: float,
                      out: np.ndarray | None = None) -> np.ndarray:
    """``sci / sky`` with masked and non-finite pixels set to NaN (dimensionless).

    ``out`` (float32, e.g. one plane of a preallocated stack) receives the result."""
    if out is None:
        out = np.empty(sci.shape, np.float32)
    np.divide(sci, sky, out=out, casting="unsafe")
    out[mask | ~np.isfinite(out)] = np.nan
    return out


@dataclass
class LeaveOneOut:
    """Order statistics of a stack from which every leave-one-out median follows.

    Attributes
    ----------
    n : 2D int `~numpy.ndarray`
        Number of finite values per pixel.
    p0, p1, p2 : 2D float `~numpy.ndarray`
        Sorted values at ranks ``k, k+1, k+2`` with ``k = (n - 2) // 2`` (NaN out of range).
    full : 2D float `~numpy.ndarray`
        Median of all finite values (used when the exposure's own value is masked).
    """

    n: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    p2: np.ndarray
    full: np.ndarray

    def template(self, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The median of the other members at every pixel.

        Parameters
        ----------
        own : 2D `~numpy.ndarray`
            This exposure's plane of the stack (NaN where it did not contribute).

        Returns
        -------
        template : 2D float32 `~numpy.ndarray`
            NaN where no other member has a finite value.
        n_others : 2D int `~numpy.ndarray`
            Number of other members that entered the median.
        """
        has = np.isfinite(own)
        n_others = self.n - has
        with np.errstate(invalid="ignore"):
            r0 = np.where(self.p0 < own, self.p0, self.p1)
            r1 = np.where(self.p1 < own, self.p1, self.p2)
        odd_others = (n_others % 2) == 1
        loo = np.where(odd_others, r0, (r0 + r1) * np.float32(0.5))
        tmpl = np.where(has, loo, self.full).astype(np.float32, copy=False)
        tmpl[n_others <= 0] = np.nan
        return tmpl, n_others


def _gather(block: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``block[..., idx]`` per pixel for a (rows, cols, N) sorted block; NaN out of range."""
    N = block.shape[-1]
    inside = (idx >= 0) & (idx < N)
    vals = np.take_along_axis(block, np.clip(idx, 0, N - 1)[..., None], axis=-1)[..., 0]
    return np.where(inside, vals, np.nan).astype(np.float32, copy=False)


def leave_one_out(stack: np.ndarray, block_rows: int = 32) -> LeaveOneOut:
    """Sort the stack once (in row blocks) and keep the order statistics of every pixel.

    Parameters
    ----------
    stack : 3D `~numpy.ndarray`
        ``(N, ny, nx)`` normalised masked images (NaN = no value). Not modified.
    block_rows : int
        Rows sorted at a time; extra memory is about ``N * block_rows * nx`` values.

    Returns
    -------
    loo : `LeaveOneOut`
        Call ``loo.template(stack[i])`` for exposure ``i``'s template.
    """
    N, ny, nx = stack.shape
    n = np.zeros((ny, nx), np.int32)
    planes = {k: np.full((ny, nx), np.nan, np.float32) for k in ("p0", "p1", "p2", "full")}
    for r0 in range(0, ny, block_rows):
        r1 = min(ny, r0 + block_rows)
        # (rows, cols, N) contiguous copy; sort puts NaN last
        blk = np.ascontiguousarray(np.moveaxis(stack[:, r0:r1, :], 0, -1))
        blk.sort(axis=-1)
        cnt = np.count_nonzero(~np.isnan(blk), axis=-1)
        n[r0:r1] = cnt
        k = (cnt - 2) // 2
        planes["p0"][r0:r1] = _gather(blk, k)
        planes["p1"][r0:r1] = _gather(blk, k + 1)
        planes["p2"][r0:r1] = _gather(blk, k + 2)
        lo, hi = _gather(blk, (cnt - 1) // 2), _gather(blk, cnt // 2)
        full = np.where(cnt % 2 == 1, lo, (lo + hi) * np.float32(0.5))
        full[cnt == 0] = np.nan
        planes["full"][r0:r1] = full
    return LeaveOneOut(n=n, **planes)


def leave_one_out_bruteforce(stack: np.ndarray) -> np.ndarray:
    """Reference implementation: ``np.nanmedian`` of the other members, one per exposure."""
    out = np.empty(stack.shape, np.float32)
    idx = np.arange(stack.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in idx:
            out[i] = np.nanmedian(stack[idx != i], axis=0)
    return out


def fit_scale(sci: np.ndarray, template: np.ndarray, mask: np.ndarray | None = None,
              sigma: float = 3.0, maxiters: int = 10) -> tuple[float, int]:
    """Robust least-squares scale ``a`` of ``sci ~ a * template`` on unmasked sky pixels.

    Iterative fit through the origin, clipping residuals beyond ``sigma`` times their
    robust (MAD) standard deviation, until the set of pixels stops changing.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        The exposure (e.g. MJy/sr).
    template : 2D `~numpy.ndarray`
        Its normalised (dimensionless) template.
    mask : 2D bool `~numpy.ndarray`, optional
        Pixels not to use (sources, bad, filled).

    Returns
    -------
    scale : float
        Units of ``sci`` (NaN if no pixel could be used).
    n_used : int
        Pixels in the final fit.
    """
    good = np.isfinite(sci) & np.isfinite(template)
    if mask is not None:
        good &= ~mask
    d = sci[good].astype(np.float64)
    t = template[good].astype(np.float64)
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
        kept = res[use]
        med = np.median(kept)
        std = mad_std_about(kept, med)  # astropy's mad_std(kept), its median computed once
        if std == 0:
            break
        new = np.abs(res - med) <= sigma * std
        if np.array_equal(new, use):
            break
        use = new
    return scale, int(use.sum()) if np.isfinite(scale) else 0


def template_variance(var_sum: np.ndarray, var_count: np.ndarray, own_var: np.ndarray,
                      n_others: np.ndarray) -> np.ndarray:
    """Variance of a leave-one-out median template (normalised units squared).

    ``(pi / 2) * mean(variance of the others) / n_others``, where ``var_sum`` / ``var_count``
    accumulate the normalised variance ``(err / sky)**2`` of every member's contributing
    pixels and ``own_var`` is this exposure's contribution (0 or NaN where it has none).
    """
    own = np.where(np.isfinite(own_var), own_var, 0.0)
    own_n = np.isfinite(own_var).astype(np.int64)
    m = var_count - own_n
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (var_sum - own) / m
        out = (MEDIAN_EFFICIENCY ** 2) * mean / n_others
    out[(m <= 0) | (n_others <= 0)] = np.nan
    return out


@dataclass
class SubtractResult:
    """The output of :func:`subtract_template` (arrays are new).

    Attributes
    ----------
    sci, err : 2D `~numpy.ndarray`
        Background-subtracted image and its uncertainty (units of the input).
    variances : dict of str -> 2D `~numpy.ndarray`
        Variance arrays; the template variance is added to ``var_name``.
    uncovered : 2D bool `~numpy.ndarray`
        Finite pixels the template could not cover: left unchanged, reported.
    """

    sci: np.ndarray
    err: np.ndarray | None
    variances: dict[str, np.ndarray]
    uncovered: np.ndarray


def subtract_template(sci: np.ndarray, template: np.ndarray, scale: float,
                      err: np.ndarray | None = None, template_var: np.ndarray | None = None,
                      variances: dict[str, np.ndarray] | None = None,
                      var_name: str = "var_flat", weight_var_name: str | None = None) -> SubtractResult:
    """Subtract ``scale * template``; add the template's noise in quadrature.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        The exposure (e.g. MJy/sr).
    template : 2D `~numpy.ndarray`
        Normalised template (NaN where not covered).
    scale : float
        From :func:`fit_scale` (units of ``sci``).
    err : 2D `~numpy.ndarray`, optional
        Uncertainty of ``sci``.
    template_var : 2D `~numpy.ndarray`, optional
        Variance of the normalised template (see :func:`template_variance`).
    variances : dict, optional
        Variance arrays with ``err**2 == sum``; ``scale**2 * template_var`` is added to
        ``variances[var_name]`` so that the sum stays equal to the new ``err**2``.
    weight_var_name : str, optional
        With it, the template variance is split: its floor (the 5th percentile over the
        image: the noise of a template every other member contributed to, the same at every
        pixel) goes to ``variances[weight_var_name]``, the rest to ``variances[var_name]``.
        Inverse-variance drizzle weights (jwst's ``ivm``: 1 / VAR_RNOISE) then see that the
        exposure is noisier without getting pixel-scale structure from where the other
        members were masked, which would weight the exposures differently across a point
        source and change its measured flux.

    Returns
    -------
    result : `SubtractResult`
        Pixels where the template is NaN keep their input values and are flagged
        ``uncovered`` when they are finite science pixels.
    """
    covered = np.isfinite(template)
    uncovered = ~covered & np.isfinite(sci)
    out_sci = np.array(sci, copy=True)
    out_sci[covered] = sci[covered] - np.float32(scale) * template[covered]
    out_err = None if err is None else np.array(err, copy=True)
    out_var = {k: np.array(v, copy=True) for k, v in (variances or {}).items()}
    if template_var is not None:
        add = (scale ** 2) * np.where(covered & np.isfinite(template_var), template_var, 0.0)
        if out_err is not None:
            out_err[:] = np.sqrt(out_err.astype(np.float64) ** 2 + add)
        floor = 0.0
        if weight_var_name is not None and weight_var_name in out_var:
            vals = add[covered & (add > 0)]
            floor = float(np.percentile(vals, 5)) if vals.size else 0.0
            base = np.where(covered, np.minimum(add, floor), 0.0)
            out_var[weight_var_name][:] = out_var[weight_var_name] + base
            add = add - base
        if var_name in out_var:
            out_var[var_name][:] = out_var[var_name] + add
    return SubtractResult(sci=out_sci, err=out_err, variances=out_var, uncovered=uncovered)


def _grown_box(where: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of the True pixels of ``where``, grown by ``margin`` pixels on every
    side and clipped to the array."""
    rows, cols = np.flatnonzero(where.any(axis=1)), np.flatnonzero(where.any(axis=0))
    return (slice(max(0, rows[0] - margin), min(where.shape[0], rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(where.shape[1], cols[-1] + margin + 1)))


def fill_template_holes(template: np.ndarray, valid: np.ndarray | None = None,
                        sigma: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """Fill a template's coverage holes with its smooth surroundings.

    A hole is a pixel where no other member has sky (every member masked it: a galaxy
    larger than the dither pattern). Leaving it unsubtracted keeps the full sky there, a
    step of the sky level at the hole's edge; instead the template is interpolated by
    normalised Gaussian convolution (``sigma`` pixels, doubled until every hole is
    reached; the template's median as a last resort), which keeps the large scales of the
    detector pattern.

    Parameters
    ----------
    template : 2D `~numpy.ndarray`
        Normalised template (NaN in holes).
    valid : 2D bool `~numpy.ndarray`, optional
        Pixels to fill (default: every NaN pixel).

    Returns
    -------
    filled : 2D float32 `~numpy.ndarray`
    holes : 2D bool `~numpy.ndarray`
        The pixels that were filled.
    """
    from scipy import ndimage

    t = np.asarray(template, np.float64)
    have = np.isfinite(t)
    holes = ~have if valid is None else (~have & valid)
    out = np.array(template, np.float32, copy=True)
    if not holes.any() or not have.any():
        return out, holes
    todo = holes.copy()
    s = float(sigma)
    base = np.where(have, t, 0.0)
    weight = have.astype(np.float64)
    while todo.any() and s <= 4 * max(t.shape):
        # the filters only on the holes' box plus the kernel's radius (scipy's truncate=4):
        # a hole's value depends on nothing beyond it, so the result is that of the whole frame
        box = _grown_box(todo, int(4.0 * s + 0.5))
        num = ndimage.gaussian_filter(base[box], s, mode="constant")
        den = ndimage.gaussian_filter(weight[box], s, mode="constant")
        ok = todo[box] & (den > 1e-3)
        out[box][ok] = (num[ok] / den[ok]).astype(np.float32)
        todo[box] &= ~ok
        s *= 2
    if todo.any():
        out[todo] = np.float32(np.median(t[have]))
    return out, holes
