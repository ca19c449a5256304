"""Task identities: what made a product, so that a rerun redoes exactly what changed.

A task's identity is the SHA-256 of everything its product depends on: the content hash of
its input file (stage 1) or the identities of its upstream products, its effective
parameters, and the versions that matter (mirim-reduce, jwst, the CRDS context, and the digest of
the sources of the part of mirim-reduce that made it: a rerun after a code change redoes it). It is
written beside the product, after the product (``<product>.task.json``), so a product
without a matching identity file is never taken as done. A rerun compares: equal identity,
nothing to do; anything else (changed config, changed input, new versions, a product from
a run that stopped between the two writes), the task and everything downstream are redone.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from .fsutil import sha256_file, write_json

__all__ = ["digest", "package_versions", "versions", "code_digest", "sidecar", "read", "write", "is_current",
           "file_hash"]


def digest(what: Any) -> str:
    """SHA-256 (hex) of a JSON-able description (keys sorted)."""
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def package_versions(packages, missing: str = "not installed") -> dict[str, str]:
    """{package: installed version, or ``missing``} (importlib.metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = missing
    return out


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    from . import __version__

    return {"mirim-reduce": __version__,
            **package_versions(("jwst", "stcal", "stdatamodels", "photutils", "numpy", "astropy", "scipy"))}


def versions(crds_context: str, *code: str) -> dict[str, str]:
    """The versions a product depends on (packages and the CRDS context) and, with ``code``
    (parts of this package, e.g. ``"clean"``), the digest of their sources (:func:`code_digest`):
    a product made by other code than the installed one is not current, whatever the version
    number says."""
    out = {**_package_versions(), "crds_context": crds_context}
    if code:
        out["mirim-reduce code"] = code_digest(*code)
    return out


@functools.lru_cache(maxsize=None)
def code_digest(*parts: str) -> str:
    """SHA-256 (hex) of this package's Python sources under ``parts`` (sub-packages or module
    files of ``reduce``, e.g. ``"clean"``, ``"stages"``; none: the whole package): the relative
    path and the bytes of every ``*.py`` file, in path order."""
    root = Path(__file__).resolve().parent
    files = set()
    for part in parts or ("",):
        where = root / part
        found = {where.with_suffix(".py")} if part and where.with_suffix(".py").is_file() else set(where.rglob("*.py"))
        if not found:
            raise ValueError(f"no Python sources for part {part!r} of {root}")
        files |= found
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def sidecar(product: Path) -> Path:
    """The identity file of ``product``."""
    product = Path(product)
    return product.with_name(product.name + ".task.json")


def read(product: Path) -> str | None:
    """The identity recorded for ``product``, or None (no product, or no identity file)."""
    if not Path(product).exists():
        return None
    try:
        return json.loads(sidecar(product).read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(product: Path, identity: str, what: dict) -> None:
    """Record ``identity`` (and, for a reader, what it was made of) beside ``product``."""
    write_json(sidecar(product), {"identity": identity, "made_of": what})


def is_current(product: Path, identity: str) -> bool:
    """True when ``product`` exists and was made by a task of this identity."""
    return read(product) == identity


@functools.lru_cache(maxsize=4096)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(Path(path))


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (computed once per process while it is unchanged)."""
    st = Path(path).stat()
    return _file_hash(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
