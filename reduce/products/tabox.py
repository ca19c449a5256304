"""The TA box: the MIRI imager aperture MIRIM_TALRS (the LRS target-acquisition region) on a mosaic.

Placement. The aperture is defined by the SIAF in the telescope frame (V2/V3, arcsec):
pysiaf's ``MIRIM_TALRS`` reference point and ``corners('tel')``. Putting V2/V3 on the sky
needs an attitude; the original took ``RA_V1``/``DEC_V1``/``PA_V3`` of the first exposure,
i.e. the commanded pointing, which ignores the alignment (tweakreg) of stage 3. Here the
attitude is the one of the reference member of the mosaic *after* alignment: stage 3 writes
each member with its tweakreg-corrected gwcs (``<stem>_<asn>_crf.fits``, beside the mosaic);
that gwcs maps detector -> v2v3 -> (velocity aberration) -> world, and its ``v2v3 -> world``
part is evaluated at the aperture's V2/V3. The reference member is the first one in name
order (the first exposure, as in the original). The sky positions are then converted to
mosaic pixels with the mosaic's own WCS (the SCI header of the i2d). Without crf files
(outlier detection skipped) the member's cleaned cal file is used and the result says the
attitude is not aligned.

Cutout. ``Cutout2D`` of SCI, ERR and WHT (the weight map) around the aperture reference
point, ``size`` x ``size`` mosaic pixels (the original: 120), NaN (WHT: 0) where the cutout
leaves the mosaic, with the cutout's own WCS. When no pixel of the aperture has data in the
mosaic, no cutout is made and the reason is returned instead.
"""

from __future__ import annotations

import functools

import datetime as _dt
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

APERTURE = "MIRIM_TALRS"
DEFAULT_CUTOUT_SIZE = 120


@dataclass
class TaBox:
    """Where the aperture lands on one mosaic, and what was made of it."""

    mosaic: str
    aperture: str = APERTURE
    reference_member: str = ""
    aligned: bool = True
    v2v3_ref: tuple[float, float] = (0.0, 0.0)
    v2v3_corners: list[tuple[float, float]] = field(default_factory=list)
    sky_ref: tuple[float, float] = (0.0, 0.0)          # (ra, dec) deg
    sky_corners: list[tuple[float, float]] = field(default_factory=list)
    pixel_ref: tuple[float, float] = (0.0, 0.0)        # 0-based mosaic (x, y)
    pixel_corners: list[tuple[float, float]] = field(default_factory=list)
    coverage: float = 0.0                               # fraction of the aperture's pixels with data
    inside: bool = False
    note: str = ""
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def siaf_aperture(name: str = APERTURE):
    import logging

    import pysiaf

    logging.getLogger("pysiaf").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pysiaf.Siaf("MIRI")[name]


def aperture_v2v3(name: str = APERTURE) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """(V2Ref, V3Ref) and the four corners (V2, V3) in arcsec of a MIRI SIAF aperture (the SIAF,
    ~2.5 s to read, is read once per process)."""
    ref, corners = _aperture_v2v3(name)
    return ref, list(corners)


@functools.lru_cache(maxsize=8)
def _aperture_v2v3(name: str) -> tuple[tuple[float, float], tuple[tuple[float, float], ...]]:
    ap = siaf_aperture(name)
    v2, v3 = ap.corners("tel")
    return (float(ap.V2Ref), float(ap.V3Ref)), tuple((float(a), float(b)) for a, b in zip(v2, v3))


def reference_member(product_dir: Path, ws_root: Path | None = None) -> tuple[Path | None, bool]:
    """The member whose aligned gwcs gives the attitude: (path, aligned)."""
    crfs = sorted(Path(product_dir).glob("*_crf.fits"))
    if crfs:
        return crfs[0], True
    asns = sorted(Path(product_dir).glob("*_asn.json"))
    if asns:
        members = sorted(m["expname"] for p in json.loads(asns[0].read_text())["products"] for m in p["members"])
        for m in members:
            p = Path(m)
            if not p.is_file() and ws_root is not None:
                p = Path(ws_root) / "clean" / Path(m).name
            if p.is_file():
                return p, False
    return None, False


