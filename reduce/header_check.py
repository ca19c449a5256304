"""FILTER, SUBARRAY and READPATT of a MIRI imager exposure, checked before it is reduced.

A value must be a MIRI imager one, and the primary header must agree with the file's ASDF
metadata (the ``ASDF`` extension of a jwst uncal file), which stdatamodels reads in preference
to the header: a disagreement would reduce the file as something its header does not say.
The valid values come from stdatamodels' schemas (``keyword_filter``, ``subarray``,
``keyword_readpatt``), narrowed to MIRI: the subarrays of the schema's MIRI group (plus FULL),
the read patterns FAST*/SLOW* (MIRI's), and the filters stdatamodels lists for the MIRI
imager's filter offsets (``FilteroffsetModel``), when it does.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path

from . import instrument as inst
from .errors import InputError

#: header keyword -> (ASDF meta path, what a value is called in messages)
KEYWORDS = {"FILTER": (("instrument", "filter"), "filter"),
            "SUBARRAY": (("subarray", "name"), "subarray"),
            "READPATT": (("exposure", "readpatt"), "read pattern")}


def _schema(name: str) -> dict:
    from importlib.resources import files

    import yaml

    text = (files("stdatamodels.jwst.datamodels") / "schemas" / f"{name}.schema.yaml").read_text()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["properties"]["meta"]["properties"]


def _miri_imager_filters() -> set[str] | None:
    try:
        from stdatamodels.jwst.datamodels import FilteroffsetModel

        with FilteroffsetModel() as model:
            model.meta.instrument.name = inst.INSTRUMENT
            model.populate_meta()
            return {f.strip() for f in str(model.meta.instrument.pfilter).split("|") if f.strip()} or None
    except Exception:  # noqa: BLE001 - an older or newer stdatamodels: the schema's list alone
        return None


@lru_cache(maxsize=None)
def valid_values() -> dict[str, frozenset[str]]:
    """Header keyword -> the values a MIRI imager exposure may have (from stdatamodels)."""
    filters = set(_schema("keyword_filter")["instrument"]["properties"]["filter"]["enum"])
    filters &= _miri_imager_filters() or filters
    groups = [set(g["enum"]) for g in _schema("subarray")["subarray"]["properties"]["name"]["anyOf"]]
    imager = set(inst.SUBARRAYS) - {"FULL"}
    subarrays = set().union(*[g for g in groups if imager <= g or "FULL" in g])
    readpatts = {v for v in _schema("keyword_readpatt")["exposure"]["properties"]["readpatt"]["enum"]
                 if re.match(r"(FAST|SLOW)", v)}
    generic = {"ANY", "N/A", "GENERIC", "MULTIPLE"}
    return {"FILTER": frozenset(filters - generic), "SUBARRAY": frozenset(subarrays - generic),
            "READPATT": frozenset(readpatts - generic)}


def asdf_values(asdf_bytes: bytes | None) -> dict[str, str]:
    """Header keyword -> value in the ASDF metadata (keywords it lacks are left out)."""
    if not asdf_bytes:
        return {}
    import asdf.util

    meta = asdf.util.load_yaml(io.BytesIO(asdf_bytes)).get("meta") or {}
    out = {}
    for key, ((group, name), _) in KEYWORDS.items():
        value = (meta.get(group) or {}).get(name)
        if value is not None:
            out[key] = str(value).strip()
    return out


def verify(path: Path, header, asdf_bytes: bytes | None) -> None:
    """InputError naming the file, keyword and values when a value is not a MIRI imager one or
    the primary header and the ASDF metadata disagree."""
    try:
        meta = asdf_values(asdf_bytes)
    except Exception as exc:  # noqa: BLE001 - any YAML/ASDF parse failure
        raise InputError(f"{Path(path).name}: its ASDF metadata extension is unreadable "
                         f"({type(exc).__name__}): download the file again") from None
    valid = valid_values()
    for key, (_, what) in KEYWORDS.items():
        value = str(header.get(key, "")).strip()
        other = meta.get(key)
        also = f" (its ASDF metadata says {other})" if other is not None and other != value else ""
        if value not in valid[key]:
            raise InputError(f"{Path(path).name}: {key}={value} in the primary header is not a MIRI imager "
                             f"{what}{also} (valid: {', '.join(sorted(valid[key]))})")
        if also:
            raise InputError(f"{Path(path).name}: the primary header says {key}={value} but the file's ASDF "
                             f"metadata says {other}: the file was edited or damaged; download it again")
