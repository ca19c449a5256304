"""Resumable, verified, retried, bounded-parallel downloads through astroquery's session.

Each file is fetched with astroquery's ``_download_file`` (the code behind
``Observations.download_file``) with ``continuation=True``: a partial file
``.<name>.part`` left by an interrupted run is completed with an HTTP range request when
MAST offers ``Accept-Ranges``, else fetched again. A complete file is verified (the size
MAST lists, and the FITS CHECKSUM/DATASUM of every HDU that carries them) before it is
renamed to its final name; a file that fails is removed and fetched again, at most
``verify_attempts`` times. Connection errors and HTTP 5xx/429 are retried with exponential
back-off. The manifest ``download_manifest.json`` (URI, size, sha256, verification, time)
is rewritten atomically after every file.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from ..fsutil import sha256_file, write_json
from .errors import DiskFullError, DownloadError, ProprietaryDataError, VerificationError
from .query import RemoteFile

log = logging.getLogger("mirim_reduce.acquire")

MANIFEST = "download_manifest.json"


@dataclass
class DownloadSettings:
    jobs: int = 4
    retries: int = 5             # connection / server errors per file
    verify_attempts: int = 3     # full downloads that fail verification before giving up
    backoff: float = 2.0         # seconds, doubled after each failure (capped at 60)
    timeout: float = 120.0       # seconds per request (connect and each read)


def part_path(raw: Path, name: str) -> Path:
    return raw / f".{name}.part"


def verify(path: Path, expected_size: int) -> tuple[bool, str, dict]:
    """(ok, reason, checks): size as MAST lists it, then every HDU's FITS CHECKSUM/DATASUM."""
    from astropy.io import fits

    size = path.stat().st_size
    if expected_size and size != expected_size:
        return False, f"size {size} bytes, MAST lists {expected_size}", {}
    # hdu.verify_checksum()/verify_datasum(): 1 ok, 0 mismatch, 2 keyword absent. (Not the warnings of
    # fits.open(checksum=True): warning capture is process-wide and downloads verify in threads.)
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=False) as hdul:  # no full read into RAM
            n_hdu, carried, bad = len(hdul), 0, []
            for i, hdu in enumerate(hdul):
                results = (hdu.verify_datasum(), hdu.verify_checksum())
                carried += any(r != 2 for r in results)
                if 0 in results:
                    bad.append(f"HDU {i} {hdu.name}: {'DATASUM' if results[0] == 0 else 'CHECKSUM'} differs")
    except (OSError, ValueError, TypeError, IndexError) as exc:
        return False, f"not a readable FITS file ({str(exc).splitlines()[0][:60]})", {}
    if bad:
        return False, f"FITS checksum mismatch ({bad[0]})", {}
    checks = {"size": "ok" if expected_size else "not listed by MAST",
              "fits_checksum": f"ok ({carried} of {n_hdu} HDUs)" if carried else "none in file"}
    return True, "", checks


