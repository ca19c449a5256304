"""What every fault case uses: the suite's folders, running the CLI in its own process group,
killing it when a phase's marker appears, and the checks (one-line message, no traceback, no
scratch left, inputs unchanged, products identical to the reference run's)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Where a run leaves scratch: every folder a stage writes (searched recursively).
SCRATCH_DIRS = ("stage1", "stage2", "clean", "stage3", "pass1", "products")


class FaultMissed(Exception):
    """The phase a case meant to interrupt had finished (or never started) when the fault came."""


class CaseSkipped(Exception):
    """The case cannot run here (e.g. it needs root for a mount)."""


@dataclass
class Result:
    """What one CLI invocation did."""

    args: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float
    note: str = ""

    @property
    def message(self) -> str:
        """The last line starting with ``error:`` or ``interrupted:`` ('' if none)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith(("error:", "interrupted:"))]
        return lines[-1] if lines else ""


@dataclass
class Case:
    """One case's record: what was done, the fault's exit code and message, the checks."""

    name: str
    fault: str = ""
    rc: int | None = None
    message: str = ""
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    status: str = "PASS"
    error: str = ""
    seconds: float = 0.0
    runs: list[dict] = field(default_factory=list)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((what, bool(ok), detail))
        return bool(ok)

    @property
    def passed(self) -> int:
        return sum(ok for _, ok, _ in self.checks)

    def finish(self) -> None:
        if self.status == "PASS" and not all(ok for _, ok, _ in self.checks):
            self.status = "FAIL"


@dataclass
class Suite:
    """The suite's folders and the shared reference run."""

    root: Path          # scratch root of this suite run
    crds_src: Path      # the CRDS cache given (never modified)
    jobs: int = 2
    python: str = sys.executable
    keep: bool = False

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def crds(self) -> Path:
        return self.root / "crds"  # the suite's pristine copy (cases that damage it copy it again)

    @property
    def config(self) -> Path:
        return self.root / "suite.toml"

    @property
    def ref(self) -> Path:
        return self.root / "reference"

    @property
    def stage2_template(self) -> Path:
        return self.root / "stage2-template"

    def case_dir(self, name: str) -> Path:
        d = self.root / "cases" / name
        if d.exists():
            force_remove(d)
        d.mkdir(parents=True)
        return d

    def log_path(self, case: Case, label: str) -> Path:
        d = self.root / "cases" / case.name
        d.mkdir(parents=True, exist_ok=True)
        return d / label.replace(" ", "-").replace(":", "")

    # ------------------------------------------------------------------ running the CLI
    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("CRDS_CONTEXT", "CRDS_PATH")}
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["MPLBACKEND"] = "Agg"
        env.update({k: v for k, v in extra.items() if v is not None})
        return env

    def start(self, *args, env: dict | None = None, log: Path) -> subprocess.Popen:
        """``python -m reduce.cli ARGS`` in its own session (process group = its pid)."""
        argv = [self.python, "-m", "reduce.cli", *map(str, args)]
        out = open(log.with_suffix(".out"), "w")
        err = open(log.with_suffix(".err"), "w")
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(log.parent),
                                env=env or self.env(), start_new_session=True)
        proc._logs = (log.with_suffix(".out"), log.with_suffix(".err"))  # type: ignore[attr-defined]
        proc._t0 = time.perf_counter()  # type: ignore[attr-defined]
        proc._argv = argv  # type: ignore[attr-defined]
        out.close()
        err.close()
        return proc

    def finish(self, proc: subprocess.Popen, case: Case | None = None, timeout: float = 900) -> Result:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        left = wait_group_gone(proc.pid, 20)
        out, err = (p.read_text(errors="replace") for p in proc._logs)  # type: ignore[attr-defined]
        res = Result(proc._argv[3:], proc.returncode, out, err, time.perf_counter() - proc._t0)  # type: ignore
        if case is not None:
            case.runs.append({"args": res.args, "rc": res.rc, "seconds": round(res.seconds, 1),
                              "message": res.message})
            case.check("no process of the run left", not left, f"{left} left" if left else "")
        return res

    def cli(self, *args, case: Case | None = None, env: dict | None = None, log: Path) -> Result:
        return self.finish(self.start(*args, env=env, log=log), case)

    def run_args(self, raw: Path, ws: Path, crds: Path | None = None, config: Path | None = None) -> list:
        return ["run", raw, "--workdir", ws, "--jobs", self.jobs, "--crds-path", crds or self.crds,
                "--config", config or self.config]

    # ------------------------------------------------------------------ common case steps
    def new_workspace(self, d: Path, stage2: bool = True) -> Path:
        """A copy of the stage-2-complete workspace (or a fresh path)."""
        ws = d / "ws"
        if stage2:
            copy_tree(self.stage2_template, ws)
        return ws

    def rerun_and_verify(self, case: Case, ws: Path, raw: Path | None = None, crds: Path | None = None,
                         label: str = "rerun") -> Result:
        """The fix's rerun: exit 0, no scratch, products identical to the reference run's."""
        res = self.cli(*self.run_args(raw or self.raw, ws, crds), case=case, log=self.log_path(case, label))
        case.check(f"{label} exits 0", res.rc == 0, f"exit {res.rc}: {res.message or res.stderr[-300:]}")
        case.check(f"{label}: no traceback", "Traceback" not in res.stderr)
        self.check_no_scratch(case, ws, label)
        self.verify(case, ws / "products", label)
        return res

    def verify(self, case: Case, products: Path, label: str = "rerun") -> None:
        v = self.cli("verify", products, self.ref / "products", "--exact",
                     log=self.log_path(case, f"{label}-verify"))
        case.check(f"{label}: products == reference (verify --exact)", v.rc == 0,
                   f"verify exit {v.rc}: {v.stdout[-600:]}{v.stderr[-300:]}")

    def check_no_scratch(self, case: Case, ws: Path, label: str) -> list[Path]:
        left = scratch_left(ws)
        case.check(f"{label}: no scratch left", not left, ", ".join(str(p.relative_to(ws)) for p in left[:5]))
        return left

    def check_one_line(self, case: Case, res: Result, code: int, prefix: str = "error:",
                       mentions: tuple[str, ...] = ()) -> None:
        """The fault's exit code and its one-line message, no traceback."""
        case.rc, case.message = res.rc, res.message
        case.check(f"exit {code}", res.rc == code, f"exit {res.rc}")
        msgs = [ln for ln in res.stderr.splitlines() if ln.startswith(("error:", "interrupted:"))]
        case.check(f"one '{prefix}' line", len(msgs) == 1 and msgs[0].startswith(prefix),
                   " | ".join(msgs)[:300] or res.stderr[-300:])
        case.check("no traceback", "Traceback" not in res.stderr, res.stderr[-500:] if "Traceback" in res.stderr else "")
        for m in mentions:
            case.check(f"message names {m}", m in res.message, res.message)


