"""compare-products.py A B: the data arrays of every FITS product of two workspaces, bit for bit.

Every *.fits file under A must exist under B (and the other way round), the date stamp of a
packaged product's name (``..._01Dec2026_i2d.fits``, the day the run packaged it) read as
``{DATE}`` as `mirim-reduce verify` reads it: two runs either side of midnight package the same
products under two stamps. For each file, every HDU
holding an image array (the ASDF metadata extension, with its dates and paths, is skipped) must
have the same name, dtype, shape and bytes. Exit 0 if all are identical, 1 otherwise.
"""
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

from reduce.products.hashing import DATE_STAMP_RE


def arrays(path):
    with fits.open(path, memmap=False) as hdul:
        for i, hdu in enumerate(hdul):
            if hdu.name == "ASDF" or not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
                continue
            if hdu.data is None:
                continue
            yield f"{i}:{hdu.name}", np.ascontiguousarray(hdu.data)


def fits_files(root):
    """{path relative to ``root`` with date stamps as {DATE}: path}, raw/ left out."""
    out = {}
    for p in root.rglob("*.fits"):
        rel = p.relative_to(root)
        if "raw" not in rel.parts[:1]:
            out[Path(DATE_STAMP_RE.sub("{DATE}", rel.as_posix()))] = p
    return out


def main(a, b):
    a, b = Path(a), Path(b)
    pa, pb = fits_files(a), fits_files(b)
    fa, fb = set(pa), set(pb)
    bad = [f"only in {a}: {p}" for p in sorted(fa - fb)] + [f"only in {b}: {p}" for p in sorted(fb - fa)]
    n_arrays = 0
    for rel in sorted(fa & fb):
        xa, xb = dict(arrays(pa[rel])), dict(arrays(pb[rel]))
        if xa.keys() != xb.keys():
            bad.append(f"{rel}: extensions {sorted(xa)} != {sorted(xb)}")
            continue
        for k in xa:
            n_arrays += 1
            if xa[k].dtype != xb[k].dtype or xa[k].shape != xb[k].shape or xa[k].tobytes() != xb[k].tobytes():
                bad.append(f"{rel} [{k}]: arrays differ")
    for line in bad:
        print(line)
    print(f"compare-products: {len(fa & fb)} files, {n_arrays} arrays, {len(bad)} differences ({a} vs {b})")
    return 1 if bad or not fa else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