class Downloader:
    """Fetch ``files`` into ``raw`` with the session (cookies) of a logged-in ``obs``."""

    def __init__(self, obs, raw: Path, settings: DownloadSettings | None = None, authenticated: bool = False):
        self.obs = obs
        self.raw = Path(raw)
        self.settings = settings or DownloadSettings()
        self.authenticated = authenticated
        self._lock = threading.Lock()
        self._manifest_path = self.raw / MANIFEST
        self._entries: dict[str, dict] = {}
        self._stop = threading.Event()

    # -- manifest -----------------------------------------------------------------------
    def _load_manifest(self) -> None:
        import json

        if self._manifest_path.is_file():
            try:
                data = json.loads(self._manifest_path.read_text())
                self._entries = {e["filename"]: e for e in data.get("files", [])}
            except (ValueError, KeyError, TypeError):
                self._entries = {}

    def _record(self, f: RemoteFile, path: Path, checks: dict, how: str) -> None:
        entry = {"filename": f.filename, "uri": f.uri, "size": path.stat().st_size, "mast_size": f.size,
                 "sha256": sha256_file(path), "verified": checks, "how": how, "obs_id": f.obs_id,
                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with self._lock:
            self._entries[f.filename] = entry
            write_json(self._manifest_path, {"files": sorted(self._entries.values(), key=lambda e: e["filename"])})

    # -- one file -------------------------------------------------------------------------
    def _session_copy(self):
        """A fresh astroquery client sharing the login cookies (astroquery sets a Range header on
        its session while continuing a file, so threads must not share one session)."""
        from astroquery.mast import ObservationsClass

        worker = ObservationsClass()
        worker._session.cookies.update(self.obs._session.cookies)
        return worker

    def fetch_one(self, f: RemoteFile) -> str:
        import requests

        final = self.raw / f.filename
        if final.is_file():
            known = self._entries.get(f.filename)
            if known and known.get("size") == final.stat().st_size and final.stat().st_size == f.size:
                return "present"
            ok, _, checks = verify(final, f.size)
            if ok:
                self._record(f, final, checks, "present")
                return "present"
            log.warning("%s on disk fails verification: fetching it again", f.filename)
            final.unlink()
        part = part_path(self.raw, f.filename)
        base = self.obs._portal_api_connection.MAST_DOWNLOAD_URL
        url = base + "?uri=" + quote(f.uri, safe=":/")
        client = self._session_copy()
        failures, bad_checks, delay = 0, 0, self.settings.backoff
        resumed = part.is_file() and part.stat().st_size > 0
        while not self._stop.is_set():
            try:
                client._download_file(url, str(part), timeout=self.settings.timeout, cache=True,
                                      head_safe=True, continuation=True, verbose=True)
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else 0
                if code in (401, 403):
                    raise ProprietaryDataError(
                        f"MAST refused {f.filename} (HTTP {code}): "
                        + ("the token does not give access to this program's exclusive-access data"
                           if self.authenticated else
                           "exclusive-access data need a MAST token in $MAST_API_TOKEN or --token-file")) from None
                if code not in (429,) and code < 500:
                    raise DownloadError(f"MAST answered HTTP {code} for {f.filename}") from None
                failures += 1
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise DiskFullError(f"disk full while writing {part.parent}: free at least "
                                        f"{_human(f.size)} and run the same command again (it resumes)") from None
                if not isinstance(exc, (requests.ConnectionError, requests.Timeout)):
                    raise
                failures += 1
            else:
                ok, reason, checks = verify(part, f.size)
                if ok:
                    os.replace(part, final)
                    self._record(f, final, checks, "resumed" if resumed else "downloaded")
                    return "resumed" if resumed else "downloaded"
                bad_checks += 1
                log.warning("%s failed verification (%s): removed, fetching again", f.filename, reason)
                part.unlink(missing_ok=True)
                resumed = False
                if bad_checks >= self.settings.verify_attempts:
                    raise VerificationError(f"{f.filename} failed verification {bad_checks} times ({reason}); "
                                            f"the partial file was removed, run the same command again later")
                continue
            if failures > self.settings.retries:
                raise DownloadError(f"download of {f.filename} failed {failures} times (connection or server "
                                    f"errors); run the same command again to resume") from None
            log.warning("%s: transient error, retry %d in %.0f s", f.filename, failures, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, 60.0)
        raise KeyboardInterrupt

    # -- all files ------------------------------------------------------------------------
    def run(self, files: list[RemoteFile]) -> dict[str, str]:
        """Fetch every file (bounded parallelism, progress bar); {filename: how}."""
        from astroquery import log as aq_log
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self.raw.mkdir(parents=True, exist_ok=True)
        self._load_manifest()
        self.check_space(files)
        results: dict[str, str] = {}
        total = sum(f.size for f in files)
        level = aq_log.level
        aq_log.setLevel(logging.WARNING)  # astroquery's own per-file bar stays quiet (threads)
        console = Console(stderr=True)
        try:
            with Progress(TextColumn("download"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), TextColumn("files"), MofNCompleteColumn(),
                          console=console, transient=False) as progress:
                bytes_bar = progress.add_task("bytes", total=total)
                with ThreadPoolExecutor(max_workers=max(1, min(self.settings.jobs, len(files)))) as pool:
                    futures = {pool.submit(self.fetch_one, f): f for f in files}
                    pending = set(futures)
                    try:
                        while pending:
                            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                            for fut in done:
                                results[futures[fut].filename] = fut.result()
                            progress.update(bytes_bar, completed=self._bytes_on_disk(files))
                    except BaseException:
                        self._stop.set()
                        for fut in futures:
                            fut.cancel()
                        raise
                progress.update(bytes_bar, completed=total)
        finally:
            aq_log.setLevel(level)
        return results

    def _bytes_on_disk(self, files: list[RemoteFile]) -> int:
        n = 0
        for f in files:
            for p in (self.raw / f.filename, part_path(self.raw, f.filename)):
                try:
                    n += p.stat().st_size
                    break
                except OSError:
                    continue
        return n

    def check_space(self, files: list[RemoteFile]) -> None:
        need = sum(max(f.size - self._have(f), 0) for f in files)
        free = shutil.disk_usage(self.raw).free
        if need > free:
            raise DiskFullError(f"not enough disk space in {self.raw}: the download needs {_human(need)} more, "
                                f"{_human(free)} free")

    def _have(self, f: RemoteFile) -> int:
        for p in (self.raw / f.filename, part_path(self.raw, f.filename)):
            if p.is_file():
                return p.stat().st_size
        return 0


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"
