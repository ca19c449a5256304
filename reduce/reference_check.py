"""Can a cached CRDS reference file be opened? A cheap structural check, no arrays loaded.

FITS: whole 2880-byte blocks, every header readable and every HDU's data inside the file
(astropy, memory-mapped, checksums off). ASDF: the YAML tree parses and ends, every block
header is whole and its data inside the file, and the tree's arrays have their blocks.
"""

from __future__ import annotations

import mmap
import struct
import warnings
from pathlib import Path

_BLOCK_MAGIC = b"\xd3BLK"


def problem(path: Path) -> str | None:
    """Why ``path`` cannot be a usable reference file, or None when it looks whole."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"#ASDF"):
            return _asdf_problem(path, size)
        if head.startswith(b"SIMPLE"):
            return _fits_problem(path, size)
        return "neither FITS nor ASDF"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def _fits_problem(path: Path, size: int) -> str | None:
    from astropy.io import fits

    if size % 2880:
        return f"truncated FITS file ({size} bytes is not a whole number of 2880-byte blocks)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=True, lazy_load_hdus=False, checksum=False) as hdul:
                for i in range(len(hdul)):
                    info = hdul.fileinfo(i)
                    if info["datLoc"] + info["datSpan"] > size:
                        return (f"truncated FITS file (HDU {i} needs {info['datLoc'] + info['datSpan']} bytes, "
                                f"the file has {size})")
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        return f"unreadable FITS file ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"
    return None


def _asdf_problem(path: Path, size: int) -> str | None:
    import asdf.util

    try:
        tree = asdf.util.load_yaml(path, tagged=True)
    except Exception as exc:  # noqa: BLE001 - any YAML error
        return f"unreadable ASDF tree ({type(exc).__name__})"
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = data.find(_BLOCK_MAGIC)
        end_of_tree = data.rfind(b"\n...", 0, pos if pos >= 0 else size)
        if end_of_tree < 0:
            return "truncated ASDF file (the tree has no end marker)"
        blocks = 0
        while pos >= 0 and pos < size and data[pos:pos + 4] == _BLOCK_MAGIC:
            if pos + 6 > size:
                return "truncated ASDF file (a block header is cut)"
            (header_size,) = struct.unpack(">H", data[pos + 4:pos + 6])
            if pos + 6 + header_size > size or header_size < 48:
                return "truncated ASDF file (a block header is cut)"
            flags, _, allocated = struct.unpack(">I4sQ", data[pos + 6:pos + 22])
            pos += 6 + header_size + allocated
            blocks += 1
            if flags & 1:  # a streamed block runs to the end of the file
                break
            if pos > size:
                return f"truncated ASDF file (block {blocks - 1} ends at byte {pos}, the file has {size})"
    needed = _max_source(tree)
    if needed >= blocks:
        return f"truncated ASDF file (its arrays need {needed + 1} blocks, the file has {blocks})"
    return None


def _max_source(node) -> int:
    """Highest internal block index an ndarray of the tree refers to (-1 when none)."""
    best = -1
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            src = n.get("source")
            if isinstance(src, int) and "ndarray" in str(getattr(n, "_tag", "") or ""):
                best = max(best, src)
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return best
