"""What a Slurm round of a workspace has done: ``WS/slurm/jobs.json`` (the submitted jobs, by
round), which tasks are done, and the state of the others from squeue.

A task is *done* when: ``stage1/<stem>_rate.fits`` or ``stage2/<stem>_cal.fits`` exists with its
identity (stages 1 and 2); for prepare, ``inputs.json`` and ``crds.json`` exist; for a group's or a
mosaic's task and the whole-workspace jobs, the marker its script writes on success exists
(``slurm/done/<stage>[/<name>]``). Otherwise it is running or pending while squeue lists it,
*blocked* when it waits on a failed dependency (it would never start), *failed* when its job is
gone (or ended) without finishing, and *not submitted* without any record.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..fsutil import write_json
from .slurm_plan import ARRAY_STAGES, LISTS, PRODUCT_STAGES, STAGES, done_marker, list_file, log_file, slurm_dir

FORMAT = "mirim-reduce-slurm/1"
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED",
          "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}
NEVER = ("DependencyNeverSatisfied",)


def jobs_path(ws: Path) -> Path:
    return slurm_dir(ws) / "jobs.json"


def load_jobs(ws: Path) -> dict:
    path = jobs_path(ws)
    if not path.is_file():
        return {"format": FORMAT, "workspace": str(ws), "options": None, "rounds": []}
    return json.loads(path.read_text())


def save_jobs(ws: Path, record: dict) -> None:
    write_json(jobs_path(ws), record)  # atomic: a scratch file renamed into place


def read_list(ws: Path, name: str) -> list[str]:
    """The exposures, groups or mosaics of the array stages (``WS/slurm/<name>.txt``)."""
    path = list_file(ws, name)
    return [s for s in path.read_text().split() if s] if path.is_file() else []


def read_lists(ws: Path) -> dict[str, list[str]]:
    return {name: read_list(ws, name) for name in sorted(set(LISTS.values()))}


def output(ws: Path, stage: str, name: str | None = None) -> Path:
    """The file whose existence means the task is done."""
    ws = Path(ws)
    if stage == "stage1":
        return ws / "stage1" / f"{name}_rate.fits"
    if stage == "stage2":
        return ws / "stage2" / f"{name}_cal.fits"
    return done_marker(ws, stage, name)


def is_done(ws: Path, stage: str, name: str | None = None) -> bool:
    if stage == "prepare":  # the records, whoever wrote them (a prepare job, or an earlier `run`)
        return all((Path(ws) / f).is_file() for f in ("inputs.json", "crds.json"))
    if stage in PRODUCT_STAGES:  # a product whose identity was recorded: its task finished
        from .. import identity

        return identity.read(output(ws, stage, name)) is not None
    return output(ws, stage, name).is_file()


def todo(ws: Path, lists: dict[str, list[str]], stages: tuple[str, ...] = STAGES, *,
         redo_prepare: bool = False) -> dict[str, object]:
    """What a new round must run: per array stage the names not done, per other stage a flag
    (``redo_prepare``: the prepare job too, done or not). After an earlier stage with work,
    every group's and mosaic's task and every later whole-workspace job runs again
    (mirim-reduce itself skips what is still current)."""
    out: dict[str, object] = {}
    dirty = False
    for stage in stages:
        if stage in PRODUCT_STAGES:
            out[stage] = [s for s in lists[LISTS[stage]] if not is_done(ws, stage, s)]
        elif stage in ARRAY_STAGES:
            names = lists[LISTS[stage]]
            out[stage] = list(names) if dirty else [n for n in names if not is_done(ws, stage, n)]
        else:
            out[stage] = dirty or (stage == "prepare" and redo_prepare) or not is_done(ws, stage)
        dirty = dirty or bool(out[stage])
    return out


@dataclass
class TaskState:
    stage: str
    task: str          # the exposure, group or mosaic of an array task, else ""
    state: str         # done | running | pending | blocked | failed | not submitted
    job: str = ""      # JOBID or JOBID_INDEX
    reason: str = ""   # squeue's reason or final state
    log: str = ""      # the Slurm log of the last submission that ran it


def last_submission(record: dict, stage: str, name: str | None, names: list[str]) -> tuple[str, int | None] | None:
    """(job id, array index) of the newest round that submitted this task, if any."""
    for rnd in reversed(record.get("rounds", [])):
        for job in rnd["jobs"]:
            if job["stage"] != stage:
                continue
            if stage not in ARRAY_STAGES:
                return job["job_id"], None
            if name in names and names.index(name) in job["indices"]:
                return job["job_id"], names.index(name)
    return None


def task_states(ws: Path, record: dict, queue: dict[str, tuple[str, str]]) -> list[TaskState]:
    """Every task of the workspace's planned stages; ``queue``: {"JOBID" or "JOBID_INDEX":
    (state, reason)} from squeue."""
    lists = read_lists(ws)
    rows = []
    for stage in record.get("stages") or STAGES:
        names = lists[LISTS[stage]] if stage in ARRAY_STAGES else []
        for name in (names if stage in ARRAY_STAGES else [None]):
            sub = last_submission(record, stage, name, names)
            row = TaskState(stage, name or "", "not submitted")
            if sub is not None:
                job_id, index = sub
                row.job = job_id if index is None else f"{job_id}_{index}"
                row.log = str(log_file(ws, stage, job_id, index))
                state, reason = queue.get(row.job, ("", ""))
                if is_done(ws, stage, name):
                    row.state = "done"
                elif state in ACTIVE:
                    row.state = ("blocked" if state == "PENDING" and reason in NEVER
                                 else "running" if state != "PENDING" else "pending")
                    row.reason = reason if state == "PENDING" else state
                else:
                    row.state, row.reason = "failed", state or "job gone"
            elif is_done(ws, stage, name):
                row.state = "done"
            rows.append(row)
    return _propagate_blocked(rows, record)


def _propagate_blocked(rows: list[TaskState], record: dict) -> list[TaskState]:
    """A job waiting on a blocked job is blocked too (Slurm says DependencyNeverSatisfied only
    for the first job after the failure; the later ones wait on it with reason Dependency)."""
    depends = {j["job_id"]: j.get("depends", []) for rnd in record.get("rounds", []) for j in rnd["jobs"]}
    blocked = {r.job.split("_")[0] for r in rows if r.state == "blocked"}
    for r in rows:  # in stage order: every job depends on one before it
        job = r.job.split("_")[0]
        if r.state == "pending" and r.reason == "Dependency" and blocked & set(depends.get(job, [])):
            r.state, r.reason = "blocked", "waits on a blocked job"
            blocked.add(job)
    return rows


def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """``squeue -h -r -t all -o '%i|%T|%r'`` lines -> {"JOBID" or "JOBID_INDEX": (state, reason)}."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0]:
            out[parts[0]] = (parts[1], parts[2])
    return out


def as_json(rows: list[TaskState]) -> list[dict]:
    return [asdict(r) for r in rows]
