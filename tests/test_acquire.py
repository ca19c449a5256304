"""Acquisition from MAST, offline: the real astroquery code against recorded MAST responses.

Only the HTTP layer is replaced (``requests.Session.request``, the session astroquery's
PortalAPI, MastAuth and ``_download_file`` all use), as astroquery's own tests replace
``_request``/``session_info``: astroquery builds the Mashup requests, parses the JSON, filters
products and streams/continues the downloads itself. Recorded responses: tests/data/mast/.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pytest
import requests
from astropy.io import fits
from requests.structures import CaseInsensitiveDict

from reduce.acquire import fetch, looks_like_program, parse_program
from reduce.acquire.download import MANIFEST, DownloadSettings, part_path
from reduce.acquire.errors import (DiskFullError, MastTokenError, MastUnreachableError, NoMiriImagingError,
                                   ProprietaryDataError, UnknownProgramError, VerificationError)

DATA = Path(__file__).parent / "data" / "mast"
TOKEN = "FAKE-mast-token-7c1e9a44d2b84f0e"
FAST = DownloadSettings(jobs=2, retries=2, verify_attempts=2, backoff=0.01, timeout=5)


def _fits_bytes(name: str, kw: dict) -> bytes:
    """A small uncal-like FITS file with per-HDU CHECKSUM/DATASUM, as MAST's files carry."""
    import io

    hdr = fits.Header({"TELESCOP": "JWST", "INSTRUME": "MIRI", "DETECTOR": kw["detector"], "EXP_TYPE": kw["exp_type"],
                       "PROGRAM": name[2:7], "OBSERVTN": name[7:10], "VISIT": name[10:13], "EXPOSURE": 1,
                       "FILTER": kw["filter"], "SUBARRAY": kw["subarray"], "READPATT": kw["readpatt"],
                       "NGROUPS": kw["ngroups"], "NINTS": 1, "DURATION": kw["duration"], "FILENAME": name})
    buf = io.BytesIO()
    data = (np.arange(256, dtype=np.uint16) * (1 + len(name) % 7)).reshape(1, 1, 16, 16)
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(data, name="SCI")]).writeto(buf, checksum=True)
    return buf.getvalue()


