"""The workspace: one folder per reduction, resumable, locked while a run is in it.

Layout::

    WORKSPACE/
      config.toml       effective configuration of the last run
      inputs.json       the exposures reduced and the files skipped, with reasons
      crds.json         CRDS context and the best references of every exposure
      stage1/           <exposure>_rate.fits          (Detector1)
      stage2/           <exposure>_cal.fits           (Image2)
      clean/            <exposure>_cal.fits           (cleaning; what stage 3 reads)
      stage3/<product>/ <product>_i2d.fits, _cat.ecsv, _segm.fits, asn.json  (Image3)
      pass1/            clean_second_pass only: the first cleaning (clean/) and its mosaics
                        (stage3/<product>/), from which the second pass takes its masks
      products/         packaged results
      logs/<stage>/     one pipeline log per exposure (or product) and stage
      summary.json      what was done, skipped and failed, with times
      .lock             held (flock) by the run using the workspace

A product appears under its final name only when complete (written in a scratch folder,
then renamed), so a rerun skips exactly the finished work.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import WorkspaceError, WorkspaceLockedError, check_folder, from_os_error

STAGES = ("stage1", "stage2", "clean", "stage3")
SUFFIX = {"stage1": "_rate.fits", "stage2": "_cal.fits", "clean": "_cal.fits"}


@dataclass
class Workspace:
    root: Path

    def __post_init__(self):
        self.root = Path(self.root).absolute()
        self._lock_fd: int | None = None

    def dir(self, stage: str) -> Path:
        return self.root / stage

    def output(self, stage: str, stem: str) -> Path:
        """The product of ``stage`` for the exposure ``stem`` (stages 1, 2 and clean)."""
        return self.dir(stage) / f"{stem}{SUFFIX[stage]}"

    def log(self, stage: str, name: str) -> Path:
        return self.root / "logs" / stage / f"{name}.log"

    @property
    def products(self) -> Path:
        return self.root / "products"

    def create(self) -> "Workspace":
        for d in (*STAGES, "products", "logs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        return self

    def lock(self, shared: bool = False) -> None:
        """Take the workspace lock; another live run holding it is an error. ``shared``: runs
        restricted to some exposures (``--exposure``, e.g. the tasks of an HPC array) share it
        with each other, each task holding its own lock, while a whole run is refused."""
        check_folder(self.root, "workspace")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise from_os_error(exc) or WorkspaceError(f"workspace {self.root} cannot be used: {exc}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WorkspaceLockedError(f"workspace {self.root} is in use by another mirim-reduce run; "
                                       f"wait for it or use another --workdir") from None
        if not shared:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def locked(self, shared: bool = False) -> Iterator["Workspace"]:
        """The workspace, locked (see :meth:`lock`) and created, for the block."""
        self.lock(shared=shared)
        try:
            yield self.create()
        finally:
            self.unlock()

    def __enter__(self) -> "Workspace":
        self.lock()
        return self.create()

    def __exit__(self, *exc) -> None:
        self.unlock()


#: Folder of the first cleaning pass (``clean_second_pass``).
PASS1 = "pass1"


@dataclass
class FirstPass(Workspace):
    """A workspace seen by the first of two cleaning passes (``clean_second_pass``): its
    cleaned files and mosaics are ``WORKSPACE/pass1/clean`` and ``WORKSPACE/pass1/stage3``,
    its logs ``logs/pass1/<stage>``; stages 1 and 2 are the workspace's own. The workspace
    itself holds the lock."""

    def dir(self, stage: str) -> Path:
        if stage in ("clean", "stage3", "masks"):  # masks: the mosaics' masks projected onto exposures
            return self.root / PASS1 / stage
        return super().dir(stage)

    def log(self, stage: str, name: str) -> Path:
        if stage in ("clean", "stage3"):
            return self.root / "logs" / PASS1 / stage / f"{name}.log"
        return super().log(stage, name)

    def create(self) -> "FirstPass":
        for stage in ("clean", "stage3"):
            self.dir(stage).mkdir(parents=True, exist_ok=True)
        return self
