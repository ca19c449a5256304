"""Stage 1: uncal -> rate with jwst's Detector1Pipeline."""

from __future__ import annotations

from ..config import step_overrides
from ..inputs import Exposure
from ..workspace import Workspace
from .task import Task


def plan(ws: Workspace, exposures: list[Exposure], cfg: dict) -> list[Task]:
    """One task per exposure whose rate file does not exist yet (all of them with OVERWRITE)."""
    tasks = []
    for exp in exposures:
        out = ws.output("stage1", exp.stem)
        if out.exists() and not cfg["OVERWRITE"]:
            continue
        tasks.append(Task(stage="stage1", name=exp.stem, inputs=[str(exp.path)],
                          outputs=[str(out), str(out.with_name(f"{exp.stem}_rateints.fits"))],
                          log=str(ws.log("stage1", exp.stem)), steps=step_overrides(cfg, "detector1")))
    return tasks
