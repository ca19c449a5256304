"""Second cleaning pass: a source mask from the first-pass mosaic, projected onto every exposure.

A mosaic of N exposures is ~sqrt(N) deeper than one exposure, so its mask reaches the faint
wings of galaxies that one exposure's mask misses (those wings otherwise leak into the
super-background templates and into the template's scale fit). The mosaic is masked with
the same detection as an exposure (:func:`.masks.source_mask`, DETECT_THRESH times the
mosaic's own background RMS), then each exposure pixel takes the mask value of the mosaic
pixel its centre falls on, through the exposure's aligned WCS and the mosaic's WCS.

Pure functions: arrays (and coordinate transforms as callables) in, arrays out.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from ..params import MaskParams
from . import masks

__all__ = ["mosaic_source_mask", "project_mask", "project_mask_wcs"]


def mosaic_source_mask(sci: np.ndarray, wht: np.ndarray, params: MaskParams, *, pixel_scale: float = 0.1108,
                       fwhm: float = 3.0, suppress_warnings: bool = True) -> np.ndarray:
    """Source mask of a mosaic (bool, True = source).

    Parameters
    ----------
    sci : 2D `~numpy.ndarray`
        Mosaic SCI (e.g. MJy/sr).
    wht : 2D `~numpy.ndarray`
        Mosaic WHT: pixels with ``wht <= 0`` or non-finite ``sci`` are not data.
    params : `reduce.params.MaskParams`
        As for one exposure (DETECT_THRESH, SMALL_SOURCE_THRESH, DILATE_SEG, DILATE_ITERATIONS).
    pixel_scale : float
        Mosaic pixel scale in arcsec (minimum source area).
    fwhm : float
        Detection kernel FWHM in mosaic pixels.
    """
    nodata = ~(np.asarray(wht) > 0) | ~np.isfinite(sci)
    img = np.where(nodata, np.nan, np.asarray(sci, np.float32))
    dq = nodata.astype(np.uint32)  # DO_NOT_USE: excluded before detection
    sm = masks.source_mask(img, None, dq, params=params, pixel_scale=pixel_scale, fwhm=fwhm,
                           suppress_warnings=suppress_warnings)
    return sm.mask & ~nodata


def project_mask(mosaic_mask: np.ndarray, exposure_to_mosaic: Callable[[np.ndarray, np.ndarray],
                                                                       tuple[np.ndarray, np.ndarray]],
                 shape: tuple[int, int], grow: int = 1) -> np.ndarray:
    """The mosaic mask seen by one exposure.

    Parameters
    ----------
    mosaic_mask : 2D bool `~numpy.ndarray`
        True = source, on the mosaic grid.
    exposure_to_mosaic : callable
        ``(x, y) -> (X, Y)``: exposure pixel coordinates (0-based) to mosaic pixel
        coordinates (e.g. the exposure's aligned WCS followed by the mosaic's inverse WCS);
        NaN where undefined.
    shape : (ny, nx)
        Exposure shape.
    grow : int
        The mosaic mask is dilated by this many pixels first, so that the nearest-pixel
        lookup cannot open a gap at a mask edge (exposure and mosaic pixels differ by
        sub-pixel shifts and rotation).

    Returns
    -------
    mask : 2D bool `~numpy.ndarray`
        ``shape``; pixels falling outside the mosaic are False.
    """
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    X, Y = exposure_to_mosaic(xx, yy)
    return _lookup(mosaic_mask, X, Y, shape, grow)


def project_mask_wcs(mosaic_mask: np.ndarray, exposure_wcs, mosaic_wcs, shape: tuple[int, int],
                     grow: int = 1, stepsize: int = 1) -> np.ndarray:
    """:func:`project_mask` through two WCS objects (e.g. gwcs), the pixel map from
    ``stcal.resample.utils.calc_pixmap`` (as jwst's resample maps exposure pixels onto a mosaic;
    ``stepsize`` > 1: computed every ``stepsize`` pixels and interpolated, as resample's
    ``pixmap_stepsize``).

    The same as ``project_mask(mosaic_mask, lambda x, y: mosaic_wcs.invert(*exposure_wcs(x, y)),
    shape, grow)``: exposure pixels outside the exposure's bounding box map to NaN, mosaic
    coordinates outside the mosaic array fall outside it (False).
    """
    from stcal.resample.utils import calc_pixmap

    pixmap = calc_pixmap(exposure_wcs, mosaic_wcs, shape=tuple(shape), stepsize=int(stepsize))
    return _lookup(mosaic_mask, pixmap[..., 0], pixmap[..., 1], shape, grow)


def _lookup(mosaic_mask: np.ndarray, X: np.ndarray, Y: np.ndarray, shape: tuple[int, int],
            grow: int) -> np.ndarray:
    """Nearest mosaic-mask pixel at mosaic pixel coordinates (X, Y) (0-based, NaN = none)."""
    m = np.asarray(mosaic_mask, bool)
    if grow > 0 and m.any():
        m = ndimage.binary_dilation(m, iterations=int(grow))
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    ok = np.isfinite(X) & np.isfinite(Y)
    ix = np.full(shape, -1, np.int64)
    iy = np.full(shape, -1, np.int64)
    ix[ok] = np.floor(X[ok] + 0.5).astype(np.int64)
    iy[ok] = np.floor(Y[ok] + 0.5).astype(np.int64)
    inside = ok & (ix >= 0) & (iy >= 0) & (ix < m.shape[1]) & (iy < m.shape[0])
    out = np.zeros(shape, bool)
    out[inside] = m[iy[inside], ix[inside]]
    return out
