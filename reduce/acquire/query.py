"""What to fetch for a program: astroquery's MAST Observations API, filtered to MIRI imaging.

1. ``Observations.query_criteria(obs_collection='JWST', proposal_id=...)``: the program's
   observations. None at all means an unknown program.
2. ``get_product_list`` + ``filter_products(calib_level=[1], productType='SCIENCE',
   productSubGroupDescription='UNCAL')``: the level-1 uncal files, de-duplicated by URI
   (level-3 observations list their members' files again).
3. The JWST keyword service ``Mast.Jwst.Filtered.Miri`` (per-file FITS keywords) gives each
   exposure's EXP_TYPE, DETECTOR, FILTER, SUBARRAY, READPATT, NGROUPS and DURATION. Only
   ``MIR_IMAGE`` on ``MIRIMAGE`` is kept; everything else is listed as skipped with its reason.

The HTTP layer is astroquery's own (``requests`` session); tests replace only that session.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field

from .errors import (LOCAL_HINT, MastTokenError, MastUnreachableError, NoMiriImagingError,
                     UnknownProgramError)
from .token import Token

log = logging.getLogger("mirim_reduce.acquire")

KEYWORD_SERVICE = "Mast.Jwst.Filtered.Miri"
IMAGER_EXP_TYPE = "MIR_IMAGE"
IMAGER_DETECTOR = "MIRIMAGE"

_EXP_TYPE_REASONS = {
    "MIR_TACQ": "target acquisition",
    "MIR_TACONFIRM": "target acquisition confirmation",
    "MIR_LRS-FIXEDSLIT": "LRS slit spectroscopy",
    "MIR_LRS-SLITLESS": "LRS slitless spectroscopy",
    "MIR_4QPM": "coronagraphy (4QPM)",
    "MIR_LYOT": "coronagraphy (Lyot)",
    "MIR_CORONCAL": "coronagraph calibration",
    "MIR_DARKIMG": "dark",
    "MIR_DARKALL": "dark",
    "MIR_DARKMRS": "dark",
    "MIR_FLATIMAGE": "flat field",
    "MIR_FLATIMAGE-EXT": "flat field",
    "MIR_FLATMRS": "flat field",
    "MIR_MRS": "MRS spectroscopy",
}


@dataclass
class RemoteFile:
    """One uncal file to fetch, with what MAST says about it."""

    filename: str
    uri: str
    size: int
    obs_id: str
    observation: str = ""
    visit: str = ""
    filter: str = ""
    subarray: str = ""
    readpatt: str = ""
    ngroups: int = 0
    duration: float = 0.0
    exp_type: str = ""
    data_rights: str = "PUBLIC"

    @property
    def exclusive(self) -> bool:
        return self.data_rights.upper() not in ("PUBLIC", "")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProgramPlan:
    program: str
    files: list[RemoteFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file or observation, reason)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def skip_reason(exp_type: str, detector: str) -> str | None:
    """None for a MIRI imager science exposure, else why it is not fetched."""
    exp_type, detector = (exp_type or "").strip().upper(), (detector or "").strip().upper()
    if exp_type == IMAGER_EXP_TYPE and detector == IMAGER_DETECTOR:
        return None
    if exp_type in _EXP_TYPE_REASONS:
        return f"{_EXP_TYPE_REASONS[exp_type]} (EXP_TYPE={exp_type})"
    if exp_type == IMAGER_EXP_TYPE:
        return f"not the imager detector (DETECTOR={detector})"
    return f"not MIRI imager science (EXP_TYPE={exp_type or 'unknown'})"


def connect(token: Token | None):
    """An astroquery ``ObservationsClass`` (own session), logged in when a token is given."""
    from astroquery.exceptions import LoginError
    from astroquery.mast import ObservationsClass

    obs = ObservationsClass()
    if token is not None:
        try:
            with _network_errors("log in"):
                obs.login(token=token.reveal())
        except LoginError:
            raise MastTokenError(f"MAST refused the API token from {token.source} (invalid or expired): "
                                 f"create a new one at https://auth.mast.stsci.edu/token") from None
    return obs


class _network_errors:
    """Turn requests' connection/timeout/5xx errors into one-line MastUnreachableError."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        import requests

        if exc is None:
            return False
        if isinstance(exc, (requests.ConnectionError, requests.Timeout, TimeoutError)):
            raise MastUnreachableError(f"cannot reach MAST (mast.stsci.edu) to {self.what}: {_short(exc)}; "
                                       f"{LOCAL_HINT}") from None
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            code = exc.response.status_code
            if code in (401, 403):
                raise MastTokenError(f"MAST refused the request to {self.what} (HTTP {code}): "
                                     f"check the token in $MAST_API_TOKEN or --token-file") from None
            if code >= 500:
                raise MastUnreachableError(f"MAST is not answering ({self.what}: HTTP {code}); "
                                           f"try again later; {LOCAL_HINT}") from None
        return False


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Failed to resolve", "Name or service not known", "Connection refused",
                   "Network is unreachable", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _s(value) -> str:
    import numpy as np

    if value is None or value is np.ma.masked:
        return ""
    return str(value).strip()


