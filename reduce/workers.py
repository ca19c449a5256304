"""Worker processes of a run: one pool, started on first use and kept for every stage.

Spawned workers import jwst once (~3-10 s each on 2 cores) and then serve stage 1, stage 2,
the cleaning, the second pass's mosaic masks and stage 3 in turn. Results do not depend on
which worker ran a task (every task reads its inputs from files and writes its outputs to
files), so ``--jobs 1`` and ``--jobs 2`` give identical products.

A worker is one core's worth of work: its numerical libraries run single-threaded
(:data:`WORKER_THREADS`), as jwst's own steps are, whatever the environment says. OpenBLAS
otherwise starts a thread per core in every worker; on 2 cores, 2 workers with 2 busy-waiting
BLAS threads each made stage 2 about 15 % slower at full frame and burned CPU time at
``--jobs 1`` too, for nothing. And a threaded BLAS sums a long dot product in per-thread
parts, so its last bits depend on the thread count (the cleaning's template scale did):
with one thread everywhere, a native run under a cluster's ``OMP_NUM_THREADS=8`` gives the
products a laptop gives.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
log = logging.getLogger(__name__)


#: True in a worker while it runs a task (set by :func:`_run_busy`).
_busy = False

#: In a worker: the pool's count of idle cores (a semaphore shared by the workers, ``jobs`` at
#: the start; a running task holds one). :func:`spare_cores` borrows the others.
_idle_cores = None


#: Thread counts of the numerical libraries in the workers (unless the user's environment sets
#: them): one per worker. Set in the parent while the pool exists (spawned workers read them
#: at their first numpy import); they do not change any result.
WORKER_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _worker_init(idle_cores) -> None:
    global _idle_cores
    _idle_cores = idle_cores
    _worker_signals()


def _run_busy(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker, marked busy for :func:`_worker_signals`, holding one of the
    pool's cores while there is one (a worker that finds none runs anyway: a core a task
    borrowed comes back at the end of its phase)."""
    global _busy
    _busy = True
    held = _idle_cores is not None and _idle_cores.acquire(False)
    try:
        return fn(*args)
    finally:
        _busy = False
        if held:
            _idle_cores.release()


@contextmanager
def spare_cores(limit: int) -> Iterator[int]:
    """Borrow up to ``limit`` of the pool's idle cores (workers with nothing to do) for the
    duration of the block; yields how many (0 outside a pool worker, or with every worker busy).
    What a task computes must not depend on it (:func:`fork_map` does not)."""
    got = 0
    try:
        while _idle_cores is not None and got < limit and _idle_cores.acquire(False):
            got += 1
        yield got
    finally:
        for _ in range(got):
            _idle_cores.release()


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this (forked) process when its parent dies (a kill -9 of the worker
    alone), so that it does not go on writing files for a task that is gone."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # died before prctl
        os._exit(1)


