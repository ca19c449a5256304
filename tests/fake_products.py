"""Small constructed products (no pipeline) for the verify and reference tests, and the
comparison verify used before FITSDiff (``reduce/products/verify.py`` at 5523c7d) as an oracle."""

import json
import shutil
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from reduce.products import hashing, manifest

SHAPE = (40, 44)


def write_i2d(path: Path, date: str, seed: int = 3) -> None:
    """An i2d-like product: PRIMARY, SCI/ERR (float32, NaN corner), CON, DQ (high bits), HDRTAB, ASDF."""
    rng = np.random.default_rng(seed)
    sci = rng.normal(1.0, 0.1, SHAPE).astype(np.float32)
    sci[:3, :3] = np.nan
    prim = fits.PrimaryHDU()
    prim.header.update({"FILTER": "F770W", "TARGPROP": "T", "DATE": "2030-01-01T00:00:00", "CAL_VER": "3.0.0",
                        "PHOTMJSR": 0.25, "MOSAIC": f"T_MIRI_F770W_{date}_i2d.fits"})
    prim.header.add_history("made for a test")
    hdrtab = fits.BinTableHDU.from_columns([
        fits.Column("FILTER", "8A", array=np.array(["F770W", "F770W"])),
        fits.Column("EXPTIME", "D", array=np.array([11.68, 11.68])),
        fits.Column("DATE", "23A", array=np.array(["2030-01-01T00:00:00"] * 2))], name="HDRTAB")
    asdf = fits.BinTableHDU.from_columns([fits.Column("ASDF_METADATA", "10B", array=rng.integers(0, 255, (1, 10)))],
                                         name="ASDF")
    dq = np.zeros(SHAPE, np.uint32)
    dq[5:9, 5:9] = 2 ** 30
    fits.HDUList([prim, fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(sci / 10, name="ERR"),
                  fits.ImageHDU(np.ones((1, *SHAPE), np.int32), name="CON"), fits.ImageHDU(dq, name="DQ"),
                  hdrtab, asdf]).writeto(path)


def write_catalogue(path: Path, seed: int = 4) -> None:
    rng = np.random.default_rng(seed)
    t = Table({"label": np.arange(1, 6, dtype=np.int32), "flux": rng.uniform(1, 2, 5),
               "sky_centroid": SkyCoord(rng.uniform(53, 53.1, 5), rng.uniform(-27.8, -27.7, 5), unit="deg"),
               "is_extended": np.zeros(5, bool)}, meta={"date": "2030-01-01", "version": {"photutils": "2"}, "aper": 3})
    t.write(path, format="ascii.ecsv")


def make_dest(dest: Path, date: str = "01Jan2030", *, with_manifest: bool = True) -> Path:
    """DEST/T/F770W/T_MIRI_F770W_{date}_{i2d.fits,cat.ecsv,ta_box.png}, report.html and manifest.json."""
    d = dest / "T" / "F770W"
    d.mkdir(parents=True)
    write_i2d(d / f"T_MIRI_F770W_{date}_i2d.fits", date)
    write_catalogue(d / f"T_MIRI_F770W_{date}_cat.ecsv")
    (d / f"T_MIRI_F770W_{date}_ta_box.png").write_bytes(b"\x89PNG not really")
    (dest / "report.html").write_text(f"<html>{date}</html>")
    if with_manifest:
        write_manifest(dest, date)
    return dest


def write_manifest(dest: Path, date: str) -> None:
    products = sorted(p for p in dest.rglob("*") if p.is_file() and p.name not in manifest.UNLISTED)
    man = {"date": date, "inputs": [{"name": "a_uncal.fits", "sha256": "0" * 64}],
           "products": [manifest.product_entry(dest, p) for p in products]}
    (dest / "manifest.json").write_text(json.dumps(man))


def copy_dest(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def i2d_of(dest: Path) -> Path:
    return next(dest.glob("T/F770W/*_i2d.fits"))


# ------------------------------------------------------------------ the comparison before FITSDiff
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


def old_verdicts(run: Path, ref: Path, rtol: float, atol: float, exact: bool) -> dict[str, tuple[bool, str]]:
    """{part: (ok, detail)} of the old per-HDU comparison of two FITS files (hash checks of
    ``exact`` included, as it did them)."""
    hashes_run = hashing.fits_content_hashes(run) if exact else {}
    hashes_ref = hashing.fits_content_hashes(ref) if exact else {}
    out = {}
    with fits.open(run) as a, fits.open(ref) as b:
        for i, ha in enumerate(a):
            k = hashing.hdu_key(ha, i)
            hb = b[i]
            if ha.name in hashing.SKIPPED_EXTENSIONS:
                continue
            if isinstance(ha, fits.BinTableHDU):
                ca, cb = hashing.table_columns(ha), hashing.table_columns(hb)
                bad = [d for c in cb for ok, d in [_describe(np.asarray(ca[c]), np.asarray(cb[c]), rtol, atol, exact)]
                       if not ok]
                ok, detail = not bad, "; ".join(bad)
            elif ha.data is None:
                ok, detail = hb.data is None, ""
            else:
                ok, detail = _describe(np.asarray(ha.data), np.asarray(hb.data), rtol, atol,
                                       exact or ha.name in ("DQ", "CON"))
            if exact and ok and hashes_run[k]["data"] != hashes_ref[k]["data"]:
                ok, detail = False, "content hash differs"
            out[f"{k} data"] = (ok, detail)
            ok, detail = _compare_headers(ha.header, hb.header, rtol, atol, exact)
            if exact and ok and hashes_run[k]["header"] != hashes_ref[k]["header"]:
                ok = False
            out[f"{k} header"] = (ok, detail)
    return out
