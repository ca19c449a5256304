"""The "true" MIRIMAGE detector that the simulator observes with and the synthetic CRDS
references describe. Deterministic (fixed seeds), full frame, 0-based (rows, columns).

The simulator adds, and the references remove: dark current (DN/s), flat-field response
(dimensionless, per filter), dead pixels and catalogued hot pixels. Hot pixels that appeared
after the references were made (``new_hot_pixels``) are only in the simulator: they are what
the cleaning's hot-pixel option exists for.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import instrument as inst

_SEED = 20240522  # fixed: references and simulator must agree for any demo seed
N_DEAD = 400
N_HOT_KNOWN = 300
N_HOT_NEW = 120
HOT_RATE_RANGE = (5.0, 80.0)  # DN/s, extra dark current of a hot pixel


def _rng(tag: int) -> np.random.Generator:
    return np.random.default_rng([_SEED, tag])


@lru_cache(maxsize=None)
def _bad_pixel_positions() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = _rng(1)
    ny, nx = inst.FULL_SHAPE
    ncol = nx - 2 * inst.REFERENCE_COLUMNS
    total = N_DEAD + N_HOT_KNOWN + N_HOT_NEW
    flat = rng.choice(ny * ncol, size=total, replace=False)
    rows, cols = np.divmod(flat, ncol)
    cols = cols + inst.REFERENCE_COLUMNS
    edges = np.cumsum([0, N_DEAD, N_HOT_KNOWN, N_HOT_NEW])
    names = ("dead", "hot_known", "hot_new")
    return {n: (rows[a:b], cols[a:b]) for n, a, b in zip(names, edges[:-1], edges[1:])}


def bad_pixel_positions(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of ``dead``, ``hot_known`` or ``hot_new`` pixels, full frame, 0-based."""
    return _bad_pixel_positions()[kind]


@lru_cache(maxsize=None)
def hot_pixel_excess(kind: str) -> np.ndarray:
    """Extra dark current in DN/s of each pixel of ``bad_pixel_positions(kind)``."""
    rng = _rng(2 if kind == "hot_known" else 3)
    n = len(bad_pixel_positions(kind)[0])
    return rng.uniform(*HOT_RATE_RANGE, size=n).astype(np.float32)


@lru_cache(maxsize=None)
def dark_rate() -> np.ndarray:
    """Dark current in DN/s as the dark reference records it (catalogued hot pixels included)."""
    ny, nx = inst.FULL_SHAPE
    rate = np.full((ny, nx), inst.DARK_RATE, dtype=np.float32)
    r, c = bad_pixel_positions("hot_known")
    rate[r, c] += hot_pixel_excess("hot_known")
    rate.setflags(write=False)
    return rate


@lru_cache(maxsize=None)
def flat_field(filt: str) -> np.ndarray:
    """Relative pixel response for a filter (mean ~1): a smooth vignetting-like gradient
    plus 1 % pixel-to-pixel variation. Dead pixels have response 0 (flagged by the mask)."""
    ny, nx = inst.FULL_SHAPE
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    u, v = (xx - nx / 2) / nx, (yy - ny / 2) / ny
    k = inst.FILTERS.index(filt)
    smooth = 1.0 - 0.06 * (u**2 + v**2) + 0.015 * np.cos(2 * np.pi * (u + 0.1 * k)) * v
    ptp = _rng(10 + k).normal(1.0, 0.01, size=(ny, nx))
    flat = (smooth * ptp).astype(np.float32)
    r, c = bad_pixel_positions("dead")
    flat[r, c] = 0.0
    flat.setflags(write=False)
    return flat
