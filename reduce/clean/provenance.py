"""Provenance of a cleaned cal file, in the manner of a jwst step's ``S_*`` keywords.

Primary-header keywords say that the cleaning ran, which background model it applied with
which scale, and every cleaning parameter; one HISTORY card says the same in words.
Keywords outside the jwst schemas are read back by stdatamodels into ``extra_fits``.
"""

from __future__ import annotations

__all__ = ["PARAMETER_KEYWORDS", "add_provenance"]

#: Config key -> primary-header keyword of the cleaned file (the keys of
#: :meth:`reduce.params.CleanParams.parameters`).
PARAMETER_KEYWORDS = {
    "DETECT_THRESH": "MRC_DTHR", "MEDIAN_FILTER": "MRC_MEDF", "WINDOW_SIZE": "MRC_WSIZ",
    "SUPER_BKG_SUB": "MRC_SBKG", "SMALL_SOURCE_THRESH": "MRC_SSRC", "DILATE_SEG": "MRC_DSEG",
    "DILATE_ITERATIONS": "MRC_DITR", "MEDIAN_THRESH": "MRC_MTHR", "template_smooth": "MRC_TSMO",
    "small_group_background": "MRC_SGRP", "clean_outlier_sigma": "MRC_OUTS", "clean_second_pass": "MRC_2PAS",
    "clean_mask_pixmap_stepsize": "MRC_MPXS",
}


def _cards(prov: dict) -> list[list]:
    from .. import __version__

    parameters = prov.get("parameters", {})
    cards = [["S_MRCLN", "COMPLETE", "mirim-reduce cleaning (masks, fill, background)"],
             ["MRC_VER", __version__, "mirim-reduce version that cleaned this file"],
             ["MRC_BKG", prov.get("method", "none"), "background removed: template, background2d, none"],
             ["MRC_MODL", prov.get("model", ""), "template model / Background2D box (cross-validated)"],
             ["MRC_GRP", str(prov.get("group", ""))[:68], "cleaning group (filter_time_det_subarray_readpatt)"],
             ["MRC_NGRP", int(prov.get("n_group", 0)), "exposures in the cleaning group"],
             ["MRC_NFIL", int(prov.get("n_filled", 0)), "pixels median-filled (DQ FLUX_ESTIMATED)"]]
    if prov.get("scale") is not None:
        cards.append(["MRC_SCAL", float(prov["scale"]), "[MJy/sr] scale of the normalised template"])
    if prov.get("pass"):
        cards.append(["MRC_PASS", str(prov["pass"]), "cleaning pass"])
    for key, kw in PARAMETER_KEYWORDS.items():
        if key in parameters:
            cards.append([kw, parameters[key], f"config {key}"[:47]])
    return cards


def history_text(prov: dict) -> str:
    """The HISTORY sentence of a cleaned file."""
    return (f"mirim-reduce clean: background {prov.get('method', 'none')}"
            + (f" ({prov['model']}" + (f", scale {prov['scale']:.5g} MJy/sr" if prov.get("scale") is not None else "")
               + ")" if prov.get("model") else "")
            + f"; {prov.get('n_filled', 0)} pixel(s) median-filled")


def add_provenance(header, prov: dict) -> None:
    """Add the cleaning's keywords and a HISTORY card to a primary `~astropy.io.fits.Header`
    (in place; a keyword already there is replaced)."""
    import warnings

    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    for name, value, comment in _cards(prov):
        header.remove(name, ignore_missing=True, remove_all=True)
        with warnings.catch_warnings():  # a long value leaves less room: the comment is cut
            warnings.simplefilter("ignore", VerifyWarning)
            image = fits.Card(name, value, comment).image
        header.append(fits.Card.fromstring(image), end=True)
    header.add_history(history_text(prov))
