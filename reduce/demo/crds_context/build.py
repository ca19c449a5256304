"""Build the synthetic CRDS cache: server_config, mappings and MIRI references.

Layout (what crds needs offline, see docs/offline-crds.md)::

    config/jwst/server_config            Python dict literal (observatory, contexts, ...)
    config/jwst/ref_cache_subdir_mode    "instrument"
    mappings/jwst/jwst_9000.pmap, jwst_miri_9000.imap, jwst_miri_<type>_9000.rmap
    references/jwst/miri/jwst_miri_<type>_9NNN.{fits,asdf}
    references/jwst/{fgs,nircam,niriss,nirspec,system}/   empty (read-only caches)
    mirim-demo-context.json              what was built, with which versions, file sizes

The build goes to a temporary directory next to ``crds_path`` and is renamed into place,
so a cache is either complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ... import instrument as inst
from . import mappings, references as refs
from ...reftypes import parameter_reference_types, required_reference_types

DEMO_CONTEXT = mappings.pmap_name()
MARKER = "mirim-demo-context.json"
BUILD_VERSION = 1  # bump when the content changes
OTHER_INSTRUMENT_DIRS = ("fgs", "nircam", "niriss", "nirspec", "system")
PROVIDED_TYPES = tuple(mappings.PARKEYS)


def _server_config(context: str) -> str:
    cfg = {
        "observatory": "jwst",
        "operational_context": context,
        "latest_context": context,
        "edit_context": context,
        "bad_files_list": [],
        "bad_files": "",
        "last_synced": "2024-05-22 00:00:00",
        "force_remote_mode": False,
        "checked_server_version": "synthetic",
        "mirim_reduce_demo": True,
    }
    return repr(cfg) + "\n"


class _Refs:
    """Writes references with sequential CRDS names (jwst_miri_<type>_9001...) and records rmap rows."""

    def __init__(self, refdir: Path, progress: Callable[[str], None]):
        self.refdir, self.progress = refdir, progress
        self.rows: dict[str, list] = {t: [] for t in PROVIDED_TYPES}
        self.counter: dict[str, int] = {}

    def add(self, reftype: str, match: tuple[str, ...], model, ext: str = "fits", raw_hdus=()) -> str:
        n = self.counter[reftype] = self.counter.get(reftype, mappings.SERIAL) + 1
        name = f"jwst_miri_{reftype}_{n:04d}.{ext}"
        self.progress(f"reference {name}")
        refs.save_reference(model, self.refdir / name, raw_hdus=raw_hdus)
        self.rows[reftype].append((match, name))
        return name


def _write_references(refdir: Path, progress: Callable[[str], None]) -> dict[str, list]:
    det = inst.DETECTOR
    subs = "|".join(inst.SUBARRAYS)
    filters = "|".join(inst.FILTERS)
    r = _Refs(refdir, progress)
    # Detector1
    r.add("mask", (det, "N/A", "N/A", "N/A", "N/A"), refs.mask_model())
    r.add("saturation", (det, "N/A"), refs.saturation_model())
    r.add("ipc", (det, "N/A"), refs.ipc_model())
    r.add("linearity", (det, "N/A"), refs.linearity_model())
    r.add("rscd", (det,), refs.rscd_model())
    for sub in inst.SUBARRAYS:
        for rp in inst.READ_PATTERNS:
            r.add("dark", (det, "N/A", rp, sub), refs.dark_model(sub, rp))
            r.add("reset", (det, sub, rp), refs.reset_model(sub, rp))
    r.add("gain", (det, "N/A", "N/A", subs), refs.gain_model())
    r.add("readnoise", (det, "N/A"), refs.readnoise_model())
    # Image2
    r.add("distortion", (det, "N/A", "N/A"), refs.distortion_reference(), ext="asdf")
    r.add("filteroffset", (det, "MIR_IMAGE", "N/A"), refs.filteroffset_model(), ext="asdf")
    for f in inst.FILTERS:  # pixel-to-pixel noise does not compress: plain SCI HDU
        r.add("flat", (det, f, "N/A", "N/A", subs), refs.flat_model(f), raw_hdus=("SCI",))
    r.add("photom", (det, filters), refs.photom_model())
    r.add("area", (det, "N/A"), refs.area_model(), raw_hdus=("SCI",))
    # Image3
    r.add("apcorr", ("MIR_IMAGE", "N/A"), refs.apcorr_model())
    r.add("abvegaoffset", (), refs.abvegaoffset_model(), ext="asdf")
    return r.rows


def _write_mappings(mapdir: Path, rows: dict[str, list]) -> str:
    selections = {}
    for reftype, reftype_rows in rows.items():
        ext = "." + reftype_rows[0][1].rsplit(".", 1)[1]
        selections[reftype] = mappings.write_rmap(mapdir, reftype, reftype_rows, file_ext=ext)
    needed = set().union(*required_reference_types().values()) | parameter_reference_types()
    for reftype in needed - set(selections):
        selections[reftype] = "N/A"
    imap = mappings.write_imap(mapdir, selections)
    return mappings.write_pmap(mapdir, {"MIRI": imap})


def _versions() -> dict[str, str]:
    from ...identity import package_versions

    return package_versions(("jwst", "crds", "stdatamodels", "stcal", "pysiaf", "astropy", "asdf", "numpy"),
                            missing="unknown")


def _populate(root: Path, progress: Callable[[str], None]) -> str:
    cfgdir = root / "config" / "jwst"
    mapdir = root / "mappings" / "jwst"
    refdir = root / "references" / "jwst" / "miri"
    for d in (cfgdir, mapdir, refdir, *(root / "references" / "jwst" / i for i in OTHER_INSTRUMENT_DIRS)):
        d.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rows = _write_references(refdir, progress)
    progress("mappings")
    pmap = _write_mappings(mapdir, rows)
    (cfgdir / "server_config").write_text(_server_config(pmap))
    (cfgdir / "ref_cache_subdir_mode").write_text("instrument\n")
    files = {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}
    marker = {"context": pmap, "build_version": BUILD_VERSION, "versions": _versions(),
              "build_seconds": round(time.monotonic() - t0, 1), "total_bytes": sum(files.values()), "files": files}
    (root / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return pmap


def _is_replaceable(path: Path) -> bool:
    """An earlier demo cache, or a directory holding no files (e.g. created by crds itself)."""
    if (path / MARKER).is_file():
        return True
    return not any(p.is_file() for p in path.rglob("*"))


def build_demo_context(crds_path: Path, *, overwrite: bool = False,
                       progress: Callable[[str], None] | None = None) -> str:
    """Build the synthetic MIRI imaging CRDS cache at ``crds_path``; return the pmap name.

    Idempotent: an existing demo cache with this context is kept unless ``overwrite``.
    Atomic: built in a temporary directory next to ``crds_path`` and renamed into place.
    Refuses to replace a directory that holds files but is not a demo cache (a real cache).
    """
    crds_path = Path(crds_path).absolute()
    progress = progress or (lambda msg: None)
    marker = crds_path / MARKER
    complete = marker.is_file() and (crds_path / "mappings" / "jwst" / DEMO_CONTEXT).is_file()
    if complete and not overwrite:
        return json.loads(marker.read_text())["context"]
    if crds_path.exists() and not _is_replaceable(crds_path):
        raise FileExistsError(f"{crds_path} exists and is not a mirim-reduce demo CRDS cache; refusing to replace it")
    crds_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{crds_path.name}.build-", dir=crds_path.parent))
    try:
        pmap = _populate(tmp, progress)
        os.chmod(tmp, 0o755)
        if crds_path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{crds_path.name}.old-", dir=crds_path.parent))
            os.rename(crds_path, old / "cache")
            try:
                os.rename(tmp, crds_path)
            except OSError:
                os.rename(old / "cache", crds_path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, crds_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"built {pmap} in {crds_path}")
    return pmap
