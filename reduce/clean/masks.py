"""Source masks of single exposures with photutils (workflow.md section 4).

Length: detection, small-source removal, dilation and the extended-emission mask are one
source-mask algorithm with shared conventions (bad pixels, units); its functions are short.

The original ran SExtractor on each cal file; here detection is built on photutils:
sigma-clipped `~photutils.background.Background2D`, a Gaussian smoothing kernel and
`~photutils.segmentation.detect_sources` at ``DETECT_THRESH`` times the local background
RMS. No deblending by default: a mask is the union of the segments, which deblending does
not change (small objects are removed before it), and it cost a third of the detection
time; ``deblend=True`` (`~photutils.segmentation.deblend_sources`) gives SExtractor-like
labels in SEGM for whoever needs separate objects. Unlike the original there is no
maximum-area cut: large galaxies are masked. Small-source removal checks every label
(the original skipped the highest one and was off by one), and the mask is dilated with
a 3x3 structure ``DILATE_ITERATIONS`` times.

Extended emission: the detection's background mesh (64 px) absorbs galaxies larger than
a few arcseconds, so only their cores were masked and the super-background templates
(dithers of ~1.5") carried their light, which was then subtracted from every exposure.
:func:`extended_mask` adds a second, low-surface-brightness pass: a robust plane fitted to
the pixels outside the first mask, a heavy Gaussian smoothing (``extended_fwhm`` pixels),
and a threshold of ``extended_thresh`` times the smoothed image's own noise (measured, so
correlations are accounted for). It is on by default in :func:`source_mask`.

Pure functions: numpy arrays in, numpy arrays out; no I/O.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage

from ..params import MaskParams
from .dqflags import JWST_GOOD_BITS, bad_pixels

__all__ = ["GOOD_DQ_BITS", "SourceMask", "coverage_mask", "min_source_area", "detect",
           "remove_small_sources", "dilate", "extended_mask", "source_mask"]

#: DQ bits a pixel may carry and still count as good in the original (SExtractor) masks:
#: JUMP_DET (4), i.e. DQ == 0 or DQ == 4 only. The product uses jwst's convention instead
#: (:data:`.dqflags.JWST_GOOD_BITS`, what stage 3's resample uses).
GOOD_DQ_BITS = 4


@dataclass
class SourceMask:
    """The output of :func:`source_mask`.

    Attributes
    ----------
    segm : 2D int32 `~numpy.ndarray`
        Segmentation image (0 = background, 1..n = sources), after small-source removal
        (and deblending, if asked), before dilation.
    mask : 2D bool `~numpy.ndarray`
        `True` on (dilated) sources.
    bad : 2D bool `~numpy.ndarray`
        `True` on pixels excluded before detection (bad DQ, non-finite SCI or ERR).
    n_sources : int
        Number of labels in ``segm``.
    n_removed : int
        Number of sources dropped as small (<= ``SMALL_SOURCE_THRESH`` pixels).
    bkg_rms : float
        Median background RMS (units of the image).
    """

    segm: np.ndarray
    mask: np.ndarray
    bad: np.ndarray
    n_sources: int
    n_removed: int
    bkg_rms: float


def coverage_mask(sci: np.ndarray, err: np.ndarray | None = None, dq: np.ndarray | None = None,
                  good_bits: int | str = JWST_GOOD_BITS) -> np.ndarray:
    """Pixels unfit for detection and background estimation.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        Science image (e.g. MJy/sr).
    err : 2D `~numpy.ndarray`, optional
        Its uncertainty (same units).
    dq : 2D int `~numpy.ndarray`, optional
        Data-quality flags (jwst ``dqflags.pixel``).
    good_bits : int or str
        As jwst's resample ``good_bits`` (flag names through stdatamodels' flag map, or an
        integer of acceptable bits). Default ``"~DO_NOT_USE+NON_SCIENCE"`` (jwst's); the
        original's rule (DQ 0 or 4 only) is ``GOOD_DQ_BITS``.

    Returns
    -------
    bad : 2D bool `~numpy.ndarray`
        `True` where SCI or ERR is not finite, or DQ marks the pixel bad.
    """
    bad = ~np.isfinite(sci)
    if err is not None:
        bad |= ~np.isfinite(err)
    if dq is not None:
        bad |= bad_pixels(dq, good_bits)
    return bad


def min_source_area(pixel_scale: float, radius_arcsec: float = 0.1, floor: int = 3) -> int:
    """Minimum source area in pixels: ``pi * (radius / pixel_scale)**2``, at least ``floor``.

    Parameters
    ----------
    pixel_scale : float
        Pixel scale in arcsec / pixel (MIRI imager: 0.1108).
    radius_arcsec : float
        Radius in arcsec (the original used 0.1").
    floor : int
        Smallest allowed area in pixels.
    """
    return max(int(floor), int(math.ceil(math.pi * (radius_arcsec / pixel_scale) ** 2)))


def _box_size(shape: tuple[int, int], box: int) -> int:
    return int(max(4, min(box, min(shape) // 4)))


def detect(sci: np.ndarray, bad: np.ndarray, *, detect_thresh: float, n_pixels: int,
           fwhm: float = 3.0, box_size: int = 64, deblend: bool = False,
           contrast: float = 0.005, n_levels: int = 32,
           small_source_thresh: int = 0) -> tuple[np.ndarray, float, int]:
    """Detect sources: background, smoothing, thresholding, deblending.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        Science image (e.g. MJy/sr).
    bad : 2D bool `~numpy.ndarray`
        Pixels to ignore (see :func:`coverage_mask`).
    detect_thresh : float
        Threshold in units of the local background RMS (SExtractor ``DETECT_THRESH``),
        applied to the background-subtracted, smoothed image.
    n_pixels : int
        Minimum number of connected pixels above threshold.
    fwhm : float
        FWHM of the Gaussian smoothing kernel in pixels.
    box_size : int
        Background mesh size in pixels (reduced for small images).
    deblend : bool
        Deblend with multi-thresholding and watershed (SExtractor-like, ``contrast`` is
        ``DEBLEND_MINCONT``).
    small_source_thresh : int
        Objects of <= this many pixels are dropped *before* deblending (so that a small
        deblended fragment of a large source never punches a hole in its mask).

    Returns
    -------
    segm : 2D int32 `~numpy.ndarray`
        Segmentation image (0 = no source).
    rms : float
        Median background RMS over good pixels (units of ``sci``).
    n_removed : int
        Number of objects dropped as small.
    """
    from astropy.convolution import convolve
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground, StdBackgroundRMS
    from photutils.segmentation import deblend_sources, detect_sources, make_2dgaussian_kernel

    segm = np.zeros(sci.shape, np.int32)
    good = ~bad
    if np.count_nonzero(good) < max(n_pixels, 16):
        return segm, float("nan"), 0
    data = np.where(good, sci, 0.0).astype(np.float64)
    box = _box_size(sci.shape, box_size)
    try:
        bkg = Background2D(data, box, coverage_mask=bad, fill_value=0.0,
                           sigma_clip=SigmaClip(sigma=3.0, maxiters=10),
                           bkg_estimator=MedianBackground(), bkg_rms_estimator=StdBackgroundRMS(),
                           exclude_percentile=50.0)
        back, rms_map = bkg.background, bkg.background_rms
    except ValueError:  # too few good boxes: one global, sigma-clipped level
        from astropy.stats import sigma_clipped_stats
        _, med, std = sigma_clipped_stats(data[good])
        back = np.full(sci.shape, med)
        rms_map = np.full(sci.shape, std)
    sub = np.where(good, data - back, 0.0)
    kernel = make_2dgaussian_kernel(fwhm, size=2 * int(math.ceil(1.5 * fwhm)) + 1)
    conv = convolve(sub, kernel, boundary="extend", normalize_kernel=True)
    threshold = detect_thresh * rms_map
    from photutils.utils.exceptions import NoDetectionsWarning

    with warnings.catch_warnings():  # no detection is a result (n_sources = 0), not a warning
        warnings.simplefilter("ignore", NoDetectionsWarning)
        found = detect_sources(conv, threshold, n_pixels, mask=bad)
    rms = float(np.nanmedian(rms_map[good]))
    if found is None:
        return segm, rms, 0
    raw, n_removed = remove_small_sources(found.data, small_source_thresh, relabel=True)
    if raw.max(initial=0) == 0:
        return raw, rms, n_removed
    if deblend:
        from photutils.segmentation import SegmentationImage
        found = deblend_sources(conv, SegmentationImage(raw), n_pixels, n_levels=n_levels,
                                contrast=contrast, progress_bar=False)
        raw = found.data.astype(np.int32)
    return raw, rms, n_removed


def remove_small_sources(segm: np.ndarray, max_pixels: int, relabel: bool = False) -> tuple[np.ndarray, int]:
    """Drop sources of ``<= max_pixels`` pixels from a segmentation image.

    Every label is checked, the highest included (the original's loop missed it and
    compared with the wrong bound).

    Parameters
    ----------
    segm : 2D int `~numpy.ndarray`
        Segmentation image (0 = background).
    max_pixels : int
        ``SMALL_SOURCE_THRESH``; 0 keeps every source.
    relabel : bool
        Renumber the remaining labels consecutively from 1.

    Returns
    -------
    segm : 2D int32 `~numpy.ndarray`
        A new segmentation image.
    n_removed : int
        Number of labels dropped.
    """
    from photutils.segmentation import SegmentationImage

    out = np.asarray(segm).astype(np.int32, copy=True)
    if out.size == 0 or out.max(initial=0) <= 0:
        return out, 0
    seg = SegmentationImage(out)
    small = seg.labels[seg.areas <= max_pixels]
    seg.remove_labels(small, relabel=False)
    if relabel:
        seg.relabel_consecutive()
    return seg.data.astype(np.int32, copy=False), int(small.size)


def dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Dilate a boolean mask ``iterations`` times with a 3x3 structuring element.

    Parameters
    ----------
    mask : 2D bool `~numpy.ndarray`
    iterations : int
        Number of dilations (0 returns a copy of the mask).
    """
    mask = np.asarray(mask, bool)
    if iterations <= 0 or not mask.any():
        return mask.copy()
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=int(iterations))


def _robust_plane(y: np.ndarray, x: np.ndarray, v: np.ndarray, iters: int = 5) -> np.ndarray:
    """Coefficients (c, cx, cy) of a plane fitted with 3-sigma (MAD) clipping."""
    use = np.ones(v.size, bool)
    coef = np.array([np.median(v), 0.0, 0.0])
    A = np.column_stack([np.ones(v.size), x, y])
    for _ in range(iters):
        if use.sum() < 10:
            break
        coef, *_ = np.linalg.lstsq(A[use], v[use], rcond=None)
        res = v - A @ coef
        mad = mad_std(res[use])
        if mad <= 0:
            break
        new = np.abs(res) <= 3 * mad
        if np.array_equal(new, use):
            break
        use = new
    return coef


def extended_mask(sci: np.ndarray, bad: np.ndarray, mask: np.ndarray, err: np.ndarray | None = None, *,
                  fwhm: float = 12.0, thresh: float = 4.0, sky_fraction: float = 0.25,
                  n_pixels: int = 100, sample: int = 4, iterations: int = 3) -> np.ndarray:
    """Low-surface-brightness emission the mesh-based detection misses.

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        Science image (e.g. MJy/sr).
    bad : 2D bool `~numpy.ndarray`
        Pixels to ignore.
    mask : 2D bool `~numpy.ndarray`
        Sources already masked (left out of the background plane and the noise estimate).
    fwhm : float
        FWHM (pixels) of the Gaussian smoothing.
    thresh : float
        Threshold in units of the smoothed image's noise: from ``err`` propagated through
        the kernel when given (``median(err) * sqrt(sum(kernel**2))``), else the robust
        standard deviation of the smoothed, plane-subtracted image outside the mask.
    err : 2D `~numpy.ndarray`, optional
        Uncertainty of ``sci`` (independent pixels, as in a cal file).
    sky_fraction : float
        The threshold is also at least this fraction of the sky level (the plane's median).
        Within one exposure a detector-fixed background structure (glow, stray light: a
        few percent of the sky) looks like extended emission; this keeps it out of the
        mask, so the super background still removes it, while galaxies brighter than this
        fraction of the sky are masked.
    iterations : int
        The plane and the threshold are re-estimated outside the grown mask this many times.
    n_pixels : int
        Minimum connected area (pixels).
    sample : int
        Every ``sample``-th pixel (in each axis) enters the plane fit.

    Returns
    -------
    ext : 2D bool `~numpy.ndarray`
        Pixels of connected regions above the threshold (not dilated).
    """
    good = ~bad & np.isfinite(sci)
    out = np.zeros(sci.shape, bool)
    ny, nx = sci.shape
    Y, X = np.mgrid[0:ny, 0:nx]
    sigma = fwhm / 2.3548
    w = ndimage.gaussian_filter(good.astype(np.float64), sigma, mode="constant")
    kernel_norm = 1.0 / math.sqrt(4.0 * math.pi * sigma ** 2)  # sqrt(sum k^2) of a unit Gaussian
    err_noise = None
    if err is not None and np.any(good & np.isfinite(err)):
        err_noise = float(np.median(err[good & np.isfinite(err)])) * kernel_norm
    for _ in range(max(1, iterations)):
        sky = good & ~mask & ~out
        if np.count_nonzero(sky) < 100:
            break
        ok = sky[::sample, ::sample]
        coef = _robust_plane(Y[::sample, ::sample][ok] / ny, X[::sample, ::sample][ok] / nx,
                             sci[::sample, ::sample][ok].astype(np.float64))
        plane = coef[0] + coef[1] * X / nx + coef[2] * Y / ny
        sub = np.where(good, sci - plane, 0.0)
        sm = ndimage.gaussian_filter(sub, sigma, mode="constant")
        with np.errstate(invalid="ignore", divide="ignore"):
            sm = np.where(w > 0.2, sm / w, 0.0)
        ref = sm[sky & (w > 0.2)]
        if ref.size < 100:
            break
        med = float(np.median(ref))
        noise = err_noise if err_noise else float(mad_std(ref))
        if not np.isfinite(noise) or noise <= 0:
            break
        level = abs(float(np.median(plane[good])) + med)
        above = (sm - med) > max(thresh * noise, sky_fraction * level)
        lab, n = ndimage.label(above)
        if n == 0:
            break
        counts = np.bincount(lab.ravel())
        keep = counts >= n_pixels
        keep[0] = False
        new = keep[lab]
        if np.array_equal(new, out):
            break
        out = new
    return out


def source_mask(sci: np.ndarray, err: np.ndarray | None = None, dq: np.ndarray | None = None, *,
                params: MaskParams = MaskParams(), bad: np.ndarray | None = None,
                pixel_scale: float = 0.1108, min_radius_arcsec: float = 0.1,
                min_area_floor: int = 3, fwhm: float = 3.0, box_size: int = 64, deblend: bool = False,
                extended: bool = True, extended_fwhm: float = 12.0, extended_thresh: float = 4.0,
                suppress_warnings: bool = True) -> SourceMask:
    """The source mask of one exposure.

    Parameters
    ----------
    sci, err : 2D `~numpy.ndarray`
        Science image and uncertainty (e.g. MJy/sr).
    dq : 2D int `~numpy.ndarray`, optional
        DQ flags; pixels jwst would not use (:func:`coverage_mask`) are excluded first.
    params : `reduce.params.MaskParams`
        The configuration's ``DETECT_THRESH``, ``SMALL_SOURCE_THRESH``, ``DILATE_SEG`` and
        ``DILATE_ITERATIONS`` (default: the schema's).
    bad : 2D bool `~numpy.ndarray`, optional
        Pixels to exclude, already computed (then ``dq`` is not read).
    pixel_scale : float
        arcsec / pixel, for the minimum area ``pi * (min_radius_arcsec / pixel_scale)**2``.
    extended, extended_fwhm, extended_thresh : bool, float, float
        Add :func:`extended_mask` (smoothing FWHM in pixels, threshold in units of the
        smoothed noise) to the mask before dilation.

    Returns
    -------
    result : `SourceMask`
    """
    with warnings.catch_warnings():
        if suppress_warnings:
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
        if bad is None:
            bad = coverage_mask(sci, err, dq)
        n_pixels = min_source_area(pixel_scale, min_radius_arcsec, min_area_floor)
        segm, rms, n_removed = detect(sci, bad, detect_thresh=params.detect_thresh, n_pixels=n_pixels,
                                      fwhm=fwhm, box_size=box_size, deblend=deblend,
                                      small_source_thresh=params.small_source_thresh)
    mask = segm > 0
    if extended:
        mask |= extended_mask(sci, bad, dilate(mask, 2), err, fwhm=extended_fwhm, thresh=extended_thresh)
    if params.dilate_seg:
        mask = dilate(mask, params.dilate_iterations)
    return SourceMask(segm=segm, mask=mask, bad=bad, n_sources=int(segm.max(initial=0)),
                      n_removed=n_removed, bkg_rms=rms)