class FakeMast:
    """Answers astroquery's requests the way MAST does, from the recorded JSON files."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.exclusive: set[str] = set()
        for path in DATA.glob("jwst_miri_*.json"):
            for row in json.loads(path.read_text())["data"]:
                stem = row["filename"].rsplit("_", 1)[0]
                self.files[f"{stem}_uncal.fits"] = _fits_bytes(f"{stem}_uncal.fits", row)
        for path in DATA.glob("products_*.json"):
            for row in json.loads(path.read_text())["data"]:
                if row["dataRights"] != "PUBLIC":
                    self.exclusive.add(row["productFilename"])
        self.log: list[tuple[str, str, str]] = []   # (method, file or service, range)
        self.corrupt: dict[str, int] = {}            # filename -> how many GETs serve a flipped byte
        self.down = False
        self.drop: dict[str, int] = {}               # filename -> how many GETs fail with a connection error

    def _response(self, url, status=200, body=b"", headers=None):
        r = requests.Response()
        r.status_code, r.url, r._content, r._content_consumed = status, url, body, True
        r.reason = {200: "OK", 206: "Partial Content", 401: "Unauthorized", 404: "Not Found"}.get(status, "")
        r.headers = CaseInsensitiveDict(headers or {"Content-Type": "application/json"})
        return r

    def _json(self, url, name):
        return self._response(url, body=(DATA / name).read_bytes())

    def request(self, session, method, url, params=None, data=None, headers=None, **kwargs):
        if self.down:
            raise requests.ConnectionError(f"HTTPSConnectionPool(host='mast.stsci.edu', port=443): Failed to "
                                           f"resolve 'mast.stsci.edu' ([Errno -2] Name or service not known)")
        u = urlparse(url)
        token_ok = session.cookies.get("mast_token") == TOKEN
        if u.path.endswith("columnsconfig"):
            name = "columnsconfig_caom.json" if "Caom" in data else "columnsconfig_jwst_miri.json"
            return self._json(url, name)
        if u.path.endswith("/whoami"):
            return self._json(url, "whoami_user.json" if token_ok else "whoami_anon.json")
        if u.path.endswith("/api/v0/invoke"):
            req = json.loads(parse_qs(data)["request"][0])
            service, p = req["service"], req["params"]
            self.log.append(("POST", service, ""))
            if service == "Mast.Caom.Filtered":
                ids = next(f["values"] for f in p["filters"] if f["paramName"] == "proposal_id")
                name = f"caom_{ids[0]}.json"
                return self._json(url, name if (DATA / name).exists() else "caom_empty.json")
            if service == "Mast.Caom.Products":
                obsid = p["obsid"].split(",")[0]
                return self._json(url, {"876": "products_03224.json", "888": "products_04999.json"}[obsid[:3]])
            if service == "Mast.Jwst.Filtered.Miri":
                program = next(f["values"] for f in p["filters"] if f["paramName"] == "program")[1]
                return self._json(url, f"jwst_miri_{program}.json")
            raise AssertionError(f"unexpected MAST service {service}")
        if u.path.endswith("/Download/file"):
            name = unquote(parse_qs(u.query)["uri"][0]).rsplit("/", 1)[-1]
            allh = {**session.headers, **(headers or {})}
            rng = allh.get("Range", "")
            self.log.append((method, name, rng))
            if name in self.exclusive and not token_ok:
                return self._response(url, 401, b"", {"Content-Length": "0"})
            body = self.files.get(name)
            if body is None:
                return self._response(url, 404, b"", {"Content-Length": "0"})
            if method == "GET" and self.drop.get(name, 0) > 0:
                self.drop[name] -= 1
                raise requests.ConnectionError("Connection reset by peer")
            if method == "GET" and self.corrupt.get(name, 0) > 0:
                self.corrupt[name] -= 1
                b = bytearray(body)
                b[-100] ^= 0xFF
                body = bytes(b)
            status = 200
            if rng and method == "GET":
                start = int(rng.split("=")[1].split("-")[0])
                body, status = body[start:], 206
            hdrs = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream"}
            return self._response(url, status, b"" if method == "HEAD" else body, hdrs)
        raise AssertionError(f"unexpected request {method} {url}")


@pytest.fixture
def mast(monkeypatch):
    fake = FakeMast()
    monkeypatch.setattr(requests.Session, "request", lambda self, method, url, **kw: fake.request(self, method, url, **kw))
    monkeypatch.delenv("MAST_API_TOKEN", raising=False)
    return fake


def _fetch(workdir, **kw):
    lines = []
    result = fetch("3224" if "program" not in kw else kw.pop("program"), workdir, settings=kw.pop("settings", FAST),
                   echo=lines.append, **kw)
    return result, "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
def test_program_ids():
    assert parse_program("3224") == parse_program("03224") == parse_program("jw03224") == "03224"
    assert parse_program("JW3224") == "03224"
    assert looks_like_program("3224") and not looks_like_program("raw") and not looks_like_program("0")
    with pytest.raises(UnknownProgramError):
        parse_program("jw3224x")


def test_mixed_program_fetches_only_imaging(mast, tmp_path):
    result, out = _fetch(tmp_path / "w")
    raw = tmp_path / "w" / "raw"
    got = sorted(p.name for p in raw.glob("*_uncal.fits"))
    assert got == ["jw03224001001_02101_00001_mirimage_uncal.fits", "jw03224001001_02101_00002_mirimage_uncal.fits",
                   "jw03224001001_02103_00001_mirimage_uncal.fits"]
    skipped = dict(result.plan.skipped)
    assert "target acquisition" in skipped["jw03224002001_02101_00001_mirimage_uncal.fits"]
    assert "LRS" in skipped["jw03224003001_03102_00001_mirimage_uncal.fits"]
    assert "not MIRI (NIRCAM/IMAGE)" in skipped["jw03224-o004_t001_nircam_clear-f200w"]
    # every file downloaded once even though MAST lists it twice; no TA/LRS/rate/cal file requested
    gets = [name for m, name, _ in mast.log if m == "GET"]
    assert sorted(gets) == got
    manifest = json.loads((raw / MANIFEST).read_text())["files"]
    assert [e["filename"] for e in manifest] == got
    for e in manifest:
        assert e["uri"] == f"mast:JWST/product/{e['filename']}" and e["size"] == e["mast_size"] == 8640
        assert e["verified"]["fits_checksum"].startswith("ok") and len(e["sha256"]) == 64 and e["time"]
    assert "F1800W" in out and "total: 3 files" in out and "skipped" in out
    assert not list(raw.glob(".*.part"))
    # the files are what `run` selects
    from reduce import inputs
    assert len(inputs.select(raw).exposures) == 3


def test_dry_run_lists_and_writes_nothing(mast, tmp_path):
    result, out = _fetch(tmp_path / "w", dry_run=True)
    assert not (tmp_path / "w").exists()
    for text in ("jw03224001001_02103_00001_mirimage_uncal.fits", "F770W", "FULL", "FASTR1", "111.0", "8.6 kB",
                 "total: 3 files, 25.9 kB"):
        assert text in out
    assert not [m for m, *_ in mast.log if m in ("GET", "HEAD")]


def test_rerun_skips_verified_files(mast, tmp_path):
    _fetch(tmp_path / "w")
    n = len(mast.log)
    result, _ = _fetch(tmp_path / "w")
    assert set(result.outcomes.values()) == {"present"}
    assert not [m for m, *_ in mast.log[n:] if m in ("GET", "HEAD")]


def test_resume_of_a_truncated_file(mast, tmp_path):
    raw = tmp_path / "w" / "raw"
    raw.mkdir(parents=True)
    name = "jw03224001001_02101_00002_mirimage_uncal.fits"
    part_path(raw, name).write_bytes(mast.files[name][:3000])   # an interrupted earlier download
    result, _ = _fetch(tmp_path / "w")
    assert result.outcomes[name] == "resumed"
    assert ("GET", name, "bytes=3000-8639") in mast.log
    assert (raw / name).read_bytes() == mast.files[name]
    assert not part_path(raw, name).exists()


def test_checksum_mismatch_is_removed_and_fetched_again(mast, tmp_path):
    name = "jw03224001001_02101_00001_mirimage_uncal.fits"
    mast.corrupt[name] = 1
    result, _ = _fetch(tmp_path / "w")
    assert [m for m, n, _ in mast.log if n == name and m == "GET"] == ["GET", "GET"]
    assert (tmp_path / "w" / "raw" / name).read_bytes() == mast.files[name]


def test_connection_errors_are_retried(mast, tmp_path):
    name = "jw03224001001_02103_00001_mirimage_uncal.fits"
    mast.drop[name] = 2
    result, _ = _fetch(tmp_path / "w")
    assert [m for m, n, _ in mast.log if n == name and m == "GET"] == ["GET"] * 3
    assert (tmp_path / "w" / "raw" / name).read_bytes() == mast.files[name]


def test_checksum_keeps_failing(mast, tmp_path):
    name = "jw03224001001_02101_00001_mirimage_uncal.fits"
    mast.corrupt[name] = 99
    with pytest.raises(VerificationError) as exc:
        _fetch(tmp_path / "w", settings=DownloadSettings(jobs=1, verify_attempts=2, backoff=0.01))
    assert exc.value.exit_code == 16 and name in str(exc.value) and "checksum" in str(exc.value)
    raw = tmp_path / "w" / "raw"
    assert not (raw / name).exists() and not part_path(raw, name).exists()


def test_unknown_program(mast, tmp_path):
    with pytest.raises(UnknownProgramError) as exc:
        _fetch(tmp_path / "w", program="jw07777")
    assert exc.value.exit_code == 13 and "07777" in str(exc.value)
    assert not (tmp_path / "w").exists()


def test_program_without_miri_imaging(mast, tmp_path):
    with pytest.raises(NoMiriImagingError) as exc:
        _fetch(tmp_path / "w", program="1111")
    assert exc.value.exit_code == 14 and "NIRCAM/IMAGE" in str(exc.value)


def test_proprietary_program_without_token(mast, tmp_path):
    with pytest.raises(ProprietaryDataError) as exc:
        _fetch(tmp_path / "w", program="4999")
    assert exc.value.exit_code == 12 and "MAST_API_TOKEN" in str(exc.value)
    assert not (tmp_path / "w").exists()


def test_proprietary_program_with_token_and_no_leak(mast, tmp_path, monkeypatch, caplog, capsys):
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MAST_API_TOKEN", TOKEN)
    result, out = _fetch(tmp_path / "w", program="4999")
    raw = tmp_path / "w" / "raw"
    assert sorted(result.outcomes) == ["jw04999001001_02101_00001_mirimage_uncal.fits",
                                       "jw04999001001_02101_00002_mirimage_uncal.fits"]
    captured = capsys.readouterr()
    texts = [out, captured.out, captured.err, caplog.text, (raw / MANIFEST).read_text(),
             (raw / "fetch.json").read_text(), repr(result)]
    assert all(TOKEN not in t for t in texts)


def test_bad_token(mast, tmp_path, monkeypatch):
    monkeypatch.setenv("MAST_API_TOKEN", "expired-" + TOKEN)
    with pytest.raises(MastTokenError) as exc:
        _fetch(tmp_path / "w")
    assert exc.value.exit_code == 11 and TOKEN not in str(exc.value) and "invalid or expired" in str(exc.value)
    assert not (tmp_path / "w").exists()


def test_token_file(mast, tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    f.chmod(0o600)
    result, _ = _fetch(tmp_path / "w", program="4999", token_file=f)
    assert len(result.outcomes) == 2
    with pytest.raises(MastTokenError):
        _fetch(tmp_path / "w2", token_file=tmp_path / "missing")


def test_no_network(mast, tmp_path):
    mast.down = True
    with pytest.raises(MastUnreachableError) as exc:
        _fetch(tmp_path / "w")
    assert exc.value.exit_code == 10 and "cannot reach MAST" in str(exc.value) and "run DIR" in str(exc.value)
    assert not (tmp_path / "w").exists()


def test_disk_full(mast, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DiskFullError) as exc:
        _fetch(tmp_path / "w")
    assert exc.value.exit_code == 15 and "25.9 kB" in str(exc.value)
    assert not list((tmp_path / "w" / "raw").glob("*uncal*"))


def test_no_token_argument_on_the_command_line():
    from typer.testing import CliRunner

    from reduce.cli import app

    text = CliRunner().invoke(app, ["fetch", "--help"]).output
    assert "--token-file" in text and "--token " not in text and "--token\n" not in text


def test_run_program_offline_is_one_line_and_leaves_nothing(tmp_path):
    """The real CLI, really offline (a dead proxy makes it so even where the network exists)."""
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "MAST_API_TOKEN": TOKEN}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    exe = Path(sys.executable).with_name("mirim-reduce")
    proc = subprocess.run([str(exe), "run", "3224", "--workdir", str(tmp_path / "X")], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 10, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach MAST")
    assert "mirim-reduce run DIR" in lines[0]
    assert TOKEN not in proc.stderr + proc.stdout
    assert not (tmp_path / "X").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------
@pytest.mark.remote_data
def test_live_program_3224_dry_run(tmp_path):
    result, out = _fetch(tmp_path / "w", dry_run=True, settings=DownloadSettings())
    assert result.plan.files and all(f.exp_type == "MIR_IMAGE" for f in result.plan.files)
    assert not (tmp_path / "w").exists()


@pytest.mark.remote_data
def test_live_unknown_program(tmp_path):
    with pytest.raises(UnknownProgramError):
        _fetch(tmp_path / "w", program="99998", dry_run=True)


@pytest.mark.remote_data
def test_live_download_one_file(tmp_path):
    from reduce.acquire.download import Downloader
    from reduce.acquire.fetch import plan_program

    program, obs, plan = plan_program("3224", None)
    smallest = min(plan.files, key=lambda f: f.size)
    Downloader(obs, tmp_path / "raw", DownloadSettings(jobs=1)).run([smallest])
    entry = json.loads((tmp_path / "raw" / MANIFEST).read_text())["files"][0]
    assert entry["size"] == smallest.size
