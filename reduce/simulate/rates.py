"""From surface brightness to detector count rates (DN/s), with the true detector.

count rate = SB(MJy/sr) / PHOTMJSR[filter] * flat(filter)            (sky + sources)
           + pattern(filter)       detector-fixed background, NOT flat-fielded (DN/s)
           + dark_rate             removed by the dark reference
           + hot_new excess        hot pixels the references do not know
Dead pixels (flat 0) and reference pixels collect nothing. ``expected`` is what a perfect
Detector1 returns: everything except the dark current.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import detector_model as dm
from .. import instrument as inst

PATTERN_FRACTION = 0.06  # mean of the background pattern relative to the nominal sky rate
STRAY_LIGHT_RMS = 0.4  # rms of the mid-scale stray-light field, relative to the pattern's mean
STRAY_LIGHT_SCALE = 48.0  # pixels: correlation length of that field
_PATTERN_SEED = 20240601  # detector property: independent of the demo seed


def nominal_sky_rate(filt: str) -> float:
    """The nominal sky level of ``filt`` in DN/s (before the flat)."""
    from .scene import SKY_MJYSR

    return SKY_MJYSR[filt] / inst.PHOTMJSR[filt]


@lru_cache(maxsize=None)
def background_pattern(filt: str) -> np.ndarray:
    """Detector-fixed additive background (DN/s, full frame, read-only): stray light and
    glow that do not follow the flat. A smooth gradient, a brighter band over the
    coronagraph/LRS side (x < ~360), a corner glow, a mid-scale stray-light field
    (Gaussian random field, correlation length STRAY_LIGHT_SCALE px, rms STRAY_LIGHT_RMS of
    the mean: structure of ~2.4 % of the sky everywhere, subarrays included), faint
    periodic column striping and per-column offsets. Mean about PATTERN_FRACTION of the
    nominal sky; zero on the reference columns."""
    from scipy import ndimage

    ny, nx = inst.FULL_SHAPE
    k = inst.FILTERS.index(filt)
    rng = np.random.default_rng([_PATTERN_SEED, k])
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u, v = xx / nx - 0.5, yy / ny - 0.5
    shape = 1.0 + 0.35 * u - 0.25 * v + 0.15 * u * v
    shape += 0.6 / (1.0 + np.exp((xx - 360.0) / 12.0))  # coronagraph side
    gx, gy = 960.0 + 20 * rng.normal(), 70.0 + 20 * rng.normal()
    shape += 0.8 * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * 110.0**2))  # glow
    shape += 0.08 * np.cos(2 * np.pi * xx / (31.0 + k) + rng.uniform(0, 2 * np.pi)) * (1 - v)
    shape += rng.normal(0.0, 0.03, size=nx)[None, :]
    coarse = ndimage.gaussian_filter(rng.normal(size=(ny // 8, nx // 8)), STRAY_LIGHT_SCALE / 8.0, mode="wrap")
    field = ndimage.zoom(coarse, (ny / coarse.shape[0], nx / coarse.shape[1]), order=3, mode="grid-wrap")
    shape += STRAY_LIGHT_RMS * (field - field.mean()) / field.std()
    pat = (PATTERN_FRACTION * nominal_sky_rate(filt) * shape / shape.mean()).astype(np.float32)
    pat[:, :inst.REFERENCE_COLUMNS] = 0.0
    pat[:, -inst.REFERENCE_COLUMNS:] = 0.0
    pat.setflags(write=False)
    return pat


@lru_cache(maxsize=None)
def _full_frame_masks() -> tuple[np.ndarray, np.ndarray]:
    """(sensitive, hot_new_rate): light-sensitive pixels (not dead, not reference) and the
    extra dark current of the new hot pixels (DN/s), full frame."""
    ny, nx = inst.FULL_SHAPE
    sens = np.ones((ny, nx), bool)
    sens[:, :inst.REFERENCE_COLUMNS] = False
    sens[:, -inst.REFERENCE_COLUMNS:] = False
    r, c = dm.bad_pixel_positions("dead")
    sens[r, c] = False
    hot = np.zeros((ny, nx), np.float32)
    r, c = dm.bad_pixel_positions("hot_new")
    hot[r, c] = dm.hot_pixel_excess("hot_new")
    sens.setflags(write=False)
    hot.setflags(write=False)
    return sens, hot


@dataclass
class Rates:
    """Noise-free count rates of one exposure (DN/s, float32, subarray shape)."""

    illum: np.ndarray     # sky + sources through PHOTMJSR and the flat
    pattern: np.ndarray   # detector-fixed background
    hot_new: np.ndarray   # unknown hot pixels
    dark: np.ndarray      # dark current (incl. catalogued hot pixels)
    sensitive: np.ndarray  # bool: pixel collects light and dark current

    @property
    def expected(self) -> np.ndarray:
        """What a perfect Detector1 returns (dark removed): the truth rate."""
        return ((self.illum + self.pattern + self.hot_new) * self.sensitive).astype(np.float32)

    @property
    def total(self) -> np.ndarray:
        """Everything the pixel integrates, DN/s."""
        return ((self.illum + self.pattern + self.hot_new + self.dark) * self.sensitive).astype(np.float32)


def count_rates(sb_mjysr: np.ndarray, filt: str, subarray: str) -> Rates:
    """Rates for a surface-brightness image ``sb_mjysr`` (MJy/sr, subarray shape)."""
    sl = inst.SUBARRAYS[subarray].slices
    sens, hot = _full_frame_masks()
    flat = dm.flat_field(filt)[sl]
    illum = (sb_mjysr / inst.PHOTMJSR[filt] * flat).astype(np.float32)
    return Rates(illum=illum, pattern=np.array(background_pattern(filt)[sl]),
                 hot_new=np.array(hot[sl]), dark=np.array(dm.dark_rate()[sl]),
                 sensitive=np.array(sens[sl]))
