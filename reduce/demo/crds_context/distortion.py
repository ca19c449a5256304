"""MIRI imager distortion: 0-based full-frame detector pixels <-> V2/V3 (arcsec).

The transform is built from the MIRIM_FULL aperture of pysiaf's MIRI SIAF, the same
polynomials the SIAF defines (planar approximation, as pysiaf's ``det_to_tel``):

    x_sci = x + 1, y_sci = y + 1                         (SIAF science frame is 1-based; MIRI det == sci)
    (x_idl, y_idl) = Sci2Idl(x_sci - XSciRef, y_sci - YSciRef)   (degree-4 polynomials, arcsec)
    v2 = V2Ref + VIdlParity x_idl cos(a) + y_idl sin(a),  v3 = V3Ref - VIdlParity x_idl sin(a) + y_idl cos(a)
                                                         (a = V3IdlYAngle; as jwst's IdealToV2V3)

the last step is an AffineTransformation2D (jwst's IdealToV2V3 has no ASDF converter), and
the analytic inverse is that affine's exact inverse followed by degree-8 polynomials
fitted (least squares, deterministic) to the exact inverse of Sci2Idl over the detector plus an
8-pixel margin: the SIAF's own degree-4 Idl2Sci misses by up to 0.1 px at the detector corners,
the fitted ones by < 3e-4 px. :func:`distortion_model`
returns exactly the astropy model written to the ``distortion`` reference, and
:func:`detector_to_v2v3` / :func:`v2v3_to_detector` evaluate that same object, so sources
placed with them land where the pipeline's WCS (detector -> v2v3, with the zero filter
offsets of the ``filteroffset`` reference) says.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ... import instrument as inst

SIAF_APERTURE = "MIRIM_FULL"


@lru_cache(maxsize=1)
def siaf_parameters() -> dict:
    """The MIRIM_FULL SIAF numbers the model uses (reference points in 1-based sci px, arcsec, deg)."""
    import warnings

    import pysiaf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap = pysiaf.Siaf("MIRI")[SIAF_APERTURE]
    coeffs = ap.get_polynomial_coefficients()
    return {
        "XSciRef": float(ap.XSciRef), "YSciRef": float(ap.YSciRef),
        "V2Ref": float(ap.V2Ref), "V3Ref": float(ap.V3Ref),
        "V3IdlYAngle": float(ap.V3IdlYAngle), "VIdlParity": int(ap.VIdlParity),
        "degree": int(ap.Sci2IdlDeg),
        **{k: np.asarray(v, dtype=float) for k, v in coeffs.items()},
    }


def _siaf_poly(coeffs: np.ndarray, degree: int, name: str):
    """pysiaf's triangular coefficient list (sum_i sum_{j<=i} A_k x^(i-j) y^j) as a Polynomial2D."""
    from astropy.modeling.models import Polynomial2D

    params, k = {}, 0
    for i in range(degree + 1):
        for j in range(i + 1):
            params[f"c{i - j}_{j}"] = float(coeffs[k])
            k += 1
    return Polynomial2D(degree, name=name, **params)


INVERSE_DEGREE = 8
_INVERSE_MARGIN = 8.0  # px outside the detector included in the inverse fit


def _inverse_poly(sci2idl):
    """Polynomials (x_idl, y_idl) -> (x_sci - XSciRef, y_sci - YSciRef) fitted to invert ``sci2idl``."""
    from astropy.modeling.models import Polynomial2D

    p = siaf_parameters()
    ny, nx = inst.FULL_SHAPE
    m = _INVERSE_MARGIN
    xs, ys = np.meshgrid(np.linspace(-0.5 - m, nx - 0.5 + m, 241) + 1 - p["XSciRef"],
                         np.linspace(-0.5 - m, ny - 0.5 + m, 241) + 1 - p["YSciRef"])
    xs, ys = xs.ravel(), ys.ravel()
    u, v = sci2idl(xs, ys, xs, ys)  # the & of two 2-D polynomials takes (x, y, x, y)
    scale = 100.0  # arcsec: keeps the least-squares matrix well conditioned
    powers = [(i - j, j) for i in range(INVERSE_DEGREE + 1) for j in range(i + 1)]
    design = np.stack([(u / scale) ** a * (v / scale) ** b for a, b in powers], axis=1)
    out = []
    for target, name in ((xs, "idl2sci_x"), (ys, "idl2sci_y")):
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        params = {f"c{a}_{b}": float(c) / scale ** (a + b) for (a, b), c in zip(powers, coef)}
        out.append(Polynomial2D(INVERSE_DEGREE, name=name, **params))
    return out[0] & out[1]


@lru_cache(maxsize=1)
def distortion_model():
    """The detector (0-based full-frame x, y in px) -> (v2, v3) in arcsec model, with inverse.

    Bounding box (x: 3.5..1027.5, y: -0.5..1023.5) excludes the four reference columns on each side.
    """
    from astropy.modeling.models import AffineTransformation2D, Mapping, Shift

    p = siaf_parameters()
    deg = p["degree"]
    sci2idl = _siaf_poly(p["Sci2IdlX"], deg, "sci2idl_x") & _siaf_poly(p["Sci2IdlY"], deg, "sci2idl_y")
    idl2sci = _inverse_poly(sci2idl)
    to_ref = Shift(1.0 - p["XSciRef"], name="x_det_to_sci_ref") & Shift(1.0 - p["YSciRef"], name="y_det_to_sci_ref")
    from_ref = Shift(p["XSciRef"] - 1.0) & Shift(p["YSciRef"] - 1.0)
    a, par = np.deg2rad(p["V3IdlYAngle"]), p["VIdlParity"]
    matrix = np.array([[par * np.cos(a), np.sin(a)], [-par * np.sin(a), np.cos(a)]])
    idl2v2v3 = AffineTransformation2D(matrix=matrix, translation=[p["V2Ref"], p["V3Ref"]], name="idl2v2v3")

    forward = to_ref | Mapping((0, 1, 0, 1)) | sci2idl | idl2v2v3
    inverse = idl2v2v3.inverse | Mapping((0, 1, 0, 1)) | idl2sci | from_ref
    forward.inverse = inverse
    forward.name = "mirim_det_to_v2v3"
    # inputs stay ('x0', 'x1'): assign_wcs prepends Shift & Shift (filter offset, same input names)
    # and re-binds this bounding box to the result by input name
    ny, nx = inst.FULL_SHAPE
    ref = inst.REFERENCE_COLUMNS
    forward.bounding_box = ((-0.5, ny - 0.5), (ref - 0.5, nx - ref - 0.5))  # (y, x) order
    return forward


def detector_to_v2v3(x, y):
    """0-based full-frame detector (x, y) in px -> (v2, v3) in arcsec (the distortion reference)."""
    return _eval(distortion_model(), x, y)


def v2v3_to_detector(v2, v3):
    """(v2, v3) in arcsec -> 0-based full-frame detector (x, y) in px (the reference's inverse)."""
    return _eval(distortion_model().inverse, v2, v3)


def _eval(model, a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return model(a, b, with_bounding_box=False)
