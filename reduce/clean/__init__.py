"""Cleaning between stage 2 and stage 3: source masks, median filter, super background.

The hook :func:`run` takes the stage-2 cal files and returns the files stage 3 must use.
It never modifies the stage-2 files: cleaned exposures are new files in ``clean/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..workspace import Workspace


@dataclass
class CleanReport:
    """What the cleaning did: files for stage 3 and notes for the summary."""

    files: list[Path]
    notes: list[str] = field(default_factory=list)


def run(ws: Workspace, stems: list[str], cfg: dict) -> CleanReport:
    """Clean the cal files of ``stems``; return the files stage 3 reads.

    The cleaning algorithms are not part of this release yet: stage 3 reads the stage-2
    files unchanged, and the summary says so.
    """
    cal = [ws.output("stage2", s) for s in stems if ws.output("stage2", s).exists()]
    wanted = [k for k in ("MEDIAN_FILTER", "SUPER_BKG_SUB") if cfg[k]]
    notes = []
    if wanted:
        notes.append(f"cleaning ({', '.join(wanted)}) not available in this version: "
                     "stage 3 uses the stage-2 cal files")
    return CleanReport(files=cal, notes=notes)
