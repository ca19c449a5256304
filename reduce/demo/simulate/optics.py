"""The point-spread function and the rendering of sources onto a :class:`~.geometry.Canvas`.

The PSF is a circular Gaussian on the sky (tangent plane) with FWHM
``instrument.psf_fwhm_arcsec(filter)``: normalised to unit integral in arcsec^2, so an
aperture correction is analytic (fraction inside radius r: 1 - exp(-r^2 / (2 sigma^2))).
Rendering integrates over each pixel by sub-sampling it through the pixel's own local
Jacobian, so pixels receive flux (Jy) in proportion to their true, distorted area.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaincinv, gammainc, gamma

from ... import instrument as inst
from .geometry import Canvas

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
PSF_EXTENT_SIGMA = 7.0  # stamp half-size in PSF sigmas (flux beyond: < 1e-10)
LARGE_BOX_ARCSEC = 30.0  # half-sizes beyond this: boxes from the pixel positions (no extrapolation)


def psf_sigma_arcsec(filt: str) -> float:
    """Gaussian sigma in arcsec of the PSF in ``filt``."""
    return inst.psf_fwhm_arcsec(filt) * FWHM_TO_SIGMA


def encircled_energy(filt: str, radius_arcsec: float) -> float:
    """Fraction of a point source's flux within ``radius_arcsec`` of its centre."""
    s = psf_sigma_arcsec(filt)
    return 1.0 - math.exp(-radius_arcsec**2 / (2.0 * s * s))


def boxes(canvas: Canvas, xi0, eta0, half_arcsec) -> list:
    """For each position (xi0, eta0) (arcsec) the (rows, cols) slices of the canvas that
    cover a square of half-size ``half_arcsec`` around it, or None where it misses the
    canvas. One vectorised call of ``canvas.locate`` for all positions."""
    xi0, eta0, half = (np.atleast_1d(np.asarray(a, float)) for a in (xi0, eta0, half_arcsec))
    half = np.broadcast_to(half, xi0.shape)
    sx = np.array([-1.0, 1.0, 1.0, -1.0])
    sy = np.array([-1.0, -1.0, 1.0, 1.0])
    x, y = canvas.locate((xi0[:, None] + half[:, None] * sx).ravel(), (eta0[:, None] + half[:, None] * sy).ravel())
    x, y = np.asarray(x).reshape(-1, 4), np.asarray(y).reshape(-1, 4)
    ny, nx = canvas.shape
    out = []
    for k, (xs, ys) in enumerate(zip(x, y)):
        if half[k] > LARGE_BOX_ARCSEC:  # corners far off the array: the distortion does not extrapolate
            out.append(_box_by_mask(canvas, xi0[k], eta0[k], half[k]))
            continue
        x0, x1 = max(int(math.floor(xs.min())) - 1, 0), min(int(math.ceil(xs.max())) + 2, nx)
        y0, y1 = max(int(math.floor(ys.min())) - 1, 0), min(int(math.ceil(ys.max())) + 2, ny)
        out.append((slice(y0, y1), slice(x0, x1)) if x0 < x1 and y0 < y1 else None)
    return out


def _box_by_mask(canvas: Canvas, xi0: float, eta0: float, half: float):
    """The box of the canvas pixels within ``half`` arcsec (+ 1 pixel) of (xi0, eta0) along
    xi and eta, from the pixel positions themselves (for very large sources)."""
    pad = 2.0 * float(np.sqrt(np.max(canvas.area)))
    m = (np.abs(canvas.xi - xi0) <= half + pad) & (np.abs(canvas.eta - eta0) <= half + pad)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not len(rows):
        return None
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))


def render_point(canvas: Canvas, out: np.ndarray, xi0: float, eta0: float, flux_jy: float,
                 sigma_arcsec: float, nsub: int = 5, box="auto") -> None:
    """Add a Gaussian point source of ``flux_jy`` (Jy) at (xi0, eta0) arcsec to ``out``
    (Jy per pixel, canvas shape). ``box``: from :func:`boxes` with half-size
    PSF_EXTENT_SIGMA * sigma_arcsec (computed if "auto")."""
    if box == "auto":
        box = boxes(canvas, xi0, eta0, PSF_EXTENT_SIGMA * sigma_arcsec)[0]
    if box is None:
        return
    xi, eta = canvas.subpixels(*box, nsub)
    r2 = ((xi - xi0) ** 2 + (eta - eta0) ** 2) / (2.0 * sigma_arcsec**2)
    frac = np.exp(-r2).sum(axis=-1) / (2.0 * math.pi * sigma_arcsec**2)
    out[box] += flux_jy * frac * canvas.area[box] / (nsub * nsub)


def sersic_b(n: float) -> float:
    """b_n such that r_e encloses half of the light of a Sersic profile of index n."""
    return float(gammaincinv(2.0 * n, 0.5))


def sersic_peak(flux_jy: float, r_e: float, n: float, q: float, r_trunc: float) -> float:
    """I_e (Jy/arcsec^2 at the effective radius) of a Sersic profile truncated at
    elliptical radius ``r_trunc`` (arcsec) containing ``flux_jy`` inside the truncation."""
    b = sersic_b(n)
    total_inf = 2.0 * math.pi * q * r_e**2 * n * math.exp(b) * b ** (-2.0 * n) * gamma(2.0 * n)
    inside = gammainc(2.0 * n, b * (r_trunc / r_e) ** (1.0 / n))
    return flux_jy / (total_inf * inside)


def sersic_sb(xi, eta, xi0, eta0, flux_jy, r_e, n, q, pa_deg, r_trunc):
    """Surface brightness in Jy/arcsec^2 of a truncated Sersic galaxy; ``pa_deg``: major
    axis position angle, north through east."""
    pa = math.radians(pa_deg)
    dx, dy = xi - xi0, eta - eta0  # east, north
    major = dx * math.sin(pa) + dy * math.cos(pa)
    minor = dx * math.cos(pa) - dy * math.sin(pa)
    r = np.sqrt(major**2 + (minor / q) ** 2)
    ie = sersic_peak(flux_jy, r_e, n, q, r_trunc)
    b = sersic_b(n)
    sb = ie * np.exp(-b * ((r / r_e) ** (1.0 / n) - 1.0))
    return np.where(r <= r_trunc, sb, 0.0)


def render_sersic(canvas: Canvas, out: np.ndarray, xi0: float, eta0: float, flux_jy: float,
                  r_e: float, n: float, q: float, pa_deg: float, r_trunc: float,
                  nsub: int = 3, chunk_rows: int = 64, box="auto") -> None:
    """Add a Sersic galaxy (total ``flux_jy`` Jy inside its truncation radius) to ``out``.
    ``box``: from :func:`boxes` with half-size ``r_trunc`` (computed if "auto")."""
    if box == "auto":
        box = boxes(canvas, xi0, eta0, r_trunc)[0]
    if box is None:
        return
    rows, cols = box
    for r0 in range(rows.start, rows.stop, chunk_rows):
        sl = (slice(r0, min(r0 + chunk_rows, rows.stop)), cols)
        xi, eta = canvas.subpixels(*sl, nsub)
        sb = sersic_sb(xi, eta, xi0, eta0, flux_jy, r_e, n, q, pa_deg, r_trunc).mean(axis=-1)
        out[sl] += sb * canvas.area[sl]
