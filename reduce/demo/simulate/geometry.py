"""Where the sky lands on the detector: distortion, telescope attitude, tangent plane.

Frames and units
- detector: 0-based full-frame pixels (x = column, y = row), pixel centres at integers.
- V2/V3: telescope frame, arcsec.
- sky: ICRS RA/Dec in degrees.
- tangent plane: gnomonic offsets (xi east, eta north) in arcsec around a scene centre.

The V2/V3 -> sky step is the attitude matrix of pysiaf (``rotations.attitude``), the same
rotation sequence as jwst's ``assign_wcs.pointing.v23tosky``: a header carrying
(V2_REF, V3_REF, RA_REF, DEC_REF, ROLL_REF) gives the pipeline exactly this mapping.
The detector <-> V2/V3 step comes from ``reduce.demo.crds_context.distortion`` (the transform the
synthetic distortion reference encodes) when that module exists, else from pysiaf's
MIRIM_FULL polynomials (which that module is built from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from functools import lru_cache

import numpy as np

from ... import instrument as inst

ARCSEC_PER_RAD = 206264.80624709636
SR_PER_ARCSEC2 = 1.0 / ARCSEC_PER_RAD**2


@lru_cache(maxsize=None)
def _siaf():
    import warnings

    import pysiaf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pysiaf.Siaf("MIRI")


def siaf_aperture(name: str):
    """The pysiaf aperture ``name`` (e.g. ``MIRIM_SUB256``)."""
    return _siaf()[name]


@lru_cache(maxsize=None)
def _distortion_backend():
    """(forward, inverse, name): the pipeline's distortion if available, else pysiaf."""
    try:  # the synthetic distortion reference's own functions (0-based full frame <-> arcsec)
        from ..crds_context.distortion import detector_to_v2v3 as fwd
        from ..crds_context.distortion import v2v3_to_detector as inv

        return fwd, inv, "reduce.demo.crds_context.distortion"
    except ImportError:
        ap = siaf_aperture("MIRIM_FULL")

        def fwd(x, y):
            return ap.det_to_tel(np.asarray(x, float) + 1.0, np.asarray(y, float) + 1.0)

        def inv(v2, v3):
            xd, yd = ap.tel_to_det(np.asarray(v2, float), np.asarray(v3, float))
            return xd - 1.0, yd - 1.0

        return fwd, inv, "pysiaf MIRIM_FULL"


def distortion_source() -> str:
    """Which distortion implementation the simulator uses (recorded in the truth)."""
    return _distortion_backend()[2]


def detector_to_v2v3(x, y) -> tuple[np.ndarray, np.ndarray]:
    """0-based full-frame detector pixel -> V2, V3 (arcsec)."""
    v2, v3 = _distortion_backend()[0](x, y)
    return np.asarray(v2, float), np.asarray(v3, float)


