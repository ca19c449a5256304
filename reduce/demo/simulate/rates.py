"""From surface brightness to detector count rates (DN/s), with the true detector.

count rate = SB(MJy/sr) / PHOTMJSR[filter] * flat(filter)            (sky + sources)
           + pattern(filter)       detector-fixed background, NOT flat-fielded (DN/s)
           + dark_rate             removed by the dark reference
           + hot_new excess        hot pixels the references do not know
           + program artefacts     (``artefacts.Artefacts``; none for the demo): the sky
             after the flat times MULT, per-exposure row stripes (fixed stripes and warm
             pixels are part of ``pattern``)
Dead pixels (flat 0) and reference pixels collect nothing. ``expected`` is what a perfect
Detector1 returns: everything except the dark current.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import detector_model as dm
from ... import instrument as inst

from .artefacts import (PATTERN_FRACTION, STRAY_LIGHT_RMS, STRAY_LIGHT_SCALE, Artefacts,  # noqa: F401
                        background_pattern, nominal_sky_rate, smooth_pattern)
from . import artefacts as art_mod

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
    sky: np.ndarray | None = None    # the sky alone through PHOTMJSR and the flat
    extra: np.ndarray | None = None  # program artefacts beyond ``pattern`` (sky*flat*MULT, row stripes)

    def _sum(self, *terms) -> np.ndarray:
        out = self.illum + self.pattern + self.hot_new
        for t in terms:
            out = out + t
        if self.extra is not None:
            out = out + self.extra
        return (out * self.sensitive).astype(np.float32)

    @property
    def expected(self) -> np.ndarray:
        """What a perfect Detector1 returns (dark removed): the truth rate."""
        return self._sum()

    @property
    def total(self) -> np.ndarray:
        """Everything the pixel integrates, DN/s."""
        return self._sum(self.dark)

    @property
    def background(self) -> np.ndarray:
        """Everything in ``expected`` that is not source light (DN/s): sky after the flat
        (and MULT), pattern, stripes, warm and new hot pixels."""
        if self.sky is None:
            raise ValueError("rates computed without the sky: no background")
        out = self.sky + self.pattern + self.hot_new
        if self.extra is not None:
            out = out + self.extra
        return (out * self.sensitive).astype(np.float32)

    @property
    def sources(self) -> np.ndarray:
        """Source light through PHOTMJSR and the flat (DN/s): ``illum - sky``."""
        if self.sky is None:
            raise ValueError("rates computed without the sky: no source light")
        return ((self.illum - self.sky) * self.sensitive).astype(np.float32)


def count_rates(sb_mjysr: np.ndarray, filt: str, subarray: str, *, sky_mjysr: np.ndarray | None = None,
                artefacts: Artefacts | None = None, exposure_key: int = 0) -> Rates:
    """Rates for a surface-brightness image ``sb_mjysr`` (MJy/sr, subarray shape, sky
    included); ``sky_mjysr``: the sky part of it (needed for the background truth and for
    sky-scaled artefacts); ``artefacts``: the program's (default: the demo's);
    ``exposure_key``: seeds the per-exposure stripes (``artefacts.exposure_key``)."""
    art = artefacts or Artefacts()
    sl = inst.SUBARRAYS[subarray].slices
    sens, hot = _full_frame_masks()
    flat = dm.flat_field(filt)[sl]
    illum = (sb_mjysr / inst.PHOTMJSR[filt] * flat).astype(np.float32)
    sky = None if sky_mjysr is None else (sky_mjysr / inst.PHOTMJSR[filt] * flat).astype(np.float32)
    extra = None
    if not art.is_demo:
        if sky is None:
            raise ValueError("program artefacts need the sky (sky_mjysr)")
        extra = (sky * art_mod.multiplicative(art, filt)[sl]
                 + art_mod.exposure_rows(art, filt, exposure_key)[sl[0]]).astype(np.float32)
    return Rates(illum=illum, pattern=np.array(art_mod.fixed_additive(art, filt)[sl]),
                 hot_new=np.array(hot[sl]), dark=np.array(dm.dark_rate()[sl]),
                 sensitive=np.array(sens[sl]), sky=sky, extra=extra)
