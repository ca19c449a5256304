"""Mosaic groups and names from jwst's level-3 association rules (reduce.stages.asn_rules)."""

from pathlib import Path

import pytest
from astropy.io import fits

from reduce.stages.stage3 import mosaic_groups


def _cal(d: Path, obs: int, exp: int, target: str, filt: str, subarray: str = "FULL",
         act: str = "01") -> Path:
    """A header-only cal-like file of program 01234 (what the rules read)."""
    h = fits.Header({"PROGRAM": "01234", "OBSERVTN": f"{obs:03d}", "VISIT": "001", "TARGNAME": target,
                     "TARGPROP": target, "INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "EXP_TYPE": "MIR_IMAGE",
                     "FILTER": filt, "SUBARRAY": subarray, "VISITYPE": "PRIME_TARGETED_FIXED",
                     "TSOVISIT": False, "BKGDTARG": False})
    f = d / f"jw01234{obs:03d}001_021{act}_{exp:05d}_mirimage_cal.fits"
    fits.PrimaryHDU(header=h).writeto(f)
    return f


def _old_groups(files, mosaic_per):
    """The hand-made grouping this replaced (one target assumed, t001, no subarray)."""
    out = {}
    for f in sorted(files):
        h = fits.getheader(f)
        p, filt = str(h["PROGRAM"]).zfill(5), str(h["FILTER"]).lower()
        name = (f"jw{p}-c1000_t001_miri_{filt}" if mosaic_per == "filter"
                else f"jw{p}-o{str(h['OBSERVTN']).zfill(3)}_t001_miri_{filt}")
        out.setdefault(name, []).append(Path(f))
    return out


def _names(groups):
    return {k: sorted(p.name for p in v) for k, v in groups.items()}


@pytest.fixture
def two_targets(tmp_path):
    """Program 01234: NGC-A in observations 1 and 3, NGC-B in observation 2, all FULL."""
    files = [_cal(tmp_path, 1, e, "NGC-A", "F770W") for e in (1, 2)]
    files += [_cal(tmp_path, 1, e, "NGC-A", "F1500W", act="03") for e in (1, 2)]
    files += [_cal(tmp_path, 2, e, "NGC-B", "F770W") for e in (1, 2, 3)]
    files += [_cal(tmp_path, 3, e, "NGC-A", "F770W") for e in (1, 2)]
    return files


def test_one_mosaic_per_observation_target_and_filter(two_targets):
    g = _names(mosaic_groups(two_targets, "observation"))
    assert set(g) == {"jw01234-o001_t001_miri_f770w", "jw01234-o001_t001_miri_f1500w",
                      "jw01234-o002_t002_miri_f770w", "jw01234-o003_t001_miri_f770w"}
    assert all(len({n[:10] for n in v}) == 1 for v in g.values())  # one observation each
    assert len(g["jw01234-o002_t002_miri_f770w"]) == 3


def test_mosaic_per_filter_never_mixes_targets(two_targets):
    g = _names(mosaic_groups(two_targets, "filter"))
    # NGC-A F770W spans observations 1 and 3: the group candidate; the others are single-observation
    assert set(g) == {"jw01234-c1000_t001_miri_f770w", "jw01234-o001_t001_miri_f1500w",
                      "jw01234-o002_t002_miri_f770w"}
    assert len(g["jw01234-c1000_t001_miri_f770w"]) == 4
    assert not any(n.startswith("jw01234002") for n in g["jw01234-c1000_t001_miri_f770w"])
    # the hand-made grouping put both targets' F770W in one mosaic
    old = _names(_old_groups(two_targets, "filter"))
    assert len(old["jw01234-c1000_t001_miri_f770w"]) == 7


def test_one_target_same_groups_and_names_as_before(tmp_path):
    files = [_cal(tmp_path, o, e, "FIELD", f, act=a) for o, f, a in ((1, "F770W", "01"), (1, "F1500W", "03"),
                                                                       (2, "F770W", "01")) for e in (1, 2)]
    assert _names(mosaic_groups(files, "observation")) == _names(_old_groups(files, "observation"))
    new, old = _names(mosaic_groups(files, "filter")), _names(_old_groups(files, "filter"))
    assert new["jw01234-c1000_t001_miri_f770w"] == old["jw01234-c1000_t001_miri_f770w"]
    # a filter in one observation only is that observation's product (the rules prune the twin)
    assert new["jw01234-o001_t001_miri_f1500w"] == old["jw01234-c1000_t001_miri_f1500w"]


def test_subarray_in_the_name_and_never_mixed(tmp_path):
    files = [_cal(tmp_path, 1, e, "FIELD", "F770W", "SUB256") for e in (1, 2)]
    files += [_cal(tmp_path, 2, e, "FIELD", "F770W") for e in (1, 2)]
    g = _names(mosaic_groups(files, "filter"))
    assert set(g) == {"jw01234-o001_t001_miri_f770w-sub256", "jw01234-o002_t001_miri_f770w"}
