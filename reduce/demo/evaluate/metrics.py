"""Pure metric functions of :mod:`reduce.demo.evaluate` (arrays in, numbers out; no FITS)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage

#: Truth-scene level (fraction of the noise floor) above which a pixel holds a source.
SCENE_FRACTION = 0.05
#: Source-free sky starts this many PSF FWHMs away from any source pixel.
N_FWHM = 3.0
#: Pixels this close to the edge of the covered area are not used.
EDGE_PX = 3
#: Pixels more than this many floors from the median are clipped from the standard deviations.
CLIP_SIGMA = 5.0
#: Point sources are used for the flux ratio above this true signal-to-noise ratio.
SNR_MIN = 20.0
#: A point source is isolated when the truth scene's aperture photometry is within this
#: fraction of its own flux.
ISOLATION = 0.02
#: Extended emission (:func:`extended_level`): median of blocks of this side (mosaic
#: pixels), median-filtered over this many blocks.
EXTENDED_BLOCK_PX = 16
EXTENDED_WINDOW_BLOCKS = 5
#: Under this fraction of source-free covered pixels, smooth extended emission counts as sky.
MIN_SKY_FRACTION = 0.05
#: Side of the blocks of the background flatness (mosaic pixels).
BLOCK_PX = 16
#: A block counts for the flatness when at least this fraction of its pixels is source-free sky.
BLOCK_MIN_FRACTION = 0.5
#: Sky pixels of the flatness are at least this many pixels inside the covered area.
FLAT_EDGE_PX = 8
#: The flux trend needs this many sources spanning at least TREND_MIN_DEX decades of flux.
TREND_MIN_SOURCES = 5
TREND_MIN_DEX = 0.3
#: Systematic error of a flux ratio (added in quadrature to its noise in the trend's
#: weights): the scatter of the bright sources' ratios on a reduction with the true
#: background removed (pixel phase of the drizzled PSF, centroid), 0.1-0.3 % on the demo.
TREND_ERR_FLOOR = 0.002


def disk(radius: float) -> np.ndarray:
    """Boolean disk structuring element of the given radius (pixels)."""
    r = max(0, int(math.ceil(radius)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx ** 2 + yy ** 2 <= radius ** 2


def extended_level(scene: np.ndarray, block: int = EXTENDED_BLOCK_PX,
                   window: int = EXTENDED_WINDOW_BLOCKS) -> np.ndarray:
    """The large-scale level of a truth scene (smooth extended emission; 0 where there is
    none): medians of ``block`` x ``block`` pixel blocks, median-filtered over ``window`` x
    ``window`` blocks, bilinearly interpolated back onto the grid. Compact sources (and
    anything covering less than about half of the window) do not raise it; a nebula's
    level and gradient are followed. NaN pixels are ignored; 0 where nothing is known."""
    img = np.asarray(scene, np.float64)
    ny, nx = -(-img.shape[0] // block), -(-img.shape[1] // block)
    pad = np.full((ny * block, nx * block), np.nan)
    pad[:img.shape[0], :img.shape[1]] = img
    blocks = pad.reshape(ny, block, nx, block).transpose(0, 2, 1, 3).reshape(ny, nx, block * block)
    h = window // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks and windows
        med = np.nanmedian(blocks, axis=2)
        # point-symmetric extension: a gradient continues across the edges (no edge bias)
        med = np.pad(med, h + 1, mode="reflect", reflect_type="odd")
        lvl = ndimage.generic_filter(med, np.nanmedian, size=window, mode="nearest")[h:-h, h:-h]
    lvl = np.nan_to_num(lvl, nan=0.0)  # lvl: the blocks with one more all round
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(np.float64)
    return ndimage.map_coordinates(lvl, [(yy - (block - 1) / 2) / block + 1, (xx - (block - 1) / 2) / block + 1],
                                   order=1, mode="nearest")


def source_free_mask(scene: np.ndarray, covered: np.ndarray, floor: float, fwhm_px: float, *,
                     scene_fraction: float = SCENE_FRACTION, n_fwhm: float = N_FWHM,
                     edge: int = EDGE_PX, level: np.ndarray | float = 0.0) -> np.ndarray:
    """Source-free sky pixels.

    Parameters
    ----------
    scene : 2D `~numpy.ndarray`
        Truth scene (sources only) on the mosaic grid (MJy/sr); NaN counts as a source
        (unknown truth).
    covered : 2D bool `~numpy.ndarray`
        Finite mosaic pixels with ``WHT > 0``.
    floor : float
        Noise floor per pixel (MJy/sr).
    fwhm_px : float
        PSF FWHM in mosaic pixels.
    level : 2D `~numpy.ndarray` or float
        Smooth extended emission of the scene (:func:`extended_level`) counted as sky: its
        truth is subtracted as accurately as the sky's (0: none).

    Returns
    -------
    sky : 2D bool `~numpy.ndarray`
        ``covered`` eroded by ``edge`` pixels, minus every pixel within ``n_fwhm * fwhm_px``
        of a pixel where ``scene - level > scene_fraction * floor``.
    """
    src = ~np.isfinite(scene) | (np.nan_to_num(scene, nan=np.inf) - level > scene_fraction * floor)
    if src.any():
        src = ndimage.binary_dilation(src, structure=disk(n_fwhm * fwhm_px))
    cov = np.asarray(covered, bool)
    if edge > 0:
        cov = ndimage.binary_erosion(cov, structure=np.ones((3, 3), bool), iterations=int(edge),
                                     border_value=0)
    return cov & ~src


def clipped(values: np.ndarray, scale: float, clip: float = CLIP_SIGMA) -> np.ndarray:
    """Finite ``values`` within ``clip * scale`` of their median (one pass, fixed scale)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or not math.isfinite(scale) or scale <= 0:
        return v
    return v[np.abs(v - np.median(v)) <= clip * scale]


