"""What a pipeline task is and what it gives back (shared by the stage planners, the runner
and the cleaning's tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Task", "Outcome"]


@dataclass
class Task:
    """One pipeline call: ``stage`` on ``inputs`` producing ``outputs`` (final paths)."""

    stage: str
    name: str
    inputs: list[str]
    outputs: list[str]  # the first is the main product; others are moved if produced
    log: str
    steps: dict = field(default_factory=dict)
    final_dir: str | None = None  # stage 3: the whole scratch folder becomes this folder
    identity: str = ""  # reduce.identity: recorded beside the main product when it is done
    made_of: dict = field(default_factory=dict)  # what the identity was computed from


@dataclass
class Outcome:
    stage: str
    name: str
    ok: bool
    seconds: float
    pipeline_seconds: float
    peak_rss_mb: float
    error: str | None = None
