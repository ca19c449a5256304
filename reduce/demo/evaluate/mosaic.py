"""The figures of one reduced mosaic and of a workspace (FITS reading; see :mod:`reduce.demo.evaluate`)."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError
from .metrics import (FLAT_EDGE_PX, ISOLATION, MIN_SKY_FRACTION, SNR_MIN, TREND_ERR_FLOOR, aperture_flux, extended_level, flatness, flux_ratio, flux_trend,
                      recentre, residual_stats, robust_scatter, source_free_mask)
from .noise import actual_noise, noise_mosaic, reproject_scene

#: Noise-only realisations averaged for the floor.
N_REALISATIONS = 2
#: The goals on the demo.
GOALS = {"rms_ratio": 1.05, "mean_sigma": 0.1, "flux_ratio": 0.01}


@dataclass
class MosaicMetrics:
    """The figures of one mosaic (see :mod:`reduce.demo.evaluate`)."""

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
    flatness: float = math.nan  # block-median std / pure noise's
    flatness_plane_removed: float = math.nan  # the same with a plane removed from the block medians
    n_blocks: int = 0  # blocks in flatness
    scatter_pct: float = math.nan  # robust std of the point-source ratios, %
    trend_pct_per_dex: float = math.nan  # slope of the ratios vs log10(true flux), % per decade
    noise_flatness: float = math.nan  # actual-noise mosaic vs Gaussian noise (check_noise=True only)
    sky_on_extended: bool = False  # no source-free sky: smooth extended emission taken as sky
    ratios: list[float] = field(default_factory=list)
    true_flux_jy: list[float] = field(default_factory=list)
    ratio_err: list[float] = field(default_factory=list)  # 1-sigma noise of each ratio

    def brief(self) -> dict:
        """The keys of ``--json``."""
        d = asdict(self)
        d.pop("ratios")
        d.pop("true_flux_jy")
        d.pop("ratio_err")
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


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


def _point_sources(sci, wht, var, wcs, pixar_sr, fwhm_px, filt, truth, scene_img, scene_wcs):
    """(measured, true, sigma) aperture fluxes (Jy) of the isolated point sources above SNR_MIN
    (sigma: the aperture's noise from the i2d variances)."""
    fwhm_as = float(truth["psf"]["fwhm_arcsec"][filt])
    scene_scale = abs(scene_wcs.wcs.cdelt[0]) * 3600.0
    scene_sr = (scene_scale / 206264.806) ** 2
    measured, true, sigma = [], [], []
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
        sigma.append(sigma_ap)
    return measured, true, sigma


def evaluate_mosaic(i2d_file: Path, truth_dir: Path, truth: dict,
                    n_realisations: int = N_REALISATIONS, stage2_dir: Path | None = None,
                    check_noise: bool = False) -> MosaicMetrics:
    """The figures of one mosaic (its ``*_crf.fits`` must be next to it; the stage-2 cal
    files in ``stage2_dir`` give the actual noise, see :mod:`reduce.demo.evaluate`).

    ``check_noise``: also ``noise_flatness``, the flatness of the actual-noise mosaic
    against ``N_REALISATIONS`` mosaics of Gaussian noise of the crf files' variances (1.0
    when the stage-2 data scatter about the true rate as pure pixel noise does)."""
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
        gauss = ([noise_mosaic(crfs, m, seed=100 + k) for k in range(max(1, n_realisations))]
                 if check_noise and real else [])
    sky_file = truth_dir / truth["sky"]["model_files"][filt]
    with fits.open(sky_file) as h:
        scene_img, scene_wcs = h["SCENE"].data.astype(np.float64), WCS(h["SCENE"].header)
    scene = reproject_scene(scene_img, scene_wcs, wcs, sci.shape)
    covered = np.isfinite(sci) & (wht > 0) & np.all([np.isfinite(n) for n in noises], axis=0)
    scale = math.sqrt(pixar_sr) * 206264.806  # arcsec / mosaic pixel
    fwhm_px = float(truth["psf"]["fwhm_arcsec"][filt]) / scale
    # floor: first from the covered area (to set the scene threshold), then on the sky pixels
    floor0 = float(np.mean([np.nanstd(n[covered]) for n in noises]))
    sky = source_free_mask(scene, covered, floor0, fwhm_px)
    level = 0.0
    if sky.sum() < MIN_SKY_FRACTION * covered.sum():  # a nebula fills the field: its smooth part is sky
        level = extended_level(scene)
        sky = source_free_mask(scene, covered, floor0, fwhm_px, level=level)
    floors = [residual_stats(n, n, sky)["floor"] for n in noises]
    floor = float(np.sqrt(np.mean(np.square(floors))))
    residual = sci - np.nan_to_num(scene)
    st = residual_stats(residual, floor, sky)
    # flatness: the same noise mosaics, blocks well inside the coverage
    flat_sky = source_free_mask(scene, covered, floor0, fwhm_px, edge=FLAT_EDGE_PX, level=level)
    fl = flatness(residual, noises, flat_sky)
    noise_fl = flatness(noises[0], gauss, flat_sky)["flatness"] if gauss else math.nan

    measured, true, sigma = _point_sources(sci, wht, var, wcs, pixar_sr, fwhm_px, filt, truth, scene_img, scene_wcs)
    ratios = [mm / tt for mm, tt in zip(measured, true)]
    return MosaicMetrics(filter=filt, mosaic=i2d_file.name.removesuffix("_i2d.fits"),
                         rms_ratio=st["rms_ratio"], mean_sigma=st["mean_sigma"],
                         flux_ratio=flux_ratio(measured, true), floor=floor, rms=st["rms"],
                         mean=st["mean"], n_sky=st["n_sky"], n_sources=len(ratios),
                         err_over_floor=float(np.nanmedian(err[sky]) / floor) if sky.any() else math.nan,
                         flatness=fl["flatness"], n_blocks=fl["n_blocks"],
                         flatness_plane_removed=fl["flatness_plane_removed"],
                         scatter_pct=100.0 * robust_scatter(ratios),
                         trend_pct_per_dex=100.0 * flux_trend(ratios, true, np.hypot(np.divide(sigma, true), TREND_ERR_FLOOR)),
                         noise_flatness=noise_fl, sky_on_extended=not np.isscalar(level), ratios=[round(r, 5) for r in ratios],
                         true_flux_jy=[float(f"{t:.5g}") for t in true],
                         ratio_err=[float(f"{s / t:.4g}") for s, t in zip(sigma, true)])


def evaluate_workspace(workspace: Path, truth: Path | None = None,
                       n_realisations: int = N_REALISATIONS, check_noise: bool = False) -> list[MosaicMetrics]:
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
                                       stage2_dir=workspace / "stage2", check_noise=check_noise))
    return out


def format_table(rows: list[MosaicMetrics]) -> str:
    """A plain-text table of the figures."""
    head = (f"{'mosaic':36s} {'filter':7s} {'rms_ratio':>9s} {'mean_sigma':>10s} {'flux_ratio':>10s} "
            f"{'scatter%':>8s} {'trend%/dex':>10s} {'flatness':>8s} {'n_sky':>6s} {'n_src':>5s} {'n_blk':>5s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.mosaic:36s} {r.filter:7s} {r.rms_ratio:9.3f} {r.mean_sigma:10.3f} "
                     f"{r.flux_ratio:10.4f} {r.scatter_pct:8.2f} {r.trend_pct_per_dex:10.2f} {r.flatness:8.3f} "
                     f"{r.n_sky:6d} {r.n_sources:5d} {r.n_blocks:5d}")
    return "\n".join(lines)
