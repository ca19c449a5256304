"""The ``mirim-reduce`` command line: parses arguments and calls the package. Nothing else.

One module per command group, each registering its commands on :data:`.app.app`:
:mod:`.reduction` (run, stage1-3, clean, info), :mod:`.acquire` (fetch, crds sync/check),
:mod:`.products` (package, verify, write-reference), :mod:`.slurm` (slurm submit|status|resubmit) and :mod:`.demo` (demo, simulate,
crds build-demo-context, evaluate: the only commands that use the demo package).
:mod:`.main` is the console-script entry.
"""

from __future__ import annotations

from . import reduction, demo, acquire, products, slurm  # noqa: F401,I001  (register their commands, in help order)
from .app import app, crds_app
from .demo import ensure_demo_context
from .main import main

__all__ = ["app", "crds_app", "main", "ensure_demo_context"]
