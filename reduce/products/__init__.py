"""Products a person can use: sorted mosaics, TA-box cutouts, a report, a manifest, and ``verify``.

:func:`package` (``package.py``) writes ``DEST/{TARGPROP}/{FILTER}/...`` (mosaics, segmentation
maps, catalogues, TA boxes: ``tabox.py``), ``DEST/report.html`` (``report.py``) and
``DEST/manifest.json`` (``manifest.py``, hashes from ``hashing.py``). :func:`verify`
(``verify.py``) compares a run's DEST with a reference DEST (FITS files with astropy's FITSDiff,
``compare.py``); ``reference.py`` writes and checks the small committed reference of the demo's
products (``tests/data/reference``).
"""

from .package import PackageResult, package
from .verify import VerifyResult, verify

__all__ = ["package", "PackageResult", "verify", "VerifyResult"]
