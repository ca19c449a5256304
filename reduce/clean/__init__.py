"""Cleaning between stage 2 and stage 3: source masks, median filter, super background.

The hook :func:`run` takes the stage-2 cal files and returns the files stage 3 must use.
It never modifies the stage-2 files: cleaned exposures are new files in ``clean/``.

Modules: :mod:`.dqflags` (bad pixels by jwst's flag names), :mod:`.masks` (photutils
source masks), :mod:`.median_filter` (bad-pixel fill), :mod:`.super_background` (grouping
and leave-one-out templates), :mod:`.template_model` (how much of a template to believe,
cross-validated in the group; its box means and stripe levels in :mod:`.box_stats`),
:mod:`.local_background` (per-exposure Background2D for small groups) and :mod:`.mosaic_mask` (second pass: a mosaic's mask projected onto an
exposure) hold pure array functions; :mod:`.group` cleans one group (FITS I/O),
:mod:`.step` the groups with resumption and the summary, :mod:`.provenance` and :mod:`.qa`
the keywords and quick-look PNGs; :mod:`.second_pass` runs the second pass (clean,
mosaic with jwst's tweakreg and resample, mask, clean again).

Products in ``clean/``: ``<stem>_cal.fits`` (what stage 3 reads; S_MRCLN / MRC_* keywords
and HISTORY say what was done), ``<stem>_segm.fits`` (SEGM: segmentation; CLEANMAP: bits
of :data:`.member.MAP_BITS`), ``clean_summary.json`` (per exposure: group, method, model,
scale, fraction masked, filled and uncovered pixels, the template's stripes; per group:
members, the chosen background model and every candidate's cross-validated score) and ``qa/*.png``. Filled
pixels have DO_NOT_USE cleared, FLUX_ESTIMATED set and a VAR_RNOISE 1e4 times larger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..workspace import Workspace

if TYPE_CHECKING:  # reduce.params reads jwst's good_bits default from this package's dqflags
    from ..params import CleanParams


@dataclass
class CleanReport:
    """What the cleaning did: files for stage 3 and notes for the summary.

    ``exposures`` and ``groups`` are the per-exposure and per-group records of
    ``clean/clean_summary.json`` (empty when cleaning is off).
    """

    files: list[Path]
    notes: list[str] = field(default_factory=list)
    exposures: dict[str, dict] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)
    sky_subtracted: set[Path] = field(default_factory=set)  # files whose sky a template or Background2D removed
    #: files from which a template of the group's other exposures was subtracted (its sky, or
    #: only its pixel-scale structure and detector map): an unmasked source of the others
    #: would reach them through it, so their mosaics' masks make the second pass
    templated: set[Path] = field(default_factory=set)
    outcomes: list = field(default_factory=list)  # reduce.stages.task.Outcome per task run
    pending: list[str] = field(default_factory=list)  # groups not done (``only`` left them to others)

    def require_complete(self, what: str, command: str = "clean WORKSPACE") -> None:
        """A WorkspaceError when a group is not done: ``what`` needs every group cleaned by
        ``mirim-reduce {command}`` (or by its per-group tasks)."""
        if self.pending:
            from ..errors import WorkspaceError

            raise WorkspaceError(f"{what} needs every cleaning group done; not done: {', '.join(self.pending)} "
                                 f"(run `mirim-reduce {command}`, or those groups' tasks, first)")


def run(ws: Workspace, stems: list[str], params: CleanParams, *, overwrite: bool, pool=None, label: str = "",
        first: Workspace | None = None, only: list[str] | None = None) -> CleanReport:
    """Clean the cal files of ``stems`` with the cleaning's section of the configuration;
    return the files stage 3 reads.

    With ``MEDIAN_FILTER`` and ``SUPER_BKG_SUB`` both off, stage 3 reads the stage-2 files
    unchanged (and the notes say so). Otherwise each group of exposures that is not
    complete in ``clean/`` (or every group, with ``overwrite``) is cleaned, in parallel in
    ``pool`` (:class:`reduce.workers.WorkerPool`). ``first`` and ``label``: the second pass;
    ``only``: these groups only (see :func:`.step.run_clean`).
    """
    from .step import run_clean

    result = run_clean(ws, stems, params, overwrite=overwrite, pool=pool, label=label, first=first, only=only)
    sky = {ws.output("clean", stem) for stem, e in result.exposures.items()
           if e.get("sky_subtracted", e.get("template"))}
    templated = {ws.output("clean", stem) for stem, e in result.exposures.items() if e.get("template")}
    return CleanReport(files=result.files, notes=result.notes, exposures=result.exposures,
                       groups=result.groups, sky_subtracted=sky, templated=templated | sky, outcomes=result.outcomes,
                       pending=result.pending)
