"""CRDS mapping files (.pmap, .imap, .rmap) for the synthetic context.

The text is parsed and re-serialised by crds itself (``crds.core.rmap``): ``Mapping.write``
formats the header and selector and stores the ``sha1sum`` header, the SHA-1 of the file text
with every line containing ``sha1sum`` removed, so the files verify without
``CRDS_IGNORE_MAPPING_CHECKSUM``. Mapping names follow the CRDS pattern
(``jwst_9000.pmap``, ``jwst_miri_9000.imap``, ``jwst_miri_dark_9000.rmap``): crds parses
observatory, instrument and reference type from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping as MappingABC
from pathlib import Path

OBSERVATORY = "jwst"
SERIAL = 9000  # mapping serial; reference files count up from SERIAL + 1
USEAFTER_KEYS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
MATCH_USEAFTER = "2000-01-01 00:00:00"  # rmap UseAfter date (references carry the same USEAFTER)
DERIVED_FROM = "mirim-reduce synthetic demo context"

# Match parkeys of the MIRI rmaps, as in the jwst specs crds ships (crds/jwst/specs/miri_*.rmap|spec);
# filteroffset's spec names META.INSTRUMENT.EXP_TYPE, which no dataset has: META.EXPOSURE.TYPE is used.
DET = "META.INSTRUMENT.DETECTOR"
PARKEYS: dict[str, tuple[str, ...]] = {
    "mask": (DET, "META.INSTRUMENT.FILTER", "META.SUBARRAY.NAME", "META.EXPOSURE.READPATT", "META.EXPOSURE.NGROUPS"),
    "saturation": (DET, "META.INSTRUMENT.FILTER"),
    "ipc": (DET, "META.SUBARRAY.NAME"),
    "linearity": (DET, "META.INSTRUMENT.FILTER"),
    "rscd": (DET,),
    "dark": (DET, "META.INSTRUMENT.FILTER", "META.EXPOSURE.READPATT", "META.SUBARRAY.NAME"),
    "reset": (DET, "META.SUBARRAY.NAME", "META.EXPOSURE.READPATT"),
    "gain": (DET, "META.INSTRUMENT.FILTER", "META.INSTRUMENT.BAND", "META.SUBARRAY.NAME"),
    "readnoise": (DET, "META.INSTRUMENT.FILTER"),
    "distortion": (DET, "META.INSTRUMENT.CHANNEL", "META.INSTRUMENT.BAND"),
    "filteroffset": (DET, "META.EXPOSURE.TYPE", "META.SUBARRAY.NAME"),
    "flat": (DET, "META.INSTRUMENT.FILTER", "META.INSTRUMENT.BAND", "META.EXPOSURE.READPATT", "META.SUBARRAY.NAME"),
    "photom": (DET, "META.INSTRUMENT.FILTER"),
    "area": (DET, "META.INSTRUMENT.FILTER"),
    "apcorr": ("META.EXPOSURE.TYPE", "META.INSTRUMENT.CHANNEL"),
    "abvegaoffset": (),
}
TEXT_DESCR = {
    "mask": "Bad Pixel Mask", "saturation": "Saturation", "ipc": "Interpixel Capacitance",
    "linearity": "Detector Linearity Correction Coefficients", "rscd": "Reset Switch Charge Decay correction",
    "dark": "Dark Frame", "reset": "Reset Correction", "gain": "Gain", "readnoise": "Read Noise",
    "distortion": "Distortion", "filteroffset": "Imager Filter Offset", "flat": "Flat Field",
    "photom": "Absolute Calibration", "area": "Pixel-Area Map", "apcorr": "Aperture Correction",
    "abvegaoffset": "AB to Vega magnitude offset",
}


def pmap_name(serial: int = SERIAL) -> str:
    return f"{OBSERVATORY}_{serial:04d}.pmap"


def imap_name(instrument: str = "miri", serial: int = SERIAL) -> str:
    return f"{OBSERVATORY}_{instrument.lower()}_{serial:04d}.imap"


def rmap_name(reftype: str, instrument: str = "miri", serial: int = SERIAL) -> str:
    return f"{OBSERVATORY}_{instrument.lower()}_{reftype}_{serial:04d}.rmap"


def _write_via_crds(text: str, path: Path) -> None:
    """Parse ``text`` with crds and write it back with crds' own formatting and sha1sum."""
    from crds.core import rmap

    cls = {".pmap": rmap.PipelineContext, ".imap": rmap.InstrumentContext, ".rmap": rmap.ReferenceMapping}[path.suffix]
    mapping = cls.from_string(text, path.name, ignore_checksum=True)
    mapping.write(str(path))


