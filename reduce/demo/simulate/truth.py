"""The truth record of a simulated program (format: see the package docstring), and
helpers for tests: the injected rate of an exposure, true source positions and fluxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import detector_model as dm
from ...fsutil import sha256_file
from ... import instrument as inst
from . import artefacts as artefacts_mod, geometry, optics, ramps
from .scene import Scene, render_sources
from .uncal import ExposureResult, SIM_VERSION

FORMAT = "mirim-reduce-sim-truth/1"
SKY_GRID_SCALE = 0.11  # arcsec/pixel of the sky-model images


def _atomic_fits(hdul, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        hdul.writeto(tmp, overwrite=True, checksum=True)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def point_sources_on_detector(scn: Scene, res: ExposureResult, margin: float = 0.0) -> list[dict]:
    """Point sources whose true position falls on the exposure's array: id, x, y (0-based
    pixels of the array, true pointing), flux_jy in the exposure's filter, tags."""
    spec = res.spec
    sub = inst.SUBARRAYS[spec.subarray]
    filt = spec.filter if spec.filter in inst.FILTERS else "F770W"
    pts = [s for s in scn.sources if s.kind == "point"]
    if not pts:
        return []
    ra, dec = zip(*(scn.radec(s) for s in pts))
    x, y = geometry.sky_to_detector(res.true, np.array(ra), np.array(dec))
    x, y = x - (sub.xstart - 1), y - (sub.ystart - 1)
    out = []
    for s, xx, yy in zip(pts, x, y):
        if -0.5 - margin <= xx <= sub.xsize - 0.5 + margin and -0.5 - margin <= yy <= sub.ysize - 0.5 + margin:
            out.append({"id": s.id, "x": float(xx), "y": float(yy), "flux_jy": s.flux(filt), "tags": s.tags})
    return out


def exposure_record(scn: Scene, res: ExposureResult, rate_file: str) -> dict:
    spec = res.spec
    sub = inst.SUBARRAYS[spec.subarray]
    filt = spec.filter
    # sky at the aperture reference point
    ap = geometry.siaf_aperture(spec.aperture_name)
    ra_r, dec_r = geometry.v2v3_to_sky(res.true.matrix, ap.V2Ref, ap.V3Ref)
    xi_r, eta_r = geometry.sky_to_plane(ra_r, dec_r, scn.ra0, scn.dec0)
    sky_mjysr = float(scn.sky(filt, xi_r, eta_r, spec.sky_factor)) if filt in inst.FILTERS else None
    free = ramps.make_ramps(res.rates.total, ngroups=spec.ngroups, nints=1, tframe=spec.tframe,
                            rng=None, pedestal=ramps.pedestal_map()[sub.slices], noise=False)[0]
    sat = free >= inst.SATURATION
    first_sat = np.where(sat.any(axis=0), sat.argmax(axis=0), -1)
    return {
        "file": res.path.name,
        "stem": spec.stem,
        "sha256": sha256_file(res.path),
        "rate_truth_file": rate_file,
        "program": spec.program, "observation": spec.observation, "visit": spec.visit,
        "visit_group": spec.visit_group, "sequence": spec.sequence, "activity": spec.activity,
        "exposure": spec.exposure, "exp_type": spec.exp_type, "detector": spec.detector,
        "filter": filt, "subarray": spec.subarray, "readpatt": spec.readpatt,
        "ngroups": spec.ngroups, "nints": spec.nints, "tframe_s": spec.tframe, "duration_s": spec.duration,
        "effexptm_s": inst.effective_exposure_time(spec.ngroups, spec.nints, spec.tframe),
        "start_mjd": spec.start_mjd,
        "aperture": spec.aperture_name,
        "dither_position": spec.dither_position, "dither_total": spec.dither_total,
        "dither_offset_ideal_arcsec": list(spec.dither_offset),
        "pointing_error_v2v3_arcsec": list(spec.pointing_error),
        "nominal_pointing": res.nominal.as_dict(),
        "true_pointing": res.true.as_dict(),
        "sky_factor": spec.sky_factor,
        "sky_mjysr": sky_mjysr,
        "sky_dn_s": None if sky_mjysr is None else sky_mjysr / inst.PHOTMJSR[filt],
        "n_cosmic_rays": int(len(res.crs)),
        "n_saturated_pixels": int(sat[-1].sum()),
        "first_saturated_group_min": int(first_sat[first_sat >= 0].min()) if sat.any() else None,
        "point_sources": point_sources_on_detector(scn, res),
    }


