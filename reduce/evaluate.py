"""Quality of a reduction against the simulator's truth: ``mirim-reduce evaluate WORKSPACE``.

Per mosaic (``stage3/*/*_i2d.fits``; key ``filter``, plus ``mosaic`` since with
``mosaic_per = "observation"`` one filter may have several mosaics) three figures:

``rms_ratio``
    Standard deviation of the background residual in *source-free sky* divided by the
    *noise floor* (1.00 = perfect background removal; a residual pattern adds in
    quadrature).
``mean_sigma``
    Mean of the same residual in units of the noise floor (0 = no offset).
``flux_ratio``
    Median over the point sources above 20 sigma of (mosaic aperture flux) / (truth-scene
    aperture flux).

Definitions
-----------
residual
    ``mosaic SCI - truth scene`` (the simulator's ``sky_<filter>.fits`` SCENE: sources
    only, MJy/sr, bilinearly resampled onto the mosaic grid through both WCSs). The truth
    has no sky: a perfect background removal leaves only noise. Stage 3 runs skymatch
    (``global+match``, ``subtract=True`` in our defaults) so the sky level is *removed*,
    not merely matched: a non-zero mean is a residual of the reduction (of the cleaning
    or of skymatch's own sky estimate), not a convention. With ``SKIP_BKGSUB`` the
    uniform sky stays in the mosaic and ``mean_sigma`` measures it.
source-free sky
    Mosaic pixels that are finite, have ``WHT > 0``, are at least ``EDGE_PX`` pixels
    inside the covered area, and are farther than ``N_FWHM`` PSF FWHMs from every pixel
    where the truth scene exceeds ``SCENE_FRACTION`` of the noise floor (so faint wings of
    galaxies and every point source are excluded, as is the ~0.1" zero-point error of the
    mosaic's astrometry).
noise floor
    What a *perfect* background removal leaves: the mosaic of the exposures' own noise.
    Drizzling (square kernel, pixfrac 1) correlates the noise of neighbouring mosaic pixels
    and jwst's resample propagates variances without that correlation, so the i2d ERR
    overestimates the per-pixel scatter (by ~1.5 for pixfrac 1); and jwst's ramp fit
    reports a variance a few percent below the true scatter of its slopes when the
    Poisson noise dominates (non-optimal weights). The floor is therefore measured on a
    noise-only reduction: every stage-3 ``*_crf.fits`` of the mosaic (after tweakreg,
    skymatch and outlier flagging: same WCS, weights and rejected pixels) gets as SCI the
    exposure's *actual* noise, its stage-2 SCI minus the simulator's true count rate
    (``RATE`` of the rate truth: sky, sources, pattern and new hot pixels) converted as
    stage 2 does (divided by the flat reference, times PHOTMJSR), and is resampled with
    jwst's ResampleStep with the mosaic's own resample parameters onto the mosaic's grid.
    Pixels without a stage-2 value (bad pixels the cleaning filled) get a Gaussian of
    variance ``VAR_POISSON + VAR_RNOISE``; without a truth rate file for an exposure the
    whole exposure does (``N_REALISATIONS`` seeded realisations are then averaged). The
    floor is the standard deviation of that noise mosaic over the source-free pixels.
    Deterministic. Validated on the demo: a reduction whose cal files had the true
    background (pattern, sky, new hot pixels) removed gives ``rms_ratio`` 1.00.
    Both standard deviations are taken after clipping pixels more than ``CLIP_SIGMA``
    floors from the median (residual hot pixels and cosmic rays are not background).
point sources above 20 sigma
    Isolated truth point sources not tagged ``saturating``, ``5 FWHM + 2`` pixels inside the mosaic,
    with a finite, covered ``5 FWHM`` box, whose *true* aperture flux exceeds 20 times the
    aperture noise ``sqrt(sum(VAR_POISSON + VAR_RNOISE))`` over the aperture (the
    drizzled variance is the right one for sums over areas larger than the kernel).
    The mosaic aperture is centred on the source's centroid in the mosaic (:func:`recentre`),
    the truth aperture on its true position. The selection depends on the truth and the data noise only, so every variant of a
    reduction is scored on the same sources. Isolated: the aperture photometry of the truth
    scene gives the source's own flux within ``ISOLATION`` (neighbours, a galaxy's light
    and its curvature under the aperture change it by less than that; a faint star on a
    galaxy's core measures the galaxy's structure, not the reduction's photometry). Fluxes: circular aperture of radius
    2 FWHM minus the median of a 3-5 FWHM annulus, the *same* sky apertures on the mosaic
    and on the truth scene, so neighbours and galaxy light cancel.

Pure metric functions (:func:`source_free_mask`, :func:`residual_stats`,
:func:`aperture_flux`, :func:`flux_ratio`) take arrays; :func:`evaluate_workspace` does the
FITS reading.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import InputError

__all__ = ["SCENE_FRACTION", "N_FWHM", "EDGE_PX", "CLIP_SIGMA", "SNR_MIN", "ISOLATION", "N_REALISATIONS",
           "MosaicMetrics", "disk", "source_free_mask", "clipped", "residual_stats",
           "aperture_flux", "recentre", "flux_ratio", "reproject_scene", "rate_to_cal", "actual_noise", "noise_mosaic", "evaluate_mosaic",
           "evaluate_workspace", "find_truth", "GOALS", "format_table"]

#: Truth-scene level (fraction of the noise floor) above which a pixel holds a source.
SCENE_FRACTION = 0.05
#: Source-free sky starts this many PSF FWHMs away from any source pixel.
N_FWHM = 3.0
#: Pixels this close to the edge of the covered area are not used.
EDGE_PX = 3
#: Pixels more than this many floors from the median are clipped from the standard deviations.
CLIP_SIGMA = 5.0
#: Point sources are used for the flux ratio above this true signal-to-noise ratio.
SNR_MIN = 20.0
#: A point source is isolated when the truth scene's aperture photometry is within this
#: fraction of its own flux.
ISOLATION = 0.02
#: Noise-only realisations averaged for the floor.
N_REALISATIONS = 2
#: The goals on the demo.
GOALS = {"rms_ratio": 1.05, "mean_sigma": 0.1, "flux_ratio": 0.01}


@dataclass
class MosaicMetrics:
    """The figures of one mosaic (see the module docstring)."""

    filter: str
    mosaic: str
    rms_ratio: float
    mean_sigma: float
    flux_ratio: float
    floor: float = math.nan  # MJy/sr, per pixel
    rms: float = math.nan  # MJy/sr
    mean: float = math.nan  # MJy/sr
    n_sky: int = 0  # source-free pixels
    n_sources: int = 0  # point sources in flux_ratio
    err_over_floor: float = math.nan  # median i2d ERR / floor (drizzle correlation)
    ratios: list[float] = field(default_factory=list)

    def brief(self) -> dict:
        """The keys of ``--json``."""
        d = asdict(self)
        d.pop("ratios")
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- pure metrics

def disk(radius: float) -> np.ndarray:
    """Boolean disk structuring element of the given radius (pixels)."""
    r = max(0, int(math.ceil(radius)))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx ** 2 + yy ** 2 <= radius ** 2


def source_free_mask(scene: np.ndarray, covered: np.ndarray, floor: float, fwhm_px: float, *,
                     scene_fraction: float = SCENE_FRACTION, n_fwhm: float = N_FWHM,
                     edge: int = EDGE_PX) -> np.ndarray:
    """Source-free sky pixels.

    Parameters
    ----------
    scene : 2D `~numpy.ndarray`
        Truth scene (sources only) on the mosaic grid (MJy/sr); NaN counts as a source
        (unknown truth).
    covered : 2D bool `~numpy.ndarray`
        Finite mosaic pixels with ``WHT > 0``.
    floor : float
        Noise floor per pixel (MJy/sr).
    fwhm_px : float
        PSF FWHM in mosaic pixels.

    Returns
    -------
    sky : 2D bool `~numpy.ndarray`
        ``covered`` eroded by ``edge`` pixels, minus every pixel within ``n_fwhm * fwhm_px``
        of a pixel where ``scene > scene_fraction * floor``.
    """
    src = ~np.isfinite(scene) | (np.nan_to_num(scene, nan=np.inf) > scene_fraction * floor)
    if src.any():
        src = ndimage.binary_dilation(src, structure=disk(n_fwhm * fwhm_px))
    cov = np.asarray(covered, bool)
    if edge > 0:
        cov = ndimage.binary_erosion(cov, structure=np.ones((3, 3), bool), iterations=int(edge),
                                     border_value=0)
    return cov & ~src


def clipped(values: np.ndarray, scale: float, clip: float = CLIP_SIGMA) -> np.ndarray:
    """Finite ``values`` within ``clip * scale`` of their median (one pass, fixed scale)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or not math.isfinite(scale) or scale <= 0:
        return v
    return v[np.abs(v - np.median(v)) <= clip * scale]