# ---------------------------------------------------------------------- processes
def kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def group_members(pgid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(d.name))
    return pids


def wait_group_gone(pgid: int, timeout: float) -> list[int]:
    """Wait until no (non-zombie) process of the group is left; kill -9 and return those left."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        left = group_members(pgid)
        if not left:
            return []
        time.sleep(0.1)
    left = group_members(pgid)
    kill_group(pgid, signal.SIGKILL)
    return left


def fault_when(proc: subprocess.Popen, ws: Path, marker: str, sig: int, *, missed_if: str | None = None,
               timeout: float = 600, poll: float = 0.02) -> str:
    """Send ``sig`` to the run's process group as soon as a path matching ``marker`` (glob
    relative to ``ws``) exists. FaultMissed if the run ended first, or if ``missed_if`` already
    matched something when the marker appeared (the phase had finished). Returns what matched."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        hits = glob.glob(str(ws / marker), recursive=True)
        if hits:
            late = glob.glob(str(ws / missed_if), recursive=True) if missed_if else []
            kill_group(proc.pid, sig)
            if late:
                raise FaultMissed(f"{missed_if} already existed when {marker} appeared: retime the case")
            return os.path.relpath(hits[0], ws)
        if proc.poll() is not None:
            raise FaultMissed(f"the run ended (exit {proc.returncode}) before {marker} appeared")
        time.sleep(poll)
    kill_group(proc.pid, signal.SIGKILL)
    raise FaultMissed(f"{marker} did not appear within {timeout:.0f} s")


# ---------------------------------------------------------------------- files
#: Per-task lock files (``.<task>.<stage>.lock``, reduce.stages.runner): kept on purpose (an
#: flock file must not be unlinked while another run may open it), so not scratch, unless held.
TASK_LOCK = re.compile(r"\..+\.(stage1|stage2|clean|stage3|masks|pass1)\.lock")


def _held(path: Path) -> bool:
    from reduce.fsutil import is_locked

    return is_locked(path)


def scratch_left(ws: Path) -> list[Path]:
    """Names starting with '.' anywhere under the stage folders, pass1 and products (per-task
    lock files only while some process holds them)."""
    left = []
    for d in SCRATCH_DIRS:
        base = ws / d
        if base.is_dir():
            for dirpath, dirnames, filenames in os.walk(base):
                for n in dirnames + filenames:
                    p = Path(dirpath) / n
                    if n.startswith(".") and not (TASK_LOCK.fullmatch(n) and p.is_file() and not _held(p)):
                        left.append(p)
    return sorted(left)


def sha256_tree(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[str(p.relative_to(folder))] = h.hexdigest()
    return out


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file (to show a failed run touched nothing)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name != ".lock"}


def copy_tree(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def force_remove(path: Path) -> None:
    for p in [path, *Path(path).rglob("*")] if Path(path).is_dir() else []:
        try:
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o755)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


# ---------------------------------------------------------------------- mounts (root only)
def need_root() -> None:
    if os.geteuid() != 0:
        raise CaseSkipped("needs root (mount)")


def mount_tmpfs(path: Path, size_mb: int) -> None:
    need_root()
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True)


def umount(path: Path) -> None:
    for _ in range(20):
        r = subprocess.run(["umount", str(path)], capture_output=True, text=True)
        if r.returncode == 0 or "not mounted" in r.stderr:
            return
        time.sleep(0.5)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2 ** 20


def message_re(res: Result, pattern: str) -> bool:
    return re.search(pattern, res.message) is not None


def dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
