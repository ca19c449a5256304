"""Per-program background artefacts of the MIRI imager, on top of the fixed detector.

The MIRI imager's documented background artefacts (Dicken et al. 2024, "JWST MIRI flight
performance: imaging"; the JDox MIRI known-issues pages) that a super-background has to
find from the data, because no reference file describes them:

- an additive, detector-fixed structure (stray light, glow): ``smooth_pattern`` (the
  demo's ``rates.background_pattern`` is this with the detector's own seed);
- structure that scales with the sky level (flat-field-like, "multiplicative"): a linear
  gradient across the array, a glow in the lower-left and lower-right corners (the
  "tree-ring"/glow corners of the imager), and a mid-scale field;
- column and row striping at the pixel scale (fixed per program), plus row striping that
  changes from exposure to exposure;
- unflagged warm pixels (extra dark current the references do not know).

An :class:`Artefacts` describes a program's amplitudes; its ``seed`` draws the patterns, so
two programs show different patterns. ``Artefacts()`` (seed None) is the demo: the fixed
detector pattern and nothing else, so the demo's files are unchanged. The synthetic CRDS
references never contain any of this. Arrays are full frame, 0-based (row, column),
float32, zero on the reference columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
import zlib

import numpy as np

from ... import instrument as inst

PATTERN_FRACTION = 0.06  # demo: mean of the additive pattern relative to the nominal sky rate
STRAY_LIGHT_RMS = 0.4  # rms of the mid-scale stray-light field, relative to the pattern's mean
STRAY_LIGHT_SCALE = 48.0  # pixels: correlation length of that field
_TAG_MULT, _TAG_STRIPES, _TAG_WARM, _TAG_EXPOSURE = 101, 102, 103, 104


def nominal_sky_rate(filt: str) -> float:
    """The nominal sky level of ``filt`` in DN/s (before the flat)."""
    from .scene import SKY_MJYSR

    return SKY_MJYSR[filt] / inst.PHOTMJSR[filt]


@dataclass(frozen=True)
class Artefacts:
    """Amplitudes of a program's background artefacts (defaults: the demo).

    ``seed``: draws every pattern (None: the demo's fixed detector pattern only).
    ``additive_fraction``: mean of the additive smooth pattern / nominal sky rate.
    ``mult_gradient``: peak-to-peak fractional change of the sky-scaled pattern across the
    full frame (direction drawn from the seed). ``mult_glow``: fractional excess of the sky
    in the lower-left/lower-right corners (Gaussian, ``glow_scale_px`` pixels; the two
    corners differ by a drawn factor 0.6-1). ``mult_field_rms``: rms of a sky-scaled
    mid-scale field (correlation length STRAY_LIGHT_SCALE px).
    ``column_stripes`` / ``row_stripes``: rms of fixed per-column / per-row offsets as a
    fraction of the filter's nominal sky rate (additive, DN/s). ``row_stripes_exposure``:
    the same for row offsets redrawn in every exposure. ``warm_fraction``: fraction of the
    light-sensitive pixels that are warm (unflagged), with extra dark current log-uniform in
    ``warm_rate_dn_s`` (DN/s, the same in every filter)."""

    seed: int | None = None
    additive_fraction: float = PATTERN_FRACTION
    mult_gradient: float = 0.0
    mult_glow: float = 0.0
    glow_scale_px: float = 110.0
    mult_field_rms: float = 0.0
    column_stripes: float = 0.0
    row_stripes: float = 0.0
    row_stripes_exposure: float = 0.0
    warm_fraction: float = 0.0
    warm_rate_dn_s: tuple[float, float] = (0.3, 3.0)

    @property
    def is_demo(self) -> bool:
        return self.seed is None

    @property
    def has_multiplicative(self) -> bool:
        return bool(self.mult_gradient or self.mult_glow or self.mult_field_rms)

    def to_dict(self) -> dict:
        """JSON record with the units."""
        d = asdict(self)
        d["warm_rate_dn_s"] = list(self.warm_rate_dn_s)
        d["units"] = ("fractions: additive_fraction, column/row stripes of the nominal sky rate (DN/s); "
                      "mult_* of the sky after the flat; warm_rate DN/s; glow_scale pixels")
        d["model"] = ("BACKGROUND = sky*flat*(1 + MULT) + PATTERN (smooth additive + fixed stripes + warm "
                      "pixels) + per-exposure row stripes + new hot pixels (DN/s)")
        return d


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _zero_reference(a: np.ndarray) -> np.ndarray:
    a[:, :inst.REFERENCE_COLUMNS] = 0.0
    a[:, -inst.REFERENCE_COLUMNS:] = 0.0
    return a


def _gaussian_field(rng: np.random.Generator, scale_px: float) -> np.ndarray:
    """Full-frame Gaussian random field (not normalised), correlation ``scale_px``."""
    from scipy import ndimage

    ny, nx = inst.FULL_SHAPE
    coarse = ndimage.gaussian_filter(rng.normal(size=(ny // 8, nx // 8)), scale_px / 8.0, mode="wrap")
    field = ndimage.zoom(coarse, (ny / coarse.shape[0], nx / coarse.shape[1]), order=3, mode="grid-wrap")
    return field


def smooth_pattern(filt: str, seed: int, fraction: float) -> np.ndarray:
    """Additive smooth background (DN/s, full frame, float32): a gradient, a brighter band
    over the coronagraph/LRS side (x < ~360), a corner glow, a mid-scale stray-light field
    (rms STRAY_LIGHT_RMS of the mean), faint periodic column striping and per-column
    offsets; mean ``fraction`` of the nominal sky rate; zero on the reference columns."""
    ny, nx = inst.FULL_SHAPE
    k = inst.FILTERS.index(filt)
    rng = np.random.default_rng([seed, k])
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u, v = xx / nx - 0.5, yy / ny - 0.5
    shape = 1.0 + 0.35 * u - 0.25 * v + 0.15 * u * v
    shape += 0.6 / (1.0 + np.exp((xx - 360.0) / 12.0))  # coronagraph side
    gx, gy = 960.0 + 20 * rng.normal(), 70.0 + 20 * rng.normal()
    shape += 0.8 * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * 110.0**2))  # glow
    shape += 0.08 * np.cos(2 * np.pi * xx / (31.0 + k) + rng.uniform(0, 2 * np.pi)) * (1 - v)
    shape += rng.normal(0.0, 0.03, size=nx)[None, :]
    field = _gaussian_field(rng, STRAY_LIGHT_SCALE)
    shape += STRAY_LIGHT_RMS * (field - field.mean()) / field.std()
    pat = (fraction * nominal_sky_rate(filt) * shape / shape.mean()).astype(np.float32)
    return _zero_reference(pat)


@lru_cache(maxsize=None)
def warm_pixels(art: Artefacts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, extra rate DN/s) of the program's unflagged warm pixels."""
    ny, nx = inst.FULL_SHAPE
    ncol = nx - 2 * inst.REFERENCE_COLUMNS
    n = int(round(art.warm_fraction * ny * ncol))
    if art.is_demo or n == 0:
        e = np.zeros(0, int)
        return e, e, np.zeros(0, np.float32)
    rng = _rng(art.seed, _TAG_WARM)
    rows, cols = np.divmod(rng.choice(ny * ncol, size=n, replace=False), ncol)
    lo, hi = np.log10(art.warm_rate_dn_s[0]), np.log10(art.warm_rate_dn_s[1])
    return rows, cols + inst.REFERENCE_COLUMNS, (10 ** rng.uniform(lo, hi, size=n)).astype(np.float32)


_PATTERN_SEED = 20240601  # detector property: independent of the demo seed


@lru_cache(maxsize=None)
def background_pattern(filt: str) -> np.ndarray:
    """The demo's detector-fixed additive background (DN/s, full frame, read-only): stray
    light and glow that do not follow the flat (``artefacts.smooth_pattern`` with the
    detector's own seed): structure of ~2.4 % of the sky everywhere, subarrays included.
    Mean about PATTERN_FRACTION of the nominal sky; zero on the reference columns."""
    pat = smooth_pattern(filt, _PATTERN_SEED, PATTERN_FRACTION)
    pat.setflags(write=False)
    return pat


@lru_cache(maxsize=None)
def fixed_additive(art: Artefacts, filt: str) -> np.ndarray:
    """Detector-fixed additive background of the program in ``filt`` (DN/s, full frame,
    read-only, not flat-fielded): the smooth pattern + fixed column/row stripes + warm
    pixels. For the demo: exactly ``rates.background_pattern(filt)``."""
    if art.is_demo:
        return background_pattern(filt)
    ny, nx = inst.FULL_SHAPE
    pat = smooth_pattern(filt, art.seed, art.additive_fraction).astype(np.float64)
    rng = _rng(art.seed, _TAG_STRIPES)  # the same stripes in every filter, scaled by its sky
    sky = nominal_sky_rate(filt)
    pat += art.column_stripes * sky * rng.normal(size=nx)[None, :]
    pat += art.row_stripes * sky * rng.normal(size=ny)[:, None]
    r, c, rate = warm_pixels(art)
    pat[r, c] += rate
    out = _zero_reference(pat.astype(np.float32))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def multiplicative(art: Artefacts, filt: str) -> np.ndarray:
    """MULT: the fractional sky-scaled structure (dimensionless, full frame, read-only):
    the flat-fielded sky becomes sky * flat * (1 + MULT). Gradient, corner glow, field."""
    ny, nx = inst.FULL_SHAPE
    m = np.zeros((ny, nx), np.float64)
    if art.is_demo or not art.has_multiplicative:
        out = m.astype(np.float32)
        out.setflags(write=False)
        return out
    rng = _rng(art.seed, _TAG_MULT)  # geometry shared by the filters
    theta = rng.uniform(0, 2 * np.pi)
    ratio = rng.uniform(0.6, 1.0)
    frng = _rng(art.seed, _TAG_MULT, inst.FILTERS.index(filt))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u, v = xx / (nx - 1) - 0.5, yy / (ny - 1) - 0.5
    c, s = np.cos(theta), np.sin(theta)
    m += art.mult_gradient * (u * c + v * s) / (abs(c) + abs(s))
    s2 = 2.0 * art.glow_scale_px**2
    x0, x1 = inst.REFERENCE_COLUMNS, nx - 1 - inst.REFERENCE_COLUMNS
    m += art.mult_glow * np.exp(-((xx - x0) ** 2 + yy**2) / s2)  # lower left
    m += art.mult_glow * ratio * np.exp(-((xx - x1) ** 2 + yy**2) / s2)  # lower right
    if art.mult_field_rms:
        field = _gaussian_field(frng, STRAY_LIGHT_SCALE)
        m += art.mult_field_rms * (field - field.mean()) / field.std()
    out = _zero_reference(m.astype(np.float32))
    out.setflags(write=False)
    return out


def exposure_key(spec) -> int:
    """A stable integer for an exposure (from its file stem): seeds its own stripes."""
    return zlib.crc32(spec.stem.encode())


def exposure_rows(art: Artefacts, filt: str, key: int) -> np.ndarray:
    """Per-exposure row offsets (DN/s, full-frame rows, shape (1024, 1))."""
    ny = inst.FULL_SHAPE[0]
    if art.is_demo or not art.row_stripes_exposure:
        return np.zeros((ny, 1), np.float32)
    rng = _rng(art.seed, _TAG_EXPOSURE, key)
    return (art.row_stripes_exposure * nominal_sky_rate(filt) * rng.normal(size=ny)[:, None]).astype(np.float32)
