"""Errors of the acquisition part (MAST downloads, CRDS sync): one line each, own exit code.

Exit codes 10-19 belong to this part (2-7 are the reduction's, see ``reduce.errors``).
No message ever contains a MAST token.
"""

from __future__ import annotations

from ..errors import DiskFullError, ReduceError  # noqa: F401 (DiskFullError: re-exported)

LOCAL_HINT = "to reduce files you already have, use `mirim-reduce run DIR` on a folder of *_uncal.fits"


class MastUnreachableError(ReduceError):
    """No network, DNS failure, MAST down or answering with server errors."""

    exit_code = 10


class MastTokenError(ReduceError):
    """The MAST token was refused (invalid or expired) or its file cannot be read."""

    exit_code = 11


class ProprietaryDataError(ReduceError):
    """Exclusive-access data and no token, or a token without rights to it."""

    exit_code = 12


class UnknownProgramError(ReduceError):
    """Not a program id, or MAST has no JWST observations for it."""

    exit_code = 13


class NoMiriImagingError(ReduceError):
    """The program exists but has no MIRI imager science exposures."""

    exit_code = 14


class VerificationError(ReduceError):
    """A file kept failing size or checksum verification after every retry."""

    exit_code = 16


class DownloadError(ReduceError):
    """A download kept failing (HTTP or connection errors) after every retry."""

    exit_code = 17


class CrdsSyncError(ReduceError):
    """``crds sync`` failed: CRDS server unreachable, read-only cache, or files that fail their check."""

    exit_code = 18
