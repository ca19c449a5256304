"""Errors a user can act on. Each carries a one-line message and a process exit code.

The CLI prints ``error: <message>`` and exits with ``exit_code`` (no traceback unless --debug).
"""

from __future__ import annotations


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
