"""``mirim-reduce`` commands of the acquire part, registered on the main typer app."""

from __future__ import annotations

from .cli import app, crds_app  # noqa: F401  (commands register on these)
