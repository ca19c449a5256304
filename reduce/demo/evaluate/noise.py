"""The noise floor of :mod:`reduce.demo.evaluate`: the exposures' actual noise, resampled as the mosaic was."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage


def reproject_scene(scene: np.ndarray, scene_wcs, mosaic_wcs, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of the truth scene (astropy WCS) onto a mosaic grid (gwcs);
    NaN outside the scene. Surface brightness, so no flux rescaling."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    ra, dec = mosaic_wcs(xx, yy)
    sx, sy = scene_wcs.world_to_pixel_values(ra, dec)
    out = ndimage.map_coordinates(np.asarray(scene, np.float64), [np.nan_to_num(sy, nan=-1e9),
                                                                  np.nan_to_num(sx, nan=-1e9)],
                                  order=1, mode="constant", cval=np.nan)
    return out


def _resample_pars(i2d_model) -> dict:
    """The resample parameters the mosaic records (kernel, pixfrac, weight_type, fillval)."""
    r = i2d_model.meta.resample
    pars = {}
    for key in ("kernel", "pixfrac", "weight_type", "fillval"):
        v = getattr(r, key, None)
        if v is not None:
            pars[key] = v
    return pars


def rate_to_cal(rate: np.ndarray, filt: str, subarray: str) -> np.ndarray:
    """A count rate (DN/s) of the simulator's truth in stage-2 units (MJy/sr), converted as
    stage 2 does: divided by the flat reference, times PHOTMJSR. NaN where the flat is 0."""
    from .. import detector_model as dm
    from ... import instrument as inst

    flat = dm.flat_field(filt)[inst.SUBARRAYS[subarray].slices].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat > 0, np.asarray(rate, np.float64) * inst.PHOTMJSR[filt] / flat, np.nan)


def actual_noise(cal_file: Path, rate_truth_file: Path, filt: str, subarray: str) -> np.ndarray:
    """The noise realisation of one exposure in MJy/sr: stage-2 SCI minus the true count rate
    (``RATE`` of the simulator's rate truth) in stage-2 units (:func:`rate_to_cal`). NaN
    where either is undefined."""
    from astropy.io import fits

    with fits.open(cal_file) as h:
        sci = np.asarray(h["SCI"].data, np.float64)
    with fits.open(rate_truth_file) as h:
        rate = np.asarray(h["RATE"].data, np.float64)
    return sci - rate_to_cal(rate, filt, subarray)


def noise_mosaic(crf_files: list[Path], i2d_model, seed: int = 0,
                 noises: dict[Path, np.ndarray] | None = None) -> np.ndarray:
    """A noise-only mosaic: the crf files with SCI = their actual noise (``noises``, by crf
    path; see :func:`actual_noise`) or N(0, VAR_POISSON + VAR_RNOISE) where that is missing
    or NaN, resampled as the i2d was (its resample parameters, onto its WCS)."""
    import tempfile

    import asdf
    from jwst.datamodels import ModelLibrary
    from jwst.resample import ResampleStep
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(seed)
    models = []
    for f in sorted(crf_files):
        m = datamodels.open(str(f))
        var = np.asarray(m.var_poisson, np.float64) + np.asarray(m.var_rnoise, np.float64)
        ok = np.isfinite(m.data) & np.isfinite(var) & (var >= 0)
        gauss = rng.standard_normal(m.data.shape) * np.sqrt(np.where(ok, var, 0.0))
        real = (noises or {}).get(Path(f))
        if real is not None:
            gauss = np.where(np.isfinite(real), real, gauss)
        m.data = np.where(ok, gauss, np.nan).astype(np.float32)
        models.append(m)
    shape = i2d_model.data.shape
    with tempfile.TemporaryDirectory(prefix="mirim-eval-") as tmp:
        wcs = i2d_model.meta.wcs
        wcs.array_shape = shape
        wpath = Path(tmp) / "output_wcs.asdf"
        asdf.AsdfFile({"wcs": wcs}).write_to(wpath)
        pars = _resample_pars(i2d_model)  # the grid comes from output_wcs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # an instance, not Step.call: no CRDS parameter-reference lookup
            step = ResampleStep(output_wcs=str(wpath), in_memory=True, save_results=False, **pars)
            step.log.setLevel(logging.WARNING)
            result = step.run(ModelLibrary(models, on_disk=False))
        data = np.array(result.data, np.float64)
        wht = np.array(result.wht, np.float64)
        result.close()
    for m in models:
        m.close()
    if data.shape != shape:
        raise ValueError(f"noise mosaic shape {data.shape} differs from the mosaic's {shape}")
    data[~(wht > 0)] = np.nan
    return data
