"""Two FITS files (or catalogues) compared with astropy's ``FITSDiff``, as rows of a report.

:func:`fitsdiff_kwargs` are the arguments jwst's regression tests give ``FITSDiff``
(``jwst/regtest/conftest.py``: ``ignore_hdus=["ASDF"]``, the run-dependent keywords ignored in
headers and as table columns, MIRI imaging ``rtol = atol = 1e-4``), with our lists: the
volatile keywords of :mod:`~reduce.products.hashing`, the cards that only describe the data
layout (NAXISn, TFORMn ...: compared through the data) and keyword comments, none of which the
content hashes cover either. ``FITSDiff`` compares float arrays with
``|run - ref| <= atol + rtol |ref|`` (NaN or Inf on one side only is a difference), integer
arrays (DQ, CON, segmentation maps) exactly, header values with the same tolerances. Date stamps
of product names in header text (``MOSAIC`` of a TA box) are read as ``{DATE}``.

A row gives the file, the part (``SCI,1 data``, ``PRIMARY,1 header``), a status and, for a
difference, how many values differ, the largest difference and where (0-based numpy index,
``(y, x)``; a range of pixels for the block means of a reference thumbnail, see
:mod:`~reduce.products.reference`). ``FITSDiff`` gives the counts; the largest difference and
its position are computed here, for the HDUs it says differ only.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import hashing

#: Header keyword of a thumbnail HDU holding block means: the block size in pixels.
BLOCK_KEYWORD = "MRBLOCK"


@dataclass
class Row:
    file: str
    part: str
    status: str       # ok | DIFF | MISSING | EXTRA | skipped
    detail: str = ""


@dataclass
class VerifyResult:
    rows: list[Row] = field(default_factory=list)
    compared: int = 0

    @property
    def differences(self) -> list[Row]:
        return [r for r in self.rows if r.status in ("DIFF", "MISSING", "EXTRA")]

    @property
    def ok(self) -> bool:
        return not self.differences

    def table(self, show_ok: bool = True) -> str:
        rows = [r for r in self.rows if show_ok or r.status not in ("ok", "skipped")]
        w_file = max([len(r.file) for r in rows] + [4])
        w_part = max([len(r.part) for r in rows] + [4])
        lines = [f"{'file':{w_file}}  {'part':{w_part}}  {'status':7}  detail",
                 f"{'-' * w_file}  {'-' * w_part}  {'-' * 7}  {'-' * 6}"]
        lines += [f"{r.file:{w_file}}  {r.part:{w_part}}  {r.status:7}  {r.detail}" for r in rows]
        n = len(self.differences)
        skipped = [r for r in self.rows if r.status == "skipped"]
        if skipped and not show_ok:
            lines.append(f"{len(skipped)} parts not compared (ASDF extensions, figures without --exact): --all lists them")
        lines.append(f"{self.compared} parts compared: " + ("no differences" if not n else f"{n} difference(s)"))
        return "\n".join(lines)


def fitsdiff_kwargs(rtol: float, atol: float) -> dict:
    return {"ignore_hdus": sorted(hashing.SKIPPED_EXTENSIONS), "ignore_keywords": hashing.fitsdiff_ignore_keywords(),
            "ignore_fields": sorted(hashing.VOLATILE_KEYWORDS), "ignore_comments": ["*"], "rtol": rtol, "atol": atol}


def _where(idx, block: int | None, integer: bool = False) -> str:
    """A numpy index as text; with ``block``, the pixels the block covers and which plane
    (block mean or NaN/Inf count of float images, block sum of integer images)."""
    idx = tuple(int(i) for i in idx)
    if not block:
        return str(idx)
    plane = "block sum" if integer else ("block mean", "NaN/Inf count")[idx[0]]
    by, bx = idx[-2:]
    return f"pixels ({by * block}:{(by + 1) * block}, {bx * block}:{(bx + 1) * block}) ({plane})"


def largest(a, b, block: int | None = None) -> str:
    """Largest |a - b| where both are finite, where it is, largest relative to |b|, and the
    number of places finite on one side only (text for a row)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind not in "iufb" or b.dtype.kind not in "iufb":
        neq = np.asarray(a != b)
        return f"first at {_where(np.argwhere(neq)[0], block)}" if neq.any() else ""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    fa, fb = np.isfinite(a64), np.isfinite(b64)
    both = fa & fb
    parts = []
    if both.any():
        diff = np.where(both, np.abs(a64 - b64), -1.0)
        i = np.unravel_index(int(np.argmax(diff)), diff.shape)
        if diff[i] > 0:
            parts.append(f"max |diff| {diff[i]:.4g} at {_where(i, block, a.dtype.kind in 'iub')}")
            nz = both & (b64 != 0)
            if nz.any() and np.any(np.abs(a64[nz] - b64[nz]) > 0):
                parts.append(f"max rel {np.max(np.abs(a64[nz] - b64[nz]) / np.abs(b64[nz])):.3g}")
    if (fa != fb).any():
        parts.append(f"{int((fa != fb).sum())} NaN/Inf mismatches")
    return "; ".join(parts)


