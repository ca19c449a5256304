"""JWST program ids: ``3224``, ``03224``, ``jw03224`` (any case) all mean program 03224."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UnknownProgramError

_PATTERN = re.compile(r"^(?:jw)?0*(\d{1,5})$", re.IGNORECASE)


def looks_like_program(text: str) -> bool:
    """True if ``text`` has the form of a JWST program id (digits, or ``jw`` and digits)."""
    m = _PATTERN.match(str(text).strip())
    return bool(m) and int(m.group(1)) > 0


def parse_program(text: str) -> str:
    """The program id as MAST writes it in file names: five digits, zero padded (``'03224'``)."""
    m = _PATTERN.match(str(text).strip())
    if not m or int(m.group(1)) == 0:
        raise UnknownProgramError(f"{text!r} is not a JWST program id (examples: 3224, 03224, jw03224)")
    return m.group(1).zfill(5)


def is_program_argument(arg: Path | str) -> bool:
    """``run``'s INPUT names a program (and not an existing folder of that name)."""
    return looks_like_program(str(arg)) and not Path(arg).exists()
