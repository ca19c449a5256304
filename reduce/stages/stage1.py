"""Stage 1: uncal -> rate with jwst's Detector1Pipeline."""

from __future__ import annotations

from .. import identity
from ..inputs import Exposure
from ..params import PipelineParams
from ..workspace import Workspace
from .task import Task


def plan(ws: Workspace, exposures: list[Exposure], pipeline: PipelineParams, crds_context: str, *,
         overwrite: bool) -> list[Task]:
    """One task per exposure whose rate file is missing or was made from another input file,
    other parameters or other versions (:mod:`reduce.identity`); all of them with ``overwrite``."""
    tasks = []
    for exp in exposures:
        out = ws.output("stage1", exp.stem)
        steps = pipeline.steps("detector1")
        made_of = {"stage": "stage1", "input": {"name": exp.path.name, "sha256": identity.file_hash(exp.path)},
                   "steps": steps, "versions": identity.versions(crds_context, "stages")}
        ident = identity.digest(made_of)
        if identity.is_current(out, ident) and not overwrite:
            continue
        tasks.append(Task(stage="stage1", name=exp.stem, inputs=[str(exp.path)],
                          outputs=[str(out), str(out.with_name(f"{exp.stem}_rateints.fits"))],
                          log=str(ws.log("stage1", exp.stem)), steps=steps, identity=ident, made_of=made_of))
    return tasks
