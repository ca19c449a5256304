"""Acquisition from MAST: program ids, the astroquery query, verified resumable downloads."""

from .fetch import FetchResult, fetch, format_plan  # noqa: F401
from .program import is_program_argument, looks_like_program, parse_program  # noqa: F401
