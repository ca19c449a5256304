"""Cleaning one group of exposures (:mod:`.member` does each member's part).

1. Per member: read the stage-2 cal file (SCI, ERR, DQ, variances: astropy.io.fits), build
   its source mask (:mod:`.masks`, bad pixels by jwst's DQ convention, :mod:`.dqflags`)
   and its normalised masked plane of the group's stack.
2. The background model is chosen from the group's own data (:mod:`.template_model`,
   :mod:`.local_background`): a leave-one-out template (with the cross-validated
   smoothing / stripes / detail), a per-exposure Background2D (groups below
   ``MEDIAN_THRESH``), or nothing when nothing beats a flat background.
3. Per member: subtract, add the template's noise to VAR_RNOISE (what stage 3's ``ivm``
   weights use) and ERR; fill bad pixels outside sources (:mod:`.median_filter`, from the
   subtracted neighbours); write the cleaned cal file (with provenance keywords and
   HISTORY) and its maps.

Steps 1 and 3 run on the worker pool's idle cores when there are any; step 2 in the group's
own process. The products do not depend on how many processes took part.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..params import CleanParams
from ..workspace import Workspace
from . import alignment, qa as qa_mod
from .group_model import GroupStack, choose_background
from .io import Exposure, pixel_sky_transforms, read_exposure
from .member import ExposureStats, FirstPassMasks, Masked, Member, mask_member, subtract_member

log = logging.getLogger(__name__)


@dataclass
class GroupStats:
    """Per-group figures for the summary."""

    name: str
    key: list[str]
    members: list[str]
    template: bool = False
    method: str = "none"
    model: str = ""
    cv_members: list[str] = field(default_factory=list)
    cv_scores: dict = field(default_factory=dict)
    frame_test: dict = field(default_factory=dict)
    self_calibration: dict = field(default_factory=dict)
    alignment: dict = field(default_factory=dict)  # stem -> :func:`.alignment.summary` (second pass)
    reason: str = ""
    skipped: bool = False  # done by an earlier run


def group_name(key: tuple) -> str:
    """A file-name-safe name of a group key."""
    return "_".join(str(k).replace(".", "p").replace(" ", "") or "NA" for k in key)


def _treatment(params: CleanParams, n: int) -> tuple[str, str]:
    """(policy, reason): 'large' (super background), 'small' (small_group_background), or 'off'."""
    if not params.super_bkg_sub:
        return "off", "SUPER_BKG_SUB is off"
    if n >= max(int(params.median_thresh), 2):
        return "large", ""
    if params.small_group_background == "none":
        return "off", (f"{n} exposure(s) < MEDIAN_THRESH={params.median_thresh} and "
                       "small_group_background = 'none'")
    return "small", ""


def clean_group(ws: Workspace, key: tuple, stems: list[str], params: CleanParams, qa: bool = True,
                extra_masks: dict[str, np.ndarray] | None = None, label: str = "",
                reuse: FirstPassMasks | None = None, alignments: dict[str, tuple] | None = None
                ) -> tuple[GroupStats, list[ExposureStats]]:
    """Clean the members of one group and write their products.

    ``extra_masks`` (second pass): per exposure, source pixels to add to its own mask (the
    first-pass mosaic's mask projected onto it, :mod:`.mosaic_mask`); ``reuse`` (second pass):
    pass 1's own masks of the members, taken where current instead of detecting again;
    ``alignments`` (second pass): per exposure, (correction, residual) from its FITS WCS to
    the first-pass mosaic's aligned WCS (:mod:`.alignment`), used wherever the exposures
    are put on the sky (frame test, self-calibration) and recorded in ``alignment``.

    The per-member phases (masks; the model choice's scores; subtraction, fill and writing) use the worker pool's idle
    cores when there are any (:func:`reduce.workers.spare_cores`, :func:`reduce.workers.fork_map`):
    every member's result is computed the same way in whichever process, so the products do
    not depend on it."""
    from ..workers import fork_map, spare_cores

    clock = PhaseClock()
    name = group_name(key)
    gstats = GroupStats(name=name, key=list(key), members=list(stems))
    policy, gstats.reason = _treatment(params, len(stems))

    def per_member(phase: str, fn, items) -> list:
        """``fn`` of every member in ``items``, on this process and the pool's idle cores."""
        items = list(items)
        with spare_cores(len(items) - 1) as extra:
            log.info("clean group %s: %s of %d member(s) in %d process(es)", name, phase, len(items), 1 + extra)
            return fork_map(fn, items, 1 + extra)

    def masks_of(j: int) -> Masked:
        stem = stems[j]
        return mask_member(ws, stem, name, len(stems), params, policy, gstats.reason, label,
                           None if extra_masks is None else extra_masks.get(stem), qa and j == 0, keep=j + 1,
                           reuse=reuse)

    phase1 = per_member("masks", masks_of, range(len(stems)))
    clock.lap("masks")
    stats = {s: r.stats for s, r in zip(stems, phase1)}
    if policy == "off":
        clock.report(name)
        return gstats, [stats[s] for s in stems]

    kept: dict[str, Member] = {}
    cache: dict[str, Exposure] = {}  # read once per pass: kept for the subtraction when they fit
    group: GroupStack | None = None
    usable: list[str] = []
    for j, stem in enumerate(stems):  # the stack, in member order
        r, phase1[j] = phase1[j], None
        kept[stem] = r.member
        if r.exposure is not None:
            cache[stem] = r.exposure
        if r.plane is None:
            continue
        if group is None:
            group = GroupStack(r.plane.shape, len(stems))
        if r.plane.shape != group.stack.shape[1:]:
            raise ValueError(f"{stem}: shape {r.plane.shape} differs from its group's {group.stack.shape[1:]}")
        aligned = (alignments or {}).get(stem)
        if aligned is not None:
            gstats.alignment[stem] = alignment.summary(aligned[0], r.plane.shape, aligned[1])
        transforms = alignment.aligned_transforms(pixel_sky_transforms(r.sci_header),
                                                  None if aligned is None else aligned[0])
        group.put(len(usable), r.plane, r.var, transforms)
        usable.append(stem)

    if group is not None:
        group.finish(len(usable))
    method, model, box = "none", None, None
    frame = group.frame() if group is not None else None
    sky_fixed = bool(frame is not None and not frame.smooth_on_detector)
    # structure on the frame test's blocks and above is the frame test's (and the self-calibration's)
    # to attribute: the high-pass template models stop at the block size wherever it is sky-fixed
    # or cannot be told (with dithers of a few pixels, the template's larger scales are the sky's)
    selfcal_domain = frame is not None and frame.sky_dominated
    if frame is not None:
        gstats.frame_test = frame.as_dict()
    clock.lap("stack and frame test")
    if usable:
        method, model, box, gstats.cv_scores, gstats.cv_members = choose_background(
            group, usable, policy, params, sky_fixed, max_box=frame.block + 1 if sky_fixed else None,
            mapper=lambda fn, items: per_member("cross-validation", fn, items))
    clock.lap("model choice")
    if group is not None and selfcal_domain and policy != "off":
        sc = group.self_calibrate(frame, model if method == "template" else None)
        gstats.self_calibration = sc.as_dict()
        if sc.used:
            if method == "none":
                method, model = "template", None
            log.info("clean group %s: self-calibration: detector map (lambda %g, rms %.3g)", name, sc.lam, sc.rms)
    gstats.method = method
    selfcal = "+selfcal" if group is not None and group.selfcal is not None else ""
    gstats.model = {"template": (model.name if model else "") + selfcal, "background2d": f"box{box}",
                    "background2d+template": f"box{box}+{model.name}" if model else ""}.get(method, "")
    gstats.template = method in ("template", "background2d+template")
    if method == "none":
        gstats.reason = gstats.reason or ("no usable exposure" if not usable else
                                          "cross-validation: no background model beat a flat background")
    if sky_fixed:
        why = (f"the smooth background the exposures share is fixed on the sky (extended emission: "
               f"{frame.n_sky_better} of {frame.n_informative} positions more coherent on the sky)"
               if frame.sky_dominated else
               f"the dithers are too small to tell detector structure from extended emission "
               f"({frame.n_informative} informative positions)")
        gstats.reason = ((gstats.reason + "; ") if gstats.reason else "") + (
            why + (": only pixel-scale structure and the smooth detector map the dithers separate from the sky "
                   "(self-calibration) are subtracted" if selfcal else
                   ": only pixel-scale structure is subtracted") + ", the smooth level is left to stage 3's skymatch")
    log.info("clean group %s: %s %s (scores %s)", name, method, gstats.model, gstats.cv_scores)
    if qa and method == "template":
        qa_mod.template_png(ws, name, group.loo.full)
    clock.lap("self-calibration")

    def subtract(stem: str) -> ExposureStats:
        exp = cache.pop(stem, None) or read_exposure(ws.output("stage2", stem))
        i = usable.index(stem) if stem in usable else None
        return subtract_member(ws, stem, name, len(stems), exp, kept[stem], stats[stem], group, i, method, model,
                               box, gstats.reason, params, label, qa and stem == stems[0])

    done = per_member("subtraction", subtract, stems)
    clock.lap("subtraction")
    clock.report(name)
    return gstats, done


class PhaseClock:
    """Wall seconds of a group's phases, logged as one line (``clean group NAME: phases
    masks 1.2 s, ...``: read by the benchmarks; never in a record, which must not vary between runs)."""

    def __init__(self):
        self.last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self.last
        self.last = now

    def report(self, name: str) -> None:
        log.info("clean group %s: phases %s", name, ", ".join(f"{k} {v:.2f} s" for k, v in self.phases.items()))
