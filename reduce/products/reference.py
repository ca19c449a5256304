"""A small reference of a run's products to commit (``tests/data/reference/``), and a run checked against it.

:func:`write_reference` turns a packaged DEST (with ``manifest.json``) into ``OUT/reference.json``
and ``OUT/thumbs/``:

- ``reference.json``: ``format``; ``source`` (tool and library versions, CRDS context of the
  run); ``block``; ``inputs`` {name: sha256}; ``products`` {path with ``{DATE}``: {kind,
  content (the per-extension content hashes of :mod:`~reduce.products.hashing`), thumb}};
- a thumbnail per FITS product: the same HDUs and headers (volatile keywords and columns out,
  date stamps as ``{DATE}``, no ASDF), each float image replaced by two planes of
  ``block`` x ``block`` pixel blocks (blocks cut at the far edges): the mean of the finite
  values (float32, the image's unit) and the number of NaN/Inf pixels; each integer image by its
  block sums (int64); tables whole;
- a copy per catalogue (ECSV text, minus the run's ``date`` and ``version``).

:func:`check_reference` compares a run's DEST with it: the file set (on disk and in the run's
manifest, date stamps ignored) and the inputs; with ``exact`` every content hash; else the run's
thumbnails against the reference's with ``FITSDiff`` (``rtol``/``atol`` on block means, NaN
counts and integer block sums exactly, integer images also by content hash, headers and tables
as ``verify`` does) and catalogues column by column. A block mean moves by a pixel's change
over ``block**2``: one 8 x 8 block catches a single pixel changed by more than ~64 (atol +
rtol |mean|). Where a hash differs in ``exact`` mode, the thumbnails say how much and where.
Figures (PNG, PDF) are compared by hash in ``exact`` mode only.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fsutil import atomic_path, write_json
from . import hashing
from .compare import BLOCK_KEYWORD, Row, VerifyResult, compare_hduls, compare_tables
from .verify import check_manifest, compare_file_sets, compare_inputs, files_of, manifest_of

FORMAT = "mirim-reduce-reference/1"
BLOCK = 8
REFERENCE_FILE = "reference.json"


def blocks(data: np.ndarray, block: int) -> np.ndarray:
    """Block reduction over the last two axes, blocks cut at the far edges: for float data two
    planes, the mean of the finite values and the number of NaN/Inf pixels (float32); for
    integer data the sums (int64)."""
    data = np.asarray(data)
    *lead, ny, nx = data.shape
    pad = [(0, 0)] * len(lead) + [(0, -ny % block), (0, -nx % block)]
    shape = (*lead, (ny - 1) // block + 1, block, (nx - 1) // block + 1, block)
    if data.dtype.kind in "iub":
        return np.pad(data.astype(np.int64), pad).reshape(shape).sum(axis=(-3, -1))
    x = np.pad(data.astype(np.float64), pad).reshape(shape)
    real = np.pad(np.ones(data.shape, bool), pad).reshape(shape)
    finite = np.isfinite(x) & real
    n = finite.sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, x, 0.0).sum(axis=(-3, -1)) / n
    n_bad = (real & ~finite).sum(axis=(-3, -1))
    return np.stack([mean, n_bad]).astype(np.float32)


def _header(header, block: int | None = None, table: bool = False):
    """``header`` minus volatile cards (and layout cards a new table or image redefines)."""
    out = header.copy()
    drop = {c.keyword for c in out.cards if hashing._is_volatile(c.keyword)
            or (table and hashing.is_structural(c.keyword)) or (block and c.keyword in ("BZERO", "BSCALE"))}
    for key in drop:
        out.remove(key, remove_all=True)
    for i, card in enumerate(out.cards):
        if isinstance(card.value, str) and hashing.DATE_STAMP_RE.search(card.value):
            out[i] = hashing.undate(card.value)
    if block:
        out[BLOCK_KEYWORD] = (block, "[px] block size of the block means and sums")
    return out


def thumbnail(hdul, block: int = BLOCK):
    """The thumbnail HDUList of a product's HDUList (see the module doc)."""
    from astropy.io import fits

    out = fits.HDUList()
    for i, hdu in enumerate(hdul):
        if hdu.name in hashing.SKIPPED_EXTENSIONS:
            continue
        if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
            cols = [c for c in hdu.columns if not hashing._is_volatile(c.name)]
            new = fits.BinTableHDU.from_columns(fits.ColDefs(cols), header=_header(hdu.header, table=True))
        elif hdu.data is not None and hdu.data.ndim >= 2:
            cls = fits.PrimaryHDU if i == 0 else fits.ImageHDU
            new = cls(blocks(hdu.data, block), header=_header(hdu.header, block))
        else:
            new = (fits.PrimaryHDU if i == 0 else fits.ImageHDU)(hdu.data, header=_header(hdu.header))
        out.append(new)
    return out


