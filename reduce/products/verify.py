"""``verify``: compare a run's packaged products with reference products.

Checks, for the products of two DEST folders (files matched by their path relative to DEST,
with each run's date stamp replaced by ``{DATE}``; ``manifest.json`` and ``report.html``
are not compared, they record times and paths):

- the file set: a file on one side only is a difference;
- FITS, per HDU: the data arrays with ``|run - ref| <= atol + rtol |ref|`` (defaults 1e-4 and
  1e-4, as STScI's MIRI imaging regression tests use), NaN where the reference has NaN;
  integer arrays (DQ, CON, segmentation maps) exactly; table columns the same way (the
  volatile columns of :data:`~reduce.products.hashing.VOLATILE_KEYWORDS` left out); headers
  card by card minus the volatile keywords, numbers with the same tolerances; the ASDF
  extension is not compared (see :mod:`reduce.products.hashing`);
- ECSV catalogues: columns as above, metadata minus ``date`` and ``version``;
- PNG and PDF figures: only present, unless ``exact``.

With ``exact=True`` every part must have the same content hash (``hashing.content_hashes``:
bit identity of the science, volatile metadata ignored) and figures the same bytes; where a
hash differs, the numeric difference is reported too. Each side's ``manifest.json``, when
present, is checked against the files it describes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import hashing
from .manifest import UNLISTED

RTOL = 1e-4
ATOL = 1e-4
_DATE_RE = re.compile(r"\d{2}(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\d{4}")


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
            lines.append(f"{len(skipped)} parts not compared (ASDF extensions, figures without --exact, files outside the manifest): --all lists them")
        lines.append(f"{self.compared} parts compared: " + ("no differences" if not n else f"{n} difference(s)"))
        return "\n".join(lines)


def _manifest(dest: Path) -> dict | None:
    p = dest / "manifest.json"
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except ValueError:
            return None
    return None


def _files(dest: Path, date: str | None, manifest: dict | None = None) -> dict[str, Path]:
    """The products of ``dest``: those its manifest lists, else every file."""
    out = {}
    paths = ([dest / e["path"] for e in manifest.get("products", [])] if manifest else sorted(dest.rglob("*")))
    for p in paths:
        rel = p.relative_to(dest).as_posix()
        if (not manifest and not p.is_file()) or rel in UNLISTED or any(part.startswith(".") for part in p.relative_to(dest).parts):
            continue
        key = rel.replace(date, "{DATE}") if date else _DATE_RE.sub("{DATE}", rel)
        out[key] = p
    return out


def _describe(a: np.ndarray, b: np.ndarray, rtol: float, atol: float, exact: bool) -> tuple[bool, str]:
    """Compare run array ``a`` with reference ``b``: (equal within tolerance, description)."""
    if a.shape != b.shape:
        return False, f"shape {a.shape} != reference {b.shape}"
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
        neq = np.asarray(a != b)
        return (not neq.any()), (f"{int(neq.sum())} values differ" if neq.any() else "")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    nan_mismatch = int((nan_a != nan_b).sum())
    both = ~nan_a & ~nan_b
    diff = np.zeros_like(a64)
    diff[both] = np.abs(a64[both] - b64[both])
    integer = a.dtype.kind in "iub" and b.dtype.kind in "iub"
    if exact or integer:
        bad = both & (diff > 0)
    else:
        bad = both & (diff > atol + rtol * np.abs(b64))
    n_bad = int(bad.sum()) + nan_mismatch
    if n_bad == 0:
        maxd = float(diff.max()) if diff.size else 0.0
        return True, (f"max |diff| {maxd:.3g}" if maxd else "")
    idx = np.unravel_index(int(np.argmax(np.where(both, diff, -1))), diff.shape) if both.any() else None
    nz = both & (b64 != 0)
    rel = diff[nz] / np.abs(b64[nz])
    parts = [f"{n_bad} of {a.size} values differ" + (" (exact)" if exact or integer else f" beyond rtol={rtol:g} atol={atol:g}")]
    if both.any() and diff[both].max() > 0:
        parts.append(f"max |diff| {diff[both].max():.4g} at {tuple(int(i) for i in idx)}")
        if rel.size and rel.max() > 0:
            parts.append(f"max rel {rel.max():.3g}")
    if nan_mismatch:
        parts.append(f"{nan_mismatch} NaN mismatches")
    return False, "; ".join(parts)


def _values_equal(a, b, rtol: float, atol: float, exact: bool) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    if exact:
        return a == b or (a != a and b != b)
    return abs(a - b) <= atol + rtol * abs(b) or (a != a and b != b)


def _compare_headers(h_run, h_ref, rtol, atol, exact) -> tuple[bool, str]:
    run = {}
    for card in h_run.cards:
        if card.keyword and not hashing._is_volatile(card.keyword) and card.keyword not in ("HISTORY", "COMMENT"):
            run[card.keyword] = card.value
    ref = {}
    for card in h_ref.cards:
        if card.keyword and not hashing._is_volatile(card.keyword) and card.keyword not in ("HISTORY", "COMMENT"):
            ref[card.keyword] = card.value
    diffs = []
    for k in sorted(set(run) | set(ref)):
        if k not in run:
            diffs.append(f"{k} missing")
        elif k not in ref:
            diffs.append(f"{k} extra")
        elif not _values_equal(run[k], ref[k], rtol, atol, exact):
            diffs.append(f"{k}={run[k]!r} (ref {ref[k]!r})")
    hist = [str(c.value) for c in h_run.cards if c.keyword in ("HISTORY", "COMMENT")]
    hist_ref = [str(c.value) for c in h_ref.cards if c.keyword in ("HISTORY", "COMMENT")]
    if hist != hist_ref:
        diffs.append("HISTORY/COMMENT differ")
    if diffs:
        return False, f"{len(diffs)} keyword(s): " + ", ".join(diffs[:4]) + (" ..." if len(diffs) > 4 else "")
    return True, ""


def _compare_fits(name: str, run: Path, ref: Path, rtol, atol, exact, res: VerifyResult) -> None:
    from astropy.io import fits

    hashes_run = hashing.fits_content_hashes(run) if exact else {}
    hashes_ref = hashing.fits_content_hashes(ref) if exact else {}
    with fits.open(run, memmap=False) as a, fits.open(ref, memmap=False) as b:
        keys_a = {hashing.hdu_key(h, i): h for i, h in enumerate(a)}
        keys_b = {hashing.hdu_key(h, i): h for i, h in enumerate(b)}
        for k in sorted(set(keys_b) - set(keys_a)):
            res.rows.append(Row(name, k, "MISSING", "extension missing in the run"))
        for k in sorted(set(keys_a) - set(keys_b)):
            res.rows.append(Row(name, k, "EXTRA", "extension not in the reference"))
        for k in [k for k in keys_a if k in keys_b]:
            ha, hb = keys_a[k], keys_b[k]
            if ha.name in hashing.SKIPPED_EXTENSIONS:
                res.rows.append(Row(name, k, "skipped", "not compared: " + hashing.SKIPPED_EXTENSIONS[ha.name].split(":")[0]))
                continue
            res.compared += 1
            same_hash = exact and hashes_run.get(k, {}).get("data") == hashes_ref.get(k, {}).get("data")
            if isinstance(ha, (fits.BinTableHDU, fits.TableHDU)):
                ca, cb = hashing.table_columns(ha), hashing.table_columns(hb)
                bad = []
                if set(ca) != set(cb):
                    bad.append(f"columns differ: {sorted(set(ca) ^ set(cb))}")
                for c in [c for c in cb if c in ca]:
                    ok, d = _describe(np.asarray(ca[c]), np.asarray(cb[c]), rtol, atol, exact)
                    if not ok:
                        bad.append(f"column {c}: {d}")
                ok, detail = not bad, "; ".join(bad[:3])
            elif ha.data is None or hb.data is None:
                ok, detail = (ha.data is None) == (hb.data is None), ""
            else:
                ok, detail = _describe(np.asarray(ha.data), np.asarray(hb.data), rtol, atol,
                                       exact or ha.name in ("DQ", "CON"))
            if exact and not same_hash and ok:
                ok, detail = False, "content hash differs (" + (detail or "dtype or layout") + ")"
            res.rows.append(Row(name, f"{k} data", "ok" if ok else "DIFF", detail))
            res.compared += 1
            ok, detail = _compare_headers(ha.header, hb.header, rtol, atol, exact)
            if exact and ok and hashes_run.get(k, {}).get("header") != hashes_ref.get(k, {}).get("header"):
                ok, detail = False, "header hash differs"
            res.rows.append(Row(name, f"{k} header", "ok" if ok else "DIFF", detail))


def _compare_ecsv(name: str, run: Path, ref: Path, rtol, atol, exact, res: VerifyResult) -> None:
    ta, tb = hashing.read_ecsv(run), hashing.read_ecsv(ref)
    res.compared += 1
    bad = []
    if ta.colnames != tb.colnames:
        bad.append(f"columns differ: {sorted(set(ta.colnames) ^ set(tb.colnames))}")
    if len(ta) != len(tb):
        bad.append(f"{len(ta)} rows (reference {len(tb)})")
    else:
        for c in [c for c in tb.colnames if c in ta.colnames]:
            pairs = ([(c + ".ra", ta[c].ra.deg, tb[c].ra.deg), (c + ".dec", ta[c].dec.deg, tb[c].dec.deg)]
                     if hasattr(tb[c], "ra") else [(c, np.asarray(ta[c]), np.asarray(tb[c]))])
            for label, x, y in pairs:
                ok, d = _describe(np.asarray(x), np.asarray(y), rtol, atol, exact)
                if not ok:
                    bad.append(f"column {label}: {d}")
    res.rows.append(Row(name, "TABLE data", "DIFF" if bad else "ok", "; ".join(bad[:3])))
    res.compared += 1
    ma = {k: v for k, v in ta.meta.items() if k not in hashing.VOLATILE_TABLE_META}
    mb = {k: v for k, v in tb.meta.items() if k not in hashing.VOLATILE_TABLE_META}
    same = json.dumps(ma, sort_keys=True, default=repr) == json.dumps(mb, sort_keys=True, default=repr)
    res.rows.append(Row(name, "TABLE meta", "ok" if same else "DIFF", "" if same else "metadata differ"))


def _check_manifest(dest: Path, label: str, files: dict[str, Path], res: VerifyResult) -> None:
    man = _manifest(dest)
    if man is None:
        return
    listed = {e["path"]: e for e in man.get("products", [])}
    missing = [p for p in listed if not (dest / p).is_file()]
    bad = [p for p, e in listed.items() if p not in missing and hashing.sha256_file(dest / p) != e["sha256"]]
    res.compared += 1
    detail = "; ".join(x for x in (f"{len(bad)} product(s) changed since: {', '.join(bad[:3])}" if bad else "",
                                   f"{len(missing)} product(s) missing: {', '.join(missing[:3])}" if missing else "") if x)
    res.rows.append(Row(f"{label}/manifest.json", "sha256", "DIFF" if detail else "ok", detail))
    others = [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()]
    others = [p for p in others if p not in listed and p not in UNLISTED and not p.split("/")[-1].startswith(".")]
    if others:
        res.rows.append(Row(f"{label}/manifest.json", "unlisted", "skipped",
                            f"{len(others)} file(s) in the folder not in the manifest, not compared: {', '.join(others[:3])}"))


def verify(run_dest: Path, ref_dest: Path, *, rtol: float = RTOL, atol: float = ATOL, exact: bool = False) -> VerifyResult:
    """Compare the products in ``run_dest`` with those in ``ref_dest`` (see the module doc)."""
    run_dest, ref_dest = Path(run_dest), Path(ref_dest)
    for d in (run_dest, ref_dest):
        if not d.is_dir():
            raise InputError(f"{d} is not a folder of packaged products")
    man_run, man_ref = _manifest(run_dest), _manifest(ref_dest)
    files_run = _files(run_dest, (man_run or {}).get("date"), man_run)
    files_ref = _files(ref_dest, (man_ref or {}).get("date"), man_ref)
    if not files_ref:
        raise InputError(f"{ref_dest} holds no products")
    res = VerifyResult()
    _check_manifest(run_dest, "run", files_run, res)
    _check_manifest(ref_dest, "reference", files_ref, res)
    if man_run and man_ref:
        ia = {e["name"]: e["sha256"] for e in man_run.get("inputs", [])}
        ib = {e["name"]: e["sha256"] for e in man_ref.get("inputs", [])}
        res.compared += 1
        if ia != ib:
            n = len(set(ia) ^ set(ib)) + sum(ia[k] != ib[k] for k in set(ia) & set(ib))
            res.rows.append(Row("inputs", "sha256", "DIFF", f"{n} input file(s) differ between the runs"))
        else:
            res.rows.append(Row("inputs", "sha256", "ok", f"{len(ia)} identical inputs"))
    res.compared += 1
    for k in sorted(set(files_ref) - set(files_run)):
        res.rows.append(Row(k, "file", "MISSING", "in the reference, not in the run"))
    for k in sorted(set(files_run) - set(files_ref)):
        res.rows.append(Row(k, "file", "EXTRA", "in the run, not in the reference"))
    for k in sorted(set(files_run) & set(files_ref)):
        a, b = files_run[k], files_ref[k]
        if not (a.is_file() and b.is_file()):
            res.rows.append(Row(k, "file", "MISSING", "listed in the manifest but not on disk: "
                                + ("run" if not a.is_file() else "reference")))
            continue
        if k.endswith(".fits"):
            _compare_fits(k, a, b, rtol, atol, exact, res)
        elif k.endswith(".ecsv"):
            _compare_ecsv(k, a, b, rtol, atol, exact, res)
        elif exact or not k.endswith((".png", ".pdf")):
            res.compared += 1
            same = hashing.sha256_file(a) == hashing.sha256_file(b)
            res.rows.append(Row(k, "file", "ok" if same else "DIFF", "" if same else "sha256 differs"))
        else:
            res.rows.append(Row(k, "file", "skipped", "figure: present (bytes compared with --exact)"))
    return res
