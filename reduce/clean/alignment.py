"""Stage 3's alignment of an exposure, carried into the second cleaning pass as a pixel correction.

The frame test (:mod:`.frame_test`) and the self-calibration (:mod:`.sky_detector`) put each
exposure's blocks on the sky through the cal file's FITS WCS (the SCI header), which is the
telescope's pointing before alignment: good to about 0.1" (one MIRI pixel) after guide-star
acquisition, so that groups spanning visits or observations (and the simulator's exposures,
0.07" per axis each) are misregistered by a pixel or more, enough to smear a sky-fixed
gradient into a detector pattern. The second pass has the first-pass mosaic's WCS after
jwst's tweakreg. The difference is carried as an affine map of pixel coordinates,
``correction``: the pixel (x', y') at which the unaligned FITS WCS sees the sky that the
aligned WCS puts at (x, y); ``[x', y'] = C @ [1, x, y]`` with ``C`` of shape (2, 3). Its
linear part also absorbs the linear part of the distortion the FITS approximation lacks;
what an affine map cannot follow is reported as ``residual_px``.

Pure functions: coordinate transforms (callables) in, arrays and numbers out.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["HEADER_KEYS", "fit_correction", "apply", "aligned_transforms", "summary", "to_header", "from_header"]

#: FITS keywords of a correction in a projected mask's primary header (C[0, :], C[1, :]).
HEADER_KEYS = ("ALN_X0", "ALN_XX", "ALN_XY", "ALN_Y0", "ALN_YX", "ALN_YY")

Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def fit_correction(aligned_pixel_to_sky: Transform, fits_sky_to_pixel: Transform, shape: tuple[int, int],
                   n: int = 9) -> tuple[np.ndarray, float] | None:
    """(C, residual_px): the least-squares affine correction on an ``n`` x ``n`` grid of pixel
    centres over ``shape`` (ny, nx), and the RMS distance (pixels) of the grid points from it;
    None when fewer than 3 grid points map to finite coordinates.

    ``aligned_pixel_to_sky``: (x, y) -> (ra, dec) in degrees (e.g. the aligned gwcs);
    ``fits_sky_to_pixel``: (ra, dec) -> (x, y), 0-based (e.g. the SCI header's FITS WCS)."""
    ny, nx = shape
    gy, gx = np.meshgrid(np.linspace(0, ny - 1, n), np.linspace(0, nx - 1, n), indexing="ij")
    x, y = gx.ravel(), gy.ravel()
    ra, dec = aligned_pixel_to_sky(x, y)
    xp, yp = fits_sky_to_pixel(np.asarray(ra, np.float64), np.asarray(dec, np.float64))
    xp, yp = np.asarray(xp, np.float64), np.asarray(yp, np.float64)
    ok = np.isfinite(xp) & np.isfinite(yp)
    if np.count_nonzero(ok) < 3:
        return None
    design = np.column_stack([np.ones(np.count_nonzero(ok)), x[ok], y[ok]])
    cx = np.linalg.lstsq(design, xp[ok], rcond=None)[0]
    cy = np.linalg.lstsq(design, yp[ok], rcond=None)[0]
    c = np.vstack([cx, cy])
    res = np.hypot(design @ cx - xp[ok], design @ cy - yp[ok])
    return c, float(np.sqrt(np.mean(res ** 2)))


def apply(c: np.ndarray, x, y) -> tuple[np.ndarray, np.ndarray]:
    """``C @ [1, x, y]``: corrected pixel coordinates."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return c[0, 0] + c[0, 1] * x + c[0, 2] * y, c[1, 0] + c[1, 1] * x + c[1, 2] * y


def _inverse(c: np.ndarray) -> np.ndarray:
    lin = np.linalg.inv(c[:, 1:])
    return np.column_stack([-lin @ c[:, 0], lin])


def aligned_transforms(transforms: tuple[Transform, Transform] | None, c: np.ndarray | None
                       ) -> tuple[Transform, Transform] | None:
    """The (pixel -> sky, sky -> pixel) pair of a FITS WCS (:func:`.io.pixel_sky_transforms`)
    corrected by ``c`` into the aligned frame; unchanged when either is None."""
    if transforms is None or c is None:
        return transforms
    to_sky, to_pixel = transforms
    inv = _inverse(c)
    return (lambda x, y: to_sky(*apply(c, x, y))), (lambda a, d: apply(inv, *to_pixel(a, d)))


def summary(c: np.ndarray, shape: tuple[int, int], residual_px: float) -> dict:
    """For the records: the correction's shift at the frame centre (pixels), its rotation
    (degrees, mean of the two axes') and the affine fit's residual (pixels)."""
    yc, xc = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    x2, y2 = apply(c, xc, yc)
    rot = 0.5 * (np.degrees(np.arctan2(c[1, 1], c[0, 1])) - np.degrees(np.arctan2(c[0, 2], c[1, 2])))
    return {"dx_px": round(float(x2 - xc), 4), "dy_px": round(float(y2 - yc), 4),
            "rotation_deg": round(float(rot), 5), "residual_px": round(float(residual_px), 4)}


def to_header(c: np.ndarray, residual_px: float) -> dict:
    """FITS keywords (:data:`HEADER_KEYS` and ``ALN_RES``) of a correction."""
    out = {k: float(v) for k, v in zip(HEADER_KEYS, c.ravel())}
    out["ALN_RES"] = float(residual_px)
    return out


def from_header(header) -> tuple[np.ndarray, float] | None:
    """(C, residual_px) from :func:`to_header`'s keywords, or None when they are not all there
    or do not make an invertible map (a damaged header: the exposure is then left unaligned)."""
    if not all(k in header for k in HEADER_KEYS):
        return None
    try:
        c = np.array([float(header[k]) for k in HEADER_KEYS]).reshape(2, 3)
    except (TypeError, ValueError):
        return None
    if not np.all(np.isfinite(c)) or abs(np.linalg.det(c[:, 1:])) < 1e-6:
        return None
    return c, float(header.get("ALN_RES", 0.0))
