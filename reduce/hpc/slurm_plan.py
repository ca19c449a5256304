"""Slurm job scripts and their dependency chain for one workspace (pure: no Slurm needed).

One job or job array per stage, in data-flow order; an array has one task per exposure,
cleaning group or mosaic::

    prepare  mirim-reduce slurm prepare WS --input RAW       (records inputs, config, CRDS check)
    stage1   per exposure: mirim-reduce stage1 WS --exposure NAME --jobs 1
    stage2   per exposure: mirim-reduce stage2 WS --exposure NAME --jobs 1
    clean1   per group:    mirim-reduce clean WS --group NAME --first-pass --jobs 1   (two passes only)
    masks    per mosaic:   mirim-reduce clean WS --mosaic-mask NAME --jobs 1         (two passes only)
    clean    per group:    mirim-reduce clean WS --group NAME --jobs 1
    stage3   per mosaic:   mirim-reduce stage3 WS --product NAME --no-package --jobs 1
    package  mirim-reduce package WS

each started only after the job submitted before it in the same round succeeded
(``--dependency=afterok:JOBID``; for an array, after all of its tasks). An array task finds its
name in ``WS/slurm/<exposures|groups|mosaics>.txt`` (line ``SLURM_ARRAY_TASK_ID + 1``), so a
resubmission runs the same script on some indices only. The groups and mosaics are planned
from the cal files when stage 2 is done, else from the uncal files' primary headers (the
keywords they are made of do not change in stages 1 and 2); a task whose name is no longer a
group or mosaic of the workspace fails with a message to resubmit.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..params import CleanParams

STAGES = ("prepare", "stage1", "stage2", "clean1", "masks", "clean", "stage3", "package")
#: The list each array stage runs over (``WS/slurm/<list>.txt``).
LISTS = {"stage1": "exposures", "stage2": "exposures", "clean1": "groups", "masks": "mosaics",
         "clean": "groups", "stage3": "mosaics"}
ARRAY_STAGES = tuple(LISTS)
#: Array stages whose task is done when its exposure's product has its identity; the others
#: are done when their script marked them (``slurm/done/<stage>/<name>``).
PRODUCT_STAGES = ("stage1", "stage2")
TWO_PASS_STAGES = ("clean1", "masks")  # only when the configuration runs two cleaning passes
JOB_PREFIX = "mirim-"
NAME = "$NAME"  # the exposure, group or mosaic of an array task, set by the script

#: Time limits (HH:MM:SS) per task: generous for full-frame exposures and mosaics of tens of them.
DEFAULT_TIME = {"prepare": "00:30:00", "stage1": "02:00:00", "stage2": "01:00:00", "clean1": "02:00:00",
                "masks": "02:00:00", "clean": "02:00:00", "stage3": "04:00:00", "package": "01:00:00"}
#: Memory, MB: the main process (~0.5 GB with jwst's imports, 1 GB allowed) plus its one worker:
#: the benchmarks' peak RSS per worker is ~1.1 GB for stage 1 and for the cleaning of full-frame
#: exposures (1135 MB); stage 3 and the mask mosaics (tweakreg + resample) are not benchmarked
#: per task: 3 GB is a margin, not a measurement (``--mem stage3=...`` for large mosaics).
MAIN_MB = 1024
WORKER_MB = {"prepare": 1024, "stage1": 1536, "stage2": 1536, "clean1": 1536, "masks": 3072, "clean": 1536,
             "stage3": 3072, "package": 1024}


def stages_for(clean: CleanParams) -> tuple[str, ...]:
    """The stages a configuration runs (the first pass and its masks only with two passes)."""
    return tuple(s for s in STAGES if clean.two_passes or s not in TWO_PASS_STAGES)


@dataclass
class Options:
    """How the jobs run: the SIF (``apptainer run``) or natively (``native`` is the command line
    that starts mirim-reduce, e.g. ``[sys.executable, "-m", "reduce.cli"]``), and Slurm settings."""

    sif: Path | None = None
    native: list[str] | None = None
    input: Path | None = None             # the folder of uncal files (prepare; bound into the SIF)
    binds: list[Path] = field(default_factory=list)  # extra folders the SIF must see (input folders)
    config: Path | None = None            # a TOML file for prepare (later stages read WS/config.toml)
    crds_path: Path | None = None         # passed through (native); the SIF uses its own cache
    partition: str | None = None
    account: str | None = None
    time: dict[str, str] = field(default_factory=dict)   # stage -> HH:MM:SS (else DEFAULT_TIME)
    mem: dict[str, str] = field(default_factory=dict)    # stage -> Slurm size (else MAIN_MB + WORKER_MB)
    array_limit: int | None = None        # at most this many array tasks at once (``%N``)

    def __post_init__(self):
        if (self.sif is None) == (self.native is None):
            raise ValueError("give exactly one of a SIF or a native command")

    def mem_for(self, stage: str) -> str:
        return str(self.mem.get(stage, f"{MAIN_MB + WORKER_MB[stage]}M"))

    def time_for(self, stage: str) -> str:
        return str(self.time.get(stage, DEFAULT_TIME[stage]))

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else [str(b) for b in v] if k == "binds" else v)
                for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, d: dict) -> "Options":
        paths = ("sif", "input", "config", "crds_path")
        return cls(**{**d, **{k: Path(d[k]) for k in paths if d.get(k)},
                      "binds": [Path(b) for b in d.get("binds", [])]})


def slurm_dir(ws: Path) -> Path:
    return Path(ws) / "slurm"


def list_file(ws: Path, name: str) -> Path:
    """``WS/slurm/<name>.txt``: the exposures, groups or mosaics of the array stages, one per line."""
    return slurm_dir(ws) / f"{name}.txt"


def script_path(ws: Path, stage: str) -> Path:
    return slurm_dir(ws) / f"{stage}.sh"


def done_marker(ws: Path, stage: str, name: str | None = None) -> Path:
    """Written by a job's script when its command succeeded: ``slurm/done/<stage>`` for a
    whole-workspace job, ``slurm/done/<stage>/<name>`` for a group's or mosaic's task."""
    return slurm_dir(ws) / "done" / stage / name if name else slurm_dir(ws) / "done" / stage


def log_pattern(ws: Path, stage: str) -> str:
    """``--output``: ``%x_%A_%a.out`` for arrays; ``%x_%j.out`` for single jobs (whose %a is 4294967294)."""
    return str(slurm_dir(ws) / "logs" / ("%x_%A_%a.out" if stage in ARRAY_STAGES else "%x_%j.out"))


def log_file(ws: Path, stage: str, job_id: str, index: int | None = None) -> Path:
    """The log of one submitted job (or array task): ``log_pattern`` filled in."""
    name = f"{JOB_PREFIX}{stage}_{job_id}" + (f"_{index}" if index is not None else "") + ".out"
    return slurm_dir(ws) / "logs" / name


def mirim_args(stage: str, ws: Path, opts: Options) -> list[str]:
    """The mirim-reduce arguments of a stage's job (``$NAME`` for an array task's name)."""
    ws = str(ws)
    if stage == "prepare":
        if opts.input is None:
            raise ValueError("the prepare job needs the input folder")
        args = ["slurm", "prepare", ws, "--input", str(opts.input)]
        args += ["--config", str(opts.config)] if opts.config else []
    elif stage in PRODUCT_STAGES:
        args = [stage, ws, "--exposure", NAME, "--jobs", "1"]
    elif stage == "clean1":
        args = ["clean", ws, "--group", NAME, "--first-pass", "--jobs", "1"]
    elif stage == "masks":
        args = ["clean", ws, "--mosaic-mask", NAME, "--jobs", "1"]
    elif stage == "clean":
        args = ["clean", ws, "--group", NAME, "--jobs", "1"]
    elif stage == "stage3":
        args = ["stage3", ws, "--product", NAME, "--no-package", "--jobs", "1"]
    elif stage == "package":
        return ["package", ws]
    else:
        raise ValueError(f"unknown stage {stage}")
    if opts.crds_path is not None and opts.native is not None:
        args += ["--crds-path", str(opts.crds_path)]
    return args


def binds(ws: Path, opts: Options) -> list[str]:
    """Folders the SIF sees, each at its own path: the workspace, the inputs, the config's folder."""
    paths = [Path(ws), *([opts.input] if opts.input else []), *opts.binds]
    if opts.config is not None:
        paths.append(Path(opts.config).parent)
    out: list[str] = []
    for p in paths:
        if str(p) not in out:
            out.append(str(p))
    return out


