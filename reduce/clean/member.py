"""One member of a cleaning group: its masks and plane of the group's stack, then the
subtraction of the group's background model, the fill and its products (FITS I/O around the
pure algorithms). :func:`.group.clean_group` runs these for every member, in whichever
process (:func:`reduce.workers.fork_map`): nothing here depends on the others' processes.

Filled pixels (jwst's ``pixel_replace`` convention): DO_NOT_USE cleared, FLUX_ESTIMATED
set, and their VAR_RNOISE multiplied by :data:`FILLED_VARIANCE_FACTOR`, so that the
drizzle's inverse-variance weights give them ~1e-4 of a measured pixel's weight: they only
matter where no other dither measured the sky.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..params import CleanParams
from ..workspace import Workspace
from . import dqflags, local_background as lb, masks as masks_mod, median_filter as mf, qa as qa_mod
from . import super_background as sb, template_model as tm
from .group_model import GroupStack, member_plane
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
    stripes: dict | None = None  # the template's stripe levels: signal and noise rms, mean factor kept
    rim: dict | None = None  # the raised rim around the template's holes left out of its smoothing (hole_rim)
    note: str = ""


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
class Member:
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


@dataclass
class Masked:
    """A member after its masks: stats, masks and sky; its plane of the group's stack and the
    plane's variance (:func:`.group_model.member_plane`; None when the sky cannot normalise),
    the SCI header (WCS) and the exposure itself when it is kept for the subtraction."""

    stats: ExposureStats
    member: Member | None = None
    plane: np.ndarray | None = None
    var: np.ndarray | None = None
    sci_header: object = None
    exposure: Exposure | None = None


@dataclass
class FirstPassMasks:
    """Second pass: where pass 1 left its own source masks of a group's members and the
    identity pass 1's cleaning of the group must have for them to be this pass's too (the
    same stage-2 files, parameters and versions: the detection would give the same masks)."""

    root: str
    identity: str
    n_removed: dict  # {stem: sources pass 1 dropped as small}


def first_pass_masks(first: Workspace, stem: str, shape: tuple, reuse: FirstPassMasks
                     ) -> masks_mod.SourceMask | None:
    """Pass 1's own masks of ``stem`` (its ``_segm.fits``: SEGM, and CLEANMAP's SOURCE and BAD
    bits, which pass 1 wrote from exactly these arrays), or None when pass 1's cleaned file of
    ``stem`` lacks ``reuse.identity`` or the maps cannot be read."""
    from astropy.io import fits

    from .. import identity

    if stem not in reuse.n_removed or not identity.is_current(first.output("clean", stem), reuse.identity):
        return None
    try:
        with fits.open(segm_path(first, stem), memmap=False) as hdul:
            if hdul[0].header.get("EXPOSURE") != stem:
                return None
            segm = np.asarray(hdul["SEGM"].data, np.int32)
            cmap = np.asarray(hdul["CLEANMAP"].data, np.uint8)
    except (OSError, KeyError, ValueError):
        return None
    if segm.shape != tuple(shape) or cmap.shape != tuple(shape):
        return None
    return masks_mod.SourceMask(segm=segm, mask=(cmap & MAP_BITS["SOURCE"]) > 0, bad=(cmap & MAP_BITS["BAD"]) > 0,
                                n_sources=int(segm.max(initial=0)), n_removed=int(reuse.n_removed[stem]),
                                bkg_rms=float("nan"))


def mask_member(ws: Workspace, stem: str, name: str, n_group: int, params: CleanParams, policy: str, reason: str,
                label: str, extra: np.ndarray | None, qa: bool, keep: int,
                reuse: FirstPassMasks | None = None) -> Masked:
    """Read one member, build its masks, sky level and plane of the stack; with no treatment
    (``policy`` off), its products at once. The exposure is returned (kept in memory for the
    subtraction) when ``keep`` exposures of its size fit in :data:`READ_CACHE_BYTES`.
    ``reuse`` (second pass): pass 1's own masks are taken instead of detecting again
    (:func:`first_pass_masks`) when they are current."""
    from ..workspace import FirstPass

    t0 = time.perf_counter()
    st = ExposureStats(stem=stem, group=name)
    src = ws.output("stage2", stem)
    exp = read_exposure(src)
    sm = None if reuse is None else first_pass_masks(FirstPass(Path(reuse.root)), stem, exp.sci.shape, reuse)
    if sm is None:
        bad = masks_mod.coverage_mask(exp.sci, exp.err, exp.dq, good_bits=params.good_bits)
        sm = masks_mod.source_mask(exp.sci, exp.err, params=params.mask, bad=bad, pixel_scale=exp.pixel_scale,
                                   fwhm=psf_fwhm_pixels(exp.header.get("FILTER", ""), exp.pixel_scale),
                                   suppress_warnings=params.suppress_warnings)
    else:
        log.info("clean %s: pass 1's own masks reused", stem)
    if extra is not None:
        extra = np.asarray(extra, bool)
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
        st.note = reason
        before = np.array(exp.sci)
        _finish(ws, stem, name, src, exp, sm.segm, sm.mask, sm.bad, excluded, None, params,
                {"method": "none", "group": name, "n_group": n_group, "pass": label})
        _fill_stats(st, exp)
        if qa:
            qa_mod.exposure_png(ws, stem, before, exp.sci, sm.mask, sm.bad)
        return Masked(st)
    nz = np.flatnonzero(sm.segm).astype(np.int64)
    sky = sb.robust_sky(exp.sci, excluded)
    st.sky = sky if math.isfinite(sky) else None
    out = Masked(st, Member(stem, np.packbits(sm.mask), np.packbits(sm.bad), (nz, sm.segm.ravel()[nz]),
                            exp.sci.shape, sky), sci_header=exp.sci_header,
                 exposure=exp if keep * exp.nbytes <= READ_CACHE_BYTES else None)
    if not math.isfinite(sky) or sky <= 0:
        st.note = f"sky level {sky!r} cannot normalise a template"
    else:
        out.plane, out.var = member_plane(exp, excluded, sky)
    log.info("clean %s: masks %.2f s", stem, time.perf_counter() - t0)
    return out


def subtract_member(ws: Workspace, stem: str, name: str, n_group: int, exp: Exposure, member: Member,
                    st: ExposureStats, group: GroupStack | None, i: int | None, method: str,
                    model: tm.TemplateModel | None, box: int | None, reason: str, params: CleanParams, label: str,
                    qa: bool) -> ExposureStats:
    """Subtract the group's background model from member ``i`` of the stack (None: not in it),
    fill, write its products; returns its stats."""
    src = ws.output("stage2", stem)
    smask, bad, segm = member.masks()
    excluded = smask | bad
    before = np.array(exp.sci)
    uncovered = None
    prov = {"method": "none", "group": name, "n_group": n_group, "pass": label}
    if i is not None and method == "template":
        uncovered = _subtract_template(exp, group, i, model, excluded, st, member.sky)
        prov.update(method="template", model=st.model, scale=st.scale)
    elif i is not None and method in ("background2d", "background2d+template"):
        bkg = lb.background2d(exp.sci, excluded, box)
        if bkg is not None:
            exp.sci = np.where(np.isfinite(bkg), exp.sci - bkg, exp.sci).astype(np.float32)
            st.method, st.model, st.sky_subtracted = "background2d", f"box{box}", True
            prov.update(method="background2d", model=f"box{box}")
            if method == "background2d+template":  # plus the template's pixel-scale structure
                _subtract_template(exp, group, i, model, excluded, st, member.sky)
                st.method, st.model, st.sky_subtracted = method, f"box{box}+{model.name}", True
                prov.update(method=method, model=st.model, scale=st.scale)
    if not st.sky_subtracted and not st.note:
        st.note = reason or "not part of the group's background model"
    _finish(ws, stem, name, src, exp, segm, smask, bad, excluded, uncovered, params, prov)
    _fill_stats(st, exp)
    if uncovered is not None:
        st.n_uncovered = int(np.count_nonzero(uncovered))
        st.fraction_uncovered = st.n_uncovered / max(1, int(np.count_nonzero(np.isfinite(before))))
    if qa:
        qa_mod.exposure_png(ws, stem, before, exp.sci, smask, bad)
    return st


def _subtract_template(exp: Exposure, group: GroupStack, i: int, model: tm.TemplateModel, excluded: np.ndarray,
                       st: ExposureStats, sky: float) -> np.ndarray | None:
    """Subtract member ``i``'s modelled template (scale fitted on its sky); returns the
    pixels the template did not cover (interpolated there, flagged UNCOVERED).

    ``model`` None: only the group's smooth detector map (self-calibration,
    :meth:`.group_model.GroupStack.self_calibrate`)."""
    if model is None:
        tmpl, tvar, name = np.zeros(exp.sci.shape, np.float32), None, ""
    else:
        tmpl, tvar = group.template(i)
        info: dict = {}
        tmpl, tvar = tm.apply_model(tmpl, tvar, model, info)
        st.stripes, st.rim = info.get("stripes"), info.get("rim")
        name = model.name
    if model is None or not model.smooth:  # structure only: in units of this exposure's own sky level
        structure = np.nan_to_num(tmpl)
        if group.selfcal is not None:  # plus the smooth detector structure under sky-fixed emission
            structure = structure + group.detector_map(i)
            name += "+selfcal" if name else "selfcal"
        res = sb.subtract_template(exp.sci, structure, sky, exp.err, tvar, exp.variances,
                                   var_name="var_flat", weight_var_name="var_rnoise")
        exp.sci, exp.err, exp.variances = res.sci, res.err, res.variances
        st.template, st.sky_subtracted, st.method, st.model = True, False, "template", name
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
