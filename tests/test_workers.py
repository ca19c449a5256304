"""The worker pool's scheduling helpers: fork_map (a task's members in forked copies of its
process), spare_cores (the pool's idle cores), and run's longest-first order."""

import os
from contextlib import contextmanager

import numpy as np
import pytest

from reduce import workers
from reduce.workers import WorkerPool, fork_map, spare_cores


def _square_and_pid(x):
    return x * x, os.getpid()


@pytest.mark.parametrize("processes", [1, 2, 3, 7])
def test_fork_map_results_in_order_from_several_processes(processes):
    out = fork_map(_square_and_pid, range(10), processes)
    assert [v for v, _ in out] == [x * x for x in range(10)]
    pids = {pid for _, pid in out}
    assert len(pids) == min(processes, 10)
    assert os.getpid() in pids  # this process takes its share
    # item i in process i % processes
    assert all(out[i][1] == out[i % processes][1] for i in range(10))


def _fail_on_three(x):
    if x == 3:
        raise ValueError("three is bad")
    return x


def _die_on_one(x):
    if x == 1:
        os._exit(3)
    return x


def test_fork_map_raises_a_childs_exception_and_reports_a_dead_child():
    with pytest.raises(ValueError, match="three is bad"):
        fork_map(_fail_on_three, range(6), 2)  # 3 is in the forked process
    from reduce.errors import StageError

    with pytest.raises(StageError, match="died") as err:  # a documented exit code, not 70
        fork_map(_die_on_one, range(4), 2)
    assert err.value.exit_code == 6 and "exit code 3" in str(err.value)


def test_fork_map_sees_this_process_memory():
    big = np.arange(1_000_000, dtype=np.float64)  # inherited, not pickled
    out = fork_map(lambda i: float(big[i::4].sum()), range(4), 2)
    assert out == [float(big[i::4].sum()) for i in range(4)]


def test_spare_cores_outside_a_pool_is_zero():
    with spare_cores(5) as n:
        assert n == 0


def _spare(_):
    with spare_cores(4) as n:
        return n


def test_spare_cores_in_a_pool_counts_the_idle_workers():
    with WorkerPool(1) as pool:
        assert pool.run(_spare, [0], "t") == [0]  # the task holds the only core
    with WorkerPool(3) as pool:
        assert pool.run(_spare, [0], "t") == [2]  # one task, two idle workers
        assert pool.run(_spare, [0], "t") == [2]  # borrowed cores come back


def _record(path_and_name):
    path, name = path_and_name
    with open(path, "a") as f:
        f.write(name + "\n")
    return name


def test_run_starts_the_costliest_first_and_keeps_the_order(tmp_path):
    log = tmp_path / "order.txt"
    items = [(str(log), n) for n in ("a", "bbb", "cc", "dddd")]
    with WorkerPool(1) as pool:
        out = pool.run(_record, items, "t", cost=lambda it: len(it[1]))
    assert out == ["a", "bbb", "cc", "dddd"]
    assert log.read_text().split() == ["dddd", "bbb", "cc", "a"]


def test_clean_group_gives_the_same_products_in_forked_processes(tmp_path, monkeypatch, caplog):
    """A group whose members' phases (masks, model-choice scores, subtraction) run in 2 processes
    writes the same files and records as in one."""
    import logging

    from test_clean_step import _cal, _cfg

    from reduce.clean.group import clean_group
    from reduce.clean.step import cleaning_groups
    from reduce.params import parse
    from reduce.workspace import Workspace

    src = tmp_path / "cal"
    src.mkdir()
    stems = [f"jw01_{i:02d}_mirimage" for i in range(4)]
    for i, stem in enumerate(stems):
        _cal(src / f"{stem}_cal.fits", i, sky=10 + i, star=(10 + 7 * i, 12 + 8 * i))
    params = parse(_cfg()).clean
    files, stats = {}, {}
    for spare in (0, 1):
        @contextmanager
        def fixed(limit, spare=spare):
            yield min(spare, limit)

        monkeypatch.setattr(workers, "spare_cores", fixed)
        ws = Workspace(tmp_path / f"ws{spare}").create()
        for s in stems:
            ws.output("stage2", s).write_bytes((src / f"{s}_cal.fits").read_bytes())
        (key, members), = cleaning_groups({s: ws.output("stage2", s) for s in stems}).items()
        with caplog.at_level(logging.INFO, logger="reduce.clean.group"):
            caplog.clear()
            gst, est = clean_group(ws, key, members, params, qa=False)
        assert f"subtraction of 4 member(s) in {1 + spare} process(es)" in caplog.text
        assert f"cross-validation of 4 member(s) in {1 + spare} process(es)" in caplog.text
        files[spare] = {p.name: p.read_bytes() for p in sorted(ws.dir("clean").glob("*.fits"))}
        stats[spare] = (gst, est)
    assert stats[0][0].method == "template"
    assert len(files[0]) == 2 * len(stems)  # cal and segm
    assert files[0].keys() == files[1].keys()
    assert all(files[0][k] == files[1][k] for k in files[0])
    assert stats[0] == stats[1]


def test_forked_processes_die_with_their_parent(tmp_path):
    """A kill -9 of a worker alone stops the processes it forked (PR_SET_PDEATHSIG)."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    pids = tmp_path / "pids.txt"
    script.write_text(
        "import os, sys, time\n"
        "from reduce.workers import fork_map\n"
        f"def f(x):\n    open({str(pids)!r}, 'a').write(f'{{x}} {{os.getpid()}}\\n')\n    time.sleep(60)\n"
        "fork_map(f, [0, 1], 2)\n")
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        for _ in range(100):
            if pids.exists() and len(pids.read_text().split("\n")) >= 3:
                break
            time.sleep(0.1)
        child = [int(line.split()[1]) for line in pids.read_text().splitlines() if line.startswith("1 ")][0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for _ in range(50):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("the forked process outlived its parent")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _blas_threads(_):
    """(OPENBLAS_NUM_THREADS, OpenBLAS's own thread count or None) in this process."""
    import ctypes
    import glob

    count = None
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, name):
                count = getattr(lib, name)()
    return os.environ.get("OPENBLAS_NUM_THREADS"), count


def test_workers_run_numerical_libraries_single_threaded_and_leave_the_environment(monkeypatch):
    """Each worker is one core's worth of work: OpenBLAS one thread there (not one per core,
    busy-waiting beside the other worker's), even where the environment asks for more (a
    threaded BLAS sums in per-thread parts: the products would depend on the thread count);
    the parent's environment is as before afterwards."""
    for name in workers.WORKER_THREADS:
        monkeypatch.delenv(name, raising=False)
    with WorkerPool(2) as pool:
        env, count = pool.run(_blas_threads, [0], "t")[0]
    assert env == "1"
    assert count in (None, 1)  # None: numpy without a bundled OpenBLAS
    assert all(name not in os.environ for name in workers.WORKER_THREADS)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with WorkerPool(1) as pool:
        env, count = pool.run(_blas_threads, [0], "t")[0]
    assert env == "1" and count in (None, 1)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and os.environ["OMP_NUM_THREADS"] == "2"
    assert "MKL_NUM_THREADS" not in os.environ