def query_program(program: str, obs) -> ProgramPlan:
    """The uncal files of MIRI imager science exposures of ``program`` ('03224'), and the skips."""
    from astropy.table import unique
    from astroquery.exceptions import NoResultsWarning
    from astroquery.mast import MastClass

    plan = ProgramPlan(program=program)
    short = str(int(program))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoResultsWarning)
        with _network_errors(f"query program {program}"):
            table = obs.query_criteria(obs_collection="JWST", proposal_id=[program, short])
    if table is None or len(table) == 0:
        raise UnknownProgramError(f"MAST has no JWST observations for program {program}: check the program id")

    instruments = [_s(r).upper() for r in table["instrument_name"]]
    miri = table[[name.startswith("MIRI") for name in instruments]]
    for row in table:
        name = _s(row["instrument_name"])
        if not name.upper().startswith("MIRI"):
            plan.skipped.append((_s(row["obs_id"]), f"not MIRI ({name})"))
    if len(miri) == 0:
        found = ", ".join(sorted(set(instruments)))
        raise NoMiriImagingError(f"program {program} has no MIRI observations (instruments: {found})")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoResultsWarning)
        with _network_errors(f"list the products of program {program}"):
            products = obs.get_product_list(miri)
        products = obs.filter_products(products, calib_level=[1], productType=["SCIENCE"],
                                       extension="_uncal.fits")
        if len(products):
            products = unique(products, keys="dataURI")

        # Per-file FITS keywords of the program's MIRI files (MAST lists the latest product
        # level of each exposure, so match on the exposure name, not the uncal file name).
        mast = MastClass()
        mast._session.cookies.update(obs._session.cookies)
        with _network_errors(f"read the exposure keywords of program {program}"):
            keywords = mast.service_request(KEYWORD_SERVICE, {
                "columns": "*", "filters": [{"paramName": "program", "values": [short, program]}]})
    by_exposure = {}
    for row in keywords if keywords is not None else []:
        by_exposure.setdefault(_exposure_name(_s(row["filename"])), row)

    for p in products:
        filename = _s(p["productFilename"])
        kw = by_exposure.get(_exposure_name(filename))
        if kw is None:
            plan.skipped.append((filename, "MAST has no exposure keywords for it (EXP_TYPE unknown)"))
            continue
        reason = skip_reason(_s(kw["exp_type"]), _s(kw["detector"]))
        if reason:
            plan.skipped.append((filename, reason))
            continue
        plan.files.append(RemoteFile(
            filename=filename, uri=_s(p["dataURI"]), size=int(p["size"]), obs_id=_s(p["obs_id"]),
            observation=_s(kw["observtn"]).zfill(3), visit=_s(kw["visit"]).zfill(3),
            filter=_s(kw["filter"]), subarray=_s(kw["subarray"]), readpatt=_s(kw["readpatt"]),
            ngroups=int(kw["ngroups"]), duration=float(kw["duration"]), exp_type=_s(kw["exp_type"]),
            data_rights=_s(p["dataRights"]) if "dataRights" in p.colnames else "PUBLIC"))
    plan.files.sort(key=lambda f: f.filename)
    plan.skipped.sort()
    if not plan.files:
        reasons = sorted({r for _, r in plan.skipped})
        raise NoMiriImagingError(f"program {program} has no MIRI imager science exposures "
                                 f"(skipped: {'; '.join(reasons[:4]) or 'no uncal files'})")
    for name, reason in plan.skipped:
        log.info("skipped %s: %s", name, reason)
    return plan


def _exposure_name(filename: str) -> str:
    """``jw03224001001_02101_00001_mirimage_uncal.fits`` -> ``jw03224001001_02101_00001_mirimage``."""
    stem = filename.rsplit(".fits", 1)[0]
    return stem.rsplit("_", 1)[0] if stem.count("_") >= 4 else stem
