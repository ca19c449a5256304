"""Configuration errors: not UTF-8, DETECT_THRESH out of range (exit 2, before the workspace)."""

from __future__ import annotations

from ..harness import listing
from . import case


def _bad_config(s, c, content: bytes, mentions) -> None:
    d = s.case_dir(c.name)
    bad = d / "bad.toml"
    bad.write_bytes(content)
    ws = s.new_workspace(d)
    before = listing(ws)
    res = s.cli(*s.run_args(s.raw, ws, config=bad), case=c, log=d / "fault")
    s.check_one_line(c, res, 2, mentions=mentions)
    c.check("the workspace is untouched", listing(ws) == before)
    s.rerun_and_verify(c, ws)  # the fix: the suite's own configuration


@case("config-not-utf8", "--config file in Latin-1 (a comment with 0xE9)")
def config_not_utf8(s, c):
    _bad_config(s, c, b'# r\xe9duction\nDATE = "01Jan2030"\n', ("bad.toml",))


@case("detect-thresh-negative", "DETECT_THRESH = -1 in --config")
def detect_negative(s, c):
    _bad_config(s, c, b'DATE = "01Jan2030"\nDETECT_THRESH = -1.0\n', ("DETECT_THRESH",))


@case("detect-thresh-nan", "DETECT_THRESH = nan in --config")
def detect_nan(s, c):
    _bad_config(s, c, b'DATE = "01Jan2030"\nDETECT_THRESH = nan\n', ("DETECT_THRESH",))