def residual_stats(residual: np.ndarray, noise: np.ndarray | float, sky: np.ndarray,
                   clip: float = CLIP_SIGMA) -> dict:
    """RMS ratio and mean of a residual over the sky pixels.

    Parameters
    ----------
    residual : 2D `~numpy.ndarray`
        Mosaic minus truth (MJy/sr).
    noise : 2D `~numpy.ndarray` or float
        A noise-only mosaic on the same grid (its standard deviation over ``sky`` is the
        floor) or the floor itself.
    sky : 2D bool `~numpy.ndarray`
        Source-free pixels.

    Returns
    -------
    stats : dict
        ``floor``, ``rms`` (standard deviation of the residual), ``mean``, ``rms_ratio`` =
        rms / floor, ``mean_sigma`` = mean / floor, ``n_sky``. Both standard deviations
        exclude values beyond ``clip`` floors of their median.
    """
    sky = np.asarray(sky, bool)
    if np.ndim(noise) == 0:
        floor = float(noise)
    else:
        nz = np.asarray(noise, np.float64)[sky]
        nz = nz[np.isfinite(nz)]
        floor = float(np.std(nz)) if nz.size > 1 else math.nan
        floor = float(np.std(clipped(nz, floor, clip))) if nz.size > 1 else math.nan
    r = clipped(np.asarray(residual)[sky], floor, clip)
    if r.size < 2 or not math.isfinite(floor) or floor <= 0:
        return {"floor": floor, "rms": math.nan, "mean": math.nan, "rms_ratio": math.nan,
                "mean_sigma": math.nan, "n_sky": int(r.size)}
    rms, mean = float(np.std(r)), float(np.mean(r))
    return {"floor": floor, "rms": rms, "mean": mean, "rms_ratio": rms / floor, "mean_sigma": mean / floor,
            "n_sky": int(r.size)}