def write_rate_truth(path: Path, res: ExposureResult) -> None:
    """truth/rates/<stem>_truth.fits: RATE (expected rate, DN/s), ILLUM (sky + sources after
    the flat, DN/s), CRS (cosmic-ray table), BACKGROUND (everything in RATE that is not
    source light, DN/s) and SOURCES (source light after the flat, DN/s): RATE = BACKGROUND
    + SOURCES to float32 rounding."""
    from astropy.io import fits

    spec = res.spec
    h = fits.Header()
    h["STEM"] = spec.stem
    h["FILTER"] = spec.filter
    h["SUBARRAY"] = spec.subarray
    h["SUBSTRT1"], h["SUBSTRT2"] = inst.SUBARRAYS[spec.subarray].xstart, inst.SUBARRAYS[spec.subarray].ystart
    h["BUNIT"] = "DN/s"
    h["COMMENT"] = "RATE: noise-free count rate a perfect Detector1 returns (dark removed): "
    h["COMMENT"] = "(sky+sources)/PHOTMJSR*flat + pattern + new hot pixels; 0 on dead/reference pixels"
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=h),
        fits.ImageHDU(res.rates.expected, name="RATE"),
        fits.ImageHDU((res.rates.illum * res.rates.sensitive).astype(np.float32), name="ILLUM"),
        fits.BinTableHDU(res.crs, name="CRS"),
    ])
    if res.rates.sky is not None:
        hb = fits.Header()
        hb["BUNIT"] = "DN/s"
        hb["COMMENT"] = ("sky*flat*(1+MULT) + additive pattern + stripes + warm and new hot pixels: "
                         "RATE minus source light; 0 on dead/reference pixels")
        hdul.append(fits.ImageHDU(res.rates.background, header=hb, name="BACKGROUND"))
        hs = fits.Header()
        hs["BUNIT"] = "DN/s"
        hs["COMMENT"] = "source light (point sources, galaxies, nebulae) / PHOTMJSR * flat"
        hdul.append(fits.ImageHDU(res.rates.sources, header=hs, name="SOURCES"))
    _atomic_fits(hdul, path)


def write_pattern(path: Path, filt: str, art: artefacts_mod.Artefacts | None = None) -> None:
    """pattern_<filter>.fits: PATTERN (detector-fixed additive background of the program,
    DN/s, full frame, not flat-fielded: smooth pattern + fixed stripes + warm pixels) and,
    for programs with sky-scaled structure, MULT (dimensionless: sky*flat*(1+MULT))."""
    from astropy.io import fits

    art = art or artefacts_mod.Artefacts()
    h = fits.Header()
    h["FILTER"], h["BUNIT"] = filt, "DN/s"
    h["COMMENT"] = "detector-fixed additive background, full frame, 0-based (row, column), not flat-fielded"
    hdus = [fits.PrimaryHDU(header=h), fits.ImageHDU(artefacts_mod.fixed_additive(art, filt), name="PATTERN")]
    if art.has_multiplicative:
        hdus.append(fits.ImageHDU(artefacts_mod.multiplicative(art, filt), name="MULT"))
    _atomic_fits(fits.HDUList(hdus), path)


def write_sky_model(path: Path, scn: Scene, filt: str, half_width: float) -> None:
    """Sources only (no sky) in MJy/sr on a north-up TAN grid about the scene centre."""
    from astropy.io import fits

    n = int(np.ceil(2 * half_width / SKY_GRID_SCALE)) | 1
    canvas = geometry.plane_canvas(n, n, SKY_GRID_SCALE)
    img = render_sources(scn, filt, canvas) * 1e-6 / (canvas.area * geometry.SR_PER_ARCSEC2)
    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRVAL1"], h["CRVAL2"] = scn.ra0, scn.dec0
    h["CRPIX1"] = h["CRPIX2"] = (n - 1) / 2 + 1
    h["CDELT1"], h["CDELT2"] = -SKY_GRID_SCALE / 3600.0, SKY_GRID_SCALE / 3600.0
    h["RADESYS"] = "ICRS"
    h["BUNIT"] = "MJy/sr"
    h["FILTER"] = filt
    h["SKYNOM"] = (scn.sky_mjysr[filt], "nominal sky level, MJy/sr (not in the image)")
    _atomic_fits(fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img.astype(np.float32), header=h, name="SCENE")]), path)


def _versions() -> dict[str, str]:
    """Library versions the bytes depend on (numpy's generators, pysiaf, file writers)."""
    from ...identity import package_versions

    return package_versions(("numpy", "scipy", "astropy", "pysiaf", "stdatamodels", "asdf", "mirim-reduce"),
                            missing="unknown")


