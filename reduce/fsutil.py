"""Atomic writes: outputs appear under their final name complete, or not at all.

:func:`atomic_path` writes ``.<name>.<8 random characters>.part`` beside the final file and holds
an exclusive ``flock`` on it while it is written, so :func:`sweep_scratch` removes exactly the
temporaries of a killed process (its lock died with it), never a live writer's or a user's file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    fcntl.flock(fd, fcntl.LOCK_EX)  # released when this process closes it or dies
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: give the usual umask-based mode
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        os.close(fd)


#: Names :func:`atomic_path` gives its temporaries (mkstemp's 8 characters between the dots).
SCRATCH_FILE = re.compile(r"\..+\.[a-z0-9_]{8}\.part")


def is_locked(path: Path) -> bool:
    """True when a live process holds an flock on ``path`` (False when it cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _abandoned(path: Path) -> bool:
    """No live process holds ``path``'s atomic_path lock (and it can be opened)."""
    return os.path.lexists(path) and not os.path.islink(path) and not is_locked(path)


def sweep_scratch(folder: Path, depth: int = 2) -> list[Path]:
    """Remove atomic_path temporaries left by killed processes in ``folder`` and ``depth``
    levels of sub-folders below it; returns what was removed. Nothing else is touched."""
    removed = []
    for level in range(depth + 1):
        for p in Path(folder).glob("/".join(["*"] * level + [".*.part"])):
            if SCRATCH_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink() and _abandoned(p):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


@contextmanager
def task_lock(path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking ``flock`` on ``path`` for the block; yields False (and holds
    nothing) when another live process holds it. Released when the block ends or the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def task_lock_path(folder: Path, name: str, stage: str) -> Path:
    """``folder/.<name>.<stage>.lock``: the lock by which a task (an exposure's stage, a cleaning
    group, a mosaic's mask or stage 3) claims its outputs. Kept on purpose after the task: an flock
    file must not be unlinked while another process may open it."""
    return Path(folder) / f".{name}.{stage}.lock"


@contextmanager
def claimed(folder: Path, name: str, stage: str, what: str) -> Iterator[None]:
    """The task's lock (:func:`task_lock_path`) for the block; a WorkspaceLockedError naming
    ``what`` when another live process holds it."""
    from .errors import WorkspaceLockedError

    with task_lock(task_lock_path(folder, name, stage)) as mine:
        if not mine:
            raise WorkspaceLockedError(f"{what}: another process is running it (its lock is held); wait for it, "
                                       f"then run the same command again")
        yield


def write_text(final: Path, text: str) -> None:
    """Write ``text`` to ``final`` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)


def write_json(final: Path, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    write_text(final, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def move_into_place(src: Path, final: Path) -> None:
    """Rename ``src`` (on the same file system) to ``final``, replacing it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, final)


def scratch_dir(parent: Path, prefix: str) -> Path:
    """A fresh temporary folder inside ``parent`` (same file system, so renames are atomic)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{prefix}.", dir=parent))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
