"""The fault cases, in the order the suite runs them. Each module registers its cases with
:func:`case`; a case is ``f(suite, record)``: set up, fault, check, fix, rerun, check."""

from __future__ import annotations

from typing import Callable

CASES: list[tuple[str, str, Callable]] = []


def case(name: str, fault: str):
    """Register ``f(suite, case_record)`` as case ``name`` (``fault``: what is done)."""

    def register(f):
        CASES.append((name, fault, f))
        return f

    return register


from . import kills, disks, references, inputs, config  # noqa: E402,F401
