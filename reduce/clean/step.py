"""The cleaning step: groups, resumption and the summary, around :mod:`.group`.

Exposures are grouped by :func:`.super_background.group_key`; :func:`.group.clean_group`
cleans one group (masks, the background model the group's data choose, subtraction, fill,
products). Stage-2 files are only read. Cleaned files appear under their final names
complete (written to a temporary file, then renamed). The unit of resumption is the group,
since every member's template depends on all the others. :func:`mosaic_masks` gives the
second pass its masks (the first-pass mosaics' sources projected onto each exposure).
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
from . import super_background as sb
from . import dqflags
from .group import FILLED_VARIANCE_FACTOR, MAP_BITS, TEMPLATE_VARIANCE, clean_group, group_name, psf_fwhm_pixels

log = logging.getLogger(__name__)


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
            gst, est = clean_group(ws, key, members, cfg, qa=qa, extra_masks=masks, label=label)
            log.info("clean group %s (%d exposures): %.1f s", name, len(members), time.perf_counter() - t0)
            out_groups[name] = asdict(gst)
            for e in est:
                out_exp[e.stem] = asdict(e)

    summary = {"parameters": {k: cfg[k] for k in ("MEDIAN_FILTER", "WINDOW_SIZE", "SUPER_BKG_SUB",
                                                  "SMALL_SOURCE_THRESH", "DILATE_SEG", "DILATE_ITERATIONS",
                                                  "MEDIAN_THRESH", "DETECT_THRESH", "template_smooth",
                                                  "small_group_background", "clean_outlier_sigma",
                                                  "clean_second_pass")},
               "pass": label,
               "bad_pixels": f"DQ flags outside good_bits {dqflags.stage3_good_bits(cfg)!r} (stage 3's resample), "
                             "non-finite SCI or ERR",
               "dq_filled": (f"DO_NOT_USE cleared, FLUX_ESTIMATED set, VAR_RNOISE x {FILLED_VARIANCE_FACTOR:g} "
                             "(ivm weight 1e-4 of a measured pixel)"),
               "template_variance": TEMPLATE_VARIANCE,
               "map_bits": MAP_BITS,
               "groups": out_groups, "exposures": out_exp}
    write_json(summary_path, summary)

    n_tmpl = sum(1 for g in out_groups.values() if g.get("template"))
    n_b2d = sum(1 for g in out_groups.values() if g.get("method") == "background2d")
    notes.append(f"cleaning: {len(cal)} exposure(s) in {len(groups)} group(s); super background in "
                 f"{n_tmpl} group(s), Background2D in {n_b2d}; {n_done} group(s) already done")
    for name, g in out_groups.items():
        if g.get("template") or g.get("method") == "background2d":
            notes.append(f"cleaning: group {name}: {g.get('method')} {g.get('model', '')} (chosen by "
                         f"cross-validation over {len(g.get('cv_members', []))} member(s))")
        elif cfg["SUPER_BKG_SUB"]:
            notes.append(f"cleaning: group {name}: no background removed ({g.get('reason', '')})")
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
            filt = m.meta.instrument.filter or ""
        mmask = mosaic_source_mask(sci, wht, detect_thresh=cfg["DETECT_THRESH"], fwhm=psf_fwhm_pixels(filt, scale),
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
