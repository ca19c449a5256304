"""Simulated MIRI imaging program: Level-1b ``*_uncal.fits`` files plus a truth record.

    simulate_program(outdir, seed=1, size="small", program="demo", progress=None) -> list[Path]
    write_exposure(path, spec, scene, rng=..., **overrides)       # one (odd) file

Deterministic from ``seed`` (same seed, same bytes); the detector (dark, flat, bad pixels,
background pattern, pedestal) is the fixed one of ``reduce.demo.detector_model`` that the
synthetic CRDS context calibrates, so Detector1 + Image2 with that context return the
injected rates and surface brightnesses.

Signal chain per pixel (DN/s): [flux in pixel (Jy) * 1e-6 / true pixel solid angle (sr)
+ sky (MJy/sr)] / PHOTMJSR * flat + pattern(filter) + dark + new hot pixels; ramps with
Poisson (GAIN) and read noise, cosmic rays, saturation (see ``ramps``). The WCS of the
header is the commanded pointing; the data use the true one (pointing errors ~0.07"/axis).

Modules: scene (sky, sources), optics (PSF, rendering), geometry (distortion, attitude,
tangent plane), rates (count rates), ramps (DN ramps), uncal (metadata, file),
program (the demo program and the registry PROGRAMS / TEST_PROGRAMS), programs (the test
programs "brightsky", "fullframe", "smalldither" the cleaning was not designed on), fields
(their scenes), artefacts (per-program background artefacts: sky-scaled gradient, corner
glow and field, column/row stripes, unflagged warm pixels; none for the demo), truth.

Truth format (``outdir/truth/``)
- ``truth.json``: ``format`` ("mirim-reduce-sim-truth/1"), ``sim_version``, ``program`` (name),
  ``seed``, ``size``, ``artefacts`` (``artefacts.Artefacts.to_dict`` + n_warm_pixels),
  ``distortion`` (implementation used), ``versions`` (libraries), ``target`` {name, ra, dec}, ``photmjsr``, ``psf``
  {model: circular gaussian, fwhm_arcsec per filter}, ``sky`` {nominal_mjysr per filter,
  gradient_per_arcsec [d/dxi, d/deta], model_files}, ``pattern`` {filter: file, mean/std/min/
  max DN/s}, ``detector`` {gain, read noise, pedestal, saturation, full well, dark rate,
  n_dead / n_hot_known / n_hot_new (positions: reduce.demo.detector_model), groups used by the
  rate}, ``sources`` [id, kind point|sersic, ra, dec, xi, eta (arcsec east/north of the
  target), flux_ref (Jy at 7.7 um), alpha, flux_jy {filter: Jy}, tags (bright, saturating,
  large), and for sersic r_e (arcsec), n, q, pa (deg), r_trunc (arcsec; the flux is the
  flux inside it)], ``exposures`` [file, stem, sha256, rate_truth_file, program/observation/
  visit/... numbers, filter, subarray, readpatt, ngroups, nints, tframe_s, duration_s,
  effexptm_s, start_mjd, aperture, dither_position/total, dither_offset_ideal_arcsec,
  pointing_error_v2v3_arcsec, nominal_pointing and true_pointing {v2_ref, v3_ref, ra_ref,
  dec_ref, roll_ref} (the header holds the nominal one; a WCS built from the true one is
  exact), sky_factor, sky_mjysr and sky_dn_s (at the aperture reference, before the flat),
  n_cosmic_rays, n_saturated_pixels, first_saturated_group_min, point_sources [id, x, y
  (0-based array pixels, true pointing), flux_jy, tags]], and
  ``groups_filter_subarray_readpatt_duration`` {key: count}.
- ``rates/<stem>_truth.fits``: RATE (DN/s: what a perfect Detector1 gives, i.e. everything
  but the dark; 0 on dead and reference pixels), ILLUM (sky + sources after the flat,
  DN/s), CRS (cosmic rays: integration, group, y, x, dn), BACKGROUND (DN/s: everything in
  RATE that is not source light: sky*flat*(1+MULT), additive pattern, stripes, warm and new
  hot pixels) and SOURCES (source light after the flat, DN/s); RATE = BACKGROUND + SOURCES.
- ``pattern_<filter>.fits``: PATTERN, the detector-fixed additive background (DN/s, full
  frame, not flat-fielded: what a super background removes; for test programs including
  fixed stripes and warm pixels) and, with sky-scaled artefacts, MULT (dimensionless).
- ``sky_<filter>.fits``: SCENE, the sources alone in MJy/sr on a north-up TAN grid
  (0.11"/px) about the target; SKYNOM holds the nominal sky level.
Readers: ``truth.load_truth``, ``truth.expected_rate``, ``truth.true_point_sources``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from .artefacts import Artefacts
from .program import PROGRAMS, TEST_PROGRAMS, demo_program
from .scene import Scene, make_scene
from .uncal import SIM_VERSION, ExposureSpec, ExposureResult, write_exposure

__all__ = ["simulate_program", "write_exposure", "demo_program", "make_scene", "ExposureSpec",
           "ExposureResult", "Scene", "Artefacts", "PROGRAMS", "TEST_PROGRAMS", "program_setup"]

SKY_MODEL_HALF_WIDTH = {"small": 22.0, "full": 75.0}  # arcsec


def exposure_rng(seed: int, index: int, program: str = "demo") -> np.random.Generator:
    """The noise generator of exposure ``index`` of ``program`` simulated with ``seed``."""
    if program == "demo":
        return np.random.default_rng([seed, 1000 + index])
    from .programs import TAGS

    return np.random.default_rng([seed, TAGS[program], 1000 + index])


def _up_to_date(outdir: Path, seed: int, size: str, program: str) -> list[Path] | None:
    from ...fsutil import sha256_file

    tfile = outdir / "truth" / "truth.json"
    try:
        truth = json.loads(tfile.read_text())
    except (OSError, ValueError):
        return None
    if (truth.get("seed"), truth.get("size"), truth.get("sim_version"), truth.get("program", "demo")) != \
            (seed, size, SIM_VERSION, program):
        return None
    files = []
    for e in truth.get("exposures", []):
        p = outdir / e["file"]
        if not p.is_file() or sha256_file(p) != e.get("sha256") or not (outdir / "truth" / e["rate_truth_file"]).is_file():
            return None
        files.append(p)
    return files or None


def program_setup(program: str, seed: int, size: str):
    """(specs, scene, artefacts, sky-model half width in arcsec) of a program by name."""
    from .program import PROGRAMS

    if program not in PROGRAMS:
        raise ValueError(f"unknown program {program!r}; one of {', '.join(PROGRAMS)}")
    if program == "demo":
        return demo_program(seed, size), make_scene(seed), Artefacts(), SKY_MODEL_HALF_WIDTH[size]
    from .programs import setup

    st = setup(program, seed, size)
    return st.specs, st.scene, st.artefacts, max(st.sky_half_width, SKY_MODEL_HALF_WIDTH[size])


def simulate_program(outdir: Path, *, seed: int = 1, size: str = "small", program: str = "demo",
                     progress: Callable[[int, int, str], None] | None = None) -> list[Path]:
    """Write the uncal files of ``program`` (``program.PROGRAMS``: "demo" or one of
    ``program.TEST_PROGRAMS``) into ``outdir`` and its truth into ``outdir/truth``; returns
    the uncal paths in time order. Files appear atomically; a folder already holding this
    (program, seed, size) intact is left as it is. ``progress(done, total, file_name)`` is
    called after each exposure."""
    from ...fsutil import write_json
    from .truth import build_truth

    outdir = Path(outdir)
    specs, scn, art, half_width = program_setup(program, seed, size)
    done = _up_to_date(outdir, seed, size, program)
    if done is not None and [p.name for p in done] == [s.filename for s in specs]:
        if progress:
            progress(len(done), len(done), "up to date")
        return done
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "truth" / "truth.json").unlink(missing_ok=True)  # invalid until rewritten
    results = []
    for i, spec in enumerate(specs):
        results.append(write_exposure(outdir / spec.filename, spec, scn, rng=exposure_rng(seed, i, program),
                                      artefacts=art))
        if progress:
            progress(i + 1, len(specs), spec.filename)
    truth = build_truth(scn, results, seed=seed, size=size, outdir=outdir, sky_half_width=half_width,
                        program=program, artefacts=art)
    write_json(outdir / "truth" / "truth.json", truth)
    return [r.path for r in results]
