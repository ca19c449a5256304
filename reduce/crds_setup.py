"""CRDS, configured before jwst or crds is imported, and checked before any stage runs.

CRDS reads its server URL and mode once, when first imported, so :func:`configure` must run
first. The server URL contains ``serverless``: CRDS never touches the network and reads the
cache's ``config/jwst/server_config``. :func:`reduce.crds_tools.check_exposures` computes the best
references of every exposure offline and fails, naming the reference type and the exposure,
when the context does not cover an exposure or the cache lacks a file.

CRDS parameter references (``pars-*``) are honoured as stpipe honours them: nothing here sets
``STPIPE_DISABLE_CRDS_STEPPARS`` (a user who sets it gets jwst's behaviour: no CRDS step
parameters). A context that maps them N/A (the demo one) gives no parameters and no error;
:mod:`reduce.stages.parameters` records which ones a context selects and their values.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import CrdsCacheError

SERVERLESS_URL = "https://jwst-serverless-mode.stsci.edu"
#: A JWST pipeline context: what CRDS_CONTEXT and --context must name.
PIPELINE_CONTEXT = re.compile(r"jwst(_\d+)?\.pmap")


def default_cache_path() -> Path:
    """``$CRDS_PATH`` if set, else ``$XDG_CACHE_HOME/mirim-reduce/crds`` (``~/.cache/...``)."""
    if os.environ.get("CRDS_PATH"):
        return Path(os.environ["CRDS_PATH"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mirim-reduce" / "crds"


@dataclass(frozen=True)
class CrdsSettings:
    path: Path
    context: str
    readonly: bool


def _operational_context(path: Path) -> str:
    import ast

    cfg_file = path / "config" / "jwst" / "server_config"
    try:
        return ast.literal_eval(cfg_file.read_text())["operational_context"]
    except (OSError, ValueError, SyntaxError, KeyError) as exc:
        raise CrdsCacheError(f"CRDS cache at {path} has no readable config/jwst/server_config ({exc}); "
                             f"build one with `mirim-reduce crds build-demo-context {path}`") from None


def offline_environment() -> None:
    """Serverless CRDS: call before crds or jwst is imported.

    CRDS fixes its server URL and mode at import; the cache path and context are read later.
    """
    if "serverless" not in os.environ.get("CRDS_SERVER_URL", ""):
        if "crds" in sys.modules:
            raise RuntimeError("crds was imported before reduce.crds_setup.offline_environment()")
        os.environ["CRDS_SERVER_URL"] = SERVERLESS_URL


def configure(path: Path | None = None, context: str | None = None) -> CrdsSettings:
    """Point CRDS at a local cache, offline.

    ``context`` defaults to ``$CRDS_CONTEXT``, then the cache's operational context.
    """
    offline_environment()
    path = (Path(path) if path else default_cache_path()).absolute()  # recorded in crds.json
    if not path.is_dir():
        raise CrdsCacheError(f"CRDS cache {path} does not exist: build the demo one with "
                             f"`mirim-reduce crds build-demo-context {path}` or set CRDS_PATH")
    source = "--context" if context else "CRDS_CONTEXT" if os.environ.get("CRDS_CONTEXT") else None
    context = context or os.environ.get("CRDS_CONTEXT") or _operational_context(path)
    if not PIPELINE_CONTEXT.fullmatch(context):
        raise CrdsCacheError(f"{source or f'the operational context of {path}'} is {context!r}, not a pipeline "
                             f"context: a jwst_NNNN.pmap is needed (an .imap or .rmap is only one instrument's "
                             f"or one reference type's part of one)")
    if not (path / "mappings" / "jwst" / context).is_file():
        raise CrdsCacheError(f"CRDS context {context} is not in the cache {path} (no mappings/jwst/{context}); "
                             f"fill it with `mirim-reduce crds sync --context {context}` where the CRDS server is reachable")
    readonly = not os.access(path, os.W_OK) or os.environ.get("CRDS_READONLY_CACHE") == "1"
    os.environ["CRDS_PATH"] = str(path)
    os.environ["CRDS_CONTEXT"] = context
    if readonly:
        os.environ["CRDS_READONLY_CACHE"] = "1"
    return CrdsSettings(path=path, context=context, readonly=readonly)