def _thumb_name(key: str, suffix: str = "") -> str:
    return "thumbs/" + key.replace("{DATE}", "DATE") + suffix


def write_reference(dest: Path, out: Path, *, block: int = BLOCK) -> dict:
    """Write ``out/reference.json`` and ``out/thumbs/`` from the packaged products in ``dest``."""
    from astropy.io import fits

    dest, out = Path(dest), Path(out)
    man = manifest_of(dest)
    if man is None:
        raise InputError(f"{dest} has no manifest.json: package a run first")
    if out.is_dir() and any(out.iterdir()) and not (out / REFERENCE_FILE).is_file():
        raise InputError(f"{out} is not empty and holds no {REFERENCE_FILE}: not overwriting it")
    if (out / "thumbs").is_dir():  # regenerated whole: no stale thumbnails
        shutil.rmtree(out / "thumbs")
    products = {}
    for key, path in files_of(dest, man).items():
        entry = {"kind": next((e["kind"] for e in man["products"] if dest / e["path"] == path), "other"),
                 "content": hashing.content_hashes(path)}
        if path.suffix == ".fits":
            entry["thumb"] = _thumb_name(key)
            with fits.open(path, memmap=False) as h, atomic_path(out / entry["thumb"]) as tmp:
                thumbnail(h, block).writeto(tmp, overwrite=True)
        elif path.suffix == ".ecsv":
            entry["thumb"] = _thumb_name(key)
            t = hashing.read_ecsv(path)
            for k in hashing.VOLATILE_TABLE_META:
                t.meta.pop(k, None)
            with atomic_path(out / entry["thumb"]) as tmp:
                t.write(tmp, format="ascii.ecsv", overwrite=True)
        products[key] = entry
    ref = {"format": FORMAT,
           "source": {"tool": man.get("tool"), "versions": man.get("versions"),
                      "crds_context": (man.get("crds") or {}).get("context")},
           "block": block,
           "inputs": {e["name"]: e["sha256"] for e in man.get("inputs", [])},
           "volatile_keywords": sorted(hashing.VOLATILE_KEYWORDS),
           "products": products}
    write_json(out / REFERENCE_FILE, ref)
    return ref


def load_reference(path: Path) -> tuple[dict, Path]:
    """(reference.json, its folder) from the file or its folder."""
    path = Path(path)
    path = path / REFERENCE_FILE if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"{path}: no reference (write one with `mirim-reduce write-reference` or `make reference`)")
    ref = json.loads(path.read_text())
    if ref.get("format") != FORMAT:
        raise InputError(f"{path}: not a {FORMAT} file")
    return ref, path.parent


def _compare_fits(key, path, entry, root, block, rtol, atol, exact, res) -> None:
    from astropy.io import fits

    hashes = (hashing.fits_content_hashes(path), entry["content"])
    with fits.open(path, memmap=False) as h, fits.open(root / entry["thumb"], memmap=False) as ref:
        run = thumbnail(h, block)
        compare_hduls(key, run, ref, rtol, atol, exact, res, hashes)


def _compare_other(key, path, entry, exact, res) -> None:
    if not exact:
        res.rows.append(Row(key, "file", "skipped", "figure: present (hash compared with --exact)"))
        return
    res.compared += 1
    same = hashing.content_hashes(path) == entry["content"]
    res.rows.append(Row(key, "file", "ok" if same else "DIFF", "" if same else "content hash differs"))


def check_reference(run_dest: Path, reference: Path, *, rtol: float = 1e-4, atol: float = 1e-4,
                    exact: bool = False) -> VerifyResult:
    """Compare the products in ``run_dest`` with a reference written by :func:`write_reference`."""
    run_dest = Path(run_dest)
    if not run_dest.is_dir():
        raise InputError(f"{run_dest} is not a folder of packaged products")
    ref, root = load_reference(reference)
    man_run = manifest_of(run_dest)
    files_run = files_of(run_dest, man_run)
    res = VerifyResult()
    check_manifest(run_dest, "run", man_run, res)
    compare_inputs(man_run, ref.get("inputs"), res)
    for key in compare_file_sets(files_run, ref["products"], res):
        path, entry = files_run[key], ref["products"][key]
        if not path.is_file():
            continue  # listed in the run's manifest but not on disk: a row of check_manifest
        if path.suffix == ".fits":
            _compare_fits(key, path, entry, root, ref["block"], rtol, atol, exact, res)
        elif path.suffix == ".ecsv":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tb = hashing.read_ecsv(root / entry["thumb"])
            hashes = (hashing.ecsv_content_hashes(path), entry["content"])
            compare_tables(key, hashing.read_ecsv(path), tb, rtol, atol, exact, res, hashes)
        else:
            _compare_other(key, path, entry, exact, res)
    return res