def _header_text(header: dict) -> str:
    body = "".join(f"    {k!r} : {v!r},\n" for k, v in sorted(header.items()))
    return "header = {\n" + body + "}\n"


def write_pmap(directory: Path, instruments: MappingABC[str, str], serial: int = SERIAL) -> str:
    """Write the pipeline context ``{'MIRI': imap}``; returns its name."""
    name = pmap_name(serial)
    header = {"derived_from": DERIVED_FROM, "mapping": "PIPELINE", "name": name,
              "observatory": OBSERVATORY.upper(), "parkey": ("META.INSTRUMENT.NAME",), "sha1sum": "0"}
    sel = "".join(f"    {k.upper()!r} : {v!r},\n" for k, v in sorted(instruments.items()))
    _write_via_crds(_header_text(header) + "\nselector = {\n" + sel + "}\n", directory / name)
    return name


def write_imap(directory: Path, selections: MappingABC[str, str], instrument: str = "MIRI",
               serial: int = SERIAL) -> str:
    """Write an instrument context ``{reftype: rmap name or 'N/A'}``; returns its name."""
    name = imap_name(instrument, serial)
    header = {"derived_from": DERIVED_FROM, "instrument": instrument.upper(), "mapping": "INSTRUMENT",
              "name": name, "observatory": OBSERVATORY.upper(), "parkey": ("REFTYPE",), "sha1sum": "0"}
    sel = "".join(f"    {k!r} : {v!r},\n" for k, v in sorted(selections.items()))
    _write_via_crds(_header_text(header) + "\nselector = {\n" + sel + "}\n", directory / name)
    return name


def write_rmap(directory: Path, reftype: str, rows: Iterable[tuple[tuple[str, ...], str]],
               instrument: str = "MIRI", serial: int = SERIAL, file_ext: str = ".fits",
               parkey: tuple[str, ...] | None = None) -> str:
    """Write a reference mapping: ``rows`` are (match values in ``parkey`` order, default
    PARKEYS[reftype], reference file name); each match gets a UseAfter selector at
    MATCH_USEAFTER. 'N/A' matches any value, 'A|B' lists alternatives. Returns the rmap name."""
    name = rmap_name(reftype, instrument, serial)
    parkey = tuple(parkey) if parkey is not None else PARKEYS[reftype]
    header = {
        "classes": ("Match", "UseAfter"), "derived_from": DERIVED_FROM, "file_ext": file_ext,
        "filekind": reftype.upper(), "filetype": reftype.upper(), "instrument": instrument.upper(),
        "mapping": "REFERENCE", "name": name, "observatory": OBSERVATORY.upper(),
        "parkey": (parkey, USEAFTER_KEYS), "sha1sum": "0", "suffix": reftype,
        "text_descr": TEXT_DESCR.get(reftype, reftype),
    }
    body = ""
    for match, ref in rows:
        if len(match) != len(parkey):
            raise ValueError(f"{reftype}: match {match} does not fit parkeys {parkey}")
        body += f"    {tuple(match)!r} : UseAfter({{\n        {MATCH_USEAFTER!r} : {ref!r},\n    }}),\n"
    _write_via_crds(_header_text(header) + "\nselector = Match({\n" + body + "})\n", directory / name)
    return name
