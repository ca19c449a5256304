"""Stage 2: rate -> cal with jwst's Image2Pipeline."""

from __future__ import annotations

from ..config import step_overrides
from ..workspace import Workspace
from .task import Task


def plan(ws: Workspace, stems: list[str], cfg: dict) -> list[Task]:
    """One task per exposure with a rate file and no cal file (all of them with OVERWRITE)."""
    tasks = []
    for stem in stems:
        rate, out = ws.output("stage1", stem), ws.output("stage2", stem)
        if not rate.exists() or (out.exists() and not cfg["OVERWRITE"]):
            continue
        tasks.append(Task(stage="stage2", name=stem, inputs=[str(rate)],
                          outputs=[str(out), str(out.with_name(f"{stem}_i2d.fits"))],
                          log=str(ws.log("stage2", stem)), steps=step_overrides(cfg, "image2")))
    return tasks
