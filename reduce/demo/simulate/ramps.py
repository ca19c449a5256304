"""Noise-free count rates -> raw MIRI ramps (DN, uint16).

Group g (0-based, NFRAMES=1, GROUPGAP=0) is read (g + 1) frame times after the reset:
read = pedestal + charge(g) + read noise, with
- charge: cumulative sum of Poisson electrons per frame (rate * TFRAME * GAIN), in DN;
- cosmic rays: a jump (DN) added from a random group on (g >= 1), some with 4-neighbour
  charge sharing;
- saturation: charge stops at the full well, FULL_WELL above the pedestal-independent
  SATURATION threshold, so saturated reads sit above instrument.SATURATION;
- read noise: Gaussian, instrument.READNOISE_READ per read;
- values rounded and clipped to 0..65535.
Detector1 for MIRI then marks group 0 (firstframe, NGROUPS > 3) and the last group
(lastframe, NGROUPS > 2) DO_NOT_USE: the rate comes from groups 1 .. NGROUPS-2.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ... import instrument as inst

FULL_WELL = inst.SATURATION + 1500.0  # DN: where a pixel's read level stops rising
CR_DENSITY_PER_S = 1.0e-4  # cosmic-ray hits per pixel per second of exposure
CR_DENSITY_MIN = 1.5e-3  # at least this many hits per pixel per exposure
CR_DN_RANGE = (150.0, 5000.0)  # log-uniform jump amplitude, DN
_PEDESTAL_SEED = 20240602


@lru_cache(maxsize=None)
def pedestal_map() -> np.ndarray:
    """Per-pixel reset level (DN, full frame): instrument.PEDESTAL with a fixed pixel-to-pixel
    scatter of 40 DN (a detector property, the same in every exposure)."""
    rng = np.random.default_rng(_PEDESTAL_SEED)
    ped = inst.PEDESTAL + rng.normal(0.0, 40.0, size=inst.FULL_SHAPE)
    ped = ped.astype(np.float32)
    ped.setflags(write=False)
    return ped


def cosmic_rays(rng: np.random.Generator, shape: tuple[int, int], ngroups: int, nints: int,
                duration: float) -> np.ndarray:
    """Cosmic-ray hits as a structured array (integration, group, y, x, dn) in subarray
    pixels; neighbours of a shared hit are separate rows. Only groups >= 1 (a hit before
    the first read is an offset, not a jump)."""
    ny, nx = shape
    npix = ny * nx
    density = max(CR_DENSITY_MIN, CR_DENSITY_PER_S * duration / max(nints, 1))
    rows = []
    if ngroups < 2:
        return np.zeros(0, dtype=_CR_DTYPE)
    for i in range(nints):
        n = rng.poisson(density * npix)
        y = rng.integers(0, ny, n)
        x = rng.integers(0, nx, n)
        g = rng.integers(1, ngroups, n)
        dn = np.exp(rng.uniform(*np.log(CR_DN_RANGE), n))
        share = rng.uniform(size=n) < 0.25
        for k in range(n):
            rows.append((i, g[k], y[k], x[k], dn[k]))
            if share[k]:
                for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    yy, xx = y[k] + dy, x[k] + dx
                    if 0 <= yy < ny and 0 <= xx < nx:
                        rows.append((i, g[k], yy, xx, 0.08 * dn[k]))
    return np.array(rows, dtype=_CR_DTYPE)


_CR_DTYPE = np.dtype([("integration", "i2"), ("group", "i2"), ("y", "i4"), ("x", "i4"), ("dn", "f4")])


def make_ramps(rate: np.ndarray, *, ngroups: int, nints: int, tframe: float,
               rng: np.random.Generator, pedestal: np.ndarray, crs: np.ndarray | None = None,
               noise: bool = True) -> np.ndarray:
    """uint16 ramps (nints, ngroups, ny, nx) for a total count rate ``rate`` (DN/s, >= 0)
    and per-pixel ``pedestal`` (DN). ``noise=False``: no Poisson, read noise or cosmic
    rays (the noise-free ramp, float64)."""
    ny, nx = rate.shape
    mean_e = np.clip(rate.astype(np.float64), 0.0, None) * tframe * inst.GAIN  # e- per frame
    out = np.empty((nints, ngroups, ny, nx), dtype=np.uint16 if noise else np.float64)
    cr_jumps = {}
    if crs is not None and noise:
        for row in crs:
            key = (int(row["integration"]), int(row["group"]))
            cr_jumps.setdefault(key, []).append(row)
    for i in range(nints):
        charge = np.zeros((ny, nx), dtype=np.float64)  # DN
        for g in range(ngroups):
            if noise:
                charge += rng.poisson(mean_e) / inst.GAIN
                for row in cr_jumps.get((i, g), ()):
                    charge[row["y"], row["x"]] += row["dn"]
            else:
                charge += mean_e / inst.GAIN
            level = np.minimum(pedestal + charge, FULL_WELL)
            if noise:
                level = level + rng.normal(0.0, inst.READNOISE_READ, size=(ny, nx))
                out[i, g] = np.clip(np.rint(level), 0, 65535).astype(np.uint16)
            else:
                out[i, g] = level
    return out


def fit_slope(ramp: np.ndarray, tframe: float, groups: slice | None = None) -> np.ndarray:
    """Ordinary least-squares slope (DN/s) of ramps (ngroups, ...) over ``groups``
    (default: those Detector1 uses for MIRI, 1 .. ngroups-2)."""
    ng = ramp.shape[0]
    if groups is None:
        groups = slice(1, ng - 1) if ng > 3 else slice(0, ng)
    y = ramp[groups].astype(np.float64)
    t = (np.arange(ng)[groups] + 1) * tframe
    t = t - t.mean()
    shape = (-1,) + (1,) * (y.ndim - 1)
    return ((y - y.mean(axis=0)) * t.reshape(shape)).sum(axis=0) / (t**2).sum()