def _tolerance(exact: bool, rtol: float, atol: float, integer: bool = False) -> str:
    return " (exact)" if exact or integer else f" beyond rtol={rtol:g} atol={atol:g}"


def image_detail(dd, a, b, rtol, atol, exact, block=None) -> str:
    """Text for an ``ImageDataDiff`` that is not identical."""
    if dd.diff_dimensions:
        return f"shape {dd.diff_dimensions[0]} != reference {dd.diff_dimensions[1]}"
    integer = a.dtype.kind in "iub" and b.dtype.kind in "iub"
    what = "block values" if block else "values"
    head = f"{dd.diff_total} of {a.size} {what} differ" + _tolerance(exact, rtol, atol, integer)
    return "; ".join(x for x in (head, largest(a, b, block)) if x)


def table_detail(dd, a, b, rtol, atol, exact, ignore=()) -> str:
    """Text for a ``TableDataDiff`` that is not identical: structure, then the columns that differ."""
    from astropy.utils.diff import where_not_allclose

    bad = []
    if dd.diff_column_names:
        bad.append(f"columns only in the run {dd.diff_column_names[0]}, only in the reference {dd.diff_column_names[1]}")
    bad += [f"column {c} {attr} {va!r} (reference {vb!r})" for (c, attr), (va, vb) in dd.diff_column_attributes]
    if dd.diff_rows:
        bad.append(f"{dd.diff_rows[0]} rows (reference {dd.diff_rows[1]})")
    elif dd.diff_total:
        names_b = {n.lower(): n for n in b.columns.names}
        for name in a.columns.names:
            if name.lower() not in names_b or name.upper() in ignore:
                continue
            x, y = np.asarray(a[name]), np.asarray(b[names_b[name.lower()]])
            if x.shape != y.shape:
                bad.append(f"column {name}: shape {x.shape} (reference {y.shape})")
                continue
            if x.dtype.kind == "f" and y.dtype.kind == "f":
                n = len(where_not_allclose(x, y, rtol=0 if exact else rtol, atol=0 if exact else atol)[0])
            else:
                n = int(np.asarray(x != y).sum())
            if n:
                more = largest(x, y)
                bad.append(f"column {name}: {n} of {x.size} values differ"
                           + _tolerance(exact, rtol, atol, x.dtype.kind != "f") + (f", {more}" if more else ""))
        bad.insert(0, f"{dd.diff_total} values differ")
    return "; ".join(bad[:4]) + (" ..." if len(bad) > 4 else "")