def aperture_flux(img: np.ndarray, x: float, y: float, r_ap: float, r_in: float, r_out: float) -> float:
    """Sum in a circle of radius ``r_ap`` minus the median of the annulus ``r_in``-``r_out``
    times the aperture area (units of ``img`` times pixels; exact-overlap apertures)."""
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

    img = np.asarray(img, np.float64)
    bad = ~np.isfinite(img)
    ap = CircularAperture((x, y), r_ap)
    bkg = ApertureStats(img, CircularAnnulus((x, y), r_in, r_out), mask=bad).median
    return float(aperture_photometry(np.where(bad, 0.0, img - bkg), ap)["aperture_sum"][0])


def recentre(img: np.ndarray, x: float, y: float, fwhm_px: float, iterations: int = 3) -> tuple[float, float]:
    """Centroid (pixels) of the source near ``(x, y)``: background-subtracted centre of mass in
    a disk of radius 1.5 FWHM, iterated; the start position when the centroid leaves the box.

    The aperture is centred on the source as the mosaic shows it, so that ``flux_ratio``
    measures photometry only: the mosaic's absolute astrometry (its zero point is the
    reference exposure's pointing error, up to ~0.2" offline) is checked separately."""
    img = np.asarray(img, np.float64)
    r = 1.5 * fwhm_px
    h = int(math.ceil(r)) + 1
    cx, cy = float(x), float(y)
    for _ in range(iterations):
        ix, iy = int(round(cx)), int(round(cy))
        if not (h <= ix < img.shape[1] - h and h <= iy < img.shape[0] - h):
            return float(x), float(y)
        yy, xx = np.mgrid[iy - h:iy + h + 1, ix - h:ix + h + 1]
        cut = img[iy - h:iy + h + 1, ix - h:ix + h + 1]
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) & np.isfinite(cut)
        ring = ((xx - cx) ** 2 + (yy - cy) ** 2 > r * r) & np.isfinite(cut)
        if inside.sum() < 5 or ring.sum() < 5:
            return float(x), float(y)
        w = np.clip(cut - np.median(cut[ring]), 0.0, None) * inside
        if w.sum() <= 0:
            return float(x), float(y)
        nx, ny = float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())
        if math.hypot(nx - x, ny - y) > r:
            return float(x), float(y)
        cx, cy = nx, ny
    return cx, cy


