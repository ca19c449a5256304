"""A faithful re-implementation of the ORIGINAL notebook's cleaning (workflow.md 5a, 5b),
defects included, for the quality benchmark only (it is not part of the product).

Applied to the stage-2 cal files of a workspace; writes ``clean/<stem>_cal.fits`` (what
stage 3 reads). What is reproduced on purpose:

* source masks: detection as the original configured SExtractor (``DETECT_THRESH``,
  minimum area pi*(0.1"/pixscale)^2, deblending), emulated with our photutils detection
  (:func:`reduce.clean.masks.detect`), and the original's *maximum area* cut: segments
  larger than pi*(5"/pixscale)^2 pixels are dropped (so big galaxies are not masked);
  pixels with DQ not in {0, 4} or non-finite ERR are NaN;
* small-source removal off by one and never checking the highest label
  (``for i in range(1, max): if count < SMALL_SOURCE_THRESH``);
* the mask dilated with a 3x3 kernel ``DILATE_ITERATIONS`` times;
* median filter: in place (fills feed later fills, smearing down/right), windows built
  with slices whose negative starts give empty windows at the top/left edges (those pixels
  stay NaN), a pure-Python loop, DQ not updated (filled pixels stay DO_NOT_USE);
* super background: group key FILTER + ``str(DURATION)`` minus its '.' minus its last two
  characters; each exposure masked and divided by its own median; template = nanmedian of
  the stack INCLUDING the exposure itself; with >= MEDIAN_THRESH members the template is
  rescaled to the median of the whole unmasked image and subtracted; NaN where the
  template is NaN; ERR/DQ untouched.

Run: ``python -m benchmarks.original_clean WORKSPACE`` (then ``mirim-reduce stage3``
without --overwrite, after removing the old mosaics; see bench_clean_quality).
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

MAX_RADIUS_ARCSEC = 5.0


def original_segmentation(sci, err, dq, cfg: dict, pixel_scale: float) -> np.ndarray:
    """SExtractor-like segmentation with the original's min and max areas (not dilated)."""
    from reduce.clean import masks

    bad = masks.coverage_mask(sci, err, dq, good_bits=masks.GOOD_DQ_BITS)
    n_pixels = masks.min_source_area(pixel_scale, 0.1, 3)
    segm, _, _ = masks.detect(sci, bad, detect_thresh=cfg["DETECT_THRESH"], n_pixels=n_pixels,
                              small_source_thresh=0)
    max_area = math.pi * (MAX_RADIUS_ARCSEC / pixel_scale) ** 2
    counts = np.bincount(segm.ravel())
    big = np.flatnonzero(counts > max_area)
    big = big[big > 0]
    if big.size:
        segm = np.where(np.isin(segm, big), 0, segm)
    return segm


def original_small_source_removal(segm: np.ndarray, thresh: int) -> np.ndarray:
    """The original loop: off by one (``<``) and the highest label never checked."""
    segm = segm.copy()
    for i in range(1, int(segm.max(initial=0))):
        if np.count_nonzero(segm == i) < thresh:
            segm[segm == i] = 0
    return segm


def original_median_filter(data: np.ndarray, segm_mask: np.ndarray, w: int) -> np.ndarray:
    """In-place fill of NaN pixels outside the mask (aliasing and edge defects kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, j in np.argwhere(np.isnan(data) & ~segm_mask):  # raster order, as the double loop
            data[i, j] = np.nanmedian(data[i - w:i + w + 1, j - w:j + w + 1])
    return data


def original_key(filt: str, duration: float) -> str:
    return f"{filt}{str(duration).replace('.', '')[:-2]}"


def run(ws_root: Path, cfg: dict | None = None) -> dict:
    """Clean every stage-2 cal file of the workspace the original way; returns the groups."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import ImageModel

    from reduce import config as config_mod
    from reduce.instrument import PIXEL_SCALE

    ws_root = Path(ws_root)
    if cfg is None:
        cfg = config_mod.load(ws_root / "config.toml" if (ws_root / "config.toml").is_file() else None)
    cals = sorted((ws_root / "stage2").glob("*_cal.fits"))
    groups: dict[str, list[Path]] = {}
    for f in cals:
        h = fits.getheader(f)
        groups.setdefault(original_key(h["FILTER"], h["DURATION"]), []).append(f)
    out_dir = ws_root / "clean"
    out_dir.mkdir(exist_ok=True)
    for key, members in groups.items():
        datas, masks_, models = [], [], []
        for f in members:
            m = ImageModel(str(f))
            sci = np.array(m.data, np.float64)
            err, dq = np.array(m.err), np.array(m.dq)
            bad = ~(((dq == 0) | (dq == 4)) & np.isfinite(err))
            sci[bad] = np.nan
            segm = original_segmentation(sci, err, dq, cfg, PIXEL_SCALE)
            segm = original_small_source_removal(segm, cfg["SMALL_SOURCE_THRESH"])
            mask = segm > 0
            if cfg["DILATE_SEG"]:
                for _ in range(cfg["DILATE_ITERATIONS"]):
                    mask = ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool))
            if cfg["MEDIAN_FILTER"]:
                original_median_filter(sci, segm > 0, cfg["WINDOW_SIZE"])
            datas.append(sci)
            masks_.append(mask)
            models.append(m)
        if cfg["SUPER_BKG_SUB"] and len(members) >= cfg["MEDIAN_THRESH"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                stack = []
                for sci, mask in zip(datas, masks_):
                    masked = np.where(mask, np.nan, sci)
                    stack.append(masked / np.nanmedian(masked))
                template = np.nanmedian(np.array(stack), axis=0)  # self-inclusive
                for k, sci in enumerate(datas):
                    datas[k] = sci - template * np.nanmedian(sci)  # whole image, sources included
        for f, m, sci in zip(members, models, datas):
            m.data = sci.astype(np.float32)
            m.meta.filename = f.name
            with open(out_dir / f.name, "wb") as fh:
                m.to_fits(fh)
            m.close()
    return {k: [f.name for f in v] for k, v in groups.items()}


if __name__ == "__main__":
    print(run(Path(sys.argv[1])))
