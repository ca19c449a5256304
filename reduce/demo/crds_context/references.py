"""Synthetic MIRI imager reference files, each built by a pure function from the shared
instrument facts (:mod:`reduce.instrument`) and the true detector (:mod:`reduce.demo.detector_model`).

Length: one small builder per reference type (~25 types), each a pure function; a module
per type would be 25 files of 15 lines.

Units: DN for ramps (dark, reset, saturation), DN/s for rates, e-/DN for gain, DN for the
readnoise (CDS noise: noise of a difference of two reads, the ramp fitter divides it by
sqrt(2)), MJy/sr per DN/s for photom, pixels for apcorr radii, arcsec for the distortion.

Dark convention (what the simulator must match)
------------------------------------------------
One dark per subarray and read pattern, shape (nints=1, ngroups=MAX_GROUPS, ysize, xsize),
cut from ``detector_model.dark_rate()`` (DN/s, catalogued hot pixels included)::

    dark[0, g] = float32(rate) * float32(frame_time(subarray, readpatt) * g)    g = 0 .. MAX_GROUPS-1

The dark step subtracts ``dark[0, g]`` from science group g (0-based) of every integration,
so a simulator that adds ``rate * tframe * (g + k)`` for any constant k (e.g. k = 1 when the
first read comes one frame after the reset) gets back its injected slope exactly: the
constant ``rate * tframe * k`` is an offset that the ramp fit ignores. No average dark
current is stored (the ramp fit adds no dark shot noise to VAR_POISSON).

Large 4-D arrays (darks, resets) and the mostly-constant 2-D ones are written as lossless
tile-compressed FITS HDUs (GZIP_1, one tile per image plane, no quantisation): stdatamodels
and the jwst steps read them transparently and the values are bit-exact.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from .. import detector_model as dm
from ... import instrument as inst

AUTHOR = "mirim-reduce synthetic CRDS context"
PEDIGREE = "SIMULATION"
USEAFTER = "2000-01-01T00:00:00"
FILE_DATE = "2024-05-22T00:00:00.000"  # fixed DATE keyword: identical builds give identical FITS files
ALL_SUBARRAYS = tuple(inst.SUBARRAYS)
RESET_GROUPS = 2  # the reset step corrects min(RESET_GROUPS, ngroups) groups; zeros here
RSCD_SKIP = {"FASTR1": (1, 1), "SLOWR1": (1, 1)}  # (first integration, later integrations)
APCORR_EE = tuple(round(0.1 * k, 1) for k in range(1, 10))  # encircled-energy fractions tabulated
GAUSS_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _flags():
    from stdatamodels.jwst.datamodels import dqflags

    return dqflags.pixel


def _dq_def(names: list[str]) -> np.ndarray:
    """A DQ_DEF table mapping each named standard flag onto itself."""
    f = _flags()
    rows = [(int(math.log2(f[n])), f[n], n, n.replace("_", " ").lower()) for n in names]
    return np.array(rows, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")])


def _common(model, reftype: str, description: str, subarray: str | None = "FULL", **meta) -> None:
    """The metadata every reference needs (+ subarray geometry, detector, and extras)."""
    model.meta.reftype = reftype.upper()
    model.meta.description = description
    model.meta.author = AUTHOR
    model.meta.pedigree = PEDIGREE
    model.meta.useafter = USEAFTER
    model.meta.telescope = "JWST"
    model.meta.origin = "mirim-reduce"
    model.meta.instrument.name = inst.INSTRUMENT
    model.meta.instrument.detector = inst.DETECTOR
    if subarray is not None:
        s = inst.SUBARRAYS[subarray]
        model.meta.subarray.name = s.name
        model.meta.subarray.xstart, model.meta.subarray.ystart = s.xstart, s.ystart
        model.meta.subarray.xsize, model.meta.subarray.ysize = s.xsize, s.ysize
        model.meta.subarray.fastaxis, model.meta.subarray.slowaxis = 1, 2
    for path, value in meta.items():
        node = model.meta
        *parents, leaf = path.split("__")
        for p in parents:
            node = getattr(node, p)
        setattr(node, leaf, value)


def _full(value, dtype=np.float32) -> np.ndarray:
    return np.full(inst.FULL_SHAPE, value, dtype=dtype)


# --- Detector1 ---------------------------------------------------------------------------

def mask_model():
    """MaskModel, full frame: dead -> DEAD|DO_NOT_USE, catalogued hot -> HOT|DO_NOT_USE,
    the 4+4 reference columns -> REFERENCE_PIXEL|DO_NOT_USE."""
    from stdatamodels.jwst.datamodels import MaskModel

    f = _flags()
    dq = np.zeros(inst.FULL_SHAPE, dtype=np.uint32)
    ref = inst.REFERENCE_COLUMNS
    dq[:, :ref] |= f["REFERENCE_PIXEL"] | f["DO_NOT_USE"]
    dq[:, -ref:] |= f["REFERENCE_PIXEL"] | f["DO_NOT_USE"]
    r, c = dm.bad_pixel_positions("dead")
    dq[r, c] |= f["DEAD"] | f["DO_NOT_USE"]
    r, c = dm.bad_pixel_positions("hot_known")
    dq[r, c] |= f["HOT"] | f["DO_NOT_USE"]
    m = MaskModel(dq=dq)
    m.dq_def = _dq_def(["DO_NOT_USE", "DEAD", "HOT", "REFERENCE_PIXEL"])
    _common(m, "mask", "Synthetic MIRIMAGE bad pixel mask (detector_model dead + catalogued hot pixels)",
            exposure__readpatt="ANY", instrument__filter="ANY")
    return m


def saturation_model():
    """SaturationModel, full frame: instrument.SATURATION DN everywhere."""
    from stdatamodels.jwst.datamodels import SaturationModel

    m = SaturationModel(data=_full(inst.SATURATION), dq=_full(0, np.uint32))
    m.dq_def = _dq_def(["DO_NOT_USE", "NO_SAT_CHECK"])
    _common(m, "saturation", f"Synthetic MIRIMAGE saturation, {inst.SATURATION:g} DN", instrument__filter="ANY")
    return m


def ipc_model():
    """IPCModel: 3x3 delta kernel (no interpixel capacitance)."""
    from stdatamodels.jwst.datamodels import IPCModel

    kernel = np.zeros((3, 3), dtype=np.float32)
    kernel[1, 1] = 1.0
    m = IPCModel(data=kernel)
    _common(m, "ipc", "Synthetic MIRIMAGE IPC kernel: delta (no IPC)", subarray=None)
    return m


def linearity_model():
    """LinearityModel, full frame: identity coefficients (corrected = 0 + 1 * DN)."""
    from stdatamodels.jwst.datamodels import LinearityModel

    coeffs = np.zeros((2, *inst.FULL_SHAPE), dtype=np.float32)
    coeffs[1] = 1.0
    m = LinearityModel(coeffs=coeffs, dq=_full(0, np.uint32))
    m.dq_def = _dq_def(["DO_NOT_USE", "NO_LIN_CORR"])
    _common(m, "linearity", "Synthetic MIRIMAGE linearity: identity (the detector is linear)",
            instrument__filter="ANY")
    return m


def rscd_model():
    """RSCDModel: group-skip table for every subarray x read pattern (RSCD_SKIP)."""
    from stdatamodels.jwst.datamodels import RSCDModel

    rows = [(sub, rp, *RSCD_SKIP[rp]) for sub in ALL_SUBARRAYS for rp in inst.READ_PATTERNS]
    table = np.array(rows, dtype=[("subarray", "S17"), ("readpatt", "S12"),
                                  ("group_skip1", "<i4"), ("group_skip", "<i4")])
    m = RSCDModel(rscd_group_skip_table=table)
    _common(m, "rscd", "Synthetic MIRIMAGE RSCD group-skip table", subarray=None)
    return m


def dark_model(subarray: str, readpatt: str, ngroups: int = inst.MAX_GROUPS):
    """DarkMIRIModel for one subarray and read pattern, shape (1, ngroups, ysize, xsize) in DN:
    dark[0, g] = rate * frame_time * g (see the module docstring)."""
    from stdatamodels.jwst.datamodels import DarkMIRIModel

    rate = np.asarray(dm.dark_rate()[inst.SUBARRAYS[subarray].slices], dtype=np.float32)
    tframe = inst.frame_time(subarray, readpatt)
    t = (tframe * np.arange(ngroups)).astype(np.float32)
    data = rate[None, None, :, :] * t[None, :, None, None]
    m = DarkMIRIModel(data=data, dq=np.zeros(data.shape, dtype=np.uint32))
    _common(m, "dark", f"Synthetic MIRIMAGE dark {subarray} {readpatt}: detector_model.dark_rate() x t",
            subarray=subarray, exposure__readpatt=readpatt, exposure__type="MIR_IMAGE",
            exposure__nframes=1, exposure__groupgap=0, exposure__ngroups=ngroups, exposure__nints=1,
            instrument__filter="N/A")
    return m


def reset_model(subarray: str, readpatt: str, ngroups: int = RESET_GROUPS):
    """ResetModel for one subarray and read pattern: zeros, (1, ngroups, ysize, xsize) DN."""
    from stdatamodels.jwst.datamodels import ResetModel

    s = inst.SUBARRAYS[subarray]
    m = ResetModel(data=np.zeros((1, ngroups, s.ysize, s.xsize), dtype=np.float32),
                   dq=np.zeros((s.ysize, s.xsize), dtype=np.uint32))
    _common(m, "reset", f"Synthetic MIRIMAGE reset {subarray} {readpatt}: zero (no reset anomaly)",
            subarray=subarray, exposure__readpatt=readpatt, exposure__ngroups=ngroups, exposure__nints=1)
    return m


def gain_model():
    """GainModel, full frame: instrument.GAIN e-/DN."""
    from stdatamodels.jwst.datamodels import GainModel

    m = GainModel(data=_full(inst.GAIN))
    _common(m, "gain", f"Synthetic MIRIMAGE gain, {inst.GAIN:g} e-/DN", instrument__filter="ANY")
    return m


def readnoise_model():
    """ReadnoiseModel, full frame: instrument.READNOISE_CDS DN (CDS noise)."""
    from stdatamodels.jwst.datamodels import ReadnoiseModel

    m = ReadnoiseModel(data=_full(inst.READNOISE_CDS))
    _common(m, "readnoise", f"Synthetic MIRIMAGE CDS read noise, {inst.READNOISE_CDS:g} DN",
            instrument__filter="ANY")
    return m


# --- Image2 / Image3 ---------------------------------------------------------------------

def distortion_reference():
    """DistortionModel (ASDF): 0-based full-frame detector px -> V2/V3 arcsec, see distortion.py."""
    from stdatamodels.jwst.datamodels import DistortionModel

    from .distortion import distortion_model

    m = DistortionModel(model=distortion_model(), input_units="pixel", output_units="arcsec")
    _common(m, "distortion", "Synthetic MIRIMAGE distortion from the pysiaf MIRIM_FULL SIAF polynomials",
            subarray="FULL", exposure__type="MIR_IMAGE")
    m.meta.instrument.band = "N/A"
    m.meta.instrument.channel = "N/A"
    return m


def filteroffset_model():
    """FilteroffsetModel (ASDF): zero column/row offsets (px) for all filters."""
    from stdatamodels.jwst.datamodels import FilteroffsetModel

    filters = [{"filter": f, "column_offset": 0.0, "row_offset": 0.0} for f in inst.FILTERS]
    m = FilteroffsetModel(filters=filters, instrument=inst.INSTRUMENT)
    _common(m, "filteroffset", "Synthetic MIRIMAGE filter offsets: zero", subarray="FULL",
            exposure__type="MIR_IMAGE")
    m.meta.input_units = "pixel"
    return m


def flat_model(filt: str):
    """FlatModel, full frame: detector_model.flat_field(filt); dead pixels (0) flagged
    NO_FLAT_FIELD|DO_NOT_USE; ERR 0 (the flat is exact)."""
    from stdatamodels.jwst.datamodels import FlatModel

    f = _flags()
    data = np.array(dm.flat_field(filt), dtype=np.float32)
    dq = np.zeros(inst.FULL_SHAPE, dtype=np.uint32)
    r, c = dm.bad_pixel_positions("dead")
    dq[r, c] = f["NO_FLAT_FIELD"] | f["DO_NOT_USE"]
    m = FlatModel(data=data, dq=dq, err=_full(0.0))
    m.dq_def = _dq_def(["DO_NOT_USE", "NO_FLAT_FIELD"])
    _common(m, "flat", f"Synthetic MIRIMAGE {filt} flat: detector_model.flat_field", instrument__filter=filt,
            exposure__type="MIR_IMAGE", exposure__readpatt="ANY")
    return m


def photom_model():
    """MirImgPhotomModel: photmjsr = instrument.PHOTMJSR[filter] (MJy/sr per DN/s) for every
    filter x subarray; no time-dependence tables (jwst then applies no time correction)."""
    from stdatamodels.jwst.datamodels import MirImgPhotomModel

    rows = [(f, s, inst.PHOTMJSR[f], 0.0) for f in inst.FILTERS for s in ALL_SUBARRAYS]
    table = np.array(rows, dtype=[("filter", "S12"), ("subarray", "S17"),
                                  ("photmjsr", "<f4"), ("uncertainty", "<f4")])
    m = MirImgPhotomModel(phot_table=table)
    _common(m, "photom", "Synthetic MIRIMAGE photometric calibration (instrument.PHOTMJSR)", subarray=None,
            exposure__type="MIR_IMAGE")
    m.meta.photometry.pixelarea_steradians = inst.pixel_area_sr()
    m.meta.photometry.pixelarea_arcsecsq = inst.PIXEL_SCALE**2
    return m


def relative_pixel_area() -> np.ndarray:
    """Full-frame pixel solid angle from the distortion (exact quadrilateral of the four
    pixel corners in V2/V3) divided by the nominal instrument.PIXEL_SCALE**2."""
    from .distortion import detector_to_v2v3

    ny, nx = inst.FULL_SHAPE
    yc, xc = np.mgrid[0:ny + 1, 0:nx + 1].astype(float) - 0.5
    v2, v3 = detector_to_v2v3(xc, yc)
    # shoelace formula over corners (0,0) (0,1) (1,1) (1,0) of every pixel
    x0, x1, x2, x3 = v2[:-1, :-1], v2[:-1, 1:], v2[1:, 1:], v2[1:, :-1]
    y0, y1, y2, y3 = v3[:-1, :-1], v3[:-1, 1:], v3[1:, 1:], v3[1:, :-1]
    area = 0.5 * np.abs((x0 * y1 - x1 * y0) + (x1 * y2 - x2 * y1) + (x2 * y3 - x3 * y2) + (x3 * y0 - x0 * y3))
    return (area / inst.PIXEL_SCALE**2).astype(np.float32)


def area_model():
    """PixelAreaModel, full frame: relative pixel area (see relative_pixel_area), with
    PIXAR_SR = instrument.pixel_area_sr() and PIXAR_A2 = PIXEL_SCALE**2 arcsec^2."""
    from stdatamodels.jwst.datamodels import PixelAreaModel

    m = PixelAreaModel(data=relative_pixel_area())
    _common(m, "area", "Synthetic MIRIMAGE pixel area map from the synthetic distortion", subarray=None,
            instrument__filter="ANY")
    m.meta.photometry.pixelarea_steradians = inst.pixel_area_sr()
    m.meta.photometry.pixelarea_arcsecsq = inst.PIXEL_SCALE**2
    return m


PIXEL_BOX_VARIANCE = 3.0 / 12.0  # px^2: detector pixel (1/12) + drizzle overlap of input and output pixels (2/12)


def apcorr_sigma_px(filt: str) -> float:
    """Width in native px of the PSF that source_catalog measures in an i2d image: the optical
    Gaussian (FWHM instrument.psf_fwhm_arcsec) integrated over the detector pixel and
    drizzled (pixfrac 1, native scale: a triangle, the overlap of input and output pixels),
    approximated by a Gaussian of variance sigma^2 + 3/12 px^2."""
    sigma = inst.psf_fwhm_arcsec(filt) * GAUSS_FWHM_TO_SIGMA / inst.PIXEL_SCALE
    return math.sqrt(sigma**2 + PIXEL_BOX_VARIANCE)


def gaussian_apcorr_rows(filt: str) -> list[tuple[float, float, float, float, float]]:
    """(eefraction, radius px, apcorr, skyin px, skyout px) for a circular Gaussian of width
    apcorr_sigma_px(filt): r(EE) = sigma sqrt(-2 ln(1 - EE)), apcorr = 1/EE; sky annulus
    from ceil(4 sigma) + 2 px to that + max(6, ceil(3 sigma)) px."""
    sigma = apcorr_sigma_px(filt)
    skyin = math.ceil(4 * sigma) + 2.0
    skyout = skyin + max(6.0, math.ceil(3 * sigma))
    return [(ee, sigma * math.sqrt(-2.0 * math.log(1.0 - ee)), 1.0 / ee, skyin, skyout) for ee in APCORR_EE]


def apcorr_model():
    """MirImgApcorrModel: Gaussian-PSF aperture corrections per filter x subarray."""
    from stdatamodels.jwst.datamodels import MirImgApcorrModel

    rows = [(f, s, *row) for f in inst.FILTERS for s in ALL_SUBARRAYS for row in gaussian_apcorr_rows(f)]
    table = np.array(rows, dtype=[("filter", "S12"), ("subarray", "S17"), ("eefraction", "<f4"),
                                  ("radius", "<f4"), ("apcorr", "<f4"), ("skyin", "<f4"), ("skyout", "<f4")])
    m = MirImgApcorrModel(apcorr_table=table)
    _common(m, "apcorr", "Synthetic MIRIMAGE aperture corrections for a Gaussian PSF", subarray=None,
            exposure__type="MIR_IMAGE")
    m.meta.instrument.channel = "N/A"
    return m


VEGA_JY_AT_10UM = 36.7  # Vega flux density at 10 micron in Jy; Rayleigh-Jeans (F_nu ~ lambda^-2) elsewhere


def abvega_offsets() -> dict[str, float]:
    """m_AB - m_Vega per filter: 2.5 log10(3631 Jy / F_nu,Vega(pivot wavelength))."""
    return {f: 2.5 * math.log10(3631.0 / (VEGA_JY_AT_10UM * (10.0 / inst.PIVOT_WAVELENGTH[f]) ** 2))
            for f in inst.FILTERS}


def abvegaoffset_model():
    """ABVegaOffsetModel (ASDF): table of filter, abvega_offset (mag)."""
    from astropy.table import Table
    from stdatamodels.jwst.datamodels import ABVegaOffsetModel

    offs = abvega_offsets()
    table = Table({"filter": list(offs), "abvega_offset": np.array(list(offs.values()), dtype=np.float32)})
    m = ABVegaOffsetModel()
    m.abvega_offset = table
    _common(m, "abvegaoffset", "Synthetic MIRIMAGE AB-Vega offsets (Rayleigh-Jeans Vega)", subarray=None)
    return m


# --- writing -----------------------------------------------------------------------------

_STRUCTURAL = {"XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "EXTEND", "SIMPLE"}


def save_reference(model, path: Path, compress: bool = True, raw_hdus: tuple[str, ...] = ()) -> Path:
    """Validate and write a reference. FITS image HDUs (except ``raw_hdus``) become lossless
    GZIP_1 tile-compressed HDUs (one tile per 2-D plane) when ``compress``; ASDF references
    are written as is."""
    from astropy.io import fits
    from stdatamodels import fits_support

    path = Path(path)
    model.meta.filename = path.name
    model.meta.model_type = model.__class__.__name__
    model.meta.date = FILE_DATE
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # ValidationWarning: fail loudly
        model.validate()
    if path.suffix == ".asdf":
        with warnings.catch_warnings():
            warnings.simplefilter("error", category=UserWarning)
            model.save(str(path))
        return path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Card is too long")
        hdulist = fits_support.to_fits(model._instance, model._schema)
        if compress:
            for i, hdu in enumerate(hdulist):
                if (isinstance(hdu, fits.ImageHDU) and hdu.data is not None and hdu.data.ndim >= 2
                        and hdu.name not in raw_hdus):
                    hdr = fits.Header([c for c in hdu.header.cards
                                       if c.keyword not in _STRUCTURAL and not c.keyword.startswith("NAXIS")])
                    tile = (1,) * (hdu.data.ndim - 2) + hdu.data.shape[-2:]
                    hdulist[i] = fits.CompImageHDU(data=hdu.data, header=hdr, name=hdu.name,
                                                   compression_type="GZIP_1", quantize_level=0.0,
                                                   tile_shape=tile)
            # The ASDF extension's FITS hash now differs from the HDUs: stdatamodels then
            # re-reads the FITS keywords on open (its path for externally edited files).
        hdulist.writeto(path, overwrite=True)
    return path