def v2v3_to_detector(v2, v3, *, refine: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """V2, V3 (arcsec) -> 0-based full-frame detector pixel; Newton-refined against the
    forward transform so that the round trip is exact to ~1e-6 pixel."""
    v2 = np.asarray(v2, float)
    v3 = np.asarray(v3, float)
    x, y = _distortion_backend()[1](v2, v3)
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not refine:
        return x, y
    h = 0.5
    for _ in range(3):
        f2, f3 = detector_to_v2v3(x, y)
        a2, a3 = detector_to_v2v3(x + h, y)
        b2, b3 = detector_to_v2v3(x, y + h)
        j11, j12 = (a2 - f2) / h, (b2 - f2) / h
        j21, j22 = (a3 - f3) / h, (b3 - f3) / h
        det = j11 * j22 - j12 * j21
        r2, r3 = v2 - f2, v3 - f3
        x = x + (j22 * r2 - j12 * r3) / det
        y = y + (-j21 * r2 + j11 * r3) / det
    return x, y


# ---------------------------------------------------------------- attitude (V2/V3 <-> sky)

def attitude(v2: float, v3: float, ra: float, dec: float, pa: float) -> np.ndarray:
    """3x3 attitude matrix putting (v2, v3) arcsec on (ra, dec) deg with V3 at position
    angle ``pa`` deg (N through E) at that point: pysiaf's ``rotations.attitude``."""
    from pysiaf.utils import rotations

    return np.asarray(rotations.attitude(v2, v3, ra, dec, pa))


def _unit(lon_deg, lat_deg):
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _angles(u):
    lon = np.degrees(np.arctan2(u[1], u[0]))
    lat = np.degrees(np.arctan2(u[2], np.hypot(u[0], u[1])))
    return lon, lat


def v2v3_to_sky(att: np.ndarray, v2, v3) -> tuple[np.ndarray, np.ndarray]:
    """V2, V3 (arcsec) -> RA, Dec (deg) for attitude ``att``."""
    u = _unit(np.asarray(v2, float) / 3600.0, np.asarray(v3, float) / 3600.0)
    ra, dec = _angles(np.tensordot(att, u, axes=1))
    return np.mod(ra, 360.0), dec


def sky_to_v2v3(att: np.ndarray, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) -> V2, V3 (arcsec) for attitude ``att``."""
    u = _unit(np.asarray(ra, float), np.asarray(dec, float))
    v2, v3 = _angles(np.tensordot(att.T, u, axes=1))
    v2 = np.where(v2 > 180.0, v2 - 360.0, v2)
    return v2 * 3600.0, v3 * 3600.0


def position_angle(att: np.ndarray, v2: float, v3: float) -> float:
    """Position angle (deg, N through E) of the V3 axis at (v2, v3) arcsec."""
    from pysiaf.utils import rotations

    return float(np.mod(rotations.posangle(att, v2, v3), 360.0))


@dataclass(frozen=True)
class Pointing:
    """A telescope pointing as the WCS keywords give it: the aperture reference point
    (v2_ref, v3_ref arcsec) is at (ra_ref, dec_ref deg) with V3 at roll_ref deg there."""

    v2_ref: float
    v3_ref: float
    ra_ref: float
    dec_ref: float
    roll_ref: float

    @property
    def matrix(self) -> np.ndarray:
        return attitude(self.v2_ref, self.v3_ref, self.ra_ref, self.dec_ref, self.roll_ref)

    def v1(self) -> tuple[float, float, float]:
        """(ra_v1, dec_v1, pa_v3) in degrees: where the V1 axis points and V3's angle there."""
        m = self.matrix
        ra, dec = v2v3_to_sky(m, 0.0, 0.0)
        return float(ra), float(dec), position_angle(m, 0.0, 0.0)

    def as_dict(self) -> dict:
        return {"v2_ref": self.v2_ref, "v3_ref": self.v3_ref, "ra_ref": self.ra_ref,
                "dec_ref": self.dec_ref, "roll_ref": self.roll_ref}


def pointing_for_offset(aperture: str, ra: float, dec: float, pa_aper_v3: float,
                        dv2: float = 0.0, dv3: float = 0.0) -> Pointing:
    """The pointing that puts sky position (ra, dec) at V2/V3 = aperture reference + (dv2, dv3)
    arcsec, V3 at position angle ``pa_aper_v3`` deg there; expressed at the aperture reference."""
    ap = siaf_aperture(aperture)
    m = attitude(ap.V2Ref + dv2, ap.V3Ref + dv3, ra, dec, pa_aper_v3)
    ra_ref, dec_ref = v2v3_to_sky(m, ap.V2Ref, ap.V3Ref)
    return Pointing(float(ap.V2Ref), float(ap.V3Ref), float(ra_ref), float(dec_ref),
                    position_angle(m, ap.V2Ref, ap.V3Ref))


def ideal_to_v2v3_offset(aperture: str, dx: float, dy: float) -> tuple[float, float]:
    """An offset (arcsec) in the aperture's ideal frame as a V2/V3 offset (arcsec)."""
    ap = siaf_aperture(aperture)
    v2, v3 = ap.idl_to_tel(dx, dy)
    return float(v2 - ap.V2Ref), float(v3 - ap.V3Ref)


# ---------------------------------------------------------------- tangent plane

def sky_to_plane(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection about (ra0, dec0): (xi east, eta north) in arcsec."""
    a, d = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD


def plane_to_sky(xi, eta, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse gnomonic projection: (xi, eta) arcsec -> RA, Dec deg."""
    x = np.asarray(xi, float) / ARCSEC_PER_RAD
    y = np.asarray(eta, float) / ARCSEC_PER_RAD
    d0, a0 = np.radians(dec0), np.radians(ra0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(np.cos(c) * np.sin(d0) + np.where(rho > 0, y * np.sin(c) * np.cos(d0) / rho, 0.0))
    ra = a0 + np.arctan2(x * np.sin(c), rho * np.cos(d0) * np.cos(c) - y * np.sin(d0) * np.sin(c))
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


def detector_to_plane(pointing: Pointing, x, y, ra0: float, dec0: float):
    """0-based full-frame pixel -> tangent-plane (xi, eta) arcsec about (ra0, dec0)."""
    v2, v3 = detector_to_v2v3(x, y)
    ra, dec = v2v3_to_sky(pointing.matrix, v2, v3)
    return sky_to_plane(ra, dec, ra0, dec0)


def sky_to_detector(pointing: Pointing, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec deg -> 0-based full-frame pixel (x, y) for a pointing."""
    v2, v3 = sky_to_v2v3(pointing.matrix, ra, dec)
    return v2v3_to_detector(v2, v3)


@dataclass
class Canvas:
    """Pixels of an image laid on the tangent plane (arcsec about the scene centre).

    ``xi``, ``eta``: pixel centres, shape (ny, nx); ``jac``: (dxi/dx, dxi/dy, deta/dx,
    deta/dy) per pixel, arcsec/pixel; ``area``: true solid angle of each pixel, arcsec^2
    (polygon of its four mapped corners); ``locate(xi, eta) -> (x, y)``: canvas pixel
    coordinates (0-based, element [0, 0] at (0, 0)) of tangent-plane positions."""

    xi: np.ndarray
    eta: np.ndarray
    jac: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    area: np.ndarray
    locate: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

    @property
    def shape(self) -> tuple[int, int]:
        return self.xi.shape

    @property
    def area_sr(self) -> np.ndarray:
        return self.area * SR_PER_ARCSEC2

    def subpixels(self, rows: slice, cols: slice, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Tangent-plane positions of n x n sub-pixel centres of each pixel of a box:
        arrays (box_ny, box_nx, n*n), from each pixel's local Jacobian."""
        off = (np.arange(n) + 0.5) / n - 0.5
        dy, dx = (a.ravel() for a in np.meshgrid(off, off, indexing="ij"))
        j11, j12, j21, j22 = (j[rows, cols][..., None] for j in self.jac)
        xi = self.xi[rows, cols][..., None] + j11 * dx + j12 * dy
        eta = self.eta[rows, cols][..., None] + j21 * dx + j22 * dy
        return xi, eta


def _corner_canvas(cxi: np.ndarray, ceta: np.ndarray, xi: np.ndarray, eta: np.ndarray, locate) -> Canvas:
    """Canvas from corner positions (ny+1, nx+1) and centre positions (ny, nx)."""
    a = (cxi[:-1, :-1], ceta[:-1, :-1])
    b = (cxi[:-1, 1:], ceta[:-1, 1:])
    c = (cxi[1:, 1:], ceta[1:, 1:])
    d = (cxi[1:, :-1], ceta[1:, :-1])
    area = 0.5 * np.abs((c[0] - a[0]) * (d[1] - b[1]) - (d[0] - b[0]) * (c[1] - a[1]))
    j11 = 0.5 * ((b[0] - a[0]) + (c[0] - d[0]))
    j21 = 0.5 * ((b[1] - a[1]) + (c[1] - d[1]))
    j12 = 0.5 * ((d[0] - a[0]) + (c[0] - b[0]))
    j22 = 0.5 * ((d[1] - a[1]) + (c[1] - b[1]))
    return Canvas(xi, eta, (j11, j12, j21, j22), area, locate)


def detector_canvas(pointing: Pointing, subarray: str, ra0: float, dec0: float) -> Canvas:
    """The pixels of ``subarray`` for a pointing, on the tangent plane about (ra0, dec0)."""
    sub = inst.SUBARRAYS[subarray]
    x0, y0 = sub.xstart - 1, sub.ystart - 1
    yy, xx = np.mgrid[0:sub.ysize + 1, 0:sub.xsize + 1].astype(float)
    cxi, ceta = detector_to_plane(pointing, xx + x0 - 0.5, yy + y0 - 0.5, ra0, dec0)
    yc, xc = np.mgrid[0:sub.ysize, 0:sub.xsize].astype(float)
    xi, eta = detector_to_plane(pointing, xc + x0, yc + y0, ra0, dec0)

    def locate(pxi, peta):
        ra, dec = plane_to_sky(pxi, peta, ra0, dec0)
        x, y = sky_to_detector(pointing, ra, dec)
        return x - x0, y - y0

    return _corner_canvas(cxi, ceta, xi, eta, locate)


def plane_canvas(nx: int, ny: int, scale: float) -> Canvas:
    """A regular tangent-plane grid, north up, east left, ``scale`` arcsec/pixel, centred on
    the scene centre (which sits at pixel ((nx-1)/2, (ny-1)/2))."""
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    xi = -(xx - cx) * scale
    eta = (yy - cy) * scale
    ones = np.ones((ny, nx))
    jac = (-scale * ones, 0.0 * ones, 0.0 * ones, scale * ones)

    def locate(pxi, peta):
        return cx - np.asarray(pxi) / scale, cy + np.asarray(peta) / scale

    return Canvas(xi, eta, jac, scale * scale * ones, locate)