def header_detail(hd) -> str:
    """Text for a ``HeaderDiff``; "" when only ignored keywords differ (their count included)."""
    diffs = [f"{k} extra" for k in (hd.diff_keywords[0] if hd.diff_keywords else [])]
    diffs += [f"{k} missing" for k in (hd.diff_keywords[1] if hd.diff_keywords else [])]
    diffs += [f"{k}: {na} cards (reference {nb})" for k, (na, nb) in sorted(hd.diff_duplicate_keywords.items())]
    for k, pairs in sorted(hd.diff_keyword_values.items()):
        diffs += [f"{k}={va!r} (ref {vb!r})" for va, vb in [p for p in pairs if p is not None][:2]]
    if not diffs:
        return ""
    return f"{len(diffs)} keyword(s): " + ", ".join(diffs[:4]) + (" ..." if len(diffs) > 4 else "")


def _undate_headers(hdul) -> None:
    """Date stamps in header text read as ``{DATE}`` (in memory only)."""
    for hdu in hdul:
        for i, card in enumerate(hdu.header.cards):
            if isinstance(card.value, str) and hashing.DATE_STAMP_RE.search(card.value):
                hdu.header[i] = hashing.undate(card.value)


def _hdu_rows(name, k, hdu_diff, ha, hb, rtol, atol, exact, hashes) -> list[Row]:
    data_detail = head_detail = ""
    if hdu_diff is not None:
        if hdu_diff.diff_extension_types:
            data_detail = "extension type {} (reference {})".format(*hdu_diff.diff_extension_types)
        elif hdu_diff.diff_data is not None and not hdu_diff.diff_data.identical:
            dd = hdu_diff.diff_data
            if type(dd).__name__ == "ImageDataDiff":
                data_detail = image_detail(dd, ha.data, hb.data, rtol, atol, exact, hb.header.get(BLOCK_KEYWORD))
            elif type(dd).__name__ == "TableDataDiff":
                data_detail = table_detail(dd, ha.data, hb.data, rtol, atol, exact, hashing.VOLATILE_KEYWORDS)
            else:
                data_detail = f"{getattr(dd, 'diff_total', 'some')} bytes differ"
        head_detail = header_detail(hdu_diff.diff_headers)
    data_ok, head_ok = not data_detail, not head_detail
    if hashes is not None:
        ha_, hb_ = hashes[0].get(k, {}), hashes[1].get(k, {})
        integer = ha.is_image and ha.data is not None and ha.data.dtype.kind in "iub"
        if (exact or integer) and ha_.get("data") != hb_.get("data"):
            data_ok = False
            data_detail = ("content hash differs" + (" (integer map, compared exactly)" if integer and not exact else "")
                           + (f": {data_detail}" if data_detail else " (dtype or layout)" if exact else ""))
        elif exact:
            data_ok = True
        if exact:
            head_ok = ha_.get("header") == hb_.get("header")
            head_detail = "" if head_ok else "header hash differs" + (f": {head_detail}" if head_detail else "")
    return [Row(name, f"{k} data", "ok" if data_ok else "DIFF", data_detail),
            Row(name, f"{k} header", "ok" if head_ok else "DIFF", head_detail)]


