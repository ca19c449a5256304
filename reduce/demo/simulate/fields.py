"""Scenes of the test programs: isolated point sources for photometry, discs, and extended
emission larger than the dither pattern (the same detector area in every exposure).

Positions are tangent-plane offsets (arcsec, xi east, eta north) about the target; fluxes
in Jy at 7.7 micron with a power-law index (``scene.Source``); surface brightnesses in
MJy/sr. Point sources are drawn inside the footprint of a reference pointing (the first
exposure), a margin inside the array edges, so every dither sees (nearly) all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ... import instrument as inst
from . import geometry, optics
from .scene import SKY_MJYSR, Scene, Source

MJYSR_TO_JY_PER_ARCSEC2 = 1e6 * geometry.SR_PER_ARCSEC2


@dataclass(frozen=True)
class Extended:
    """An extended component: Sersic (``n``; 0.5 Gaussian-like, 1 exponential) centred at
    (xi, eta) arcsec with effective radius ``r_e`` (arcsec), axis ratio ``q``, truncated at
    ``r_trunc`` (arcsec), surface brightness ``sb_e`` (MJy/sr at r_e, at 7.7 micron) and
    spectral index ``alpha``; ``tag``: "nebula" or "large"."""

    xi: float
    eta: float
    r_e: float
    n: float
    q: float
    pa: float
    r_trunc: float
    sb_e: float
    alpha: float
    tag: str = "large"

    def flux_ref(self) -> float:
        """Flux (Jy at 7.7 micron) inside the truncation giving ``sb_e`` at r_e."""
        return self.sb_e * MJYSR_TO_JY_PER_ARCSEC2 / optics.sersic_peak(1.0, self.r_e, self.n, self.q, self.r_trunc)


@dataclass(frozen=True)
class FieldDesign:
    """A program's scene: target, point sources (``n_points`` isolated ones, log-uniform
    in ``point_flux_jy`` at 7.7 micron, at least ``min_sep`` arcsec apart; ``n_faint`` fainter
    ones in ``faint_flux_jy``), ``n_galaxies`` small Sersic galaxies, and ``extended``
    components; ``margin`` (arcsec) keeps the points inside the reference footprint;
    ``min_x`` (full-frame column) keeps them off the coronagraph side; ``sky_gradient``
    (fraction per arcsec along xi, eta)."""

    target: dict
    n_points: int
    point_flux_jy: tuple[float, float]
    n_faint: int = 10
    faint_flux_jy: tuple[float, float] = (3e-6, 1.5e-5)
    min_sep: float = 2.5
    margin: float = 2.0
    min_x: int = 0
    n_galaxies: int = 3
    extended: tuple[Extended, ...] = field(default_factory=tuple)
    sky_gradient: tuple[float, float] = (2.0e-5, -1.2e-5)


def _inside(pointing, subarray: str, ra0: float, dec0: float, xi, eta, margin_px: float, min_x: int):
    sub = inst.SUBARRAYS[subarray]
    ra, dec = geometry.plane_to_sky(np.asarray(xi), np.asarray(eta), ra0, dec0)
    x, y = geometry.sky_to_detector(pointing, ra, dec)
    x0, y0 = sub.xstart - 1, sub.ystart - 1
    lo_x = max(x0 + inst.REFERENCE_COLUMNS, min_x) + margin_px
    return ((x >= lo_x) & (x <= x0 + sub.xsize - 1 - inst.REFERENCE_COLUMNS - margin_px)
            & (y >= y0 + margin_px) & (y <= y0 + sub.ysize - 1 - margin_px))


def make_field_scene(design: FieldDesign, seed: int, tag: int, pointing, subarray: str) -> Scene:
    """The scene of a test program for ``seed`` (``tag`` separates programs); ``pointing``
    and ``subarray``: the reference footprint the point sources are drawn in."""
    rng = np.random.default_rng([seed, tag, 0x5CE9E])
    ra0, dec0 = design.target["ra"], design.target["dec"]
    src: list[Source] = []

    def add(**kw):
        src.append(Source(id=len(src) + 1, **kw))

    for e in design.extended:
        add(kind="sersic", xi=e.xi, eta=e.eta, flux_ref=e.flux_ref(), alpha=e.alpha, r_e=e.r_e, n=e.n, q=e.q,
            pa=e.pa, r_trunc=e.r_trunc, tags=[e.tag])
    margin_px = design.margin / inst.PIXEL_SCALE
    sub = inst.SUBARRAYS[subarray]
    half = 0.75 * inst.PIXEL_SCALE * max(sub.xsize, sub.ysize)  # bounding circle of the footprint

    def draw(n, min_sep, existing):
        """``n`` positions ``min_sep`` apart, and apart from ``existing`` [(xi, eta, radius)]."""
        out: list[tuple[float, float]] = []
        for _ in range(20):  # batches of candidates, the footprint test vectorised
            if len(out) >= n:
                break
            cand = rng.uniform(-half, half, size=(max(500, 40 * n), 2))
            cand = cand[_inside(pointing, subarray, ra0, dec0, cand[:, 0], cand[:, 1], margin_px, design.min_x)]
            for xi, eta in cand:
                if len(out) >= n:
                    break
                if any(math.hypot(xi - a, eta - b) < r for a, b, r in existing):
                    continue
                if any(math.hypot(xi - a, eta - b) < min_sep for a, b in out):
                    continue
                out.append((float(xi), float(eta)))
        if len(out) < n:
            raise RuntimeError(f"only {len(out)} of {n} sources fit {min_sep} arcsec apart")
        return out

    gal = draw(design.n_galaxies, 6.0, [])
    for xi, eta in gal:
        r_e = float(rng.uniform(0.5, 1.5))
        add(kind="sersic", xi=xi, eta=eta, flux_ref=float(10 ** rng.uniform(-3.4, -2.9)),
            alpha=float(rng.uniform(0.0, 0.8)), r_e=r_e, n=float(rng.choice([1.0, 2.0, 4.0])),
            q=float(rng.uniform(0.45, 0.9)), pa=float(rng.uniform(0, 180)), r_trunc=5.0 * r_e)
    taken = [(s.xi, s.eta, 2.5 * s.r_e + design.min_sep) for s in src[len(design.extended):]]
    pts = draw(design.n_points, design.min_sep, taken)
    lo, hi = np.log10(design.point_flux_jy)
    # fluxes spread evenly in log over the range (then shuffled): the trend is measurable
    logf = lo + (hi - lo) * (np.arange(design.n_points) + rng.uniform(0, 1, design.n_points)) / design.n_points
    rng.shuffle(logf)
    for (xi, eta), lf in zip(pts, logf):
        add(kind="point", xi=xi, eta=eta, flux_ref=float(10**lf), alpha=float(rng.uniform(-0.5, 0.5)),
            tags=["bright"])
    lo, hi = np.log10(design.faint_flux_jy)
    for xi, eta in draw(design.n_faint, 1.5, taken + [(a, b, 1.5) for a, b in pts]):
        add(kind="point", xi=xi, eta=eta, flux_ref=float(10 ** rng.uniform(lo, hi)),
            alpha=float(rng.uniform(-1.5, 1.0)))
    return Scene(ra0, dec0, design.target["name"], src, dict(SKY_MJYSR), tuple(design.sky_gradient))


def peak_pixel_fraction(filt: str) -> float:
    """Fraction of a centred point source's flux in its brightest pixel."""
    s = optics.psf_sigma_arcsec(filt) / inst.PIXEL_SCALE
    return math.erf(0.5 / (math.sqrt(2.0) * s)) ** 2


def max_unsaturated_flux(filt: str, duration_s: float, alpha: float = 0.5, headroom: float = 0.6) -> float:
    """Flux at 7.7 micron (Jy, spectral index ``alpha``) whose peak pixel plus the sky
    reaches ``headroom`` of the range between pedestal and saturation in ``duration_s``."""
    sky = SKY_MJYSR[filt] / inst.PHOTMJSR[filt]
    budget = headroom * (inst.SATURATION - inst.PEDESTAL) / duration_s - 1.3 * sky  # DN/s
    per_jy = peak_pixel_fraction(filt) * 1e-6 / inst.pixel_area_sr() / inst.PHOTMJSR[filt]
    return budget / per_jy / (inst.PIVOT_WAVELENGTH[filt] / 7.7) ** alpha