def build_truth(scn: Scene, results: list[ExposureResult], *, seed: int, size: str, outdir: Path,
                sky_half_width: float, program: str = "demo",
                artefacts: artefacts_mod.Artefacts | None = None) -> dict:
    """Write truth/{rates,patterns,sky} FITS files and return the truth.json document."""
    art = artefacts or artefacts_mod.Artefacts()
    tdir = outdir / "truth"
    (tdir / "rates").mkdir(parents=True, exist_ok=True)
    exposures = []
    for res in results:
        rel = f"rates/{res.spec.stem}_truth.fits"
        write_rate_truth(tdir / rel, res)
        exposures.append(exposure_record(scn, res, rel))
    filters = sorted({r.spec.filter for r in results if r.spec.filter in inst.FILTERS},
                     key=inst.FILTERS.index)
    patterns, sky_files = {}, {}
    for f in filters:
        write_pattern(tdir / f"pattern_{f}.fits", f, art)
        p = artefacts_mod.fixed_additive(art, f)[:, inst.REFERENCE_COLUMNS:-inst.REFERENCE_COLUMNS]
        patterns[f] = {"file": f"pattern_{f}.fits", "mean_dn_s": float(p.mean()), "std_dn_s": float(p.std()),
                       "min_dn_s": float(p.min()), "max_dn_s": float(p.max())}
        write_sky_model(tdir / f"sky_{f}.fits", scn, f, sky_half_width)
        sky_files[f] = f"sky_{f}.fits"
    groups: dict[str, int] = {}
    for e in exposures:
        key = f"{e['filter']}|{e['subarray']}|{e['readpatt']}|{e['duration_s']:.3f}"
        groups[key] = groups.get(key, 0) + 1
    return {
        "format": FORMAT,
        "sim_version": SIM_VERSION,
        "program": program,
        "seed": seed,
        "size": size,
        "artefacts": art.to_dict() | {"n_warm_pixels": int(len(artefacts_mod.warm_pixels(art)[0]))},
        "distortion": geometry.distortion_source(),
        "versions": _versions(),
        "target": {"name": scn.target_name, "ra": scn.ra0, "dec": scn.dec0},
        "units": {"flux": "Jy", "sky": "MJy/sr", "rate": "DN/s", "positions": "deg (ra, dec); arcsec (xi east, "
                  "eta north about the target); 0-based array pixels (x, y)"},
        "photmjsr": {f: inst.PHOTMJSR[f] for f in filters},
        "psf": {"model": "circular gaussian", "fwhm_arcsec": {f: inst.psf_fwhm_arcsec(f) for f in filters}},
        "sky": {"nominal_mjysr": {f: scn.sky_mjysr[f] for f in filters},
                "gradient_per_arcsec": list(scn.sky_gradient), "model_files": sky_files},
        "pattern": patterns,
        "detector": {
            "gain_e_per_dn": inst.GAIN, "readnoise_read_dn": inst.READNOISE_READ, "pedestal_dn": inst.PEDESTAL,
            "saturation_dn": inst.SATURATION, "full_well_dn": ramps.FULL_WELL, "dark_rate_dn_s": inst.DARK_RATE,
            "n_dead": len(dm.bad_pixel_positions("dead")[0]),
            "n_hot_known": len(dm.bad_pixel_positions("hot_known")[0]),
            "n_hot_new": len(dm.bad_pixel_positions("hot_new")[0]),
            "bad_pixel_positions": "reduce.demo.detector_model.bad_pixel_positions(kind), full frame (row, col)",
            "rate_groups_used": "1 .. ngroups-2 (MIRI firstframe/lastframe)",
        },
        "sources": scn.to_dict(),
        "exposures": exposures,
        "groups_filter_subarray_readpatt_duration": groups,
    }


# ---------------------------------------------------------------- readers (tests, validation)

def load_truth(outdir: Path) -> dict:
    """truth.json of a simulated program folder."""
    return json.loads((Path(outdir) / "truth" / "truth.json").read_text())


def _exposure(truth: dict, name: str) -> dict:
    stem = Path(name).name
    for suffix in ("_uncal.fits", "_rate.fits", "_rateints.fits", "_cal.fits", ".fits"):
        stem = stem.removesuffix(suffix)
    for e in truth["exposures"]:
        if e["stem"] == stem:
            return e
    raise KeyError(f"{name} is not an exposure of this simulated program")


def expected_rate(outdir: Path, name: str) -> np.ndarray:
    """The injected (noise-free, dark-free) count rate in DN/s of the exposure ``name``
    (an uncal/rate/cal file name or stem)."""
    from astropy.io import fits

    outdir = Path(outdir)
    e = _exposure(load_truth(outdir), name)
    with fits.open(outdir / "truth" / e["rate_truth_file"]) as h:
        return np.array(h["RATE"].data)


def true_point_sources(outdir: Path, name: str) -> list[dict]:
    """Point sources of exposure ``name``: id, x, y (0-based array pixels), flux_jy, tags."""
    return _exposure(load_truth(Path(outdir)), name)["point_sources"]


def aperture_flux_jy(rate: np.ndarray, x: float, y: float, radius_px: float, filt: str,
                     area_sr: np.ndarray | float | None = None) -> float:
    """Flux (Jy) of a background-free count-rate image (DN/s, before the flat) summed in a
    circle, corrected to total with the PSF's analytic encircled energy."""
    yy, xx = np.indices(rate.shape)
    m = (xx - x) ** 2 + (yy - y) ** 2 <= radius_px**2
    area = inst.pixel_area_sr() if area_sr is None else area_sr
    jy = (rate * inst.PHOTMJSR[filt] * 1e6 * area)[m].sum() if np.ndim(area) else \
        rate[m].sum() * inst.PHOTMJSR[filt] * 1e6 * area
    return float(jy / optics.encircled_energy(filt, radius_px * inst.PIXEL_SCALE))
