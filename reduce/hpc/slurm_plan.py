"""Slurm job scripts and their dependency chain for one workspace (pure: no Slurm needed).

One job (or job array) per stage, in data-flow order::

    prepare   mirim-reduce slurm prepare WS --input RAW   (records inputs, config, CRDS check)
    stage1    array over exposures: mirim-reduce stage1 WS --exposure STEM --jobs 1
    stage2    array over exposures: mirim-reduce stage2 WS --exposure STEM --jobs 1
    clean     mirim-reduce clean WS --jobs N                (both cleaning passes)
    stage3    mirim-reduce stage3 WS --jobs N
    package   mirim-reduce package WS

each started only after the job submitted before it in the same round succeeded
(``--dependency=afterok:JOBID``; for an array, after all of its tasks). An array task finds its
exposure in ``WS/slurm/exposures.txt`` (line ``SLURM_ARRAY_TASK_ID + 1``), so a resubmission
runs the same script on some indices only.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

STAGES = ("prepare", "stage1", "stage2", "clean", "stage3", "package")
ARRAY_STAGES = ("stage1", "stage2")
JOB_PREFIX = "mirim-"
STEM = "$STEM"  # the exposure of an array task, set by the script

#: Time limits (HH:MM:SS) per stage: generous for a MIRI program of tens of full-frame exposures.
DEFAULT_TIME = {"prepare": "00:30:00", "stage1": "02:00:00", "stage2": "01:00:00", "clean": "04:00:00",
                "stage3": "08:00:00", "package": "01:00:00"}
#: Cores per job: one exposure per array task; the cleaning and stage 3 run groups/mosaics in parallel.
DEFAULT_CPUS = {"prepare": 1, "stage1": 1, "stage2": 1, "clean": 4, "stage3": 4, "package": 1}
#: Memory, MB: the main process (~0.5 GB with jwst's imports) plus per worker the benchmark's peak
#: RSS (stage 1 ~1.1 GB on full-frame exposures; the cleaning ~0.5 GB per worker); stage 3 and
#: packaging are not benchmarked per worker: 3 GB per worker is a margin, not a measurement.
MAIN_MB = 1024
WORKER_MB = {"prepare": 1024, "stage1": 1536, "stage2": 1536, "clean": 512, "stage3": 3072, "package": 1024}


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
    mem: dict[str, str] = field(default_factory=dict)    # stage -> Slurm size (else MAIN_MB + workers)
    cpus: dict[str, int] = field(default_factory=dict)   # stage -> cores (else DEFAULT_CPUS)
    array_limit: int | None = None        # at most this many array tasks at once (``%N``)

    def __post_init__(self):
        if (self.sif is None) == (self.native is None):
            raise ValueError("give exactly one of a SIF or a native command")

    def cpus_for(self, stage: str) -> int:
        return int(self.cpus.get(stage, DEFAULT_CPUS[stage]))

    def mem_for(self, stage: str) -> str:
        if stage in self.mem:
            return str(self.mem[stage])
        workers = 1 if stage in ("prepare", "stage1", "stage2", "package") else self.cpus_for(stage)
        return f"{MAIN_MB + WORKER_MB[stage] * workers}M"

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


def exposures_file(ws: Path) -> Path:
    return slurm_dir(ws) / "exposures.txt"


def script_path(ws: Path, stage: str) -> Path:
    return slurm_dir(ws) / f"{stage}.sh"


def done_marker(ws: Path, stage: str) -> Path:
    """Written by a whole-workspace job when its command succeeded (prepare, clean, stage3, package)."""
    return slurm_dir(ws) / "done" / stage


def log_pattern(ws: Path, stage: str) -> str:
    """``--output``: ``%x_%A_%a.out`` for arrays; ``%x_%j.out`` for single jobs (whose %a is 4294967294)."""
    return str(slurm_dir(ws) / "logs" / ("%x_%A_%a.out" if stage in ARRAY_STAGES else "%x_%j.out"))


def log_file(ws: Path, stage: str, job_id: str, index: int | None = None) -> Path:
    """The log of one submitted job (or array task): ``log_pattern`` filled in."""
    name = f"{JOB_PREFIX}{stage}_{job_id}" + (f"_{index}" if index is not None else "") + ".out"
    return slurm_dir(ws) / "logs" / name


def mirim_args(stage: str, ws: Path, opts: Options) -> list[str]:
    """The mirim-reduce arguments of a stage's job (``$STEM`` for an array task's exposure)."""
    ws = str(ws)
    if stage == "prepare":
        if opts.input is None:
            raise ValueError("the prepare job needs the input folder")
        args = ["slurm", "prepare", ws, "--input", str(opts.input)]
        args += ["--config", str(opts.config)] if opts.config else []
    elif stage in ARRAY_STAGES:
        args = [stage, ws, "--exposure", STEM, "--jobs", "1"]
    elif stage in ("clean", "stage3"):
        args = [stage, ws, "--jobs", str(opts.cpus_for(stage))] + (["--no-package"] if stage == "stage3" else [])
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
    return '"$STEM"' if arg == STEM else shlex.quote(arg)


def sbatch_directives(stage: str, ws: Path, opts: Options) -> list[str]:
    lines = [f"--job-name={JOB_PREFIX}{stage}", f"--output={log_pattern(ws, stage)}",
             "--nodes=1", "--ntasks=1", f"--cpus-per-task={opts.cpus_for(stage)}",
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
        out += ['STEM=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$WS/slurm/exposures.txt")',
                '[ -n "$STEM" ] || { echo "no exposure for array task $SLURM_ARRAY_TASK_ID" >&2; exit 3; }',
                f'echo "mirim-reduce {stage} $STEM: job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} '
                f'on $(hostname), $(date -Is)"']
    else:
        out += [f'echo "mirim-reduce {stage}: job $SLURM_JOB_ID on $(hostname), $(date -Is)"']
    if opts.sif is not None:
        out += [f"export APPTAINERENV_MIRIM_IMAGE_REF={shlex.quote(str(opts.sif))}  # recorded in the manifest"]
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
    if stage not in ARRAY_STAGES:  # an exposure's own output says it is done; a whole stage says it here
        out += [f'if [ "$rc" = 0 ]; then mkdir -p "$WS/slurm/done" && touch "$WS/slurm/done/{stage}"; fi']
    out += ["exit $rc", ""]
    return "\n".join(out)


@dataclass
class PlannedJob:
    """One sbatch call: a stage's script, for some array indices (array stages), after ``after``."""

    stage: str
    indices: list[int] | None = None  # array indices into exposures.txt
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


def plan(stems: list[str], todo: dict[str, object]) -> list[PlannedJob]:
    """The jobs of one round. ``todo``: for array stages the stems still to do, for the others
    True/False; a stage with nothing to do is left out, and every job depends on the one
    planned before it (so, in turn, on all of them)."""
    jobs: list[PlannedJob] = []
    for stage in STAGES:
        want = todo.get(stage)
        if not want:
            continue
        indices = [stems.index(s) for s in want] if stage in ARRAY_STAGES else None
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
