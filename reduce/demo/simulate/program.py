"""The demo program: JWST program 09999, two observations of one field, three filters;
and ``PROGRAMS`` (name -> function(seed, size) -> exposures), ``TEST_PROGRAMS`` (the
programs of ``programs``, with their own scenes and artefacts).

size="small" (default; runs through the pipeline in minutes): SUB256, FASTR1, 7.5-11.7 s
exposures (the noise per pixel is then about twice the mid-scale background structure,
as in the long full-frame exposures of real programs, where the structure dominates).
size="full" (benchmarks): the same exposures full frame (FULL, FASTR1).

| obs | filter | small: subarray, ngroups | full: ngroups | exposures | grouping |
|-----|--------|--------------------------|---------------|-----------|----------|
| 001 | F770W  | SUB256, 40               | 20            | 5 dithers | F770W group: 7 (>= MEDIAN_THRESH) |
| 001 | F1500W | SUB256, 30               | 16            | 5 dithers | 5 (= MEDIAN_THRESH) |
| 002 | F770W  | SUB256, 40               | 20            | 2 dithers | joins the F770W group |
| 002 | F2100W | SUB256, 25               | 12            | 2 dithers | 2 (< 5): left as it is |
"""

from __future__ import annotations

import numpy as np

from .uncal import ExposureSpec

PROGRAM = "09999"
START_MJD = 60412.3125  # 2024-04-12 07:30 UTC
POINTING_ERROR_RMS = 0.07  # arcsec per axis (V2 and V3)
SKY_VARIATION_RMS = 0.025  # fractional, exposure to exposure
OVERHEAD_S = 40.0  # between dithers
FILTER_CHANGE_S = 150.0
OBS2_DELAY_DAYS = 0.45

# dither offsets in the aperture ideal frame (arcsec): a cycling pattern with sub-pixel phases
DITHERS = {
    1: [(0.0, 0.0), (1.43, 0.82), (-1.21, 1.37), (0.96, -1.52), (-1.58, -0.71)],
    2: [(0.31, -0.24), (-0.88, 1.06), (1.17, 0.49)],
}

# (observation, filter, ngroups small, ngroups full, number of dithers, dither table)
PLAN = [
    (1, "F770W", 40, 20, 5, 1),
    (1, "F1500W", 30, 16, 5, 1),
    (2, "F770W", 40, 20, 2, 2),
    (2, "F2100W", 25, 12, 2, 2),
]
SIZES = {"small": "SUB256", "full": "FULL"}
PA_V3_REF = {1: 252.3, 2: 252.3}  # deg, V3 position angle at the aperture reference


def demo_program(seed: int = 1, size: str = "small") -> list[ExposureSpec]:
    """The demo program's exposures, in time order. Pointing errors and sky levels are
    drawn from ``seed``; everything else is fixed."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    subarray = SIZES[size]
    rng = np.random.default_rng([seed, 0x5EED])
    specs: list[ExposureSpec] = []
    t = START_MJD
    last_obs = None
    activity = {}
    visit_totals = {o: sum(p[4] for p in PLAN if p[0] == o) for o in {p[0] for p in PLAN}}
    for obs, filt, ng_small, ng_full, ndith, table in PLAN:
        if last_obs is not None and obs != last_obs:
            t = START_MJD + OBS2_DELAY_DAYS * (obs - 1)
        last_obs = obs
        activity[obs] = activity.get(obs, -1) + 2  # 01, 03, ... as APT numbers filter sequences
        for k in range(ndith):
            err = rng.normal(0.0, POINTING_ERROR_RMS, size=2)
            sky = float(np.clip(1.0 + rng.normal(0.0, SKY_VARIATION_RMS), 0.92, 1.08))
            spec = ExposureSpec(
                observation=obs, activity=activity[obs], exposure=k + 1, filter=filt, subarray=subarray,
                ngroups=ng_small if size == "small" else ng_full, start_mjd=round(t, 8), program=PROGRAM,
                pa_v3_ref=PA_V3_REF[obs], dither_position=k + 1, dither_total=ndith,
                dither_offset=DITHERS[table][k], pointing_error=(float(err[0]), float(err[1])),
                sky_factor=sky, extra={"visit_total_exposures": visit_totals[obs]})
            specs.append(spec)
            t += (spec.duration + OVERHEAD_S) / 86400.0
        t += FILTER_CHANGE_S / 86400.0
    return specs


# ---------------------------------------------------------------- the program registry

from .programs import brightsky_program, fullframe_program, smalldither_program  # noqa: E402

#: name -> function(seed, size) -> list[ExposureSpec]; scene and artefacts of the test
#: programs: ``reduce.demo.simulate.programs.setup(name, seed, size)`` (the demo: ``make_scene``
#: and the fixed detector pattern).
PROGRAMS = {
    "demo": demo_program,
    "brightsky": brightsky_program,
    "fullframe": fullframe_program,
    "smalldither": smalldither_program,
}
TEST_PROGRAMS = ("brightsky", "fullframe", "smalldither")