def command(stage: str, ws: Path, opts: Options) -> list[str]:
    """The whole command line a job runs: ``apptainer run ... SIF ARGS`` or ``NATIVE ARGS``."""
    if opts.sif is not None:
        launcher = ["apptainer", "run", "--containall"]
        for b in binds(ws, opts):
            launcher += ["--bind", b]
        launcher.append(str(opts.sif))
    else:
        launcher = list(opts.native)
    return launcher + mirim_args(stage, ws, opts)


def _quote(arg: str) -> str:
    return '"$NAME"' if arg == NAME else shlex.quote(arg)


def sbatch_directives(stage: str, ws: Path, opts: Options) -> list[str]:
    lines = [f"--job-name={JOB_PREFIX}{stage}", f"--output={log_pattern(ws, stage)}",
             "--nodes=1", "--ntasks=1", "--cpus-per-task=1",
             f"--mem={opts.mem_for(stage)}", f"--time={opts.time_for(stage)}",
             # SIGTERM to the batch shell 5 minutes before the time limit; the script passes it on,
             # mirim-reduce stops cleanly (exit 130) and a resubmission resumes.
             "--signal=B:TERM@300"]
    lines += [f"--partition={opts.partition}"] if opts.partition else []
    lines += [f"--account={opts.account}"] if opts.account else []
    return lines


