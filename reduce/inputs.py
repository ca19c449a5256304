"""Find the exposures of a reduction and decide which ones are MIRI imager science.

Only headers and the small ASDF metadata extension are read (fast, no data). A file that is not
a readable, complete FITS file, or not a MIRIMAGE MIR_IMAGE exposure, is skipped with its
reason; a MIRI imager exposure with an invalid or inconsistent FILTER, SUBARRAY or READPATT is
an input error (:mod:`reduce.header_check`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import header_check, instrument as inst
from .errors import InputError


@dataclass
class Exposure:
    """One uncal file and the header values the reduction groups by."""

    path: Path
    program: str
    observation: str
    visit: str
    exposure: int
    filter: str
    subarray: str
    readpatt: str
    ngroups: int
    nints: int
    duration: float
    targprop: str

    @property
    def stem(self) -> str:
        """File name without ``_uncal.fits``: the exposure's name in every later stage."""
        return self.path.name.removesuffix("_uncal.fits")


@dataclass
class Selection:
    exposures: list[Exposure] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)


def _complete(hdul, size: int) -> bool:
    """A FITS file is whole 2880-byte blocks, and its last HDU ends exactly at the end of the file."""
    last = hdul.fileinfo(len(hdul) - 1)
    return size % 2880 == 0 and last["datLoc"] + last["datSpan"] == size


def classify(path: Path) -> Exposure | str:
    """An :class:`Exposure` for a MIRI imager science uncal file, or the reason to skip it."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                if not _complete(hdul, path.stat().st_size):
                    return "truncated or corrupt FITS file (size does not match its headers): download it again"
                h = hdul[0].header
                asdf_bytes = hdul["ASDF"].data.tobytes() if "ASDF" in hdul else None
    except (OSError, ValueError, TypeError, IndexError) as exc:
        return f"not a readable FITS file ({str(exc).splitlines()[0][:80]})"
    if h.get("TELESCOP") != "JWST" or h.get("INSTRUME") != inst.INSTRUMENT:
        return f"not a JWST MIRI file (TELESCOP={h.get('TELESCOP')}, INSTRUME={h.get('INSTRUME')})"
    if h.get("DETECTOR") != inst.DETECTOR:
        return f"not the MIRI imager detector (DETECTOR={h.get('DETECTOR')})"
    if h.get("EXP_TYPE") != inst.IMAGING_EXP_TYPE:
        return f"not an imaging science exposure (EXP_TYPE={h.get('EXP_TYPE')})"
    try:
        exposure = Exposure(
            path=path,
            program=str(h["PROGRAM"]).zfill(5),
            observation=str(h["OBSERVTN"]).zfill(3),
            visit=str(h["VISIT"]).zfill(3),
            exposure=int(h["EXPOSURE"]),
            filter=str(h["FILTER"]),
            subarray=str(h["SUBARRAY"]),
            readpatt=str(h["READPATT"]),
            ngroups=int(h["NGROUPS"]),
            nints=int(h["NINTS"]),
            duration=float(h["DURATION"]),
            targprop=str(h.get("TARGPROP", "UNKNOWN")),
        )
    except (KeyError, ValueError) as exc:
        return f"incomplete MIRI header (missing or bad keyword {exc})"
    header_check.verify(path, h, asdf_bytes)  # valid MIRI imager values, header == ASDF metadata
    return exposure


def select(folder: Path) -> Selection:
    """Classify every ``*_uncal.fits`` in ``folder`` (sorted by name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"input {folder} is not a folder: give a folder of *_uncal.fits files")
    files = sorted(folder.glob("*_uncal.fits"))
    if not files:
        raise InputError(f"no *_uncal.fits files in {folder}: point INPUT at a folder of MIRI uncal files "
                         f"(or run `mirim-reduce demo`)")
    sel = Selection()
    for f in files:
        result = classify(f)
        if isinstance(result, Exposure):
            sel.exposures.append(result)
        else:
            sel.skipped.append((f.name, result))
    if not sel.exposures:
        reasons = "; ".join(f"{n}: {r}" for n, r in sel.skipped[:3])
        raise InputError(f"no MIRI imager science exposures in {folder} ({reasons})")
    return sel


#: ``format`` of ``inputs.json``: input paths absolute, or relative to the workspace root.
RECORD_FORMAT = "mirim-reduce-inputs/2"


def record(selection: Selection, root: Path) -> dict:
    """``inputs.json`` content: each input file as its resolved absolute path, or relative to the
    workspace ``root`` when it lies inside it (so a workspace can be run from any folder, or moved
    together with its inputs)."""
    base = Path(root).resolve()

    def where(p: Path) -> str:
        p = Path(p).resolve()
        return str(p.relative_to(base)) if p.is_relative_to(base) else str(p)

    return {"format": RECORD_FORMAT,
            "exposures": [{**asdict(e), "path": where(e.path)} for e in selection.exposures],
            "skipped": [list(s) for s in selection.skipped]}


def load_record(root: Path) -> Selection:
    """The selection recorded in ``root/inputs.json`` by :func:`record`, with absolute paths.

    Relative paths of an older ``inputs.json`` were relative to the folder that run started in,
    which it does not record: such a workspace needs ``run`` again (finished work is kept).
    """
    root = Path(root)
    path = root / "inputs.json"
    if not path.is_file():
        raise InputError(f"{root} is not a mirim-reduce workspace (no inputs.json): run `mirim-reduce run INPUT` first")
    try:
        data = json.loads(path.read_text())
        new = data.get("format") == RECORD_FORMAT
        exposures = []
        for e in data["exposures"]:
            p = Path(e["path"])
            if not p.is_absolute():
                if not new:
                    raise InputError(f"{path} records {p} relative to the folder its run started in, which it does "
                                     f"not say: run `mirim-reduce run INPUT --workdir {root}` again (finished work is kept)")
                p = root / p
            exposures.append(Exposure(**{**e, "path": p}))
        skipped = [tuple(s) for s in data["skipped"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not readable ({type(exc).__name__}: {exc}): run `mirim-reduce run INPUT "
                         f"--workdir {root}` again (finished work is kept)") from None
    missing = [e.path for e in exposures if not e.path.is_file()]
    if missing:
        raise InputError(f"input file {missing[0]} recorded in {path} does not exist"
                         f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: put it back, or run "
                         f"`mirim-reduce run INPUT --workdir {root}` on the folder it is in now")
    return Selection(exposures=exposures, skipped=skipped)
