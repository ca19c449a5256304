"""FITS I/O of the cleaning: the arrays of a cal file in, a cleaned cal file and its maps out.

Cal files are read and written with astropy.io.fits (SCI, ERR, DQ, VAR_*): the cleaned file
is the stage-2 file with those arrays replaced and the provenance keywords added, so its
metadata, ASDF extension and WCS stay jwst's. Both writes are atomic (temporary name, then rename).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fsutil import atomic_path
from . import median_filter as mf
from .provenance import add_provenance

__all__ = ["VARIANCES", "MAP_BITS", "Exposure", "pixel_sky_transforms", "read_exposure", "write_cal", "write_maps",
           "psf_fwhm_pixels"]

#: Bits of the CLEANMAP extension of ``<stem>_segm.fits``.
MAP_BITS = {"SOURCE": 1, "BAD": 2, "FILLED": 4, "OUTLIER": 8, "UNFILLED": 16, "UNCOVERED": 32,
            "SKY": 64}

VARIANCES = ("var_poisson", "var_rnoise", "var_flat")


@dataclass
class Exposure:
    """The arrays of one cal file the cleaning reads and writes (SCI in MJy/sr)."""

    sci: np.ndarray
    err: np.ndarray | None
    dq: np.ndarray
    variances: dict[str, np.ndarray]
    header: dict
    pixel_scale: float  # arcsec / pixel, from PIXAR_A2
    sci_header: dict | None = None  # the SCI header (its FITS WCS approximates jwst's)
    fill: mf.FillResult | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = [self.sci, self.err, self.dq, *self.variances.values()]
        return sum(a.nbytes for a in arrays if a is not None)


def pixel_sky_transforms(sci_header):
    """((x, y) -> (ra, dec), (ra, dec) -> (x, y)) from a SCI header's FITS WCS (0-based
    pixels, degrees), or None without a celestial WCS."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = WCS(fits.Header(sci_header)).celestial
    except Exception:  # noqa: BLE001 - any unreadable WCS: no transform
        return None
    if not w.has_celestial or w.wcs.ctype[0] == "":
        return None
    return (lambda x, y: w.pixel_to_world_values(x, y)), (lambda a, d: w.world_to_pixel_values(a, d))


def read_exposure(path: Path) -> Exposure:
    """SCI, ERR, DQ and the variances of a cal file, and the primary-header facts."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        sci = np.array(hdul["SCI"].data, np.float32)
        names = {h.name.lower() for h in hdul}
        err = np.array(hdul["ERR"].data, np.float32) if "err" in names else None
        dq = np.array(hdul["DQ"].data, np.uint32) if "dq" in names else np.zeros(sci.shape, np.uint32)
        variances = {v: np.array(hdul[v.upper()].data, np.float32) for v in VARIANCES
                     if v in names and hdul[v.upper()].data is not None and hdul[v.upper()].data.shape == sci.shape}
        header = dict(hdul[0].header)
        sh = hdul["SCI"].header.copy()
    area = sh.get("PIXAR_A2") or header.get("PIXAR_A2")
    if not area:
        raise InputError(f"{path.name} has no PIXAR_A2 (pixel area, arcsec^2) in its SCI header: not a "
                         "photometrically calibrated stage-2 file; rerun stage 2 (mirim-reduce stage2 --overwrite)")
    scale = math.sqrt(float(area))
    return Exposure(sci, err, dq, variances, header, scale, sci_header=sh)


def write_cal(src: Path, exp: Exposure, final: Path, provenance: dict) -> None:
    """The stage-2 file ``src`` with the cleaned arrays and provenance, as ``final`` (atomic).

    Written with astropy.io.fits: every HDU of ``src`` is kept (the ASDF extension, which
    references the FITS arrays by extension name, included), the SCI, ERR, DQ and VAR_*
    arrays are replaced by ones of the same shape and dtype, and the primary header gets
    FILENAME and the provenance cards. stdatamodels reads primary-header values over the ASDF
    copy, so jwst sees the new FILENAME and (in ``extra_fits``) the cleaning keywords.
    Opening and re-validating the data model would cost ~0.7 s per file; this ~0.05 s.
    """
    from astropy.io import fits

    arrays = {"SCI": np.asarray(exp.sci, np.float32), "DQ": np.asarray(exp.dq, np.uint32)}
    if exp.err is not None:
        arrays["ERR"] = np.asarray(exp.err, np.float32)
    arrays.update({name.upper(): np.asarray(v, np.float32) for name, v in exp.variances.items()})
    with fits.open(src, memmap=True) as hdul:
        for name, data in arrays.items():
            hdu = hdul[name]
            if tuple(hdu.shape) != data.shape:  # from the header: the old array is never read
                raise ValueError(f"{src.name}: {name} has shape {tuple(hdu.shape)}, the cleaned array {data.shape}")
            hdu.data = data
        primary = hdul[0].header
        primary["FILENAME"] = final.name
        add_provenance(primary, provenance)
        with atomic_path(final) as tmp:
            hdul.writeto(tmp, output_verify="silentfix")


def write_maps(final: Path, stem: str, segm: np.ndarray, cmap: np.ndarray, group: str) -> None:
    """``<stem>_segm.fits``: SEGM (int32 labels) and CLEANMAP (uint8, :data:`MAP_BITS`)."""
    from astropy.io import fits

    hdr = fits.Header()
    hdr["EXPOSURE"] = stem
    hdr["CLNGROUP"] = group
    for name, bit in MAP_BITS.items():
        hdr[f"MAP_{name}"[:8]] = (bit, f"CLEANMAP bit: {name.lower()}")
    hdul = fits.HDUList([fits.PrimaryHDU(header=hdr),
                         fits.ImageHDU(segm.astype(np.int32), name="SEGM"),
                         fits.ImageHDU(cmap.astype(np.uint8), name="CLEANMAP")])
    with atomic_path(final) as tmp:
        hdul.writeto(tmp, overwrite=True)


def psf_fwhm_pixels(filter_name: str, pixel_scale: float) -> float:
    """Detection-kernel FWHM in pixels for a MIRI imager filter: the diffraction core
    1.03 lambda / D of JWST (D = 6.5 m), lambda from the filter name (F770W: 7.70 um), at
    least 2 pixels (the PSF is undersampled below ~7 um)."""
    try:
        wave_um = int(str(filter_name).strip().upper()[1:-1]) / 100.0
    except ValueError:
        return 3.0
    fwhm_arcsec = 1.03 * wave_um * 1e-6 / 6.5 * 206264.806
    return max(2.0, fwhm_arcsec / pixel_scale)