def residual_stats(residual: np.ndarray, noise: np.ndarray | float, sky: np.ndarray,
                   clip: float = CLIP_SIGMA) -> dict:
    """RMS ratio and mean of a residual over the sky pixels.

    Parameters
    ----------
    residual : 2D `~numpy.ndarray`
        Mosaic minus truth (MJy/sr).
    noise : 2D `~numpy.ndarray` or float
        A noise-only mosaic on the same grid (its standard deviation over ``sky`` is the
        floor) or the floor itself.
    sky : 2D bool `~numpy.ndarray`
        Source-free pixels.

    Returns
    -------
    stats : dict
        ``floor``, ``rms`` (standard deviation of the residual), ``mean``, ``rms_ratio`` =
        rms / floor, ``mean_sigma`` = mean / floor, ``n_sky``. Both standard deviations
        exclude values beyond ``clip`` floors of their median.
    """
    sky = np.asarray(sky, bool)
    if np.ndim(noise) == 0:
        floor = float(noise)
    else:
        nz = np.asarray(noise, np.float64)[sky]
        nz = nz[np.isfinite(nz)]
        floor = float(np.std(nz)) if nz.size > 1 else math.nan
        floor = float(np.std(clipped(nz, floor, clip))) if nz.size > 1 else math.nan
    r = clipped(np.asarray(residual)[sky], floor, clip)
    if r.size < 2 or not math.isfinite(floor) or floor <= 0:
        return {"floor": floor, "rms": math.nan, "mean": math.nan, "rms_ratio": math.nan,
                "mean_sigma": math.nan, "n_sky": int(r.size)}
    rms, mean = float(np.std(r)), float(np.mean(r))
    return {"floor": floor, "rms": rms, "mean": mean, "rms_ratio": rms / floor, "mean_sigma": mean / floor,
            "n_sky": int(r.size)}


def aperture_flux(img: np.ndarray, x: float, y: float, r_ap: float, r_in: float, r_out: float) -> float:
    """Sum in a circle of radius ``r_ap`` minus the median of the annulus ``r_in``-``r_out``
    times the aperture area (units of ``img`` times pixels; exact-overlap apertures)."""
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    img = np.asarray(img, np.float64)
    bad = ~np.isfinite(img)
    ap = CircularAperture((x, y), r_ap)
    bkg = ApertureStats(img, CircularAnnulus((x, y), r_in, r_out), mask=bad).median
    return float(aperture_photometry(np.where(bad, 0.0, img - bkg), ap)["aperture_sum"][0])


def recentre(img: np.ndarray, x: float, y: float, fwhm_px: float, iterations: int = 3) -> tuple[float, float]:
    """Centroid (pixels) of the source near ``(x, y)``: background-subtracted centre of mass in
    a disk of radius 1.5 FWHM, iterated; the start position when the centroid leaves the box.

    The aperture is centred on the source as the mosaic shows it, so that ``flux_ratio``
    measures photometry only: the mosaic's absolute astrometry (its zero point is the
    reference exposure's pointing error, up to ~0.2" offline) is checked separately."""
    img = np.asarray(img, np.float64)
    r = 1.5 * fwhm_px
    h = int(math.ceil(r)) + 1
    cx, cy = float(x), float(y)
    for _ in range(iterations):
        ix, iy = int(round(cx)), int(round(cy))
        if not (h <= ix < img.shape[1] - h and h <= iy < img.shape[0] - h):
            return float(x), float(y)
        yy, xx = np.mgrid[iy - h:iy + h + 1, ix - h:ix + h + 1]
        cut = img[iy - h:iy + h + 1, ix - h:ix + h + 1]
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) & np.isfinite(cut)
        ring = ((xx - cx) ** 2 + (yy - cy) ** 2 > r * r) & np.isfinite(cut)
        if inside.sum() < 5 or ring.sum() < 5:
            return float(x), float(y)
        w = np.clip(cut - np.median(cut[ring]), 0.0, None) * inside
        if w.sum() <= 0:
            return float(x), float(y)
        nx, ny = float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())
        if math.hypot(nx - x, ny - y) > r:
            return float(x), float(y)
        cx, cy = nx, ny
    return cx, cy


