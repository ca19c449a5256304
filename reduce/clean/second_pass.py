"""The second cleaning pass (``clean_second_pass``): clean, mosaic, mask, clean again.

1. Pass 1 cleans every group into ``pass1/clean`` (:func:`.step.run_clean`).
2. For every mosaic with a member from which the cleaning subtracted a template (its sky,
   or only its pixel-scale structure where the smooth background is on the sky), a worker aligns the
   pass-1 files with jwst's tweakreg, matches their sky with skymatch (when stage 3 would)
   and drizzles them with jwst's resample, all in memory and with the parameters stage 3
   uses (the Image3 pipeline's own sub-steps, CRDS parameter references included); the
   mosaic's source mask (:func:`.mosaic_mask.mosaic_source_mask`) is projected onto each
   member through its aligned WCS and saved as ``pass1/masks/<stem>_mask.fits``. No outlier
   detection, no catalogue, no files but the masks: that was a full Image3 before.
3. Pass 2 cleans into ``clean/`` with each exposure's own mask plus the projected one. A
   group none of whose members has a projected mask would be cleaned exactly as in pass 1:
   its pass-1 files are copied instead (MRC_PASS says "pass 2"), not recomputed.

Each part resumes: finished groups, masks (``pass1/masks/<product>.json`` is written last)
and copies are not redone unless OVERWRITE. The second pass reads the cleaning's parameters
(:class:`reduce.params.CleanParams`) and, for the mosaics, stage 3's (:class:`reduce.params.PipelineParams`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import identity
from ..fsutil import atomic_path, write_json
from ..params import CleanParams, MaskParams, PipelineParams
from ..stages.task import Outcome
from ..workers import WorkerPool, peak_rss_mb, task_log
from ..workspace import FirstPass, Workspace
from . import CleanReport, run as run_pass
from .io import psf_fwhm_pixels
from .pass_files import FIRST_PASS_LABEL, mask_path, marker_path

log = logging.getLogger(__name__)


#: jwst resample's outputs a mask mosaic does not read (it reads SCI and WHT only): the error
#: and variance arrays (half of the drizzle's time at full frame) and the context image. The
#: SCI and WHT arrays do not depend on them (ivm weights read VAR_RNOISE either way).
MASK_MOSAIC_RESAMPLE = {"enable_err": False, "report_var": False, "enable_ctx": False}


@dataclass
class MosaicMaskJob:
    """One first-pass mosaic: its pass-1 cleaned members, the stage-3 parameters and the mask's."""

    root: str
    product: str
    members: list[str]  # pass-1 cleaned cal files
    stems: list[str]
    steps: dict
    mask: MaskParams
    suppress_warnings: bool
    identity: str = ""
    made_of: dict | None = None


def _aligned_mosaic(job: MosaicMaskJob, asn_path: Path):
    """(mosaic ImageModel, [(member file name, aligned gwcs, shape)], seconds inside jwst):
    Image3's tweakreg, skymatch and resample run on the association, in memory."""
    from jwst.pipeline import Image3Pipeline

    config, config_file = Image3Pipeline.build_config(str(asn_path), steps=job.steps)
    config.pop("class", None)
    pipe = Image3Pipeline.from_config_section(config, name=config.get("name"), config_file=config_file)
    t0 = time.perf_counter()
    lib = pipe._load_input_as_library(str(asn_path))
    for step in (pipe.tweakreg, pipe.skymatch, pipe.resample):
        step.save_results = False
    lib = pipe.tweakreg.run(lib)
    lib = pipe.skymatch.run(lib)
    mosaic = pipe.resample.run(lib)
    members = []
    with lib:
        for i in range(len(lib)):
            m = lib.borrow(i)
            members.append((m.meta.filename, m.meta.wcs, m.data.shape))
            lib.shelve(m, i, modify=False)
    return mosaic, members, time.perf_counter() - t0


def mosaic_mask_task(job: MosaicMaskJob) -> Outcome:
    """Worker: the mask of one first-pass mosaic, projected onto its members (files)."""
    from ..fsutil import claimed

    first = FirstPass(Path(job.root))
    start = time.perf_counter()
    with claimed(first.dir("masks"), job.product, "masks", f"the mosaic mask of {job.product}"):
        with task_log(first.log("stage3", job.product)):
            return _mosaic_mask(job, first, start)


