"""Errors a user can act on. Each carries a one-line message and a process exit code.

The CLI prints ``error: <message>`` and exits with ``exit_code`` (no traceback unless --debug).
"""

from __future__ import annotations

import errno


class ReduceError(Exception):
    """Base class: a problem with the input or the environment, not a bug."""

    exit_code = 1


class ConfigError(ReduceError):
    """The configuration has an unknown key, a wrong type or a bad value."""

    exit_code = 2


class InputError(ReduceError):
    """The input folder or files cannot be reduced."""

    exit_code = 3


class CrdsCacheError(ReduceError):
    """The CRDS cache is missing, incomplete or does not cover the data."""

    exit_code = 4


class WorkspaceLockedError(ReduceError):
    """Another run holds the workspace."""

    exit_code = 5


class StageError(ReduceError):
    """A pipeline stage failed for some exposures (details in the per-exposure logs)."""

    exit_code = 6


class DiskFullError(ReduceError):
    """No space left for an output (a product, a download)."""

    exit_code = 15


class WorkspaceError(ReduceError):
    """The workspace (or an output folder) cannot be used: not a folder, read-only, no permission."""

    exit_code = 7


#: How a full disk reads when the errno is lost: astropy's ``_free_space_check`` re-raises
#: ``OSError("Not enough space on disk: ...")`` without it, and an OSError sent back from a
#: worker process keeps only its text.
DISK_FULL_TEXT = ("No space left on device", "Not enough space on disk", "Disk quota exceeded")


def _disk_full_text(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and (exc.errno in (errno.ENOSPC, errno.EDQUOT) or
                                         any(t in str(exc) for t in DISK_FULL_TEXT)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def from_os_error(exc: BaseException) -> ReduceError | None:
    """The documented error for an OSError the environment causes (disk full: 15; read-only file
    system or no permission: 7), else None."""
    if not isinstance(exc, OSError):
        return None
    what = exc.filename or "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or _disk_full_text(exc):
        return DiskFullError(f"disk full writing {what}: free some space (or use another --workdir), then run "
                             f"the same command again (finished work is kept)")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WorkspaceError(f"{exc.strerror or 'not permitted'}: {what}: make the workspace and the products "
                              f"folder writable (and the inputs readable), or use another --workdir")
    return None


def check_names(wanted, known, what: str, plural: str) -> None:
    """InputError naming each of ``wanted`` that is not in ``known`` (a part of a workspace asked
    for by name: ``what`` "cleaning group", ``plural`` "groups")."""
    unknown = sorted(set(wanted or ()) - set(known))
    if unknown:
        raise InputError(f"no {what} {', '.join(unknown)} in this workspace ({plural}: {', '.join(sorted(known))})")


def check_folder(path, what: str = "--workdir") -> None:
    """WorkspaceError when ``path`` exists but is not a folder (it is created when missing)."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{what} {path} is a file, not a folder: give a folder (created if missing)")
