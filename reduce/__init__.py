"""mirim-reduce: reproducible reduction of JWST MIRI imaging with the jwst pipeline."""

__version__ = "0.1.0"