def _mosaic_mask(job: MosaicMaskJob, first: FirstPass, start: float) -> Outcome:
    from astropy.io import fits

    from ..stages.stage3 import association_text
    from .mosaic_mask import mosaic_source_mask, project_mask_wcs

    out_dir = first.dir("stage3") / job.product
    out_dir.mkdir(parents=True, exist_ok=True)
    asn = out_dir / f"{job.product}_asn.json"
    with atomic_path(asn) as tmp:
        tmp.write_text(association_text(job.members, job.product))
    mosaic, members, jwst_seconds = _aligned_mosaic(job, asn)
    sci, wht = np.asarray(mosaic.data, np.float32), np.asarray(mosaic.wht, np.float32)
    mwcs = mosaic.meta.wcs
    scale = math.sqrt(float(mosaic.meta.photometry.pixelarea_steradians)) * 206264.806
    mmask = mosaic_source_mask(sci, wht, job.mask, fwhm=psf_fwhm_pixels(mosaic.meta.instrument.filter or "", scale),
                               pixel_scale=scale, suppress_warnings=job.suppress_warnings)
    with atomic_path(out_dir / f"{job.product}_mosaic_mask.fits") as tmp:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(mmask.astype(np.uint8), name="MASK")]).writeto(tmp)
    by_name = {f"{s}_cal.fits": s for s in job.stems}
    paths = {Path(m).name: Path(m) for m in job.members}
    done = []
    for filename, ewcs, shape in members:
        stem = by_name.get(filename)
        if stem is None:
            continue

        projected = project_mask_wcs(mmask, ewcs, mwcs, shape,  # stcal's pixel map, as the mosaic's
                                     stepsize=int(job.steps.get("resample", {}).get("pixmap_stepsize", 1)))
        hdr = fits.Header({"EXPOSURE": stem, "MOSAIC": job.product})
        hdr.update(_alignment_keywords(paths[filename], ewcs, shape))
        with atomic_path(mask_path(first, stem)) as tmp:
            fits.HDUList([fits.PrimaryHDU(header=hdr),
                          fits.ImageHDU(projected.astype(np.uint8), name="MASK")]).writeto(tmp)
        identity.write(mask_path(first, stem), job.identity, job.made_of or {})
        done.append(stem)
    data = (wht > 0) & np.isfinite(sci)
    frac = float(np.count_nonzero(mmask) / max(1, np.count_nonzero(data)))
    note = (f"cleaning, second pass: {job.product}: mosaic mask {100 * frac:.1f}% of the mosaic, "
            f"projected onto {len(done)} exposure(s)")
    log.info(note)
    write_json(marker_path(first, job.product), {"note": note, "members": done, "fraction": frac,  # last: marks done
                                                 "identity": job.identity})
    return Outcome("clean", f"mosaic mask {job.product}", True, time.perf_counter() - start, jwst_seconds,
                   peak_rss_mb())


def _alignment_keywords(path: Path, aligned_wcs, shape: tuple[int, int]) -> dict:
    """The member's correction from its cal file's FITS WCS to tweakreg's aligned WCS, as
    mask-header keywords (:mod:`.alignment`); none without a celestial FITS WCS."""
    from astropy.io import fits

    from . import alignment
    from .io import pixel_sky_transforms

    transforms = pixel_sky_transforms(fits.getheader(path, "SCI"))
    fit = None if transforms is None else alignment.fit_correction(aligned_wcs, transforms[1], shape)
    return {} if fit is None else alignment.to_header(*fit)


