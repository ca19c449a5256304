"""The second pass's files in the first pass's folder: projected masks and promotion.

``pass1/masks/<stem>_mask.fits`` (uint8 MASK, 1 = source on the mosaic) is what the first-pass
mosaic of an exposure's product saw; ``pass1/masks/<product>.json`` marks a mosaic done.
A group without any projected mask is promoted: pass 1's files become pass 2's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..fsutil import atomic_path
from ..workspace import Workspace

__all__ = ["FIRST_PASS_LABEL", "mask_path", "marker_path", "read_mask", "promote"]

#: The first pass's label (MRC_PASS, the summary's "pass", part of its groups' identities).
FIRST_PASS_LABEL = "pass 1"


def mask_path(first: Workspace, stem: str) -> Path:
    """Where pass 1 leaves exposure ``stem``'s projected mosaic mask (uint8 MASK, 1 = source)."""
    return first.dir("masks") / f"{stem}_mask.fits"


def marker_path(first: Workspace, product: str) -> Path:
    """The file that marks ``product``'s masks done (written last)."""
    return first.dir("masks") / f"{product}.json"


def read_mask(first: Workspace, stem: str) -> tuple[np.ndarray, tuple[np.ndarray, float] | None] | None:
    """(the projected mask of ``stem`` (bool), its alignment correction and the correction's
    residual in pixels (:func:`.alignment.from_header`; None when the mosaic gave none)), or
    None if pass 1 made no mask."""
    from astropy.io import fits

    from .alignment import from_header

    path = mask_path(first, stem)
    if not path.is_file():
        return None
    with fits.open(path, memmap=False) as hdul:
        return np.asarray(hdul["MASK"].data, bool), from_header(hdul[0].header)


def promote(first: Workspace, ws: Workspace, stems: list[str], group: str, label: str) -> None:
    """Pass 2 of a group without projected masks: pass 1's files, with MRC_PASS = ``label``
    (what a recomputation would give: its inputs are the same)."""
    from astropy.io import fits

    from .member import segm_path

    for stem in stems:
        segm = segm_path(ws, stem)
        with atomic_path(segm) as tmp:
            shutil.copyfile(segm_path(first, stem), tmp)
        with atomic_path(ws.output("clean", stem)) as tmp:
            shutil.copyfile(first.output("clean", stem), tmp)
            with fits.open(tmp, mode="update") as hdul:
                hdul[0].header["MRC_PASS"] = label
    qa_dir = first.dir("clean") / "qa"
    for png in [qa_dir / f"{group}_template.png", *(qa_dir / f"{s}_clean.png" for s in stems)]:
        if png.is_file():
            with atomic_path(ws.dir("clean") / "qa" / png.name) as tmp:
                shutil.copyfile(png, tmp)
