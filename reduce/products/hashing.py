"""File and content hashes that two runs can be compared with.

``sha256_file`` is the hash of the bytes. ``content_hashes`` is a hash per part of a
product that ignores what changes between two otherwise identical runs:

FITS (``.fits``), one entry per HDU, keyed ``"<EXTNAME>,<EXTVER>"`` (``PRIMARY,1``...):
  ``data``    sha256 over (extension name, dtype, shape, data bytes in big-endian order) for an
              image HDU; for a table HDU the same over each column (name, format, bytes), leaving
              out the columns named in :data:`VOLATILE_KEYWORDS` (jwst's HDRTAB holds the
              members' DATE, CAL_VER ... as columns);
  ``header``  sha256 over the header cards (keyword, value) minus :data:`VOLATILE_KEYWORDS` and
              minus the cards that only describe the data layout (:data:`STRUCTURAL_KEYWORDS`);
              a product date stamp in a text value (``25Nov2026`` in the ``MOSAIC`` name of a TA
              box) counts as ``{DATE}``, as it does in product names.
  The ``ASDF`` extension of jwst products is not hashed: it is a serialisation of the same
  metadata as the FITS headers (hashed above) plus the gwcs object, and it records the
  processing date and software history, which differ from run to run. The WCS of a mosaic
  is covered by the WCS keywords of its SCI header.
ECSV catalogues (``.ecsv``): ``data`` over the columns (name, dtype, bytes) and ``meta`` over
  the table metadata minus ``date`` and ``version`` (what photutils writes about the run).
Everything else (PNG, PDF, JSON, HTML): ``file``, the sha256 of the bytes (our own PNGs and
  PDFs are written without timestamps, so identical inputs give identical bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from ..fsutil import sha256_file  # noqa: F401  (re-exported for products)

#: Header keywords (and HDRTAB columns) that change between two runs on the same data:
#: when and with which software build the file was written, and checksums of the whole HDU.
#: Observation dates (DATE-OBS, DATE-BEG, EXPSTART ...) are science metadata and stay.
VOLATILE_KEYWORDS = frozenset({
    "DATE",       # UTC date the file was written
    "CAL_VER",    # jwst version
    "CAL_VCS",    # jwst repository version
    "CRDS_VER",   # version of the CRDS client
    "IRAF-TLM",   # time of last modification (IRAF convention)
    "CHECKSUM",   # HDU checksum (covers DATE)
    "DATASUM",
    "MRED_VER",   # mirim-reduce version stamp on our own cutouts
})
#: Cards describing the layout of an HDU, compared through the data hash instead.
STRUCTURAL_KEYWORDS = frozenset({"BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "EXTEND", "SIMPLE", "XTENSION",
                                 "TFIELDS", "THEAP", "BZERO", "BSCALE"})
#: ECSV table metadata that records the run rather than the result.
VOLATILE_TABLE_META = frozenset({"date", "version"})

#: Prefixes of the per-axis and per-column layout cards (NAXIS1, TFORM3, ...).
STRUCTURAL_PREFIXES = ("NAXIS", "TFORM", "TTYPE", "TDIM", "TUNIT", "TNULL", "TSCAL", "TZERO")
#: The date stamp of packaged product names (``%d%b%Y``: 25Nov2026).
DATE_STAMP_RE = re.compile(r"\d{2}(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\d{4}")

SKIPPED_EXTENSIONS = {"ASDF": "serialised datamodel tree: same metadata as the FITS headers plus "
                              "processing dates and software history; not hashed"}

def _update_array(h, name: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    dt = arr.dtype.newbyteorder(">") if arr.dtype.byteorder not in ("|", ">") else arr.dtype
    arr = arr.astype(dt, copy=False)
    h.update(f"{name}|{dt.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())


def _is_volatile(key: str) -> bool:
    return key.upper() in VOLATILE_KEYWORDS


def is_structural(key: str) -> bool:
    """A card that only describes the layout of the data (compared through the data)."""
    return key in STRUCTURAL_KEYWORDS or key.startswith(STRUCTURAL_PREFIXES)


def undate(value):
    """``value`` with product date stamps replaced by ``{DATE}`` (text only)."""
    return DATE_STAMP_RE.sub("{DATE}", value) if isinstance(value, str) else value


def fitsdiff_ignore_keywords() -> list[str]:
    """Header keywords (patterns) FITSDiff leaves out: volatile and layout cards, as the hashes do."""
    return sorted(VOLATILE_KEYWORDS | STRUCTURAL_KEYWORDS) + [p + "*" for p in STRUCTURAL_PREFIXES]


def header_items(header, *, keep_structure: bool = False) -> list[tuple[str, str]]:
    """(keyword, value) of a header without volatile (and structural) cards, in order.

    Values are compared as text after FITS formatting, date stamps as ``{DATE}``; commentary
    cards (HISTORY, COMMENT, blank) keep their text.
    """
    out = []
    for card in header.cards:
        key = card.keyword
        if _is_volatile(key) or (not keep_structure and is_structural(key)):
            continue
        if not key and not str(card.value).strip():
            continue  # blank separator cards
        out.append((key, repr(undate(card.value))))
    return out


def hdu_key(hdu, index: int) -> str:
    name = hdu.name or ("PRIMARY" if index == 0 else f"HDU{index}")
    return f"{name},{hdu.ver if hdu.ver else 1}"


def table_columns(hdu) -> dict[str, np.ndarray]:
    """The non-volatile columns of a FITS table HDU."""
    data = hdu.data
    if data is None:
        return {}
    return {c.name: np.asarray(data[c.name]) for c in hdu.columns if not _is_volatile(c.name)}


def fits_content_hashes(path: Path) -> dict[str, dict[str, str]]:
    from astropy.io import fits

    out: dict[str, dict[str, str]] = {}
    with fits.open(path, memmap=False) as hdul:
        for i, hdu in enumerate(hdul):
            key = hdu_key(hdu, i)
            if hdu.name in SKIPPED_EXTENSIONS:
                out[key] = {"skipped": SKIPPED_EXTENSIONS[hdu.name]}
                continue
            hh = hashlib.sha256()
            for k, v in header_items(hdu.header):
                hh.update(f"{k}={v}\n".encode())
            hd = hashlib.sha256()
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                for name, col in table_columns(hdu).items():
                    _update_array(hd, name, col)
            elif hdu.data is not None:
                _update_array(hd, hdu.name, np.asarray(hdu.data))
            out[key] = {"data": hd.hexdigest(), "header": hh.hexdigest()}
    return out


def read_ecsv(path: Path):
    from astropy.table import Table

    return Table.read(path, format="ascii.ecsv")


def ecsv_content_hashes(path: Path) -> dict[str, dict[str, str]]:
    t = read_ecsv(path)
    hd = hashlib.sha256()
    for name in t.colnames:
        col = t[name]
        if hasattr(col, "ra"):  # SkyCoord column
            _update_array(hd, name + ".ra", np.asarray(col.ra.deg))
            _update_array(hd, name + ".dec", np.asarray(col.dec.deg))
        else:
            _update_array(hd, name, np.asarray(col))
    meta = {k: v for k, v in t.meta.items() if k not in VOLATILE_TABLE_META}
    hm = hashlib.sha256(json.dumps(meta, sort_keys=True, default=repr).encode())
    return {"TABLE": {"data": hd.hexdigest(), "meta": hm.hexdigest()}}


def content_hashes(path: Path) -> dict[str, dict[str, str]]:
    """Per-part hashes of a product that ignore volatile metadata (see the module doc)."""
    path = Path(path)
    if path.suffix == ".fits":
        return fits_content_hashes(path)
    if path.suffix == ".ecsv":
        return ecsv_content_hashes(path)
    return {"FILE": {"file": sha256_file(path)}}
