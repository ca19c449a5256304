"""Test session set-up.

CRDS reads its server URL and mode once, at import: every test shares one synthetic CRDS
cache, built once per session, and the environment is set here before anything imports
crds or jwst. Override the location with MIRIM_TEST_CRDS_PATH to reuse a built cache.
"""

import os
import tempfile
from pathlib import Path

_CRDS_PATH = Path(os.environ.get("MIRIM_TEST_CRDS_PATH")
                  or Path(tempfile.gettempdir()) / f"mirim-test-crds-{os.getuid()}")
os.environ["CRDS_PATH"] = str(_CRDS_PATH)
os.environ["CRDS_SERVER_URL"] = "https://jwst-serverless-mode.stsci.edu"
os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
os.environ.pop("CRDS_CONTEXT", None)  # set by the crds_cache fixture once built

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def crds_cache() -> Path:
    """A complete synthetic CRDS cache (built on first use, reused across sessions)."""
    from reduce.crds_context import build_demo_context, DEMO_CONTEXT

    if not (_CRDS_PATH / "mappings" / "jwst" / DEMO_CONTEXT).exists():
        build_demo_context(_CRDS_PATH)
    os.environ["CRDS_CONTEXT"] = DEMO_CONTEXT
    return _CRDS_PATH
