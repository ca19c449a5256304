"""Is a group's large-scale background fixed on the detector or on the sky?

A super background (or any smooth background model of one exposure) removes whatever
smooth structure the exposures share. On the detector that is stray light, glow and
gradients; on the sky it is extended emission (nebulae, galaxy discs, cirrus), which is
science and must stay. Dithers tell them apart: detector-fixed structure keeps its
detector position from one exposure to the next and moves on the sky; sky-fixed
structure does the opposite. Here each exposure's masked, normalised image is reduced to
coarse block medians; their dispersion across the exposures is measured once at the same
*detector* blocks and once at the same *sky* positions (through each exposure's FITS WCS).
Structure that is fixed on the detector leaves the detector-frame dispersion at the noise
and raises the sky-frame one, and vice versa.

The comparison is paired: at every position (each exposure's block centres) the variance
across exposures is computed in both frames, and a sign test counts the positions where
the sky frame is the more coherent. ``sky_dominated`` is true when that count exceeds
half of the informative positions by ``N_SIGMA`` binomial standard deviations: then the
smooth background the exposures share is (mostly) on the sky, and only pixel-scale
structure may be taken from a template; the smooth level is left to stage 3's skymatch.
Positions where the dithers are too small to move the sky to another block are ties and
carry no information. A smooth model is subtracted only when the frames could be compared
and the structure is not significantly on the sky (``smooth_on_detector``); with dithers
too small to tell, extended emission and detector structure are the same thing to the
data, and the emission (science) is kept.

Pure functions: arrays (and coordinate transforms as callables) in, numbers out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["FrameTest", "block_size", "coarse_map", "frame_test", "N_SIGMA"]

#: Significance (in binomial standard deviations) of the sign test that calls the shared
#: structure sky-fixed.
N_SIGMA = 2.0

#: Fewer informative positions than this: the dithers are too small to tell the frames apart.
MIN_INFORMATIVE = 8


@dataclass
class FrameTest:
    """The outcome of :func:`frame_test` (variances in normalised units squared)."""

    detector_var: float  # median dispersion across exposures at the same detector blocks
    sky_var: float  # median dispersion across exposures at the same sky positions
    noise_var: float  # what the block medians' own noise gives
    n_sky_better: int  # informative positions where the sky frame is the more coherent
    n_informative: int  # positions where the two frames differ
    block: int  # block size (pixels)

    @property
    def informative(self) -> bool:
        """Enough positions moved to another block between exposures to compare the frames."""
        return self.n_informative >= MIN_INFORMATIVE

    @property
    def smooth_on_detector(self) -> bool:
        """A smooth background model may be subtracted: the frames could be compared and the
        shared structure is not significantly on the sky."""
        return self.informative and not self.sky_dominated

    @property
    def sky_dominated(self) -> bool:
        """True when the shared smooth structure is significantly fixed on the sky."""
        n = self.n_informative
        return n >= MIN_INFORMATIVE and self.n_sky_better > n / 2 + N_SIGMA * np.sqrt(n) / 2

    def as_dict(self) -> dict:
        return {"detector_var": self.detector_var, "sky_var": self.sky_var, "noise_var": self.noise_var,
                "n_sky_better": self.n_sky_better, "n_informative": self.n_informative, "block": self.block,
                "sky_dominated": bool(self.sky_dominated), "smooth_on_detector": bool(self.smooth_on_detector)}


def block_size(shape: tuple[int, int]) -> int:
    """16 px blocks (a median of 256 pixels: ~0.08 of a pixel's noise), or a sixteenth of
    the smaller side if that is smaller: fine enough that dithers of a few arcseconds move
    the sky to another block."""
    return int(max(4, min(16, min(shape) // 16)))


def coarse_map(plane: np.ndarray, block: int) -> np.ndarray:
    """Block medians of ``plane`` (NaN = masked) divided by their median, minus 1; NaN for
    blocks less than half finite."""
    ny, nx = (plane.shape[0] // block) * block, (plane.shape[1] // block) * block
    blk = plane[:ny, :nx].reshape(ny // block, block, nx // block, block).transpose(0, 2, 1, 3)
    blk = blk.reshape(ny // block, nx // block, block * block)
    enough = np.isfinite(blk).sum(axis=-1) >= (block * block) // 2
    with warnings.catch_warnings():  # all-NaN blocks: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(blk, axis=-1)
    med[~enough] = np.nan
    ref = np.nanmedian(med) if np.isfinite(med).any() else np.nan
    return med / ref - 1.0


def _variances(values: np.ndarray) -> np.ndarray:
    """Variance across exposures (axis 0) per position; NaN with fewer than 2 values."""
    out = np.full(values.shape[1], np.nan)
    ok = np.isfinite(values).sum(axis=0) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out[ok] = np.nanvar(values[:, ok], axis=0, ddof=1)
    return out


def frame_test(planes: list[np.ndarray], to_sky: list[Callable], to_pixel: list[Callable],
               pixel_noise: list[float]) -> FrameTest:
    """Compare the dispersion of the exposures' coarse maps in the detector and sky frames.

    Parameters
    ----------
    planes : list of 2D `~numpy.ndarray`
        Normalised exposures (sky ~1) with sources and bad pixels NaN, same shape.
    to_sky, to_pixel : lists of callables
        Per exposure, ``(x, y) -> (ra, dec)`` and ``(ra, dec) -> (x, y)`` (0-based pixels, deg).
    pixel_noise : list of float
        Per exposure, the white-noise variance of one pixel (normalised units squared).

    Returns
    -------
    result : `FrameTest`
    """
    block = block_size(planes[0].shape)
    maps = np.array([coarse_map(p, block) for p in planes])
    n, nby, nbx = maps.shape
    noise = float(np.median(pixel_noise)) * (np.pi / 2) / (block * block)
    yc, xc = (np.mgrid[0:nby, 0:nbx] * block + (block - 1) / 2.0).reshape(2, -1)
    det_vals = maps.reshape(n, -1)
    v_det, v_sky = [], []
    for i in range(n):  # positions: exposure i's blocks; values: every exposure there
        ra, dec = to_sky[i](xc, yc)
        vals = np.full((n, xc.size), np.nan)
        for j in range(n):
            x, y = to_pixel[j](ra, dec)
            x, y = np.asarray(x, float), np.asarray(y, float)
            fin = np.isfinite(x) & np.isfinite(y)
            bx = np.full(x.shape, -1)
            by = np.full(y.shape, -1)
            bx[fin] = np.floor(x[fin] / block).astype(int)
            by[fin] = np.floor(y[fin] / block).astype(int)
            inside = fin & (bx >= 0) & (bx < nbx) & (by >= 0) & (by < nby)
            vals[j, inside] = maps[j, by[inside], bx[inside]]
        both = np.isfinite(det_vals).all(axis=0) & np.isfinite(vals).all(axis=0)
        v_det.append(_variances(det_vals[:, both]))
        v_sky.append(_variances(vals[:, both]))
    v_det, v_sky = np.concatenate(v_det), np.concatenate(v_sky)
    differ = ~np.isclose(v_det, v_sky, rtol=1e-6, atol=0.0)  # same blocks in both frames: a tie
    return FrameTest(detector_var=float(np.median(v_det)) - noise if v_det.size else float("nan"),
                     sky_var=float(np.median(v_sky)) - noise if v_sky.size else float("nan"),
                     noise_var=noise, n_sky_better=int(np.count_nonzero(differ & (v_sky < v_det))),
                     n_informative=int(np.count_nonzero(differ)), block=block)
