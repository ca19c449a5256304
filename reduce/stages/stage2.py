"""Stage 2: rate -> cal with jwst's Image2Pipeline."""

from __future__ import annotations

from .. import identity
from ..params import PipelineParams
from ..workspace import Workspace
from .task import Task


def plan(ws: Workspace, stems: list[str], pipeline: PipelineParams, crds_context: str, *,
         overwrite: bool) -> list[Task]:
    """One task per exposure with a rate file whose cal file is missing or was made from
    another rate file, other parameters or other versions; all of them with ``overwrite``."""
    tasks = []
    for stem in stems:
        rate, out = ws.output("stage1", stem), ws.output("stage2", stem)
        if not rate.exists():
            continue
        steps = pipeline.steps("image2")
        made_of = {"stage": "stage2", "input": {"name": rate.name, "identity": identity.read(rate)},
                   "steps": steps, "versions": identity.versions(crds_context, "stages")}
        ident = identity.digest(made_of)
        if identity.is_current(out, ident) and not overwrite:
            continue
        tasks.append(Task(stage="stage2", name=stem, inputs=[str(rate)],
                          outputs=[str(out), str(out.with_name(f"{stem}_i2d.fits"))],
                          log=str(ws.log("stage2", stem)), steps=steps, identity=ident, made_of=made_of))
    return tasks
