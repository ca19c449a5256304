"""Submit a workspace's stages to Slurm, report their state, resubmit what is not done.

Thin wrappers around ``sbatch``, ``squeue`` and ``scancel`` (subprocess); the scripts and the
chain come from :mod:`.slurm_plan`, the states from :mod:`.slurm_state`. Every submitted job is
recorded in ``WS/slurm/jobs.json`` right after its sbatch call (atomic writes).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ReduceError
from ..fsutil import write_text
from . import slurm_plan as plan_mod
from . import slurm_state as state_mod
from .slurm_plan import ARRAY_STAGES, LISTS, PRODUCT_STAGES, STAGES, Options

if TYPE_CHECKING:
    from ..params import Params


class SlurmError(ReduceError):
    """sbatch, squeue or scancel missing or refusing, or the workspace's jobs still active."""

    exit_code = 8


@dataclass
class Round:
    """What one submit/resubmit did (or, with ``dry_run``, would do)."""

    argv: list[list[str]] = field(default_factory=list)   # sbatch command lines, in order
    jobs: list[dict] = field(default_factory=list)        # {stage, job_id, indices, depends, array}
    cancelled: list[str] = field(default_factory=list)    # blocked jobs scancel'ed first


def _run(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        raise SlurmError(f"{argv[0]} not found: run this on a Slurm login node (or start containers/slurm-cluster.sh)")
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SlurmError(f"{' '.join(argv[:3])}... failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc.stdout


def queue() -> dict[str, tuple[str, str]]:
    """This user's jobs known to the controller, array tasks expanded (finished ones for MinJobAge)."""
    return state_mod.parse_squeue(_run(["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(),
                                        "-o", "%i|%T|%r"]))


def status(ws: Path) -> list[state_mod.TaskState]:
    ws = Path(ws).absolute()
    record = state_mod.load_jobs(ws)
    q = queue() if record["rounds"] else {}
    return state_mod.task_states(ws, record, q)


def plan_lists(ws: Path, exposures: dict[str, Path], mosaic_per: str) -> dict[str, list[str]]:
    """The array stages' lists: the exposures (``{stem: uncal file}``), and the cleaning groups
    and mosaics made of them, from each exposure's stage-2 cal file when it is done, else from
    its uncal file's primary header (stages 1 and 2 keep the keywords groups and mosaics are
    made of)."""
    from ..clean.group import group_name
    from ..clean.step import cleaning_groups
    from ..stages.stage3 import mosaic_groups

    files = {}
    for stem, uncal in exposures.items():
        cal = Path(ws) / "stage2" / f"{stem}_cal.fits"
        files[stem] = cal if state_mod.is_done(ws, "stage2", stem) else Path(uncal)
    return {"exposures": list(exposures), "groups": [group_name(k) for k in cleaning_groups(files)],
            "mosaics": list(mosaic_groups(list(files.values()), mosaic_per))}


def write_scripts(ws: Path, lists: dict[str, list[str]], opts: Options, stages: tuple[str, ...]) -> None:
    """``WS/slurm/<exposures|groups|mosaics>.txt`` and one script per stage (prepare only when
    the input is known)."""
    (plan_mod.slurm_dir(ws) / "logs").mkdir(parents=True, exist_ok=True)
    for name, items in lists.items():
        write_text(plan_mod.list_file(ws, name), "".join(f"{s}\n" for s in items))
    for stage in stages:
        if stage == "prepare" and opts.input is None:
            continue
        path = plan_mod.script_path(ws, stage)
        write_text(path, plan_mod.job_script(stage, ws, opts))
        path.chmod(0o755)


def submit_round(ws: Path, lists: dict[str, list[str]], opts: Options, todo: dict, stages: tuple[str, ...], *,
                 dry_run: bool = False) -> Round:
    """sbatch every planned job, each after those planned before it; record each in jobs.json."""
    jobs = plan_mod.plan(lists, todo, stages)
    rnd = Round()
    record = state_mod.load_jobs(ws)
    entry = {"submitted": _dt.datetime.now().isoformat(timespec="seconds"), "jobs": rnd.jobs}
    if not dry_run:
        record["options"] = opts.to_json()
        record["stages"] = list(stages)
        record["rounds"].append(entry)
        for job in jobs:  # a task submitted again must not count as done from an older run
            if job.stage not in ARRAY_STAGES:
                plan_mod.done_marker(ws, job.stage).unlink(missing_ok=True)
            elif job.stage not in PRODUCT_STAGES:
                for i in job.indices:
                    plan_mod.done_marker(ws, job.stage, lists[LISTS[job.stage]][i]).unlink(missing_ok=True)
    ids: dict[str, str] = {}
    for job in jobs:
        deps = [ids[s] for s in job.after]
        argv = plan_mod.sbatch_argv(job, ws, opts, deps)
        rnd.argv.append(argv)
        job_id = f"<{job.stage}>" if dry_run else _run(argv).strip().split(";")[0]
        ids[job.stage] = job_id
        rnd.jobs.append({"stage": job.stage, "job_id": job_id, "indices": job.indices, "depends": deps,
                         "array": job.array_spec(opts.array_limit)})
        if not dry_run:
            state_mod.save_jobs(ws, record)
    return rnd


def _params(ws: Path, opts: Options) -> Params:
    """The configuration the jobs will run with: ``--config``, else the workspace's, else the defaults."""
    from .. import config as config_mod
    from ..params import parse

    own = Path(ws) / "config.toml"
    return parse(config_mod.load(opts.config or (own if own.is_file() else None)))


def _check_idle(ws: Path) -> list[str]:
    """Refuse while a task of the workspace runs or waits; return the blocked jobs to cancel."""
    rows = status(ws)
    active = [r for r in rows if r.state in ("running", "pending")]
    if active:
        names = ", ".join(f"{r.stage} {r.task} ({r.job})".replace("  ", " ") for r in active[:3])
        raise SlurmError(f"{len(active)} task(s) of {ws} still running or pending ({names}): wait for them, or "
                         f"scancel them, then resubmit")
    return sorted({r.job.split("_")[0] for r in rows if r.state == "blocked"})


def submit(ws: Path, opts: Options, *, dry_run: bool = False) -> Round:
    """Write the scripts and submit what is not done, from ``opts.input`` (a prepare job first)
    or from the workspace's recorded inputs."""
    from .. import inputs

    ws = Path(ws).absolute()
    if opts.input is not None:
        opts.input = Path(opts.input).absolute()
        exposures = {e.stem: e.path for e in inputs.select(opts.input).exposures}
    else:
        selection = inputs.load_record(ws)  # InputError when there is none: give --input
        exposures = {e.stem: e.path for e in selection.exposures}
        folders = {e.path.resolve().parent for e in selection.exposures}
        opts.binds = [*opts.binds, *sorted(f for f in folders if not f.is_relative_to(ws.resolve()))]
    blocked = [] if dry_run or not state_mod.load_jobs(ws)["rounds"] else _check_idle(ws)
    # with an input folder the records are written again from it (a new file is picked up)
    return _round(ws, exposures, opts, blocked, dry_run=dry_run, redo_prepare=opts.input is not None)


def resubmit(ws: Path, *, dry_run: bool = False) -> Round:
    """Cancel jobs blocked by a failed dependency, then submit only what is not done (and what
    depends on it) with the options of the first submission; the groups and mosaics are planned
    again (from the cal files, once stage 2 is done)."""
    from .. import inputs

    ws = Path(ws).absolute()
    record = state_mod.load_jobs(ws)
    if not record.get("options"):
        raise SlurmError(f"{ws} has no Slurm submission (no {state_mod.jobs_path(ws)}): "
                         f"use `mirim-reduce slurm submit`")
    opts = Options.from_json(record["options"])
    blocked = _check_idle(ws)
    try:
        exposures = {e.stem: e.path for e in inputs.load_record(ws).exposures}
    except ReduceError:
        if opts.input is None:
            raise SlurmError(f"{ws} has no recorded inputs and no input folder: "
                             f"use `mirim-reduce slurm submit --input RAW`") from None
        exposures = {e.stem: e.path for e in inputs.select(opts.input).exposures}
    return _round(ws, exposures, opts, blocked, dry_run=dry_run)


def _round(ws: Path, exposures: dict[str, Path], opts: Options, blocked: list[str], *, dry_run: bool,
           redo_prepare: bool = False) -> Round:
    """Plan the lists and stages from the configuration, write the scripts, cancel the
    ``blocked`` jobs and submit what is not done."""
    p = _params(ws, opts)
    stages = plan_mod.stages_for(p.clean)
    lists = plan_lists(ws, exposures, p.pipeline.mosaic_per)
    write_scripts(ws, lists, opts, stages)
    todo = state_mod.todo(ws, lists, stages, redo_prepare=redo_prepare)
    rnd = Round(cancelled=blocked)
    if blocked and not dry_run:
        _run(["scancel", *blocked])
    sub = submit_round(ws, lists, opts, todo, stages, dry_run=dry_run)
    rnd.argv, rnd.jobs = sub.argv, sub.jobs
    return rnd


def prepare(ws: Path, input_dir: Path, cfg: dict, crds_path: Path | None) -> None:
    """The first job: record the inputs, the configuration and the CRDS check in the workspace,
    run no stage (what ``run`` does before stage 1)."""
    from .. import orchestrate

    summary = orchestrate.reduce_folder(input_dir, ws, cfg, crds_path=crds_path, stages=())
    print(f"{ws}: {len(summary.exposures)} exposure(s) recorded, {len(summary.skipped)} file(s) skipped; "
          f"CRDS context {summary.crds_context}")
