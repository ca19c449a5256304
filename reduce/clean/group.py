"""Cleaning one group of exposures: FITS I/O around the pure algorithms.

1. Per member: read the stage-2 cal file (SCI, ERR, DQ, variances: astropy.io.fits), build
   its source mask (:mod:`.masks`, bad pixels by jwst's DQ convention, :mod:`.dqflags`)
   and put its normalised masked image into the group's stack.
2. The background model is chosen from the group's own data (:mod:`.template_model`,
   :mod:`.local_background`): a leave-one-out template (with the cross-validated
   smoothing / stripes / detail), a per-exposure Background2D (groups below
   ``MEDIAN_THRESH``), or nothing when nothing beats a flat background.
3. Per member: subtract, add the template's noise to VAR_RNOISE (what stage 3's ``ivm``
   weights use) and ERR; fill bad pixels outside sources (:mod:`.median_filter`, from the
   subtracted neighbours); write the cleaned cal file (with provenance keywords and
   HISTORY) and its maps.

Filled pixels (jwst's ``pixel_replace`` convention): DO_NOT_USE cleared, FLUX_ESTIMATED
set, and their VAR_RNOISE multiplied by :data:`FILLED_VARIANCE_FACTOR`, so that the
drizzle's inverse-variance weights give them ~1e-4 of a measured pixel's weight: they only
matter where no other dither measured the sky.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..params import CleanParams
from ..workspace import Workspace
from . import dqflags, local_background as lb, masks as masks_mod, median_filter as mf, qa as qa_mod
from . import super_background as sb, template_model as tm
from .group_model import GroupStack, choose_background
from .io import MAP_BITS, Exposure, psf_fwhm_pixels, read_exposure, write_cal, write_maps

log = logging.getLogger(__name__)

#: The template's noise: its floor (the same at every pixel) goes into VAR_RNOISE, which
#: jwst resample's default ``ivm`` weights read (1 / VAR_RNOISE), so a template-subtracted
#: exposure weighs less; the pixel-to-pixel rest (where fewer members built the template)
#: goes into VAR_FLAT, so that the weights keep no structure across a source
#: (:func:`.super_background.subtract_template`). ERR carries the whole.
TEMPLATE_VARIANCE = "var_rnoise (floor) + var_flat (rest)"

#: VAR_RNOISE of a median-filled pixel is multiplied by this: weight 1e-4 of a measured one.
FILLED_VARIANCE_FACTOR = 1.0e4

#: A group's exposures are kept in memory between the mask pass and the subtraction pass up
#: to this many bytes (SCI, ERR, DQ, VAR_*: ~25 MB per FULL frame), so that each cal file is
#: read once per cleaning pass; beyond it, they are read again.
READ_CACHE_BYTES = 512 * 2**20


@dataclass
class ExposureStats:
    """Per-exposure figures for the summary."""

    stem: str
    group: str
    n_sources: int = 0
    n_small_removed: int = 0
    fraction_masked: float = 0.0
    n_mosaic_masked: int = 0  # second pass: pixels the projected mosaic mask added
    n_bad: int = 0
    n_filled: int = 0
    n_unfilled: int = 0
    n_outliers: int = 0
    sky: float | None = None
    method: str = "none"  # template | background2d | none
    model: str = ""
    scale: float | None = None
    n_fit_pixels: int = 0
    n_uncovered: int = 0
    fraction_uncovered: float = 0.0
    template: bool = False
    sky_subtracted: bool = False
    note: str = ""


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
    reason: str = ""
    skipped: bool = False  # done by an earlier run


def group_name(key: tuple) -> str:
    """A file-name-safe name of a group key."""
    return "_".join(str(k).replace(".", "p").replace(" ", "") or "NA" for k in key)


# ----------------------------------------------------------------------------- steps

def _fill(exp: Exposure, src_mask: np.ndarray, bad: np.ndarray, params: CleanParams) -> None:
    """The median filter (``MEDIAN_FILTER``), run last, on the background-subtracted image.

    Targets are the pixels stage 3 would not use (``bad``: the DQ flags outside stage 3's
    ``good_bits``, non-finite SCI or ERR) outside sources; NON_SCIENCE and reference
    pixels are never filled."""
    if not params.median_filter:
        return
    protect = (exp.dq & np.uint32(dqflags.flag("NON_SCIENCE") | dqflags.flag("REFERENCE_PIXEL"))) != 0
    targets = bad & ~protect
    fill = mf.median_fill(exp.sci, exp.err, half_width=params.window_size, source_mask=src_mask,
                          targets=targets, protect=protect, unusable=bad | protect,
                          variances=exp.variances, outlier_sigma=params.outlier_sigma or None,
                          suppress_warnings=params.suppress_warnings)
    exp.sci, exp.err, exp.variances, exp.fill = fill.sci, fill.err, fill.variances, fill
    f = fill.filled
    if f.any():
        if "var_rnoise" in exp.variances:
            exp.variances["var_rnoise"][f] *= np.float32(FILLED_VARIANCE_FACTOR)
            if exp.err is not None:
                total = sum(v[f].astype(np.float64) for v in exp.variances.values())
                exp.err[f] = np.sqrt(total).astype(np.float32)
        dq = exp.dq.copy()
        dq[f] = (dq[f] & np.uint32(~dqflags.flag("DO_NOT_USE") & 0xFFFFFFFF)) | np.uint32(dqflags.flag("FLUX_ESTIMATED"))
        exp.dq = dq


def _cleanmap(src, bad, exp: Exposure, excluded, uncovered) -> np.ndarray:
    cmap = np.zeros(src.shape, np.uint8)
    cmap[src] |= MAP_BITS["SOURCE"]
    cmap[bad] |= MAP_BITS["BAD"]
    if exp.fill is not None:
        cmap[exp.fill.filled] |= MAP_BITS["FILLED"]
        cmap[exp.fill.outliers] |= MAP_BITS["OUTLIER"]
        cmap[exp.fill.unfilled] |= MAP_BITS["UNFILLED"]
    if uncovered is not None:
        cmap[uncovered] |= MAP_BITS["UNCOVERED"]
    cmap[~excluded & np.isfinite(exp.sci)] |= MAP_BITS["SKY"]
    return cmap


@dataclass
class _Member:
    stem: str
    smask: np.ndarray  # packed source mask
    bad: np.ndarray  # packed bad-pixel mask
    segm: tuple  # sparse segmentation (indices, labels)
    shape: tuple
    sky: float

    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = int(np.prod(self.shape))
        smask = np.unpackbits(self.smask, count=n).reshape(self.shape).astype(bool)
        bad = np.unpackbits(self.bad, count=n).reshape(self.shape).astype(bool)
        segm = np.zeros(n, np.int32)
        segm[self.segm[0]] = self.segm[1]
        return smask, bad, segm.reshape(self.shape)


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
                extra_masks: dict[str, np.ndarray] | None = None, label: str = ""
                ) -> tuple[GroupStats, list[ExposureStats]]:
    """Clean the members of one group and write their products.

    ``extra_masks`` (second pass): per exposure, source pixels to add to its own mask (the
    first-pass mosaic's mask projected onto it, :mod:`.mosaic_mask`)."""
    name = group_name(key)
    gstats = GroupStats(name=name, key=list(key), members=list(stems))
    policy, gstats.reason = _treatment(params, len(stems))
    stats = {s: ExposureStats(stem=s, group=name) for s in stems}
    kept: dict[str, _Member] = {}
    group: GroupStack | None = None
    usable: list[str] = []
    cache: dict[str, Exposure] = {}

    for stem in stems:  # masks, and the stack (or, with no treatment, the products at once)
        t0 = time.perf_counter()
        st = stats[stem]
        src = ws.output("stage2", stem)
        exp = read_exposure(src)
        if policy != "off" and sum(e.nbytes for e in cache.values()) + exp.nbytes <= READ_CACHE_BYTES:
            cache[stem] = exp
        bad = masks_mod.coverage_mask(exp.sci, exp.err, exp.dq, good_bits=params.good_bits)
        sm = masks_mod.source_mask(exp.sci, exp.err, params=params.mask, bad=bad, pixel_scale=exp.pixel_scale,
                                   fwhm=psf_fwhm_pixels(exp.header.get("FILTER", ""), exp.pixel_scale),
                                   suppress_warnings=params.suppress_warnings)
        if extra_masks is not None and stem in extra_masks:
            extra = np.asarray(extra_masks[stem], bool)
            if extra.shape != sm.mask.shape:
                raise ValueError(f"{stem}: projected mosaic mask {extra.shape} differs from the exposure "
                                 f"{sm.mask.shape}")
            st.n_mosaic_masked = int(np.count_nonzero(extra & ~sm.mask & ~sm.bad))
            sm.mask = sm.mask | (extra & ~sm.bad)
        excluded = sm.mask | sm.bad
        st.n_sources, st.n_small_removed = sm.n_sources, sm.n_removed
        finite = np.isfinite(exp.sci)
        st.fraction_masked = float(np.count_nonzero(sm.mask & finite) / max(1, np.count_nonzero(finite)))
        st.n_bad = int(np.count_nonzero(sm.bad))
        if policy == "off":
            st.note = gstats.reason
            before = np.array(exp.sci)
            _finish(ws, stem, name, src, exp, sm.segm, sm.mask, sm.bad, excluded, None, params,
                    {"method": "none", "group": name, "n_group": len(stems), "pass": label})
            _fill_stats(st, exp)
            if qa and stem == stems[0]:
                qa_mod.exposure_png(ws, stem, before, exp.sci, sm.mask, sm.bad)
            continue
        nz = np.flatnonzero(sm.segm).astype(np.int64)
        sky = sb.robust_sky(exp.sci, excluded)
        st.sky = sky if math.isfinite(sky) else None
        kept[stem] = _Member(stem, np.packbits(sm.mask), np.packbits(sm.bad), (nz, sm.segm.ravel()[nz]),
                             exp.sci.shape, sky)
        if not math.isfinite(sky) or sky <= 0:
            st.note = f"sky level {sky!r} cannot normalise a template"
            continue
        if group is None:
            group = GroupStack(exp.sci.shape, len(stems))
        if exp.sci.shape != group.stack.shape[1:]:
            raise ValueError(f"{stem}: shape {exp.sci.shape} differs from its group's {group.stack.shape[1:]}")
        group.add(len(usable), exp, excluded, sky)
        usable.append(stem)
        log.info("clean %s: masks %.2f s", stem, time.perf_counter() - t0)

    if policy == "off":
        return gstats, [stats[s] for s in stems]
    if group is not None:
        group.finish(len(usable))
    method, model, box = "none", None, None
    frame = group.frame() if group is not None else None
    sky_fixed = bool(frame is not None and not frame.smooth_on_detector)
    if frame is not None:
        gstats.frame_test = frame.as_dict()
    if usable:
        method, model, box, gstats.cv_scores, gstats.cv_members = choose_background(
            group, usable, policy, params, sky_fixed)
    gstats.method = method
    gstats.model = {"template": model.name if model else "", "background2d": f"box{box}",
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
            why + ": only pixel-scale structure is subtracted, the smooth level is left to stage 3's skymatch")
    log.info("clean group %s: %s %s (scores %s)", name, method, gstats.model, gstats.cv_scores)
    if qa and method == "template":
        qa_mod.template_png(ws, name, group.loo.full)

    for stem in stems:  # subtraction and products
        st = stats[stem]
        src = ws.output("stage2", stem)
        exp = cache.pop(stem, None) or read_exposure(src)
        smask, bad, segm = kept[stem].masks()
        excluded = smask | bad
        before = np.array(exp.sci)
        uncovered = None
        prov = {"method": "none", "group": name, "n_group": len(stems), "pass": label}
        if stem in usable and method == "template":
            uncovered = _subtract_template(exp, group, usable.index(stem), model, excluded, st, kept[stem].sky)
            prov.update(method="template", model=model.name, scale=st.scale)
        elif stem in usable and method in ("background2d", "background2d+template"):
            bkg = lb.background2d(exp.sci, excluded, box)
            if bkg is not None:
                exp.sci = np.where(np.isfinite(bkg), exp.sci - bkg, exp.sci).astype(np.float32)
                st.method, st.model, st.sky_subtracted = "background2d", f"box{box}", True
                prov.update(method="background2d", model=f"box{box}")
                if method == "background2d+template":  # plus the template's pixel-scale structure
                    _subtract_template(exp, group, usable.index(stem), model, excluded, st, kept[stem].sky)
                    st.method, st.model, st.sky_subtracted = method, f"box{box}+{model.name}", True
                    prov.update(method=method, model=st.model, scale=st.scale)
        if not st.sky_subtracted and not st.note:
            st.note = gstats.reason or "not part of the group's background model"
        _finish(ws, stem, name, src, exp, segm, smask, bad, excluded, uncovered, params, prov)
        _fill_stats(st, exp)
        if uncovered is not None:
            st.n_uncovered = int(np.count_nonzero(uncovered))
            st.fraction_uncovered = st.n_uncovered / max(1, int(np.count_nonzero(np.isfinite(before))))
        if qa and stem == stems[0]:
            qa_mod.exposure_png(ws, stem, before, exp.sci, smask, bad)
    return gstats, [stats[s] for s in stems]


def _subtract_template(exp: Exposure, group: GroupStack, i: int, model: tm.TemplateModel, excluded: np.ndarray,
                       st: ExposureStats, sky: float) -> np.ndarray | None:
    """Subtract member ``i``'s modelled template (scale fitted on its sky); returns the
    pixels the template did not cover (interpolated there, flagged UNCOVERED)."""
    tmpl, tvar = group.template(i)
    tmpl, tvar = tm.apply_model(tmpl, tvar, model)
    if not model.smooth:  # structure only: in units of this exposure's own sky level (before any subtraction)
        res = sb.subtract_template(exp.sci, np.nan_to_num(tmpl), sky, exp.err, tvar, exp.variances,
                                   var_name="var_flat", weight_var_name="var_rnoise")
        exp.sci, exp.err, exp.variances = res.sci, res.err, res.variances
        st.template, st.sky_subtracted, st.method, st.model = True, False, "template", model.name
        st.scale, st.n_fit_pixels = sky, 0
        return None
    scale, n_fit = sb.fit_scale(exp.sci, tmpl, excluded)
    if not math.isfinite(scale):
        st.note = "no sky pixel to fit the template's scale: no super background"
        return None
    filled_tmpl, holes = sb.fill_template_holes(tmpl, np.isfinite(exp.sci))
    res = sb.subtract_template(exp.sci, filled_tmpl, scale, exp.err, tvar, exp.variances,
                               var_name="var_flat", weight_var_name="var_rnoise")
    exp.sci, exp.err, exp.variances = res.sci, res.err, res.variances
    st.template, st.sky_subtracted, st.method, st.model = True, True, "template", model.name
    st.scale, st.n_fit_pixels = scale, n_fit
    return holes


def _fill_stats(st: ExposureStats, exp: Exposure) -> None:
    if exp.fill is not None:
        st.n_filled, st.n_unfilled, st.n_outliers = exp.fill.n_filled, exp.fill.n_unfilled, exp.fill.n_outliers


def segm_path(ws: Workspace, stem: str) -> Path:
    return ws.dir("clean") / f"{stem}_segm.fits"


def _finish(ws: Workspace, stem: str, group: str, src: Path, exp: Exposure, segm, smask, bad, excluded,
            uncovered, params: CleanParams, prov: dict) -> None:
    """Fill, then write the maps and the cleaned cal file of one exposure."""
    _fill(exp, smask, bad, params)
    if uncovered is not None and exp.fill is not None:
        uncovered &= ~exp.fill.filled  # a bad pixel the fill replaced is not left unsubtracted
    prov = {**prov, "n_filled": exp.fill.n_filled if exp.fill is not None else 0}
    write_maps(segm_path(ws, stem), stem, segm, _cleanmap(smask, bad, exp, excluded, uncovered), group)
    write_cal(src, exp, ws.output("clean", stem), {**prov, "parameters": params.parameters()})
