"""The MAST API token: from ``$MAST_API_TOKEN`` or a file, never from the command line.

The value is held by :class:`Token`, whose ``str``/``repr`` are redacted, so that it cannot end
up in a log line, an exception message or a manifest by accident.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import MastTokenError

ENV_VAR = "MAST_API_TOKEN"


class Token:
    """A secret string. ``reveal()`` is the only way to read it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str):
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Token(<redacted>, source={self.source})"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into worker arguments or caches
        raise TypeError("a MAST token is not picklable")


def load_token(token_file: Path | None = None) -> Token | None:
    """The token from ``token_file`` if given, else ``$MAST_API_TOKEN``, else None (public data)."""
    if token_file is not None:
        path = Path(token_file)
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise MastTokenError(f"cannot read the MAST token file {path}: {exc.strerror}") from None
        if not value:
            raise MastTokenError(f"the MAST token file {path} is empty")
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            import logging
            logging.getLogger("mirim_reduce.acquire").warning(
                "the MAST token file %s is readable by other users (chmod 600 it)", path)
        return Token(value, f"file {path}")
    value = os.environ.get(ENV_VAR, "").strip()
    return Token(value, f"${ENV_VAR}") if value else None