def flux_ratio(measured: list[float] | np.ndarray, true: list[float] | np.ndarray) -> float:
    """Median of ``measured / true`` (NaN for no source)."""
    m, t = np.asarray(measured, float), np.asarray(true, float)
    ok = np.isfinite(m) & np.isfinite(t) & (t != 0)
    return float(np.median(m[ok] / t[ok])) if ok.any() else math.nan


def robust_scatter(ratios: list[float] | np.ndarray) -> float:
    """Robust standard deviation of ``ratios`` (astropy's ``mad_std``: 1.4826 x the median absolute deviation;
    NaN for fewer than 3 finite values)."""
    r = np.asarray(ratios, np.float64)
    r = r[np.isfinite(r)]
    if r.size < 3:
        return math.nan
    return float(mad_std(r))


def paired_scatter_difference(ratios: list[float] | np.ndarray, true: list[float] | np.ndarray,
                               ref_ratios: list[float] | np.ndarray, ref_true: list[float] | np.ndarray
                               ) -> tuple[float, float, int]:
    """How much more the ``ratios`` scatter than ``ref_ratios`` over the sources both lists
    measured (paired by true flux: the same source in two reductions of the same data): the
    difference of their Gaussian-equivalent scatters from the mean absolute deviation about
    the median (x 1.2533; each deviation clipped at 5 robust sigma), its standard error, and
    the number of pairs. Units of the ratios (x 100 for %); NaNs for fewer than 5 pairs.

    Two reductions' scatters share most of their noise (the same exposures, sources and
    PSF phases), so their difference is known much better than either scatter. The mean
    deviation is used, not :func:`robust_scatter`'s median one, because the error of a
    paired mean is known (the members' differences' standard deviation over sqrt(n)); that
    of a difference of medians is not (in simulations it was 2-3 times larger than this)."""
    slots: dict[float, list[int]] = {}
    for k, t in enumerate(np.asarray(ref_true, np.float64)):
        slots.setdefault(float(t), []).append(k)
    ra, rb = np.asarray(ratios, np.float64), np.asarray(ref_ratios, np.float64)
    a, b = [], []
    for k, t in enumerate(np.asarray(true, np.float64)):
        if slots.get(float(t)):
            j = slots[float(t)].pop(0)
            if np.isfinite(ra[k]) and np.isfinite(rb[j]):
                a.append(ra[k])
                b.append(rb[j])
    a, b = np.array(a), np.array(b)
    if a.size < 5:
        return math.nan, math.nan, int(a.size)
    dev = []
    for x in (a, b):
        d = np.abs(x - np.median(x))
        dev.append(1.2533 * np.minimum(d, 5.0 * float(mad_std(x))))
    e = dev[0] - dev[1]
    return float(np.mean(e)), float(np.std(e, ddof=1)) / math.sqrt(a.size), int(a.size)


def flux_trend(ratios: list[float] | np.ndarray, true: list[float] | np.ndarray,
               errors: list[float] | np.ndarray | None = None, *, min_sources: int = TREND_MIN_SOURCES,
               min_dex: float = TREND_MIN_DEX, sigma: float = 3.0, iterations: int = 5) -> float:
    """Slope of ``ratios`` against ``log10(true)`` (per decade of flux): a straight line
    fitted by (weighted, with ``errors``: the 1-sigma errors of the ratios) least squares
    (``numpy.polyfit``), iterated with the points beyond ``sigma`` robust standard
    deviations of the normalised residuals removed. NaN for fewer than ``min_sources``
    sources or a flux range under ``min_dex`` decades.

    Weights matter: the faintest sources (20 sigma) scatter ~0.05 in ratio, the bright ones
    a few 0.001, so an unweighted fit measures the faint sources' noise."""
    r, t = np.asarray(ratios, np.float64), np.asarray(true, np.float64)
    e = np.ones_like(r) if errors is None else np.asarray(errors, np.float64)
    ok = np.isfinite(r) & np.isfinite(t) & (t > 0) & np.isfinite(e) & (e > 0)
    r, x, e = r[ok], np.log10(t[ok]), e[ok]
    if r.size < min_sources or np.ptp(x) < min_dex:
        return math.nan
    x = x - np.median(x)
    keep = np.ones(r.size, bool)
    for _ in range(iterations):
        if keep.sum() < min_sources or np.ptp(x[keep]) < min_dex:
            return math.nan
        slope, icpt = np.polyfit(x[keep], r[keep], 1, w=1.0 / e[keep])
        z = (r - (slope * x + icpt)) / e
        scale = robust_scatter(z[keep])
        if not scale > 0:
            break
        new = np.abs(z - np.median(z[keep])) <= sigma * scale
        if np.array_equal(new, keep):
            break
        keep = new
    return float(slope)


