"""TA-box header cards whose text values vary in length keep their explanation without astropy
cutting it (a VerifyWarning on every packaging, and a comment cut mid-word)."""
import warnings

from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from reduce.products.tabox import _text_card


def test_text_card_keeps_the_comment_on_the_card_or_as_a_comment_card(tmp_path):
    hdr = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("error", VerifyWarning)
        _text_card(hdr, "MOSAIC", "T_MIRI_F770W_01Dec2026_i2d.fits", "mosaic the cutout was cut from")
        long_name = "A-VERY-LONG-TARGET-NAME_MIRI_F1500W_01Dec2026_o001_i2d.fits"
        _text_card(hdr, "TAATTREF", long_name, "member whose aligned gwcs gives the attitude")
        fits.PrimaryHDU(header=hdr).writeto(tmp_path / "h.fits")
    back = fits.getheader(tmp_path / "h.fits")
    assert back.comments["MOSAIC"] == "mosaic the cutout was cut from"
    assert back["TAATTREF"] == long_name and back.comments["TAATTREF"] == ""
    assert list(back["COMMENT"]) == ["TAATTREF: member whose aligned gwcs gives the attitude"]


def test_a_short_value_with_a_long_comment_is_judged_by_astropys_own_layout(tmp_path):
    """astropy pads a short string value to column 30 before the comment: a length count of the
    bare text would keep a comment that astropy then cuts."""
    hdr = fits.Header()
    comment = "c" * 48  # fits after 'x' alone (10 + 3 + 3 + 48 = 64), not after the padded value field (30 + 3 + 48)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VerifyWarning)
        _text_card(hdr, "MOSAIC", "x", comment)
        fits.PrimaryHDU(header=hdr).writeto(tmp_path / "h.fits")
    back = fits.getheader(tmp_path / "h.fits")
    assert back["MOSAIC"] == "x" and list(back["COMMENT"]) == [f"MOSAIC: {comment}"]
