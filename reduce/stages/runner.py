"""Run one pipeline task in a worker process, with its log in its own file.

A task writes into a scratch folder beside its final output; only a finished product is
renamed into place, so an interrupted run leaves nothing half-written under a final name.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from pathlib import Path

from .. import identity
from ..fsutil import move_into_place, remove_tree, scratch_dir, task_lock, task_lock_path
from ..workers import peak_rss_mb, task_log
from .task import Outcome, Task


def _call_pipeline(task: Task, workdir: Path) -> None:
    from jwst import pipeline as jp

    cls = {"stage1": jp.Detector1Pipeline, "stage2": jp.Image2Pipeline, "stage3": jp.Image3Pipeline}[task.stage]
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        cls.call(task.inputs[0], steps=task.steps, output_dir=str(workdir), save_results=True,
                 configure_log=False)


def run_task(task: Task) -> Outcome:
    """Run ``task``; never raises (failures come back as an Outcome with the reason)."""
    start = time.perf_counter()
    # A log that cannot be written (its disk is full) must not make logging print its own
    # "--- Logging error ---" traceback on the console: the outcome carries the failure.
    logging.raiseExceptions = False
    out = None
    try:
        with task_log(Path(task.log)):
            out = _run_task(task, start)
    except OSError as exc:  # the log could not be opened or closed (flushed)
        if out is None:
            out = Outcome(task.stage, task.name, False, time.perf_counter() - start, 0.0, 0.0,
                          f"{type(exc).__name__}: {exc}"[:200])
    return out


def _run_task(task: Task, start: float) -> Outcome:
    final = Path(task.final_dir) if task.final_dir else Path(task.outputs[0]).parent
    lock = task_lock_path(final.parent if task.final_dir else final, task.name, task.stage)
    with task_lock(lock) as mine:  # a task claims its outputs: HPC array tasks share a workspace
        if not mine:
            return Outcome(task.stage, task.name, False, time.perf_counter() - start, 0.0, 0.0,
                           "another process is running this task (its lock is held); wait for it")
        return _run_locked(task, start, final)


def _run_locked(task: Task, start: float, final: Path) -> Outcome:
    work = scratch_dir(final.parent if task.final_dir else final, task.name)
    pipeline_seconds = 0.0
    try:
        if task.stage == "stage3":
            from .stage3 import prepare_association
            asn = prepare_association(task, work)
            task = Task(**{**task.__dict__, "inputs": [str(asn)]})
        t0 = time.perf_counter()
        _call_pipeline(task, work)
        pipeline_seconds = time.perf_counter() - t0
        if task.final_dir:
            missing = [o for o in task.outputs[:1] if not (work / Path(o).name).is_file()]
            if missing:
                raise RuntimeError(f"pipeline wrote no {Path(missing[0]).name}")
            if task.identity:  # inside the folder that becomes the product: in place with it
                identity.write(work / Path(task.outputs[0]).name, task.identity, task.made_of)
            remove_tree(final)
            move_into_place(work, final)
        else:
            main = work / Path(task.outputs[0]).name
            if not main.is_file():
                raise RuntimeError(f"pipeline wrote no {main.name}")
            for out in task.outputs[1:]:  # secondary products first: the main one marks completion
                if (work / Path(out).name).is_file():
                    move_into_place(work / Path(out).name, Path(out))
            move_into_place(main, Path(task.outputs[0]))
            if task.identity:  # after the product: a product with a stale identity is redone
                identity.write(Path(task.outputs[0]), task.identity, task.made_of)
        ok, error = True, None
    except Exception as exc:  # a failed exposure must not stop the others
        logging.getLogger("mirim_reduce").error("task failed:\n%s", traceback.format_exc())
        ok, error = False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
    finally:
        remove_tree(work)
    return Outcome(task.stage, task.name, ok, time.perf_counter() - start, pipeline_seconds, peak_rss_mb(), error)