def job_script(stage: str, ws: Path, opts: Options) -> str:
    """The batch script of ``stage`` (an array script when the stage runs one exposure per task)."""
    ws = Path(ws)
    out = ["#!/bin/bash", f"# mirim-reduce slurm: {stage} of workspace {ws} (written by `mirim-reduce slurm submit`;",
           "# edit the #SBATCH lines if needed, then `mirim-reduce slurm resubmit` uses this file)"]
    out += [f"#SBATCH {d}" for d in sbatch_directives(stage, ws, opts)]
    out += ["set -uo pipefail", f"WS={shlex.quote(str(ws))}"]
    if stage in ARRAY_STAGES:
        what = LISTS[stage]
        out += [f'NAME=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$WS/slurm/{what}.txt")',
                f'[ -n "$NAME" ] || {{ echo "no line $((SLURM_ARRAY_TASK_ID + 1)) in $WS/slurm/{what}.txt: run '
                f'mirim-reduce slurm resubmit" >&2; exit 3; }}',
                f'echo "mirim-reduce {stage} $NAME: job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} '
                f'on $(hostname), $(date -Is)"']
    else:
        out += [f'echo "mirim-reduce {stage}: job $SLURM_JOB_ID on $(hostname), $(date -Is)"']
    if opts.sif is not None:
        out += [f"export APPTAINERENV_MIRIM_IMAGE_REF={shlex.quote(str(opts.sif))}  # recorded in the manifest",
                '# the runscript works in the workspace, not in /data (nothing is bound there)',
                'export APPTAINERENV_MIRIM_CWD="$WS"']
    else:
        out += ["export MPLBACKEND=Agg"]
    out += ["# the command runs in the background so that this shell can pass Slurm's SIGTERM on to it",
            " ".join(_quote(a) for a in command(stage, ws, opts)) + " &",
            "child=$!",
            "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT",
            'wait "$child"  # returns early when a signal arrives: wait again until the command ends',
            'while kill -0 "$child" 2>/dev/null; do wait "$child"; done',
            'wait "$child"; rc=$?  # the command\'s own exit status (bash keeps it)',
            'echo "mirim-reduce exit code $rc, $(date -Is)"']
    if stage not in ARRAY_STAGES:  # an exposure's own output says it is done; the other tasks say it here
        out += [f'if [ "$rc" = 0 ]; then mkdir -p "$WS/slurm/done" && touch "$WS/slurm/done/{stage}"; fi']
    elif stage not in PRODUCT_STAGES:
        out += [f'if [ "$rc" = 0 ]; then mkdir -p "$WS/slurm/done/{stage}" && touch "$WS/slurm/done/{stage}/$NAME"; fi']
    out += ["exit $rc", ""]
    return "\n".join(out)


@dataclass
class PlannedJob:
    """One sbatch call: a stage's script, for some array indices (array stages), after ``after``."""

    stage: str
    indices: list[int] | None = None  # array indices into the stage's list
    after: list[str] = field(default_factory=list)  # stages submitted before it in this round

    def array_spec(self, limit: int | None) -> str | None:
        if self.indices is None:
            return None
        spec = compress(self.indices)
        return f"{spec}%{limit}" if limit else spec


def compress(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (a Slurm array specification)."""
    parts, run = [], []
    for i in sorted(set(indices)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def plan(lists: dict[str, list[str]], todo: dict[str, object], stages: tuple[str, ...] = STAGES
         ) -> list[PlannedJob]:
    """The jobs of one round. ``lists``: the exposures, groups and mosaics (``LISTS``); ``todo``:
    for array stages the names still to do, for the others True/False; a stage with nothing to
    do (or not in ``stages``) is left out, and every job depends on the one planned before it
    (so, in turn, on all of them)."""
    jobs: list[PlannedJob] = []
    for stage in stages:
        want = todo.get(stage)
        if not want:
            continue
        indices = [lists[LISTS[stage]].index(n) for n in want] if stage in ARRAY_STAGES else None
        jobs.append(PlannedJob(stage, indices, after=[jobs[-1].stage] if jobs else []))
    return jobs


def sbatch_argv(job: PlannedJob, ws: Path, opts: Options, dependency_ids: list[str]) -> list[str]:
    """``sbatch --parsable [--array=...] [--dependency=afterok:...] SCRIPT``."""
    argv = ["sbatch", "--parsable"]
    spec = job.array_spec(opts.array_limit)
    if spec is not None:
        argv.append(f"--array={spec}")
    if dependency_ids:
        # kill_invalid_depend is not the default: a job whose dependency failed stays pending
        # (DependencyNeverSatisfied) until `slurm resubmit` cancels it.
        argv.append("--dependency=afterok:" + ":".join(dependency_ids))
    argv.append(str(script_path(ws, job.stage)))
    return argv
