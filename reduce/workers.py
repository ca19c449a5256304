"""Worker processes of a run: one pool, started on first use and kept for every stage.

Spawned workers import jwst once (~3-10 s each on 2 cores) and then serve stage 1, stage 2,
the cleaning, the second pass's mosaic masks and stage 3 in turn. Results do not depend on
which worker ran a task (every task reads its inputs from files and writes its outputs to
files), so ``--jobs 1`` and ``--jobs 2`` give identical products.
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


#: True in a worker while it runs a task (set by :func:`_run_busy`).
_busy = False


def _run_busy(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker, marked busy for :func:`_worker_signals`."""
    global _busy
    _busy = True
    try:
        return fn(*args)
    finally:
        _busy = False


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

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            per_child = 1 if os.environ.get("MIRIM_REDUCE_FRESH_WORKERS") == "1" else None
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             max_tasks_per_child=per_child, initializer=_worker_signals)
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any):
        """Start ``fn(*args)`` in a worker; returns its `~concurrent.futures.Future`."""
        return self._executor().submit(_run_busy, fn, *args)

    def run(self, fn: Callable[[Any], Any], items: Iterable[Any], label: str,
            describe: Callable[[Any], str] = lambda r: "") -> list[Any]:
        """``[fn(item) for item in items]`` in the workers, in the order of ``items``, with a
        progress bar; ``describe(result)`` is shown next to it (e.g. "FAILED <name>"). The
        first exception a task raises is raised here, after the other tasks are cancelled."""
        items = list(items)
        if not items:
            return []
        results: list[Any] = [None] * len(items)
        columns = (TextColumn(f"{label:8s}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"))
        with Progress(*columns, console=console, transient=False) as progress:
            bar = progress.add_task("", total=len(items))
            pool = self._executor()
            futures = {pool.submit(_run_busy, fn, item): i for i, item in enumerate(items)}
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

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB): a reused worker's peak up to its current task."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