def v2v3_to_sky(member: Path, v2: np.ndarray, v3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the ``v2v3 -> world`` part of ``member``'s gwcs (V2/V3 in arcsec -> deg)."""
    from stdatamodels.jwst import datamodels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with datamodels.open(str(member)) as m:
            transform = m.meta.wcs.get_transform("v2v3", "world")
            ra, dec = transform(np.asarray(v2, float), np.asarray(v3, float))
    return np.asarray(ra, float), np.asarray(dec, float)


def mosaic_wcs(header):
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header)


def _polygon_mask(shape: tuple[int, int], corners_xy: np.ndarray) -> np.ndarray:
    """Pixels (of an array of ``shape``) whose centres lie inside the polygon (0-based x, y)."""
    from matplotlib.path import Path as MplPath

    ny, nx = shape
    x0, y0 = np.floor(corners_xy.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners_xy.max(axis=0)).astype(int)
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    inside = MplPath(corners_xy).contains_points(np.column_stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    return xx[inside], yy[inside]


def place(i2d: Path, member: Path, aligned: bool = True, aperture: str = APERTURE) -> TaBox:
    """Where ``aperture`` (MIRIM_TALRS) lands on mosaic ``i2d`` with the attitude of ``member``'s gwcs."""
    from astropy.io import fits

    (v2r, v3r), corners = aperture_v2v3(aperture)
    v2 = np.array([v2r] + [c[0] for c in corners])
    v3 = np.array([v3r] + [c[1] for c in corners])
    ra, dec = v2v3_to_sky(member, v2, v3)
    with fits.open(i2d, memmap=False) as h:
        wcs = mosaic_wcs(h["SCI"].header)
        sci = np.asarray(h["SCI"].data)
        wht = np.asarray(h["WHT"].data) if "WHT" in h else np.isfinite(sci).astype(float)
    x, y = wcs.world_to_pixel_values(ra, dec)
    box = TaBox(mosaic=str(i2d), aperture=aperture, reference_member=Path(member).name, aligned=aligned,
                v2v3_ref=(v2r, v3r), v2v3_corners=corners,
                sky_ref=(float(ra[0]), float(dec[0])), sky_corners=list(zip(ra[1:].tolist(), dec[1:].tolist())),
                pixel_ref=(float(x[0]), float(y[0])), pixel_corners=list(zip(x[1:].tolist(), y[1:].tolist())))
    xs, ys = _polygon_mask(sci.shape, np.column_stack([x[1:], y[1:]]))
    n = len(xs)
    ok = (xs >= 0) & (ys >= 0) & (xs < sci.shape[1]) & (ys < sci.shape[0])
    xi, yi = xs[ok], ys[ok]
    good = np.isfinite(sci[yi, xi]) & (wht[yi, xi] > 0)
    box.coverage = float(good.sum() / n) if n else 0.0
    box.inside = box.coverage > 0
    if not box.inside:
        box.note = (f"{aperture} falls outside the mosaic (reference point at mosaic pixel "
                    f"x={x[0]:.1f}, y={y[0]:.1f}; mosaic {sci.shape[1]}x{sci.shape[0]}): no cutout")
    elif box.coverage < 0.999:
        box.note = f"{aperture} is only partly covered by the mosaic ({100 * box.coverage:.0f}% of its pixels have data)"
    if not aligned:
        box.note = (box.note + "; " if box.note else "") + "attitude from the unaligned cal file (no crf files)"
    return box


def _radec_label(ra: float, dec: float) -> str:
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    c = SkyCoord(ra * u.deg, dec * u.deg)
    return (f"{c.ra.to_string(u.hourangle, sep=':', precision=2, pad=True)} "
            f"{c.dec.to_string(sep=':', precision=1, alwayssign=True, pad=True)}")


def _text_card(hdr, key: str, value: str, comment: str) -> None:
    """``hdr[key] = value`` with ``comment`` on the card when the card holds both, else as a
    COMMENT card ``KEY: comment`` (file and target names vary in length; astropy would cut it).
    Whether they fit is astropy's own formatting: it warns when it cuts a comment."""
    import warnings

    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    with warnings.catch_warnings(record=True) as cut:
        warnings.simplefilter("always", VerifyWarning)
        _ = fits.Card(key, value, comment).image
    if not any(issubclass(w.category, VerifyWarning) for w in cut):
        hdr[key] = (value, comment)
    else:
        hdr[key] = value
        hdr.add_comment(f"{key}: {comment}")


def make_cutout(i2d: Path, box: TaBox, out_base: Path, *, size: int = DEFAULT_CUTOUT_SIZE,
                target: str = "", filt: str = "", version: str = "") -> list[Path]:
    """Write ``out_base``.fits (SCI, ERR, WHT with the cutout WCS), .pdf and .png; return the paths."""
    from astropy.io import fits
    from astropy.nddata import Cutout2D

    from ..fsutil import atomic_path

    with fits.open(i2d, memmap=False) as h:
        wcs = mosaic_wcs(h["SCI"].header)
        planes = {}
        for ext, fill in (("SCI", np.nan), ("ERR", np.nan), ("WHT", 0.0)):
            if ext not in h:
                continue
            data = np.asarray(h[ext].data, dtype=h[ext].data.dtype.newbyteorder("="))
            co = Cutout2D(data, position=box.pixel_ref, size=(size, size), wcs=wcs, mode="partial",
                          fill_value=fill, copy=True)
            planes[ext] = (co, h[ext].header.get("BUNIT"))
        primary = h[0].header
    cut_wcs = planes["SCI"][0].wcs
    hdr0 = fits.Header()
    for key in ("TELESCOP", "INSTRUME", "DETECTOR", "FILTER", "TARGPROP", "TARGNAME", "TARG_RA", "TARG_DEC",
                "PROGRAM", "OBSERVTN", "DATE-OBS", "TIME-OBS"):
        if key in primary:
            hdr0[key] = (primary[key], primary.comments[key])
    hdr0["DATE"] = (_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "UTC date file created")
    hdr0["MRED_VER"] = (version, "mirim-reduce version")
    _text_card(hdr0, "MOSAIC", Path(i2d).name, "mosaic the cutout was cut from")
    hdr0["TAAPER"] = (box.aperture, "SIAF aperture of the TA box")
    _text_card(hdr0, "TAATTREF", box.reference_member, "member whose aligned gwcs gives the attitude")
    hdr0["TAALIGN"] = (box.aligned, "attitude from the tweakreg-aligned WCS")
    hdr0["TA_RA"] = (box.sky_ref[0], "[deg] RA of the aperture reference point")
    hdr0["TA_DEC"] = (box.sky_ref[1], "[deg] Dec of the aperture reference point")
    hdr0["TA_V2"] = (box.v2v3_ref[0], "[arcsec] V2 of the aperture reference point")
    hdr0["TA_V3"] = (box.v2v3_ref[1], "[arcsec] V3 of the aperture reference point")
    for i, (ra, dec) in enumerate(box.sky_corners, 1):
        hdr0[f"TA_RA{i}"] = (ra, f"[deg] RA of aperture corner {i}")
        hdr0[f"TA_DEC{i}"] = (dec, f"[deg] Dec of aperture corner {i}")
    hdr0["TACOVER"] = (round(box.coverage, 6), "fraction of the aperture with data")
    hdr0["CUTSIZE"] = (size, "[px] cutout size")
    xo, yo = cutout_origin(planes["SCI"][0])
    hdr0["CUTX0"] = (int(xo), "mosaic x (0-based) of cutout pixel 0")
    hdr0["CUTY0"] = (int(yo), "mosaic y (0-based) of cutout pixel 0")
    hdus = [fits.PrimaryHDU(header=hdr0)]
    for ext, (co, bunit) in planes.items():
        hdr = cut_wcs.to_header(relax=True)
        if bunit:
            hdr["BUNIT"] = bunit
        hdus.append(fits.ImageHDU(co.data.astype(np.float32), header=hdr, name=ext))
    out_base.parent.mkdir(parents=True, exist_ok=True)
    fits_path = out_base.parent / (out_base.name + ".fits")
    with atomic_path(fits_path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    pdf, png = out_base.parent / (out_base.name + ".pdf"), out_base.parent / (out_base.name + ".png")
    _figure(planes["SCI"][0].data, cut_wcs, box, planes["SCI"][0], pdf, png, target=target, filt=filt,
            bunit=planes["SCI"][1] or "", size=size)
    return [fits_path, pdf, png]


def cutout_origin(co) -> tuple[int, int]:
    """Mosaic (x, y) of cutout pixel (0, 0), also when the cutout overhangs the mosaic
    (``Cutout2D.origin_original`` is the origin of the overlap only)."""
    return (int(co.origin_original[0] - co.slices_cutout[1].start),
            int(co.origin_original[1] - co.slices_cutout[0].start))


def _compass(ax, wcs, shape, length_px: float) -> None:
    """North and East arrows from the cutout's WCS, in the lower left corner."""
    ny, nx = shape
    x0, y0 = 0.25 * nx, 0.25 * ny
    ra0, dec0 = wcs.pixel_to_world_values(x0, y0)
    step = 1.0 / 3600.0
    for label, (dra, ddec) in (("N", (0.0, step)), ("E", (step / np.cos(np.deg2rad(dec0)), 0.0))):
        x1, y1 = wcs.world_to_pixel_values(ra0 + dra, dec0 + ddec)
        d = np.array([x1 - x0, y1 - y0])
        d = d / np.hypot(*d) * length_px
        ax.annotate("", xy=(x0 + d[0], y0 + d[1]), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", color="yellow", lw=1.5))
        ax.text(x0 + 1.25 * d[0], y0 + 1.25 * d[1], label, color="yellow", ha="center", va="center",
                fontsize=10, fontweight="bold")


def asinh_norm(data: np.ndarray):
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval

    finite = data[np.isfinite(data)]
    if finite.size == 0:
        finite = np.zeros(1)
    return ImageNormalize(finite, interval=PercentileInterval(99.5), stretch=AsinhStretch(0.1))


def save_figure(fig, pdf: Path | None, png: Path | None, dpi: int = 110) -> None:
    """Save without timestamps (identical inputs, identical bytes), atomically."""
    from ..fsutil import atomic_path

    if pdf is not None:
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": "mirim-reduce",
                                                     "Producer": "mirim-reduce"})
    if png is not None:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": "mirim-reduce"})


def _figure(data, wcs, box: TaBox, cutout, pdf: Path, png: Path, *, target: str, filt: str, bunit: str,
            size: int) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    fig = plt.figure(figsize=(6.4, 6.0))
    ax = fig.add_subplot(1, 1, 1, projection=wcs)
    im = ax.imshow(data, origin="lower", cmap="inferno", norm=asinh_norm(data), interpolation="nearest")
    x0, y0 = cutout_origin(cutout)
    corners = np.array(box.pixel_corners) - [x0, y0]
    ax.add_patch(Polygon(corners, closed=True, fill=False, edgecolor="cyan", lw=1.8))
    rx, ry = box.pixel_ref[0] - x0, box.pixel_ref[1] - y0
    ax.plot([rx], [ry], marker="+", color="cyan", ms=10)
    _compass(ax, wcs, data.shape, 0.1 * size)
    ax.coords[0].set_axislabel("RA (ICRS)")
    ax.coords[1].set_axislabel("Dec (ICRS)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=bunit)
    label = (f"{target}  {filt}  {box.aperture}\n"
             f"ref. point {_radec_label(*box.sky_ref)} (ICRS)"
             + (f"\ncoverage {100 * box.coverage:.0f}%" if box.coverage < 0.999 else ""))
    ax.set_title(label, fontsize=9)
    fig.tight_layout()
    save_figure(fig, pdf, png)
    plt.close(fig)
