"""``verify``: compare a run's packaged products with reference products.

Checks, for the products of two DEST folders (files matched by their path relative to DEST,
with each run's date stamp replaced by ``{DATE}``; ``manifest.json`` and ``report.html``
are not compared, they record times and paths):

- the file sets: every file on disk and every file a side's ``manifest.json`` lists; a file on
  one side only is a difference, and so is, on either side, a file on disk its manifest does not
  list, a listed file missing from disk, or a listed file whose sha256 changed since;
- FITS files with astropy's ``FITSDiff`` (:mod:`~reduce.products.compare`): data arrays with
  ``|run - ref| <= atol + rtol |ref|`` (defaults 1e-4 and 1e-4, as jwst's MIRI imaging
  regression tests use), NaN where the reference has NaN; integer arrays (DQ, CON, segmentation
  maps) exactly; table columns the same way (the volatile columns of
  :data:`~reduce.products.hashing.VOLATILE_KEYWORDS` left out); headers minus the volatile
  keywords, numbers with the same tolerances; the ASDF extension is not compared (see
  :mod:`reduce.products.hashing`);
- ECSV catalogues: columns as above, metadata minus ``date`` and ``version``;
- PNG and PDF figures: only present, unless ``exact``.

With ``exact=True`` every part must have the same content hash (``hashing.content_hashes``:
bit identity of the science, volatile metadata ignored) and figures the same bytes; where a
hash differs, ``FITSDiff`` with zero tolerances reports the differences.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from . import hashing
from .compare import Row, VerifyResult, compare_fits, compare_tables
from .manifest import LOGS, UNLISTED

__all__ = ["Row", "VerifyResult", "verify", "RTOL", "ATOL"]

RTOL = 1e-4
ATOL = 1e-4


def manifest_of(dest: Path) -> dict | None:
    p = dest / "manifest.json"
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except ValueError:
            return None
    return None


def _unlisted(rel: str) -> bool:
    """True for DEST's files that are not products: the manifest, the report, hidden files and
    the copied pipeline logs (``save_outputs``)."""
    parts = rel.split("/")
    return rel in UNLISTED or parts[0] == LOGS or any(part.startswith(".") for part in parts)


def product_key(rel: str, date: str | None) -> str:
    """A product's path relative to DEST with its date stamp as ``{DATE}``."""
    return rel.replace(date, "{DATE}") if date else hashing.DATE_STAMP_RE.sub("{DATE}", rel)


def files_of(dest: Path, manifest: dict | None) -> dict[str, Path]:
    """Every product of ``dest``, keyed by :func:`product_key`: the files on disk (but
    ``manifest.json``, the report page and hidden files) and those its manifest lists."""
    rels = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    rels |= {e["path"] for e in (manifest or {}).get("products", [])}
    rels = {r for r in rels if not _unlisted(r)}
    date = (manifest or {}).get("date")
    return {product_key(r, date): dest / r for r in sorted(rels)}


def check_manifest(dest: Path, label: str, manifest: dict | None, res: VerifyResult) -> None:
    """Rows for ``dest`` against its own manifest: files listed but missing, changed since, or on
    disk but not listed (each a difference)."""
    if manifest is None:
        return
    listed = {e["path"]: e for e in manifest.get("products", [])}
    res.compared += 1
    missing = [p for p in listed if not (dest / p).is_file()]
    changed = [p for p, e in listed.items() if p not in missing and hashing.sha256_file(dest / p) != e["sha256"]]
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    unlisted = sorted(p for p in on_disk - set(listed) if not _unlisted(p))
    part, date = f"{label} manifest", manifest.get("date")
    for p in missing:
        res.rows.append(Row(product_key(p, date), part, "MISSING", f"listed in the {label}'s manifest, not on disk"))
    for p in changed:
        res.rows.append(Row(product_key(p, date), part, "DIFF", "sha256 differs from the manifest's (changed since packaging)"))
    for p in unlisted:
        res.rows.append(Row(product_key(p, date), part, "EXTRA", f"on disk, not in the {label}'s manifest"))
    if not (missing or changed or unlisted):
        res.rows.append(Row(f"{label}/manifest.json", "file set", "ok", f"{len(listed)} products, as listed"))


def compare_inputs(man_run: dict | None, inputs_ref: dict | None, res: VerifyResult) -> None:
    """Row for the run's input files (name -> sha256) against the reference's."""
    if not man_run or inputs_ref is None:
        return
    ia = {e["name"]: e["sha256"] for e in man_run.get("inputs", [])}
    res.compared += 1
    if ia != inputs_ref:
        n = len(set(ia) ^ set(inputs_ref)) + sum(ia[k] != inputs_ref[k] for k in set(ia) & set(inputs_ref))
        res.rows.append(Row("inputs", "sha256", "DIFF", f"{n} input file(s) differ between the runs"))
    else:
        res.rows.append(Row("inputs", "sha256", "ok", f"{len(ia)} identical inputs"))


def compare_file_sets(files_run: dict, files_ref: dict, res: VerifyResult) -> list[str]:
    """Rows for products on one side only; the keys present on both sides."""
    res.compared += 1
    for k in sorted(set(files_ref) - set(files_run)):
        res.rows.append(Row(k, "file", "MISSING", "in the reference, not in the run"))
    for k in sorted(set(files_run) - set(files_ref)):
        res.rows.append(Row(k, "file", "EXTRA", "in the run, not in the reference"))
    return sorted(set(files_run) & set(files_ref))


def verify(run_dest: Path, ref_dest: Path, *, rtol: float = RTOL, atol: float = ATOL, exact: bool = False) -> VerifyResult:
    """Compare the products in ``run_dest`` with those in ``ref_dest`` (see the module doc)."""
    run_dest, ref_dest = Path(run_dest), Path(ref_dest)
    for d in (run_dest, ref_dest):
        if not d.is_dir():
            raise InputError(f"{d} is not a folder of packaged products")
    man_run, man_ref = manifest_of(run_dest), manifest_of(ref_dest)
    files_run, files_ref = files_of(run_dest, man_run), files_of(ref_dest, man_ref)
    if not files_ref:
        raise InputError(f"{ref_dest} holds no products")
    res = VerifyResult()
    check_manifest(run_dest, "run", man_run, res)
    check_manifest(ref_dest, "reference", man_ref, res)
    if man_ref:
        compare_inputs(man_run, {e["name"]: e["sha256"] for e in man_ref.get("inputs", [])}, res)
    for k in compare_file_sets(files_run, files_ref, res):
        a, b = files_run[k], files_ref[k]
        if not (a.is_file() and b.is_file()):
            continue  # listed in a manifest but not on disk: a row of check_manifest
        if k.endswith(".fits"):
            compare_fits(k, a, b, rtol, atol, exact, res)
        elif k.endswith(".ecsv"):
            hashes = (hashing.ecsv_content_hashes(a), hashing.ecsv_content_hashes(b)) if exact else None
            compare_tables(k, hashing.read_ecsv(a), hashing.read_ecsv(b), rtol, atol, exact, res, hashes)
        elif exact or not k.endswith((".png", ".pdf")):
            res.compared += 1
            same = hashing.sha256_file(a) == hashing.sha256_file(b)
            res.rows.append(Row(k, "file", "ok" if same else "DIFF", "" if same else "sha256 differs"))
        else:
            res.rows.append(Row(k, "file", "skipped", "figure: present (bytes compared with --exact)"))
    return res
