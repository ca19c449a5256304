"""Data-quality flags by name, with jwst's meaning of "bad".

One definition for the cleaning's source mask, its median fill and stage 3: a pixel is bad
when its DQ carries a flag outside ``good_bits``, read with stdatamodels' flag map exactly
as jwst's resample and outlier-detection steps read their ``good_bits`` parameter
(default ``"~DO_NOT_USE+NON_SCIENCE"``: only DO_NOT_USE and NON_SCIENCE make a pixel bad).
"""

from __future__ import annotations

import numpy as np

__all__ = ["JWST_GOOD_BITS", "flag", "bad_pixels"]

#: The default ``good_bits`` of jwst's resample and outlier_detection steps.
JWST_GOOD_BITS = "~DO_NOT_USE+NON_SCIENCE"


def _flag_map() -> dict[str, int]:
    from stdatamodels.jwst.datamodels import dqflags

    return dqflags.pixel


def flag(name: str) -> int:
    """The value of the DQ flag ``name`` (e.g. ``"FLUX_ESTIMATED"``) in jwst's pixel flag map."""
    return int(_flag_map()[name])


def bad_pixels(dq: np.ndarray, good_bits: str | int | None = JWST_GOOD_BITS) -> np.ndarray:
    """`True` where ``dq`` marks a pixel bad under ``good_bits`` (jwst's convention).

    Parameters
    ----------
    dq : 2D int `~numpy.ndarray`
        DQ array (jwst ``dqflags.pixel`` bits).
    good_bits : str or int
        As jwst's resample ``good_bits``: flag names joined by ``+`` (``~`` in front inverts
        the list: only those flags are bad), or an integer of bits that are acceptable.
    """
    from astropy.nddata.bitmask import bitfield_to_boolean_mask

    return bitfield_to_boolean_mask(np.asarray(dq).astype(np.uint32), good_bits, good_mask_value=False,
                                    dtype=bool, flag_name_map=_flag_map())