def _fork_child(fn: Callable[[Any], Any], items: list, conn, parent: int) -> None:
    try:
        _die_with_parent(parent)
        out = [fn(x) for x in items]
        conn.send(("ok", out))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        if not isinstance(exc, KeyboardInterrupt):
            logging.getLogger("mirim_reduce").exception("forked part of the task failed")
        try:
            conn.send(("error", exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()
        os._exit(0)


def fork_map(fn: Callable[[Any], Any], items: Iterable[Any], processes: int) -> list[Any]:
    """``[fn(item) for item in items]`` in ``processes`` processes: this one and forked copies
    of it (which see its memory as it is, copy-on-write), item ``i`` in process ``i % processes``.
    Results come back pickled, in order; an exception of any item is raised here (the others'
    processes are stopped), a forked process that dies as a StageError (exit 6).
    ``processes <= 1``: a plain loop in this process."""
    items = list(items)
    k = max(1, min(int(processes), len(items)))
    if k == 1:
        return [fn(x) for x in items]
    ctx = multiprocessing.get_context("fork")
    children = []
    finished = False
    try:
        for w in range(1, k):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_fork_child, args=(fn, items[w::k], send, os.getpid()), daemon=True)
            proc.start()
            send.close()
            children.append((w, proc, recv))
        results: list[Any] = [None] * len(items)
        results[0::k] = [fn(x) for x in items[0::k]]
        for w, proc, recv in children:
            try:
                status, payload = recv.recv()
            except EOFError:
                from .errors import StageError

                proc.join()
                how = f"killed by signal {-proc.exitcode}" if (proc.exitcode or 0) < 0 else f"exit code {proc.exitcode}"
                raise StageError(f"a forked process of the task died ({how}; out of memory?): run the same "
                                 "command again, with --jobs 1 to use one process per task") from None
            if status == "error":
                raise payload
            results[w::k] = payload
        finished = True
        return results
    finally:
        for _, proc, recv in children:
            if not finished and proc.is_alive():
                proc.terminate()
            proc.join()
            recv.close()


def _worker_signals() -> None:
    """Workers stop a running task on SIGINT (Ctrl-C reaches the whole process group) and on
    SIGTERM (scancel, tini -g, systemd) with KeyboardInterrupt, as the main process does; the
    task cleans its scratch and the main process prints one line. A worker waiting for work
    ignores both and leaves when the main process shuts the pool down (or at once, quietly, when
    the main process is gone): no traceback."""
    parent = os.getppid()

    def handler(signum, frame):
        if _busy:
            raise KeyboardInterrupt
        if os.getppid() != parent:  # orphaned (the main process was killed): nothing will shut us down
            os._exit(128 + signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


class WorkerPool:
    """``jobs`` spawned worker processes, created when the first task is submitted.

    ``MIRIM_REDUCE_FRESH_WORKERS=1`` gives every task a fresh process (peak RSS per task, as
    the benchmarks used to measure it; slower: jwst is imported per task)."""

    def __init__(self, jobs: int):
        self.jobs = max(1, int(jobs))
        self._pool: ProcessPoolExecutor | None = None
        self._env_saved: dict[str, str | None] = {}  # the parent's WORKER_THREADS variables, restored on close

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            per_child = 1 if os.environ.get("MIRIM_REDUCE_FRESH_WORKERS") == "1" else None
            for name, value in WORKER_THREADS.items():  # inherited by every worker spawned from now on
                own = self._env_saved[name] = os.environ.get(name)
                if own not in (None, value):
                    log.info("%s=%s is not used by the workers: each runs one thread (more cores: --jobs), "
                             "so that the products do not depend on the thread count", name, own)
                os.environ[name] = value
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, max_tasks_per_child=per_child,
                                             initializer=_worker_init, initargs=(ctx.Semaphore(self.jobs),))
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any):
        """Start ``fn(*args)`` in a worker; returns its `~concurrent.futures.Future`."""
        return self._executor().submit(_run_busy, fn, *args)

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any], label: str,
            describe: Callable[[Any], str] = lambda r: "", cost: Callable[[Any], float] | None = None) -> list[Any]:
        """``[fn(item) for item in items]`` in the workers, in the order of ``items``, with a
        progress bar; ``describe(result)`` is shown next to it (e.g. "FAILED <name>"). The
        first exception a task raises is raised here, after the other tasks are cancelled.
        ``cost(item)``: the tasks start in decreasing cost (the longest first: the last ones
        to finish are short, and the workers finish together); results keep the items' order."""
        items = list(items)
        if not items:
            return []
        results: list[Any] = [None] * len(items)
        columns = (TextColumn(f"{label:8s}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"))
        with Progress(*columns, console=console, transient=False) as progress:
            bar = progress.add_task("", total=len(items))
            pool = self._executor()
            order = sorted(range(len(items)), key=lambda i: -cost(items[i])) if cost else range(len(items))
            futures = {pool.submit(_run_busy, fn, items[i]): i for i in order}
            try:
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    progress.update(bar, advance=1, description=describe(results[futures[fut]]))
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for name, value in self._env_saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env_saved = {}

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, or of the largest of its finished child
    processes (:func:`fork_map`) if higher (MB): a reused worker's peak up to its current task."""
    import resource

    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


@contextmanager
def task_log(path: Path) -> Iterator[logging.Handler]:
    """Send every log record of the process (jwst's, ours, warnings) to ``path`` while a task
    runs; an exception leaving the block is logged there with its traceback, then re-raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield handler
    except Exception:
        logging.getLogger("mirim_reduce").exception("task failed")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