def flux_ratio(measured: list[float] | np.ndarray, true: list[float] | np.ndarray) -> float:
    """Median of ``measured / true`` (NaN for no source)."""
    m, t = np.asarray(measured, float), np.asarray(true, float)
    ok = np.isfinite(m) & np.isfinite(t) & (t != 0)
    return float(np.median(m[ok] / t[ok])) if ok.any() else math.nan


# ----------------------------------------------------------------------------- I/O

def find_truth(workspace: Path, truth: Path | None = None) -> Path:
    """The folder holding ``truth.json``: ``truth`` (that folder or its parent), or
    ``WORKSPACE/raw/truth``. InputError when there is none."""
    cands = [truth, Path(truth) / "truth"] if truth is not None else [Path(workspace) / "raw" / "truth"]
    for c in cands:
        if c is not None and (Path(c) / "truth.json").is_file():
            return Path(c)
    where = truth if truth is not None else Path(workspace) / "raw" / "truth"
    raise InputError(f"no simulator truth in {where} (truth.json missing): evaluate needs a simulated "
                     "program (mirim-reduce demo / simulate) or --truth DIR")


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
    from . import detector_model as dm
    from . import instrument as inst

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


def evaluate_mosaic(i2d_file: Path, truth_dir: Path, truth: dict,
                    n_realisations: int = N_REALISATIONS, stage2_dir: Path | None = None) -> MosaicMetrics:
    """The figures of one mosaic (its ``*_crf.fits`` must be next to it; the stage-2 cal
    files in ``stage2_dir`` give the actual noise, see the module docstring)."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from stdatamodels.jwst import datamodels

    i2d_file = Path(i2d_file)
    crfs = sorted(i2d_file.parent.glob("*_crf.fits"))
    if not crfs:
        raise InputError(f"{i2d_file.parent}: no *_crf.fits next to the mosaic (needed for the noise floor)")
    with datamodels.open(str(i2d_file)) as m:
        sci = np.array(m.data, np.float64)
        wht = np.array(m.wht, np.float64)
        err = np.array(m.err, np.float64)
        var = np.array(m.var_poisson, np.float64) + np.array(m.var_rnoise, np.float64)
        filt = m.meta.instrument.filter
        pixar_sr = float(m.meta.photometry.pixelarea_steradians)
        wcs = m.meta.wcs
        real = {}
        for crf in crfs:
            e = next((e for e in truth["exposures"] if crf.name.startswith(e["stem"] + "_")), None)
            cal = None if (e is None or stage2_dir is None) else Path(stage2_dir) / f"{e['stem']}_cal.fits"
            if cal is not None and cal.is_file() and (truth_dir / e["rate_truth_file"]).is_file():
                real[crf] = actual_noise(cal, truth_dir / e["rate_truth_file"], e["filter"], e["subarray"])
        n_real = 1 if len(real) == len(crfs) else max(1, n_realisations)
        noises = [noise_mosaic(crfs, m, seed=k, noises=real) for k in range(n_real)]
    sky_file = truth_dir / truth["sky"]["model_files"][filt]
    with fits.open(sky_file) as h:
        scene_img, scene_wcs = h["SCENE"].data.astype(np.float64), WCS(h["SCENE"].header)
    scene = reproject_scene(scene_img, scene_wcs, wcs, sci.shape)
    covered = np.isfinite(sci) & (wht > 0) & np.all([np.isfinite(n) for n in noises], axis=0)
    scale = math.sqrt(pixar_sr) * 206264.806  # arcsec / mosaic pixel
    fwhm_as = float(truth["psf"]["fwhm_arcsec"][filt])
    fwhm_px = fwhm_as / scale
    # floor: first from the covered area (to set the scene threshold), then on the sky pixels
    floor0 = float(np.mean([np.nanstd(n[covered]) for n in noises]))
    sky = source_free_mask(scene, covered, floor0, fwhm_px)
    floors = [residual_stats(n, n, sky)["floor"] for n in noises]
    floor = float(np.sqrt(np.mean(np.square(floors))))
    st = residual_stats(sci - np.nan_to_num(scene), floor, sky)

    # point sources
    scene_scale = abs(scene_wcs.wcs.cdelt[0]) * 3600.0
    scene_sr = (scene_scale / 206264.806) ** 2
    measured, true = [], []
    for src in truth["sources"]:
        if src["kind"] != "point" or "saturating" in src.get("tags", []):
            continue
        x, y = wcs.invert(src["ra"], src["dec"])
        edge = 5 * fwhm_px + 2
        if not (np.isfinite(x) and np.isfinite(y) and edge < x < sci.shape[1] - edge
                and edge < y < sci.shape[0] - edge):
            continue
        ix, iy, h = int(round(x)), int(round(y)), int(5 * fwhm_px) + 2
        cut = (slice(iy - h, iy + h + 1), slice(ix - h, ix + h + 1))
        if not np.all(np.isfinite(sci[cut])) or np.any(wht[cut] <= 0):
            continue
        sx, sy = scene_wcs.world_to_pixel_values(src["ra"], src["dec"])
        r_s = fwhm_as / scene_scale
        t = aperture_flux(scene_img, float(sx), float(sy), 2 * r_s, 3 * r_s, 5 * r_s) * scene_sr * 1e6
        yy, xx = np.mgrid[cut]
        inap = (xx - x) ** 2 + (yy - y) ** 2 <= (2 * fwhm_px) ** 2
        sigma_ap = math.sqrt(float(np.nansum(var[cut][inap]))) * pixar_sr * 1e6
        if not (t > SNR_MIN * sigma_ap):
            continue
        own = float(src["flux_jy"][filt])
        if not abs(t / own - 1.0) <= ISOLATION:
            continue
        cx, cy = recentre(sci, x, y, fwhm_px)
        measured.append(aperture_flux(sci, cx, cy, 2 * fwhm_px, 3 * fwhm_px, 5 * fwhm_px) * pixar_sr * 1e6)
        true.append(t)
    ratios = [mm / tt for mm, tt in zip(measured, true)]
    return MosaicMetrics(filter=filt, mosaic=i2d_file.name.removesuffix("_i2d.fits"),
                         rms_ratio=st["rms_ratio"], mean_sigma=st["mean_sigma"],
                         flux_ratio=flux_ratio(measured, true), floor=floor, rms=st["rms"],
                         mean=st["mean"], n_sky=st["n_sky"], n_sources=len(ratios),
                         err_over_floor=float(np.nanmedian(err[sky]) / floor) if sky.any() else math.nan,
                         ratios=[round(r, 5) for r in ratios])


def evaluate_workspace(workspace: Path, truth: Path | None = None,
                       n_realisations: int = N_REALISATIONS) -> list[MosaicMetrics]:
    """Every mosaic of ``WORKSPACE/stage3`` against the truth (see :func:`find_truth`)."""
    workspace = Path(workspace)
    tdir = find_truth(workspace, truth)
    try:
        tdoc = json.loads((tdir / "truth.json").read_text())
    except ValueError as exc:
        raise InputError(f"{tdir / 'truth.json'} is not valid JSON: {exc}") from None
    i2ds = sorted((workspace / "stage3").glob("*/*_i2d.fits"))
    if not i2ds:
        raise InputError(f"{workspace}: no mosaic (stage3/*/*_i2d.fits): run the reduction first")
    out = []
    for f in i2ds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out.append(evaluate_mosaic(f, tdir, tdoc, n_realisations=n_realisations,
                                       stage2_dir=workspace / "stage2"))
    return out


def format_table(rows: list[MosaicMetrics]) -> str:
    """A plain-text table of the figures."""
    head = f"{'mosaic':36s} {'filter':7s} {'rms_ratio':>9s} {'mean_sigma':>10s} {'flux_ratio':>10s} {'n_sky':>6s} {'n_src':>5s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.mosaic:36s} {r.filter:7s} {r.rms_ratio:9.3f} {r.mean_sigma:10.3f} "
                     f"{r.flux_ratio:10.4f} {r.n_sky:6d} {r.n_sources:5d}")
    return "\n".join(lines)