def block_medians(img: np.ndarray, sky: np.ndarray, block: int = BLOCK_PX,
                  min_fraction: float = BLOCK_MIN_FRACTION) -> np.ndarray:
    """Median of the finite sky pixels of ``img`` in each ``block`` x ``block`` block of the
    grid (blocks from pixel (0, 0); partial blocks at the far edges dropped); NaN for a block
    with fewer than ``min_fraction`` of its pixels usable."""
    img = np.asarray(img, np.float64)
    ny, nx = img.shape[0] // block, img.shape[1] // block
    if ny == 0 or nx == 0:
        return np.full((0, 0), np.nan)
    use = np.asarray(sky, bool) & np.isfinite(img)
    cut = (slice(0, ny * block), slice(0, nx * block))
    v = np.where(use, img, np.nan)[cut].reshape(ny, block, nx, block).transpose(0, 2, 1, 3)
    v = v.reshape(ny, nx, block * block)
    n = np.isfinite(v).sum(axis=2)
    out = np.full((ny, nx), np.nan)
    good = n >= max(1, min_fraction * block * block)
    if good.any():
        out[good] = np.nanmedian(v[good], axis=1)
    return out


def flatness(residual: np.ndarray, noises: list[np.ndarray] | np.ndarray, sky: np.ndarray,
             block: int = BLOCK_PX, min_fraction: float = BLOCK_MIN_FRACTION) -> dict:
    """Background flatness: standard deviation of the block medians of ``residual`` over the
    sky divided by that of pure noise, the *same* blocks (same sky pixels) of noise-only
    mosaics ``noises`` (quadratic mean over several realisations).

    Scale-free and insensitive to the noise's own spatial correlation (drizzling): a
    block median of pure noise scatters by what it scatters on the noise mosaic, whatever
    the correlation, so pure noise gives 1.0 and background structure on scales of a block
    and more (residual pattern, gradient, over-/under-subtracted patches) gives > 1; a
    structure adds in quadrature. Only blocks usable in the residual and in every noise
    mosaic count.

    ``flatness_plane_removed``: the same after a least-squares plane is removed from every set
    of block medians (a detector plane is a sky plane when the dithers are translations,
    :mod:`reduce.clean.sky_detector`: what the data alone can remove under field-filling emission).

    Returns
    -------
    stats : dict
        ``flatness``, ``flatness_plane_removed``, ``block_std`` (residual), ``noise_block_std``,
        ``n_blocks``.
    """
    if isinstance(noises, np.ndarray) and noises.ndim == 2:
        noises = [noises]
    mr = block_medians(residual, sky, block, min_fraction)
    mn = [block_medians(n, sky, block, min_fraction) for n in noises]
    ok = np.isfinite(mr)
    for m in mn:
        ok &= np.isfinite(m)
    n = int(ok.sum())
    if n < 3:
        return {"flatness": math.nan, "flatness_plane_removed": math.nan, "block_std": math.nan,
                "noise_block_std": math.nan, "n_blocks": n}
    s_r = float(np.std(mr[ok]))
    s_n = float(np.sqrt(np.mean([np.var(m[ok]) for m in mn])))
    p_r = float(np.std(_plane_residual(mr, ok)))
    p_n = float(np.sqrt(np.mean([np.var(_plane_residual(m, ok)) for m in mn])))
    return {"flatness": s_r / s_n if s_n > 0 else math.nan,
            "flatness_plane_removed": p_r / p_n if p_n > 0 else math.nan,
            "block_std": s_r, "noise_block_std": s_n, "n_blocks": n}


def _plane_residual(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``values[ok]`` less their least-squares plane over the (row, column) grid."""
    iy, ix = np.nonzero(ok)
    design = np.column_stack([np.ones(iy.size), ix, iy]).astype(np.float64)
    v = values[ok]
    return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]
