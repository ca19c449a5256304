"""Provenance of a cleaned cal file, in the manner of a jwst step's ``S_*`` keywords.

Primary-header keywords (written through stdatamodels' ``extra_fits``) say that the
cleaning ran, which background model it applied with which scale, and every cleaning
parameter; one HISTORY card says the same in words.
"""

from __future__ import annotations

import warnings

__all__ = ["PARAMETER_KEYWORDS", "add_provenance"]

#: Config key -> primary-header keyword of the cleaned file.
PARAMETER_KEYWORDS = {
    "DETECT_THRESH": "MRC_DTHR", "MEDIAN_FILTER": "MRC_MEDF", "WINDOW_SIZE": "MRC_WSIZ",
    "SUPER_BKG_SUB": "MRC_SBKG", "SMALL_SOURCE_THRESH": "MRC_SSRC", "DILATE_SEG": "MRC_DSEG",
    "DILATE_ITERATIONS": "MRC_DITR", "MEDIAN_THRESH": "MRC_MTHR", "template_smooth": "MRC_TSMO",
    "small_group_background": "MRC_SGRP", "clean_outlier_sigma": "MRC_OUTS", "clean_second_pass": "MRC_2PAS",
}


def _cards(prov: dict) -> list[list]:
    from .. import __version__

    cfg = prov.get("cfg", {})
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
        if key in cfg:
            cards.append([kw, cfg[key], f"config {key}"[:47]])
    return cards


def add_provenance(model, prov: dict) -> None:
    """Add the cleaning's keywords and a HISTORY entry to an open ImageModel."""
    from stdatamodels.util import create_history_entry

    cards = _cards(prov)
    extra = model.extra_fits if "extra_fits" in model.instance else None
    if extra is None:
        model.extra_fits = {}
    if "PRIMARY" not in model.extra_fits.instance:
        model.extra_fits.PRIMARY = {}
    header = list(model.extra_fits.PRIMARY.instance.get("header", []))
    names = {c[0] for c in cards}
    header = [c for c in header if c[0] not in names] + cards
    model.extra_fits.PRIMARY.header = header
    text = (f"mirim-reduce clean: background {prov.get('method', 'none')}"
            + (f" ({prov['model']}" + (f", scale {prov['scale']:.5g} MJy/sr" if prov.get("scale") is not None else "")
               + ")" if prov.get("model") else "")
            + f"; {prov.get('n_filled', 0)} pixel(s) median-filled")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.history.append(create_history_entry(text))