def plan_masks(first: FirstPass, report: CleanReport, params: CleanParams, pipeline: PipelineParams,
               crds_context: str, *, overwrite: bool, only: list[str] | None = None
               ) -> tuple[list[MosaicMaskJob], list[str], set[str]]:
    """Jobs for the first-pass mosaics still to mask (those with a member from which a template
    was subtracted, :attr:`.CleanReport.templated`, whose masks are missing or were made from
    other pass-1 files, parameters or versions), the notes
    of those already done, and the stems every current mosaic mask covers. ``only``: jobs for
    these mosaics only (an InputError names one that is not a mosaic)."""
    from ..errors import check_names
    from ..stages.stage3 import mosaic_groups, mosaic_steps

    jobs, notes, covered = [], [], set()
    mosaics = mosaic_groups(report.files, pipeline.mosaic_per)
    check_names(only, mosaics, "mosaic", "mosaics")
    for product, members in mosaics.items():
        if not any(Path(m) in report.templated for m in members):
            continue
        mine = mosaic_steps(pipeline, members, report.sky_subtracted)  # as stage 3 will run it,
        # but the mosaic's pixel maps on a grid (a mask needs no better; 40 % of its time at full frame)
        # and only the arrays the mask reads (SCI, WHT): no error, variance or context arrays
        mine = {**mine, "resample": {**mine.get("resample", {}), **MASK_MOSAIC_RESAMPLE,
                                     "pixmap_stepsize": float(params.mask_pixmap_stepsize)}}
        stems = [Path(m).name.removesuffix("_cal.fits") for m in members]
        covered.update(stems)
        made_of = {"stage": "masks", "product": product,
                   "members": {Path(m).name: identity.read(Path(m)) for m in sorted(members)}, "steps": mine,
                   "parameters": params.mask.parameters(),
                   "versions": identity.versions(crds_context, "clean", "stages")}
        ident = identity.digest(made_of)
        marker = marker_path(first, product)
        if not overwrite and all(identity.is_current(mask_path(first, s), ident) for s in stems):
            try:
                record = json.loads(marker.read_text())
                if record.get("identity") == ident:
                    notes.append(record["note"])
                    continue
            except (OSError, ValueError, KeyError):
                pass
        if only is not None and product not in only:
            continue
        jobs.append(MosaicMaskJob(str(first.root), product, [str(m) for m in members], stems, mine, params.mask,
                                  params.suppress_warnings, ident, made_of))
    return jobs, notes, covered


def remove_stale_masks(first: FirstPass, covered: set[str]) -> None:
    """Masks of exposures no current first-pass mosaic covers (a config or input change made
    their group's cleaning stop subtracting the sky) must not reach the second pass."""
    for path in first.dir("masks").glob("*_mask.fits"):
        if path.name.removesuffix("_mask.fits") not in covered:
            identity.sidecar(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)


def run_two_passes(ws: Workspace, stems: list[str], params: CleanParams, pipeline: PipelineParams, pool: WorkerPool,
                   crds_context: str = "", *, overwrite: bool, groups: list[str] | None = None,
                   first_pass: bool = False, masks: list[str] | None = None) -> tuple[CleanReport, list[Outcome]]:
    """Pass 1, the first-pass mosaics' masks, pass 2; returns pass 2's report and the
    outcomes of every task (groups of both passes, masks).

    One part only (an HPC task; the others are checked, not run): ``first_pass`` with
    ``groups``: those groups' first pass (returns pass 1's report); ``masks``: those
    first-pass mosaics' masks (pass 1 must be done); ``groups`` alone: those groups' second
    pass (pass 1 and every mosaic mask must be done)."""
    first = FirstPass(ws.root).create()
    if first_pass:
        rep1 = run_pass(first, stems, params, overwrite=overwrite, pool=pool, label=FIRST_PASS_LABEL, only=groups)
        return rep1, rep1.outcomes
    scoped = groups is not None or masks is not None
    rep1 = run_pass(first, stems, params, overwrite=overwrite, pool=pool, label=FIRST_PASS_LABEL,
                    only=[] if scoped else None)
    rep1.require_complete("the first-pass mosaic masks" if masks is not None else "the second cleaning pass",
                          "clean WORKSPACE --first-pass")
    jobs, mask_notes, covered = plan_masks(first, rep1, params, pipeline, crds_context, overwrite=overwrite,
                                           only=masks)
    if groups is not None and jobs:
        from ..errors import WorkspaceError

        names = " ".join(f"--mosaic-mask {j.product}" for j in jobs)
        raise WorkspaceError(f"the second cleaning pass needs the first-pass mosaic masks; not made: "
                             f"{', '.join(j.product for j in jobs)} (run `mirim-reduce clean WORKSPACE {names}` first)")
    if groups is None:
        remove_stale_masks(first, covered)
    outs = pool.run(mosaic_mask_task, jobs, "masks", cost=lambda j: len(j.members)) if jobs else []
    if masks is not None:
        return rep1, outs
    mask_notes += [json.loads(marker_path(first, j.product).read_text())["note"] for j in jobs]
    rep2 = run_pass(ws, stems, params, overwrite=overwrite, pool=pool, label="pass 2", first=first, only=groups)
    rep2.notes = [f"cleaning: second pass (first pass in {first.dir('clean').parent})", *sorted(mask_notes),
                  *rep2.notes]
    return rep2, rep1.outcomes + outs + rep2.outcomes

