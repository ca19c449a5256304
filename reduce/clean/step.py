"""The cleaning step: FITS I/O and orchestration around the pure algorithms.

For each group of exposures (see :func:`.super_background.group_key`):

1. pass 1, per member: read the stage-2 cal file, build its source mask (:mod:`.masks`)
   and put its normalised masked image (sources and bad pixels NaN) into the group's stack;
2. one sort of the stack gives every leave-one-out template (:mod:`.super_background`);
3. pass 2, per member: fit the template's scale on the unmasked sky, subtract it, add
   its noise; then fill bad pixels outside sources (:mod:`.median_filter`, when
   ``MEDIAN_FILTER``) from their *subtracted* neighbours, and write the products.

The fill comes last (the original filled first) because bad pixels are usually the same
detector pixels in every exposure: a template can never cover them, while the median of
subtracted neighbours is a consistent value. Groups without a template are only filled.

Stage-2 files are only read. Cleaned files appear under their final names complete
(written to a temporary file, then renamed). The unit of resumption is the group, since
every member's template depends on all the others.

DQ of filled pixels (the choice jwst's own ``pixel_replace`` step makes): DO_NOT_USE is
cleared and FLUX_ESTIMATED (2**28) is set; the pixel's other flags are kept. Stage 3
therefore uses filled pixels by default; ``good_bits`` of resample/outlier_detection can
exclude FLUX_ESTIMATED to drop them. ``<stem>_segm.fits`` holds the segmentation
(``SEGM``) and a bit map (``CLEANMAP``, see :data:`MAP_BITS`) of what was done where.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..fsutil import atomic_path, write_json
from ..workspace import Workspace
from . import masks as masks_mod
from . import median_filter as mf
from . import super_background as sb

log = logging.getLogger("mirim_reduce.clean")

DO_NOT_USE = 1
NON_SCIENCE = 512
REFERENCE_PIXEL = 2147483648
FLUX_ESTIMATED = 268435456

#: Bits of the CLEANMAP extension of ``<stem>_segm.fits``.
MAP_BITS = {"SOURCE": 1, "BAD": 2, "FILLED": 4, "OUTLIER": 8, "UNFILLED": 16, "UNCOVERED": 32,
            "SKY": 64}

VARIANCES = ("var_poisson", "var_rnoise", "var_flat")

#: Template noise goes into this variance array (a calibration-like error shared between
#: exposures, as the flat-field error is; resample's default 'ivm' weights use var_rnoise,
#: which the template leaves untouched).
TEMPLATE_VARIANCE = "var_flat"


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
    scale: float | None = None
    n_fit_pixels: int = 0
    n_uncovered: int = 0
    fraction_uncovered: float = 0.0
    template: bool = False
    note: str = ""


@dataclass
class GroupStats:
    """Per-group figures for the summary."""

    name: str
    key: list[str]
    members: list[str]
    template: bool = False
    reason: str = ""
    skipped: bool = False  # done by an earlier run


def group_name(key: tuple) -> str:
    """A file-name-safe name of a group key."""
    return "_".join(str(k).replace(".", "p").replace(" ", "") or "NA" for k in key)


def exposure_key(model) -> tuple:
    """The grouping key of an open ImageModel."""
    m = model.meta
    dur = m.exposure.effective_exposure_time
    if dur is None:
        dur = m.exposure.duration
    return sb.group_key(m.instrument.filter or "", float(dur if dur is not None else math.nan),
                        m.instrument.detector or "", m.subarray.name or "", m.exposure.readpatt or "")


def header_key(path: Path) -> tuple:
    """The grouping key from a cal file's primary header (FILTER, EFFEXPTM or DURATION,
    DETECTOR, SUBARRAY, READPATT), without opening the data model."""
    from astropy.io import fits

    h = fits.getheader(path, 0)
    dur = h.get("EFFEXPTM", h.get("DURATION"))
    return sb.group_key(h.get("FILTER", ""), float(dur if dur is not None else math.nan),
                        h.get("DETECTOR", ""), h.get("SUBARRAY", ""), h.get("READPATT", ""))


def _open(path: Path):
    from stdatamodels.jwst.datamodels import ImageModel

    return ImageModel(str(path))


def _arrays(model) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict[str, np.ndarray]]:
    sci = np.array(model.data, dtype=np.float32)
    err = None if model.err is None else np.array(model.err, dtype=np.float32)
    dq = np.zeros(sci.shape, np.uint32) if model.dq is None else np.array(model.dq, dtype=np.uint32)
    variances = {}
    for name in VARIANCES:
        v = getattr(model, name, None)
        if v is not None and np.shape(v) == sci.shape:
            variances[name] = np.array(v, dtype=np.float32)
    return sci, err, dq, variances


@dataclass
class _Prepared:
    sci: np.ndarray
    err: np.ndarray | None
    dq: np.ndarray
    variances: dict
    excluded: np.ndarray  # sources + bad pixels: not sky
    fill: mf.FillResult | None = None


def _prepare(model, src_mask: np.ndarray, bad: np.ndarray) -> _Prepared:
    sci, err, dq, variances = _arrays(model)
    return _Prepared(sci, err, dq, variances, src_mask | bad)


def _fill(prep: _Prepared, src_mask: np.ndarray, cfg: dict) -> None:
    """The median filter (``MEDIAN_FILTER``), run last: on the background-subtracted image,
    so that fills come from subtracted neighbours and never need a template value."""
    if not cfg["MEDIAN_FILTER"]:
        return
    dq = prep.dq
    dnu = (dq & DO_NOT_USE) != 0
    protect = (dq & np.uint32(NON_SCIENCE | REFERENCE_PIXEL)) != 0
    targets = ~np.isfinite(prep.sci) | dnu
    if prep.err is not None:
        targets |= ~np.isfinite(prep.err)
    fill = mf.median_fill(prep.sci, prep.err, half_width=cfg["WINDOW_SIZE"], source_mask=src_mask,
                          targets=targets, protect=protect, unusable=dnu | protect,
                          variances=prep.variances, outlier_sigma=cfg["clean_outlier_sigma"] or None,
                          suppress_warnings=cfg["SUPPRESS_WARNINGS"])
    prep.sci, prep.err, prep.variances, prep.fill = fill.sci, fill.err, fill.variances, fill
    prep.dq = dq.copy()
    prep.dq[fill.filled] = (dq[fill.filled] & np.uint32(~DO_NOT_USE & 0xFFFFFFFF)) | np.uint32(FLUX_ESTIMATED)


def _write_cal(model, prep: _Prepared, final: Path) -> None:
    model.data = prep.sci
    if prep.err is not None:
        model.err = prep.err.astype(np.float32)
    model.dq = prep.dq
    for name, v in prep.variances.items():
        setattr(model, name, v.astype(np.float32))
    model.meta.filename = final.name
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:  # a file object: stdatamodels keeps meta.filename
            model.to_fits(fh)


def _write_maps(final: Path, stem: str, segm: np.ndarray, cmap: np.ndarray, key: tuple) -> None:
    from astropy.io import fits

    hdr = fits.Header()
    hdr["EXPOSURE"] = stem
    hdr["CLNGROUP"] = group_name(key)
    for name, bit in MAP_BITS.items():
        hdr[f"MAP_{name}"[:8]] = (bit, f"CLEANMAP bit: {name.lower()}")
    hdul = fits.HDUList([fits.PrimaryHDU(header=hdr),
                         fits.ImageHDU(segm.astype(np.int32), name="SEGM"),
                         fits.ImageHDU(cmap.astype(np.uint8), name="CLEANMAP")])
    with atomic_path(final) as tmp:
        hdul.writeto(tmp, overwrite=True)


def _cleanmap(src: np.ndarray, bad: np.ndarray, prep: _Prepared, uncovered: np.ndarray | None) -> np.ndarray:
    cmap = np.zeros(src.shape, np.uint8)
    cmap[src] |= MAP_BITS["SOURCE"]
    cmap[bad] |= MAP_BITS["BAD"]
    if prep.fill is not None:
        cmap[prep.fill.filled] |= MAP_BITS["FILLED"]
        cmap[prep.fill.outliers] |= MAP_BITS["OUTLIER"]
        cmap[prep.fill.unfilled] |= MAP_BITS["UNFILLED"]
    if uncovered is not None:
        cmap[uncovered] |= MAP_BITS["UNCOVERED"]
    cmap[~prep.excluded & np.isfinite(prep.sci)] |= MAP_BITS["SKY"]
    return cmap


def clean_group(ws: Workspace, key: tuple, stems: list[str], cfg: dict, qa: bool = True,
                extra_masks: dict[str, np.ndarray] | None = None) -> tuple[GroupStats, list[ExposureStats]]:
    """Clean the members of one group and write their products.

    ``extra_masks`` (second pass): per exposure, source pixels to add to its own mask (the
    first-pass mosaic's mask projected onto it, :mod:`.mosaic_mask`)."""
    from ..instrument import PIXEL_SCALE

    name = group_name(key)
    gstats = GroupStats(name=name, key=list(key), members=list(stems))
    threshold = max(int(cfg["MEDIAN_THRESH"]), 2)
    if not cfg["SUPER_BKG_SUB"]:
        gstats.reason = "SUPER_BKG_SUB is off"
    elif len(stems) < threshold:
        gstats.reason = (f"{len(stems)} exposure(s) < MEDIAN_THRESH={cfg['MEDIAN_THRESH']}"
                         + (" (a leave-one-out template needs >= 2)" if cfg["MEDIAN_THRESH"] < 2 else ""))
    build = not gstats.reason
    stats = {s: ExposureStats(stem=s, group=name) for s in stems}
    kept: dict[str, tuple] = {}  # stem -> (packed source mask, packed bad mask, sparse segm)
    stack = var_sum = var_cnt = None
    usable: list[str] = []
    skies: dict[str, float] = {}

    # pass 1: masks and the stack (and, without a template, the fill and the products)
    for stem in stems:
        t0 = time.perf_counter()
        st = stats[stem]
        model = _open(ws.output("stage2", stem))
        try:
            sci, err, dq, _ = _arrays(model)
            sm = masks_mod.source_mask(sci, err, dq, detect_thresh=cfg["DETECT_THRESH"],
                                       small_source_thresh=cfg["SMALL_SOURCE_THRESH"],
                                       dilate_seg=cfg["DILATE_SEG"], dilate_iterations=cfg["DILATE_ITERATIONS"],
                                       pixel_scale=PIXEL_SCALE, suppress_warnings=cfg["SUPPRESS_WARNINGS"])
            if extra_masks is not None and stem in extra_masks:
                extra = np.asarray(extra_masks[stem], bool)
                if extra.shape != sm.mask.shape:
                    raise ValueError(f"{stem}: projected mosaic mask {extra.shape} differs from the exposure "
                                     f"{sm.mask.shape}")
                st.n_mosaic_masked = int(np.count_nonzero(extra & ~sm.mask & ~sm.bad))
                sm.mask = sm.mask | (extra & ~sm.bad)
            prep = _prepare(model, sm.mask, sm.bad)
            st.n_sources, st.n_small_removed = sm.n_sources, sm.n_removed
            finite = np.isfinite(sci)
            st.fraction_masked = float(np.count_nonzero(sm.mask & finite) / max(1, np.count_nonzero(finite)))
            st.n_bad = int(np.count_nonzero(sm.bad))
            if not build:
                st.note = gstats.reason
                _fill(prep, sm.mask, cfg)
                _fill_stats(st, prep)
                _finish(ws, stem, key, sm.segm, sm.mask, sm.bad, prep, None, model)
                if qa and stem == stems[0]:
                    _qa_exposure(ws, stem, sci, prep.sci, sm.mask, sm.bad)
                continue
        finally:
            model.close()
        nz = np.flatnonzero(sm.segm).astype(np.int64)
        kept[stem] = (np.packbits(sm.mask), np.packbits(sm.bad), (nz, sm.segm.ravel()[nz]))
        sky = sb.robust_sky(prep.sci, prep.excluded)
        st.sky = sky if math.isfinite(sky) else None
        if not math.isfinite(sky) or sky <= 0:
            st.note = f"sky level {sky!r} cannot normalise a template: no super background"
            continue
        if stack is None:
            stack = np.full((len(stems),) + sci.shape, np.nan, np.float32)
            var_sum = np.zeros(sci.shape, np.float64)
            var_cnt = np.zeros(sci.shape, np.int32)
        if sci.shape != stack.shape[1:]:
            raise ValueError(f"{stem}: shape {sci.shape} differs from its group's {stack.shape[1:]}")
        plane = sb.masked_normalised(prep.sci, prep.excluded, sky, out=stack[len(usable)])
        if prep.err is not None:
            plane[~np.isfinite(prep.err)] = np.nan
            contrib = np.isfinite(plane)
            var_sum[contrib] += (prep.err[contrib].astype(np.float64) / sky) ** 2
            var_cnt += contrib
        skies[stem] = sky
        usable.append(stem)
        log.info("clean %s: pass 1 %.2f s", stem, time.perf_counter() - t0)

    if not build:
        return gstats, [stats[s] for s in stems]
    if len(usable) < threshold:
        gstats.reason = (f"{len(usable)} usable exposure(s) < MEDIAN_THRESH={cfg['MEDIAN_THRESH']} "
                         "(the others had no positive sky level)")
        loo = None
    else:
        stack = stack[:len(usable)]
        loo = sb.leave_one_out(stack)
        gstats.template = True
        if qa:
            _qa_template(ws, name, loo.full)

    # pass 2: template subtraction and products
    for stem in stems:
        st = stats[stem]
        model = _open(ws.output("stage2", stem))
        try:
            shape = model.data.shape
            smask = np.unpackbits(kept[stem][0], count=int(np.prod(shape))).reshape(shape).astype(bool)
            bad = np.unpackbits(kept[stem][1], count=smask.size).reshape(shape).astype(bool)
            segm = np.zeros(smask.size, np.int32)
            segm[kept[stem][2][0]] = kept[stem][2][1]
            segm = segm.reshape(shape)
            prep = _prepare(model, smask, bad)
            before = prep.sci
            uncovered = None
            if loo is not None and stem in usable:
                own = stack[usable.index(stem)]
                tmpl, n_others = loo.template(own)
                n_avg = None
                if cfg["template_smooth"] > 1:
                    tmpl, n_avg = sb.smooth_template(tmpl, cfg["template_smooth"])
                scale, n_fit = sb.fit_scale(prep.sci, tmpl, prep.excluded)
                if math.isfinite(scale):
                    tvar = None
                    if var_sum is not None and prep.err is not None:
                        own_var = np.full(shape, np.nan)
                        has = np.isfinite(own)
                        own_var[has] = (prep.err[has].astype(np.float64) / skies[stem]) ** 2
                        tvar = sb.template_variance(var_sum, var_cnt, own_var, n_others)
                        if n_avg is not None:  # a box mean of n_avg pixels of the template
                            tvar = tvar / np.maximum(n_avg, 1.0)
                    # holes (every other member masked the pixel: a source larger than the
                    # dithers) get the interpolated template, and stay flagged UNCOVERED
                    filled_tmpl, holes = sb.fill_template_holes(tmpl, np.isfinite(prep.sci))
                    res = sb.subtract_template(prep.sci, filled_tmpl, scale, prep.err, tvar, prep.variances,
                                               var_name=TEMPLATE_VARIANCE)
                    prep.sci, prep.err, prep.variances = res.sci, res.err, res.variances
                    uncovered = holes
                    st.template, st.scale, st.n_fit_pixels = True, scale, n_fit
                else:
                    st.note = "no sky pixel to fit the template's scale: no super background"
            elif not st.note:
                st.note = gstats.reason
            _fill(prep, smask, cfg)
            _fill_stats(st, prep)
            if uncovered is not None:
                if prep.fill is not None:  # a bad pixel the fill replaced is not left unsubtracted
                    uncovered &= ~prep.fill.filled
                st.n_uncovered = int(np.count_nonzero(uncovered))
                st.fraction_uncovered = st.n_uncovered / max(1, int(np.count_nonzero(np.isfinite(before))))
            _finish(ws, stem, key, segm, smask, bad, prep, uncovered, model)
            if qa and stem == stems[0]:
                _qa_exposure(ws, stem, before, prep.sci, smask, bad)
        finally:
            model.close()
    return gstats, [stats[s] for s in stems]


def _fill_stats(st: ExposureStats, prep: _Prepared) -> None:
    if prep.fill is not None:
        st.n_filled, st.n_unfilled, st.n_outliers = (prep.fill.n_filled, prep.fill.n_unfilled,
                                                     prep.fill.n_outliers)


def _segm_path(ws: Workspace, stem: str) -> Path:
    return ws.dir("clean") / f"{stem}_segm.fits"


def _finish(ws: Workspace, stem: str, key: tuple, segm, smask, bad, prep: _Prepared, uncovered,
            model) -> None:
    """Write the maps and the cleaned cal file of one exposure (``model``: its stage-2 model)."""
    _write_maps(_segm_path(ws, stem), stem, segm, _cleanmap(smask, bad, prep, uncovered), key)
    _write_cal(model, prep, ws.output("clean", stem))


# ----------------------------------------------------------------------------- QA plots

def _imshow(ax, img, title):
    finite = img[np.isfinite(img)]
    if finite.size:
        lo, hi = np.percentile(finite, [1, 99])
    else:
        lo, hi = 0, 1
    ax.imshow(img, origin="lower", vmin=lo, vmax=hi, cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _qa_template(ws: Workspace, name: str, template: np.ndarray) -> None:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    _imshow(ax, template, f"{name}: median of all members (normalised)")
    _save(fig, ws.dir("clean") / "qa" / f"{name}_template.png")
    plt.close(fig)


def _qa_exposure(ws: Workspace, stem: str, before, after, smask, bad) -> None:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    _imshow(axes[0], before, f"{stem}: before")
    _imshow(axes[1], after, "after")
    code = smask.astype(np.uint8) + 2 * bad.astype(np.uint8)
    axes[2].imshow(code, origin="lower", cmap="viridis", vmin=0, vmax=3, interpolation="nearest")
    axes[2].set_title("mask (1 source, 2 bad, 3 both)", fontsize=8)
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    _save(fig, ws.dir("clean") / "qa" / f"{stem}_clean.png")
    plt.close(fig)


def _save(fig, final: Path) -> None:
    with atomic_path(final) as tmp:
        fig.savefig(tmp, format="png", dpi=90)


# ----------------------------------------------------------------------------- driver

@dataclass
class CleanResult:
    files: list[Path]
    notes: list[str] = field(default_factory=list)
    exposures: dict[str, dict] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)


def run_clean(ws: Workspace, stems: list[str], cfg: dict, qa: bool = True,
              extra_masks: Callable[[], dict[str, np.ndarray]] | None = None, label: str = "") -> CleanResult:
    """Clean every group of ``stems`` (skipping finished groups unless OVERWRITE).

    ``extra_masks``: called once, when the first group is to be cleaned, for the masks of
    :func:`clean_group` (a resumed run whose groups are all done never computes them);
    ``label`` names the pass in the summary file (a group finished by a run with another
    label is redone)."""
    cal = {s: ws.output("stage2", s) for s in stems if ws.output("stage2", s).exists()}
    missing = [s for s in stems if s not in cal]
    notes: list[str] = []
    if missing:
        notes.append(f"cleaning: {len(missing)} exposure(s) without a stage-2 cal file: {', '.join(missing)}")
    if not cfg["MEDIAN_FILTER"] and not cfg["SUPER_BKG_SUB"]:
        notes.append("cleaning off (MEDIAN_FILTER and SUPER_BKG_SUB are false): stage 3 uses the stage-2 cal files")
        return CleanResult(files=list(cal.values()), notes=notes)

    keys = {stem: header_key(path) for stem, path in cal.items()}
    groups = sb.group_by_key(keys)

    summary_path = ws.dir("clean") / "clean_summary.json"
    previous = _load_json(summary_path)
    out_groups: dict[str, dict] = {}
    out_exp: dict[str, dict] = {}
    n_done = 0
    masks: dict[str, np.ndarray] | None = None
    with warnings.catch_warnings():
        if cfg["SUPPRESS_WARNINGS"]:
            warnings.simplefilter("ignore", RuntimeWarning)
        for key, members in groups.items():
            name = group_name(key)
            done = all(ws.output("clean", s).exists() for s in members)
            prev = previous.get("groups", {}).get(name)
            same_pass = previous.get("pass", "") == label
            if (done and not cfg["OVERWRITE"] and prev and same_pass
                    and sorted(prev.get("members", [])) == sorted(members)):
                out_groups[name] = {**prev, "skipped": True}
                for s in members:
                    out_exp[s] = previous.get("exposures", {}).get(s, {"stem": s, "group": name})
                n_done += 1
                continue
            if masks is None and extra_masks is not None:
                masks = extra_masks()
            t0 = time.perf_counter()
            gst, est = clean_group(ws, key, members, cfg, qa=qa, extra_masks=masks)
            log.info("clean group %s (%d exposures): %.1f s", name, len(members), time.perf_counter() - t0)
            out_groups[name] = asdict(gst)
            for e in est:
                out_exp[e.stem] = asdict(e)

    summary = {"parameters": {k: cfg[k] for k in ("MEDIAN_FILTER", "WINDOW_SIZE", "SUPER_BKG_SUB",
                                                  "SMALL_SOURCE_THRESH", "DILATE_SEG", "DILATE_ITERATIONS",
                                                  "MEDIAN_THRESH", "DETECT_THRESH", "template_smooth",
                                                  "clean_second_pass")},
               "pass": label,
               "dq_filled": "DO_NOT_USE cleared, FLUX_ESTIMATED set",
               "template_variance": TEMPLATE_VARIANCE,
               "map_bits": MAP_BITS,
               "groups": out_groups, "exposures": out_exp}
    write_json(summary_path, summary)

    n_tmpl = sum(1 for g in out_groups.values() if g.get("template"))
    notes.append(f"cleaning: {len(cal)} exposure(s) in {len(groups)} group(s); super background in "
                 f"{n_tmpl} group(s); {n_done} group(s) already done")
    for name, g in out_groups.items():
        if cfg["SUPER_BKG_SUB"] and not g.get("template"):
            notes.append(f"cleaning: group {name}: no super background ({g.get('reason', '')})")
    filled = sum(e.get("n_filled", 0) for e in out_exp.values())
    unfilled = sum(e.get("n_unfilled", 0) for e in out_exp.values())
    uncovered = sum(e.get("n_uncovered", 0) for e in out_exp.values())
    if cfg["MEDIAN_FILTER"]:
        notes.append(f"cleaning: {filled} pixel(s) median-filled (DQ FLUX_ESTIMATED), "
                     f"{unfilled} left without a finite neighbour")
    if uncovered:
        notes.append(f"cleaning: {uncovered} science pixel(s) not covered by their template (template "
                     "interpolated from its surroundings there; CLEANMAP bit UNCOVERED)")
    files = [ws.output("clean", s) for s in cal]
    return CleanResult(files=files, notes=notes, exposures=out_exp, groups=out_groups)


def _load_json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mosaic_masks(first: Workspace, stems: list[str], cfg: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """Second pass: the source mask of every first-pass mosaic (``first.dir("stage3")``),
    projected onto each member exposure through its tweakreg-aligned WCS (the mosaic's
    ``*_crf.fits``). Returns ({stem: mask}, notes); ``<product>_mosaic_mask.fits`` (MASK,
    uint8, on the mosaic grid) is written next to each mosaic."""
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    from .mosaic_mask import mosaic_source_mask, project_mask

    out: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for i2d in sorted(first.dir("stage3").glob("*/*_i2d.fits")):
        t0 = time.perf_counter()
        with datamodels.open(str(i2d)) as m:
            sci, wht = np.array(m.data, np.float32), np.array(m.wht, np.float32)
            mwcs = m.meta.wcs
            scale = math.sqrt(float(m.meta.photometry.pixelarea_steradians)) * 206264.806
        mmask = mosaic_source_mask(sci, wht, detect_thresh=cfg["DETECT_THRESH"],
                                   small_source_thresh=cfg["SMALL_SOURCE_THRESH"], dilate_seg=cfg["DILATE_SEG"],
                                   dilate_iterations=cfg["DILATE_ITERATIONS"], pixel_scale=scale,
                                   suppress_warnings=cfg["SUPPRESS_WARNINGS"])
        product = i2d.name.removesuffix("_i2d.fits")
        with atomic_path(i2d.parent / f"{product}_mosaic_mask.fits") as tmp:
            fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(mmask.astype(np.uint8), name="MASK")]).writeto(tmp)
        data = (wht > 0) & np.isfinite(sci)
        n = 0
        for crf in sorted(i2d.parent.glob("*_crf.fits")):
            stem = next((s for s in stems if crf.name.startswith(s + "_")), None)
            if stem is None:
                continue
            with datamodels.open(str(crf)) as c:
                ewcs, shape = c.meta.wcs, c.data.shape

            def to_mosaic(x, y, ewcs=ewcs):
                ra, dec = ewcs(x, y)
                return mwcs.invert(ra, dec)

            out[stem] = project_mask(mmask, to_mosaic, shape)
            n += 1
        frac = float(np.count_nonzero(mmask) / max(1, np.count_nonzero(data)))
        log.info("second pass: %s mask covers %.1f%% of the mosaic, projected onto %d exposure(s) in %.1f s",
                 product, 100 * frac, n, time.perf_counter() - t0)
        notes.append(f"cleaning, second pass: {product}: mosaic mask {100 * frac:.1f}% of the mosaic, "
                     f"projected onto {n} exposure(s)")
    return out, notes
