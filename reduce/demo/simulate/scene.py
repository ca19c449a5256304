"""The astrophysical scene: a smooth sky, point sources and Sersic galaxies.

Positions are tangent-plane offsets (xi east, eta north, arcsec) about the scene centre
(the target), with RA/Dec derived from them. Fluxes are in Jy per filter, from a flux at
7.7 micron and a power-law index: F_nu(lambda) = F_7.7 * (lambda / 7.7 um)^alpha.
The sky is a surface brightness in MJy/sr: a filter-dependent level (MIRI's background,
zodiacal + telescope thermal, rises steeply with wavelength) with a shallow gradient.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ... import instrument as inst
from . import optics
from .geometry import Canvas, SR_PER_ARCSEC2, plane_to_sky

# Nominal sky surface brightness in MJy/sr (order of the MIRI imager's measured backgrounds).
SKY_MJYSR = {
    "F560W": 0.45, "F770W": 2.4, "F1000W": 6.0, "F1130W": 11.0, "F1280W": 14.0,
    "F1500W": 24.0, "F1800W": 45.0, "F2100W": 85.0, "F2550W": 280.0,
}
SKY_GRADIENT = (2.0e-5, -1.2e-5)  # fractional change per arcsec along xi, eta
REF_WAVELENGTH = 7.7  # micron, where F_ref is given

DEMO_TARGET = {"name": "MIRIM-DEMO-FIELD", "ra": 53.1625, "dec": -27.7915}


@dataclass
class Source:
    """One source. ``kind``: ``point`` (PSF-shaped) or ``sersic`` (extended).
    ``flux_ref``: Jy at 7.7 micron; ``alpha``: spectral index of F_nu.
    Sersic shape: ``r_e`` (arcsec, half-light radius along the major axis), ``n``,
    ``q`` (axis ratio b/a), ``pa`` (major axis, deg N through E), ``r_trunc`` (arcsec)."""

    id: int
    kind: str
    xi: float
    eta: float
    flux_ref: float
    alpha: float
    r_e: float = 0.0
    n: float = 0.0
    q: float = 1.0
    pa: float = 0.0
    r_trunc: float = 0.0
    tags: list[str] = field(default_factory=list)

    def flux(self, filt: str) -> float:
        """Total flux density in Jy in ``filt``."""
        return self.flux_ref * (inst.PIVOT_WAVELENGTH[filt] / REF_WAVELENGTH) ** self.alpha


@dataclass
class Scene:
    """Scene centre (deg), sources, and the sky model."""

    ra0: float
    dec0: float
    target_name: str
    sources: list[Source]
    sky_mjysr: dict[str, float]
    sky_gradient: tuple[float, float] = SKY_GRADIENT

    def radec(self, src: Source) -> tuple[float, float]:
        ra, dec = plane_to_sky(src.xi, src.eta, self.ra0, self.dec0)
        return float(ra), float(dec)

    def sky(self, filt: str, xi, eta, factor: float = 1.0) -> np.ndarray:
        """Sky surface brightness (MJy/sr) at (xi, eta) arcsec, scaled by ``factor``."""
        gx, gy = self.sky_gradient
        return self.sky_mjysr[filt] * factor * (1.0 + gx * np.asarray(xi) + gy * np.asarray(eta))

    def to_dict(self) -> list[dict]:
        """Sources as JSON-ready records (with RA/Dec and the flux in every filter)."""
        out = []
        for s in self.sources:
            d = asdict(s)
            d["ra"], d["dec"] = self.radec(s)
            d["flux_jy"] = {f: s.flux(f) for f in inst.FILTERS}
            if s.kind == "point":
                for k in ("r_e", "n", "q", "pa", "r_trunc"):
                    d.pop(k)
            out.append(d)
        return out


def make_scene(seed: int, *, half_width: float = 75.0) -> Scene:
    """The demo scene for ``seed``: a dense inner field (|xi|, |eta| < 10 arcsec, seen by
    every subarray pointing) and a sparser outer field out to ``half_width`` arcsec (seen by
    full-frame pointings). Always present: 16 bright point sources and one saturating star
    in the inner field, a large exponential disc (r_e 3 arcsec, truncated at 10 arcsec; about
    8000 pixels above the 10-sigma isophote of the small program) and smaller galaxies."""
    rng = np.random.default_rng([seed, 0xC0FFEE])
    src: list[Source] = []

    def add(**kw):
        src.append(Source(id=len(src) + 1, **kw))

    def inner_xy(n, lim=10.0):
        return rng.uniform(-lim, lim, size=(n, 2))

    # the large galaxy (must stay > 6500 px above the 10-sigma isophote in every filter, the
    # original's maximum area; it covers about 28 % of a SUB256 exposure to its truncation)
    add(kind="sersic", xi=4.5, eta=-3.5, flux_ref=0.025, alpha=1.8, r_e=3.0, n=1.0, q=0.7,
        pa=float(rng.uniform(20, 70)), r_trunc=10.0, tags=["large"])
    # a saturating star (saturates late in the F770W subarray ramp)
    add(kind="point", xi=-6.5, eta=5.5, flux_ref=0.012, alpha=-2.0, tags=["bright", "saturating"])
    # smaller galaxies in the inner field
    for (xi, eta), (r_e, n, flux) in zip(
            [(-5.0, -6.5), (7.5, 6.5), (-8.0, -1.0)],
            [(1.4, 1.0, 2.0e-3), (0.9, 2.0, 1.2e-3), (0.45, 4.0, 6.0e-4)]):
        add(kind="sersic", xi=xi + rng.normal(0, 0.3), eta=eta + rng.normal(0, 0.3), flux_ref=flux,
            alpha=float(rng.uniform(0.0, 0.8)), r_e=r_e, n=n, q=float(rng.uniform(0.45, 0.9)),
            pa=float(rng.uniform(0, 180)), r_trunc=6.0 * r_e)
    # bright point sources: >> 20 sigma in every filter
    for xi, eta in _spread(rng, 16, 10.5, avoid=[(4.5, -3.5, 7.0), (-6.5, 5.5, 2.0)], min_sep=2.2,
                           existing=[(s.xi, s.eta) for s in src]):
        add(kind="point", xi=xi, eta=eta, flux_ref=float(10 ** rng.uniform(-3.3, -2.7)),
            alpha=float(rng.uniform(-0.5, 1.0)), tags=["bright"])  # below saturation in 11.7 s
    # faint point sources in the inner field
    for xi, eta in inner_xy(24, 11.0):
        add(kind="point", xi=float(xi), eta=float(eta), flux_ref=float(10 ** rng.uniform(-5.3, -3.5)),
            alpha=float(rng.uniform(-2.0, 1.5)))
    # outer field (full frame): points and small galaxies
    for xi, eta in rng.uniform(-half_width, half_width, size=(110, 2)):
        if abs(xi) < 12 and abs(eta) < 12:
            continue
        bright = rng.uniform() < 0.35
        add(kind="point", xi=float(xi), eta=float(eta),
            flux_ref=float(10 ** (rng.uniform(-3.3, -2.7) if bright else rng.uniform(-5.3, -3.5))),
            alpha=float(rng.uniform(-0.5, 1.0) if bright else rng.uniform(-2.0, 1.5)),
            tags=["bright"] if bright else [])
    for xi, eta in rng.uniform(-half_width, half_width, size=(14, 2)):
        if abs(xi) < 12 and abs(eta) < 12:
            continue
        r_e = float(rng.uniform(0.4, 2.0))
        add(kind="sersic", xi=float(xi), eta=float(eta), flux_ref=float(10 ** rng.uniform(-3.6, -2.6)),
            alpha=float(rng.uniform(0.0, 0.8)), r_e=r_e, n=float(rng.choice([1.0, 1.0, 2.0, 4.0])),
            q=float(rng.uniform(0.4, 0.95)), pa=float(rng.uniform(0, 180)), r_trunc=6.0 * r_e)
    return Scene(DEMO_TARGET["ra"], DEMO_TARGET["dec"], DEMO_TARGET["name"], src, dict(SKY_MJYSR))


def _spread(rng, n, lim, *, avoid, min_sep, existing):
    """``n`` random positions in |xi|, |eta| < lim, ``min_sep`` apart and outside the
    circles ``avoid`` = [(xi, eta, radius)]."""
    out: list[tuple[float, float]] = []
    pts = list(existing)
    while len(out) < n:
        xi, eta = rng.uniform(-lim, lim, size=2)
        if any(math.hypot(xi - a, eta - b) < r for a, b, r in avoid):
            continue
        if any(math.hypot(xi - a, eta - b) < min_sep for a, b in pts):
            continue
        out.append((float(xi), float(eta)))
        pts.append((xi, eta))
    return out


def render_sources(scene: Scene, filt: str, canvas: Canvas, *, ids=None) -> np.ndarray:
    """Flux of the scene's sources falling in each canvas pixel, Jy (no sky).
    ``ids``: only these source ids."""
    out = np.zeros(canvas.shape, dtype=np.float64)
    sigma = optics.psf_sigma_arcsec(filt)
    todo = [s for s in scene.sources if ids is None or s.id in ids]
    if not todo:
        return out
    half = [optics.PSF_EXTENT_SIGMA * sigma if s.kind == "point" else s.r_trunc for s in todo]
    bxs = optics.boxes(canvas, [s.xi for s in todo], [s.eta for s in todo], half)
    for s, box in zip(todo, bxs):
        if box is None:
            continue
        f = s.flux(filt)
        if s.kind == "point":
            optics.render_point(canvas, out, s.xi, s.eta, f, sigma, box=box)
        else:
            # the PSF is small against these galaxies: not convolved
            optics.render_sersic(canvas, out, s.xi, s.eta, f, s.r_e, s.n, s.q, s.pa, s.r_trunc,
                                 nsub=5 if s.r_e < 1.0 else 3, box=box)
    return out


def surface_brightness(scene: Scene, filt: str, canvas: Canvas, sky_factor: float = 1.0,
                       *, with_sky: bool = True) -> np.ndarray:
    """Scene surface brightness in MJy/sr in each canvas pixel (sources averaged over the
    pixel's true area, plus the sky at its centre)."""
    sb = render_sources(scene, filt, canvas) * 1e-6 / (canvas.area * SR_PER_ARCSEC2)
    if with_sky:
        sb += scene.sky(filt, canvas.xi, canvas.eta, sky_factor)
    return sb
