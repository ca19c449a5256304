"""Ctrl-C / SIGTERM in the worker processes (issue 12, defect 3): an idle worker prints no
traceback and stays usable; a busy one stops its task with KeyboardInterrupt."""

import os
import subprocess
import sys

import pytest

SCRIPT = r'''
import os, signal, sys, time
from pathlib import Path

from reduce.stages.runner import run_task
from reduce.stages.task import Task
from reduce.workers import WorkerPool

if __name__ == "__main__":
    tmp = Path(sys.argv[1])
    with WorkerPool(2) as workers:
        workers.run(time.sleep, [0.3, 0.3], "sleep")  # both workers up, now idle
        pool = workers._pool
        pids = list(pool._processes)
        for pid in pids:
            os.kill(pid, signal.SIGINT)
            os.kill(pid, signal.SIGTERM)
        time.sleep(1.0)
        alive = [pid for pid in pids if pool._processes[pid].is_alive()]
        print("idle alive", len(alive), flush=True)
        # busy: run_task blocks opening its log (a FIFO nobody reads) until the signal comes
        fifo = tmp / "log.fifo"
        os.mkfifo(fifo)
        task = Task(stage="stage1", name="x", inputs=["x"], outputs=[str(tmp / "x_rate.fits")], log=str(fifo))
        fut = workers.submit(run_task, task)
        time.sleep(1.5)
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        try:
            fut.result(timeout=20)
            print("busy result", flush=True)
        except KeyboardInterrupt:
            print("busy interrupted", flush=True)
    print("done", flush=True)
'''


def test_idle_workers_ignore_interrupts_busy_ones_stop(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["idle alive 2", "busy interrupted", "done"], (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_ctrl_c_during_stage1_is_one_line_and_resumable(tmp_path, crds_cache):
    """Ctrl-C (SIGINT to the whole process group) during stage 1, one worker busy, one idle."""
    import signal
    import time

    import numpy as np

    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(1)
    for spec in demo_program()[:3]:
        write_exposure(raw, spec, make_scene(1), rng=rng)
    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-m", "reduce.cli", "run", str(raw), "--workdir", str(ws), "--jobs", "2",
                             "--crds-path", str(crds_cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "MPLBACKEND": "Agg"}, start_new_session=True)
    deadline = time.time() + 300
    while len(list((ws / "stage1").glob("*_rate.fits"))) < 2 and time.time() < deadline:
        time.sleep(0.2)  # then one worker runs the third exposure and the other is idle
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted: the workspace is resumable")


def test_idle_orphaned_worker_leaves_on_sigterm(tmp_path):
    """The main process killed (kill -9): its idle workers still stop on SIGTERM, quietly."""
    import signal
    import time

    script = tmp_path / "orphan.py"
    script.write_text(
        "import multiprocessing, os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from reduce.workers import _worker_signals\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'), initializer=_worker_signals)\n"
        "    pool.submit(time.sleep, 0.1).result()\n"
        "    print(list(pool._processes)[0], flush=True)\n"
        "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    time.sleep(0.5)
    os.kill(worker, signal.SIGTERM)
    for _ in range(50):
        try:
            if "\nState:\tZ" in open(f"/proc/{worker}/status").read():  # exited, not yet reaped
                break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        raise AssertionError("the orphaned worker ignored SIGTERM")
    assert "Traceback" not in proc.stderr.read()