def compare_hduls(name: str, a, b, rtol: float, atol: float, exact: bool, res, hashes=None) -> None:
    """Rows for HDUList ``a`` (the run) against ``b`` (the reference), HDUs matched by (EXTNAME, EXTVER).

    ``hashes`` = (run, reference) content hashes per HDU key: with ``exact`` they decide (the
    FITSDiff figures explain); without, integer images must still have equal data hashes.
    """
    from astropy.io import fits

    keys_a = {hashing.hdu_key(h, i): h for i, h in enumerate(a)}
    keys_b = {hashing.hdu_key(h, i): h for i, h in enumerate(b)}
    for k in sorted(set(keys_b) - set(keys_a)):
        res.rows.append(Row(name, k, "MISSING", "extension missing in the run"))
    for k in sorted(set(keys_a) - set(keys_b)):
        res.rows.append(Row(name, k, "EXTRA", "extension not in the reference"))
    common = [k for k in keys_b if k in keys_a]
    for k in [k for k in common if keys_b[k].name in hashing.SKIPPED_EXTENSIONS]:
        res.rows.append(Row(name, k, "skipped", "not compared: " + hashing.SKIPPED_EXTENSIONS[keys_b[k].name].split(":")[0]))
    common = [k for k in common if keys_b[k].name not in hashing.SKIPPED_EXTENSIONS]
    la, lb = fits.HDUList([keys_a[k] for k in common]), fits.HDUList([keys_b[k] for k in common])
    _undate_headers(la)
    _undate_headers(lb)
    tol = (0.0, 0.0) if exact else (rtol, atol)
    if exact and hashes is not None and all(hashes[0].get(k) == hashes[1].get(k) for k in common):
        diffs = {}  # every content hash equal: nothing to explain
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diff = fits.FITSDiff(la, lb, **fitsdiff_kwargs(*tol))
        diffs = {idx: hdu_diff for idx, hdu_diff, *_ in diff.diff_hdus}
    for i, k in enumerate(common):
        res.compared += 2
        res.rows += _hdu_rows(name, k, diffs.get(i), la[i], lb[i], *tol, exact, hashes)


def compare_fits(name: str, run, ref, rtol: float, atol: float, exact: bool, res) -> None:
    """Rows for FITS file ``run`` against ``ref`` (content hashes decide with ``exact``)."""
    from astropy.io import fits

    hashes = (hashing.fits_content_hashes(run), hashing.fits_content_hashes(ref)) if exact else None
    with fits.open(run, memmap=False) as a, fits.open(ref, memmap=False) as b:
        compare_hduls(name, a, b, rtol, atol, exact, res, hashes)


def table_hdu(t):
    """A catalogue (astropy Table) as a FITS table for ``TableDataDiff``: sky coordinates as
    ``<name>.ra`` and ``<name>.dec`` in deg, no metadata."""
    from astropy.io import fits
    from astropy.table import Table

    cols = {}
    for name in t.colnames:
        col = t[name]
        if hasattr(col, "ra"):
            cols[name + ".ra"], cols[name + ".dec"] = np.asarray(col.ra.deg), np.asarray(col.dec.deg)
        else:
            cols[name] = np.asarray(col)
    return fits.table_to_hdu(Table(cols))


def compare_tables(name: str, ta, tb, rtol: float, atol: float, exact: bool, res, hashes=None) -> None:
    """Rows for catalogue ``ta`` (run) against ``tb`` (reference): columns with ``TableDataDiff``,
    metadata minus ``date`` and ``version`` exactly. ``hashes`` as for :func:`compare_hduls`."""
    from astropy.io import fits

    tol = (0.0, 0.0) if exact else (rtol, atol)
    ha, hb = table_hdu(ta), table_hdu(tb)
    dd = fits.TableDataDiff(ha.data, hb.data, rtol=tol[0], atol=tol[1])
    detail = "" if dd.identical else table_detail(dd, ha.data, hb.data, *tol, exact)
    ok = not detail
    if exact and hashes is not None:
        ok = hashes[0]["TABLE"]["data"] == hashes[1]["TABLE"]["data"]
        detail = "" if ok else "content hash differs" + (f": {detail}" if detail else "")
    res.compared += 2
    res.rows.append(Row(name, "TABLE data", "ok" if ok else "DIFF", detail))
    ma = {k: v for k, v in ta.meta.items() if k not in hashing.VOLATILE_TABLE_META}
    mb = {k: v for k, v in tb.meta.items() if k not in hashing.VOLATILE_TABLE_META}
    same = json.dumps(ma, sort_keys=True, default=repr) == json.dumps(mb, sort_keys=True, default=repr)
    res.rows.append(Row(name, "TABLE meta", "ok" if same else "DIFF", "" if same else "metadata differ"))
