"""The demo's observation 2 through a real Slurm (slow): ``slurm submit --native`` on the
one-node cluster of ``containers/slurm-cluster.sh`` (arrays over exposures, cleaning groups and
mosaics), one stage-1 array task scancel'ed mid-run, ``slurm resubmit``, and products
bit-identical (verify --exact) to a local run of the same inputs. (Every array task is its own
process: the whole demo's 43 tasks took 281 s here, these 4 exposures' about half; the whole
demo's split into parts is checked by tests/test_task_scopes.py.)"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import cli

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "containers" / "slurm-cluster.sh"
ACTIVE = ("running", "pending")


def _cluster_up() -> str | None:
    """None when sinfo shows an idle (or busy) node, else why not. As root on a machine with
    Slurm installed, the one-node cluster is started first (idempotent)."""
    if shutil.which("sbatch") is None:
        return "sbatch not on PATH (as root on Debian: containers/slurm-cluster.sh start installs a one-node cluster)"
    if os.geteuid() == 0 and Path("/etc/debian_version").exists():
        proc = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            return f"containers/slurm-cluster.sh start failed: {proc.stderr.strip()[-300:]}"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s in ("idle", "mixed", "allocated") for s in states):
        return f"no Slurm node up (sinfo: {proc.stdout.strip() or proc.stderr.strip()[:200]})"
    return None


def _status(ws: Path) -> list[dict]:
    return json.loads(cli("slurm", "status", ws, "--json").stdout)


def _wait(ws: Path, until, timeout: float = 3600, what: str = "", poll: float = 5) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = _status(ws)
        if until(rows):
            return rows
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}: {[(r['stage'], r['task'], r['state']) for r in rows]}")


def _idle(rows) -> bool:
    return not any(r["state"] in ACTIVE for r in rows)


@pytest.mark.slow
def test_slurm_arrays_scancel_resubmit_identical_products(demo_o002_run, crds_cache, tmp_path):
    why = _cluster_up()
    if why:
        pytest.skip(why)
    raw, local_ws, _ = demo_o002_run
    ws = tmp_path / "ws-slurm"
    t0 = time.time()
    # the array tasks (exposures, cleaning groups, mosaics) run two at a time on the two cores
    # (shared workspace lock, per-task locks)
    cli("slurm", "submit", ws, "--input", raw, "--native", "--crds-path", crds_cache)

    # stop one stage-1 task inside its pipeline (its log exists; after two exposures are done);
    # a task that finished just before scancel reached it does not count: take the next one
    tried: set[str] = set()

    def victim(rows):
        done = sum(r["stage"] == "stage1" and r["state"] == "done" for r in rows)
        running = [r for r in rows if r["stage"] == "stage1" and r["state"] == "running" and r["job"] not in tried
                   and (ws / "logs" / "stage1" / f"{r['task']}.log").is_file()]
        return running[0] if done >= 2 and running else None

    for _ in range(5):
        target = victim(_wait(ws, victim, what="a running stage-1 task after two finished", poll=1))
        subprocess.run(["scancel", target["job"]], check=True)
        tried.add(target["job"])
        time.sleep(3)
        if not (ws / "stage1" / f"{target['task']}_rate.fits").exists():
            break
    else:
        pytest.fail("scancel never reached a stage-1 task before it finished")
    rows = _wait(ws, _idle, what="the rest of the round to finish or block")
    by = {(r["stage"], r["task"]): r for r in rows}
    assert by[("stage1", target["task"])]["state"] == "failed"
    # stopped cleanly: mirim-reduce's one-line message (the script's own "exit code 130" footer may
    # be cut by Slurm's SIGKILL KillWait seconds after scancel's SIGTERM on a loaded node)
    log_text = Path(by[("stage1", target["task"])]["log"]).read_text()
    assert "interrupted: the workspace is resumable" in log_text and "Traceback" not in log_text, log_text
    assert not (ws / "stage1" / f"{target['task']}_rate.fits").exists()
    assert {r["state"] for r in rows if r["stage"] not in ("prepare", "stage1")} <= {"blocked", "done"}
    assert sum(r["state"] == "done" for r in rows if r["stage"] == "stage1") == len(
        [r for r in rows if r["stage"] == "stage1"]) - 1

    proc = cli("slurm", "resubmit", ws)
    assert "scancel" in proc.stdout  # the blocked chain is cancelled first
    rows = _wait(ws, _idle, what="the resubmitted round")
    bad = [(r["stage"], r["task"], r["state"], r["log"]) for r in rows if r["state"] != "done"]
    assert not bad, bad
    # one task per cleaning group (both passes) and per mosaic (first-pass masks, stage 3)
    tasks = {stage: sorted(r["task"] for r in rows if r["stage"] == stage) for stage in ("clean1", "clean", "masks",
                                                                                           "stage3")}
    assert tasks["clean1"] == tasks["clean"] == sorted(json.loads((local_ws / "clean" / "clean_summary.json")
                                                                  .read_text())["groups"])
    assert tasks["masks"] == tasks["stage3"] == sorted(p.name for p in (local_ws / "stage3").iterdir() if p.is_dir())
    seconds = time.time() - t0
    print(f"slurm round trip (submit, scancel, resubmit) {seconds:.0f} s")

    proc = cli("verify", ws / "products", local_ws / "products", "--exact", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
