"""Test programs the background cleaning was not designed on (the demo is ``program.py``).

Each program has its own target and scene (``fields``), its own background artefacts
(``artefacts.Artefacts``, seeded by program and seed), layout, dither size and group
size. All FASTR1, NINTS=1, one observation, one filter after the other.

| program     | subarray  | filter x exposures (ngroups)  | dithers (arcsec) | extended emission |
|-------------|-----------|-------------------------------|------------------|-------------------|
| brightsky   | BRIGHTSKY | F770W x7 (20), F1500W x3 (16) | 0.8-1.6          | exponential discs r_e 4-5" |
| fullframe   | FULL      | F560W x4 (12), F1000W x4 (10) | 5-10             | nebula r_e 70" + blobs |
| smalldither | SUB256    | F1130W x6 (30), F2100W x3 (25)| <= 0.5           | disc r_e 10" over the subarray |

Groups of 3-4 exposures are below MEDIAN_THRESH=5 (brightsky F1500W, fullframe both,
smalldither F2100W). size="full" puts a program on FULL with about the same durations.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np

from ... import instrument as inst
from .artefacts import Artefacts
from .fields import Extended, FieldDesign, make_field_scene, max_unsaturated_flux
from .uncal import ExposureSpec

START_MJD = 60500.40625
POINTING_ERROR_RMS = 0.07  # arcsec per axis
SKY_VARIATION_RMS = 0.025  # fractional, exposure to exposure
OVERHEAD_S = 40.0
FILTER_CHANGE_S = 150.0


@dataclass(frozen=True)
class ProgramDesign:
    """A test program: ``plan`` [(filter, ngroups, exposures)], dithers of ``dither_arcsec``
    (min, max radius, arcsec; the first position at the origin), ``artefacts`` (amplitudes;
    the seed is set per simulation), ``field`` (scene) and ``sky_half_width`` (arcsec, of the
    truth's sky-model images)."""

    name: str
    program: str
    subarray: str
    pa_v3_ref: float
    plan: tuple[tuple[str, int, int], ...]
    dither_arcsec: tuple[float, float]
    artefacts: Artefacts
    field: FieldDesign
    sky_half_width: float
    start_mjd: float = START_MJD


@dataclass
class ProgramSetup:
    """What ``simulate_program`` needs: exposures, scene, artefacts (seeded)."""

    name: str
    specs: list[ExposureSpec]
    scene: object
    artefacts: Artefacts
    sky_half_width: float


DESIGNS = {
    "brightsky": ProgramDesign(
        "brightsky", "09991", "BRIGHTSKY", 71.0, (("F770W", 20, 7), ("F1500W", 16, 3)), (0.8, 1.6),
        Artefacts(additive_fraction=0.03, mult_gradient=0.04, mult_glow=0.08, mult_field_rms=0.01,
                  column_stripes=0.01, warm_fraction=0.003, warm_rate_dn_s=(0.3, 3.0)),
        FieldDesign({"name": "MIRIM-TEST-BRIGHTSKY", "ra": 150.1163, "dec": 2.2010}, n_points=40,
                    point_flux_jy=(1.2e-5, 0.0), n_faint=12, min_sep=3.0, margin=2.5, n_galaxies=3,
                    extended=(Extended(-8.0, 6.0, 4.0, 1.0, 0.6, 35.0, 16.0, 0.6, 1.5),
                              Extended(10.0, -9.0, 5.0, 1.0, 0.8, 120.0, 18.0, 0.45, 1.2)),
                    sky_gradient=(6.0e-5, 3.0e-5)),
        sky_half_width=36.0),
    "fullframe": ProgramDesign(
        "fullframe", "09992", "FULL", 118.0, (("F560W", 12, 4), ("F1000W", 10, 4)), (5.0, 10.0),
        Artefacts(additive_fraction=0.05, mult_gradient=0.03, mult_glow=0.05, mult_field_rms=0.015,
                  column_stripes=0.005, row_stripes=0.005, row_stripes_exposure=0.003, warm_fraction=0.002,
                  warm_rate_dn_s=(0.2, 2.0)),
        FieldDesign({"name": "MIRIM-TEST-NEBULA", "ra": 83.8221, "dec": -5.3911}, n_points=60,
                    point_flux_jy=(2.0e-5, 0.0), n_faint=20, min_sep=3.0, margin=11.0, min_x=380,
                    n_galaxies=4,
                    extended=(Extended(12.0, -20.0, 70.0, 1.0, 0.75, 60.0, 300.0, 0.8, 1.0, "nebula"),
                              Extended(-25.0, 18.0, 25.0, 0.5, 0.6, 150.0, 80.0, 0.5, 1.3, "nebula"),
                              Extended(30.0, 30.0, 18.0, 0.5, 0.8, 20.0, 60.0, 0.4, 0.8, "nebula")),
                    sky_gradient=(1.0e-4, 6.0e-5)),
        sky_half_width=80.0),
    "smalldither": ProgramDesign(
        "smalldither", "09993", "SUB256", 300.0, (("F1130W", 30, 6), ("F2100W", 25, 3)), (0.15, 0.5),
        Artefacts(additive_fraction=0.06, mult_gradient=0.02, mult_glow=0.03, mult_field_rms=0.015,
                  column_stripes=0.008, row_stripes=0.004, warm_fraction=0.003, warm_rate_dn_s=(0.3, 3.0)),
        FieldDesign({"name": "MIRIM-TEST-SMALLDITHER", "ra": 189.2283, "dec": 62.2386}, n_points=32,
                    point_flux_jy=(3.0e-5, 0.0), n_faint=8, min_sep=2.5, margin=1.5, n_galaxies=2,
                    extended=(Extended(2.0, -1.0, 10.0, 1.0, 0.8, 75.0, 40.0, 1.2, 1.5, "nebula"),),
                    sky_gradient=(-4.0e-5, 5.0e-5)),
        sky_half_width=22.0),
}
TAGS = {name: zlib.crc32(name.encode()) for name in DESIGNS}


def dither_table(design: ProgramDesign, n: int) -> list[tuple[float, float]]:
    """``n`` dither offsets (ideal frame, arcsec): the origin, then radii in
    ``dither_arcsec`` at angles stepping round the circle (sub-pixel phases differ)."""
    rng = np.random.default_rng([TAGS[design.name], 0xD1])
    lo, hi = design.dither_arcsec
    out = [(0.0, 0.0)]
    phase = rng.uniform(0, 2 * np.pi)
    for k in range(1, n):
        r = lo + (hi - lo) * ((k * 0.618034) % 1.0)
        a = phase + 2 * np.pi * k * 0.381966 + rng.normal(0, 0.2)
        out.append((round(float(r * np.cos(a)), 3), round(float(r * np.sin(a)), 3)))
    return out


def _layout(design: ProgramDesign, size: str) -> tuple[str, list[tuple[str, int, int]]]:
    if size not in ("small", "full"):
        raise ValueError(f"size must be 'small' or 'full', not {size!r}")
    if size == "small" or design.subarray == "FULL":
        return design.subarray, list(design.plan)
    tf, tfull = inst.frame_time(design.subarray, "FASTR1"), inst.frame_time("FULL", "FASTR1")
    return "FULL", [(f, int(np.clip(round((ng + 1) * tf / tfull) - 1, 5, 25)), n) for f, ng, n in design.plan]


def program_specs(name: str, seed: int = 1, size: str = "small") -> list[ExposureSpec]:
    """The exposures of test program ``name`` in time order; pointing errors and sky levels
    drawn from ``seed``, the rest fixed by the design."""
    design = DESIGNS[name]
    subarray, plan = _layout(design, size)
    rng = np.random.default_rng([seed, TAGS[name], 0x5EED])
    total = sum(p[2] for p in plan)
    specs, t = [], design.start_mjd
    for j, (filt, ngroups, n) in enumerate(plan):
        for k, off in enumerate(dither_table(design, n)):
            err = rng.normal(0.0, POINTING_ERROR_RMS, size=2)
            sky = float(np.clip(1.0 + rng.normal(0.0, SKY_VARIATION_RMS), 0.92, 1.08))
            spec = ExposureSpec(
                observation=1, activity=2 * j + 1, exposure=k + 1, filter=filt, subarray=subarray,
                ngroups=ngroups, start_mjd=round(t, 8), program=design.program, pa_v3_ref=design.pa_v3_ref,
                dither_position=k + 1, dither_total=n, dither_offset=off,
                pointing_error=(float(err[0]), float(err[1])), sky_factor=sky,
                extra={"visit_total_exposures": total, "program_name": name})
            specs.append(spec)
            t += (spec.duration + OVERHEAD_S) / 86400.0
        t += FILTER_CHANGE_S / 86400.0
    return specs


def program_artefacts(name: str, seed: int = 1) -> Artefacts:
    """The artefacts of program ``name`` with patterns drawn from (program, seed)."""
    return dataclasses.replace(DESIGNS[name].artefacts, seed=int(TAGS[name] % 1_000_003) * 1000 + seed)


def setup(name: str, seed: int = 1, size: str = "small") -> ProgramSetup:
    """Exposures, scene and artefacts of a test program. The brightest point sources stay
    below ~60 % of saturation in the longest exposure of each filter."""
    from .uncal import pointings

    design = DESIGNS[name]
    specs = program_specs(name, seed, size)
    longest = {}
    for s in specs:
        longest[s.filter] = max(longest.get(s.filter, 0.0), s.duration)
    fmax = min(max_unsaturated_flux(f, d) for f, d in longest.items())
    fd = design.field
    fd = dataclasses.replace(fd, point_flux_jy=(fd.point_flux_jy[0], fmax))
    from .scene import Scene

    # the first exposure's nominal footprint: where the point sources are drawn
    ref = pointings(specs[0], Scene(fd.target["ra"], fd.target["dec"], fd.target["name"], [], {}))[0]
    scn = make_field_scene(fd, seed, TAGS[name], ref, specs[0].subarray)
    return ProgramSetup(name, specs, scn, program_artefacts(name, seed), design.sky_half_width)


def _program_function(name: str):
    def fn(seed: int = 1, size: str = "small") -> list[ExposureSpec]:
        return program_specs(name, seed, size)

    fn.__name__ = f"{name}_program"
    fn.__doc__ = f"The {name!r} test program's exposures (see reduce.demo.simulate.programs)."
    return fn


brightsky_program = _program_function("brightsky")
fullframe_program = _program_function("fullframe")
smalldither_program = _program_function("smalldither")
