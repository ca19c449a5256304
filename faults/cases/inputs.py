"""Damaged inputs, a --workdir that is a file, a workspace in use, an extra product."""

from __future__ import annotations

import shutil
import signal

from ..harness import copy_tree, fault_when, kill_group, listing, truncate
from . import case

#: A finished mosaic: any non-hidden entry of stage3/ (scratch folders and task locks start with ".").
FINISHED_MOSAIC = "stage3/*"
VICTIM = "jw09999001001_02101_00003_mirimage_uncal.fits"


@case("truncated-uncal", f"{VICTIM} truncated to 60% in a copy of the inputs (stage-2 workspace)")
def truncated_uncal(s, c):
    import json

    d = s.case_dir(c.name)
    raw = d / "raw"
    copy_tree(s.raw, raw)
    truncate(raw / VICTIM, int((raw / VICTIM).stat().st_size * 0.6))
    ws = s.new_workspace(d)
    res = s.cli(*s.run_args(raw, ws), case=c, log=d / "fault")
    c.rc, c.message = res.rc, res.message or "(exit 0; skipped: see inputs.json)"
    c.check("exit 0 (a truncated file is skipped, README: Commands)", res.rc == 0, f"exit {res.rc} {res.message}")
    c.check("no traceback", "Traceback" not in res.stderr)
    skipped = dict(map(tuple, json.loads((ws / "inputs.json").read_text()).get("skipped", [])))
    reason = skipped.get(VICTIM, "")
    c.check("inputs.json: the file skipped with a reason", reason, json.dumps(skipped)[:200])
    c.message = f"skipped {VICTIM[:24]}...: {reason}"
    c.check("the summary names the skip", VICTIM in res.stderr + res.stdout)
    shutil.copy2(s.raw / VICTIM, raw / VICTIM)  # the fix: the whole file again
    s.rerun_and_verify(c, ws, raw=raw)


@case("filter-f999w", f"FILTER = 'F999W' in the primary header of {VICTIM} (a copy)")
def filter_f999w(s, c):
    from astropy.io import fits

    d = s.case_dir(c.name)
    raw = d / "raw"
    copy_tree(s.raw, raw)
    with fits.open(raw / VICTIM, mode="update") as h:
        h[0].header["FILTER"] = "F999W"
    ws = s.new_workspace(d)
    before = listing(ws)
    res = s.cli(*s.run_args(raw, ws), case=c, log=d / "fault")
    s.check_one_line(c, res, 3, mentions=("F999W", VICTIM))
    c.check("the workspace is untouched", listing(ws) == before)
    shutil.copy2(s.raw / VICTIM, raw / VICTIM)  # the fix: the original file
    s.rerun_and_verify(c, ws, raw=raw)


@case("workdir-is-file", "--workdir pointing at an existing file")
def workdir_is_file(s, c):
    d = s.case_dir(c.name)
    f = d / "not-a-folder"
    f.write_text("a file\n")
    res = s.cli(*s.run_args(s.raw, f), case=c, log=d / "fault")
    s.check_one_line(c, res, 7, mentions=(str(f),))
    c.check("the file is untouched", f.read_text() == "a file\n")
    s.rerun_and_verify(c, s.new_workspace(d))  # the fix: a folder


@case("locked-workspace", "a second run while the first (stopped with SIGSTOP in stage 3) holds the lock")
def locked_workspace(s, c):
    d = s.case_dir(c.name)
    ws = s.new_workspace(d)
    first = s.start(*s.run_args(s.raw, ws), log=d / "first")
    try:
        fault_when(first, ws, "stage3/.*/*", signal.SIGSTOP, missed_if=FINISHED_MOSAIC)
        scratch = sorted(p.name for p in (ws / "stage3").glob(".*"))
        res = s.cli(*s.run_args(s.raw, ws), case=c, log=d / "fault")
        s.check_one_line(c, res, 5, mentions=(str(ws),))
        c.check("the second run left the first's scratch alone",
                scratch and all((ws / "stage3" / n).exists() for n in scratch), str(scratch))
    finally:
        kill_group(first.pid, signal.SIGCONT)  # the fix: let the first run finish
    r1 = s.finish(first, c)
    c.check("the first run exits 0", r1.rc == 0, f"exit {r1.rc}: {r1.message}")
    s.check_no_scratch(c, ws, "first run")
    s.verify(c, ws / "products", "first run")
    s.rerun_and_verify(c, ws)


@case("verify-extra-product", "an unlisted file added to a copy of the reference products; verify --exact")
def verify_extra(s, c):
    d = s.case_dir(c.name)
    prod = d / "products"
    copy_tree(s.ref / "products", prod)
    extra = prod / "MIRIM-DEMO-FIELD" / "F770W" / "MIRIM-DEMO-FIELD_MIRI_F770W_01Jan2030_extra.fits"
    src = next((prod / "MIRIM-DEMO-FIELD" / "F770W").glob("*_i2d.fits"))
    shutil.copy2(src, extra)
    res = s.cli("verify", prod, s.ref / "products", "--exact", case=c, log=d / "fault")
    c.rc, c.message = res.rc, (res.stdout.strip().splitlines() or [""])[-1][:160]
    c.check("exit 1", res.rc == 1, f"exit {res.rc}")
    c.check("the difference names the extra file", "_extra.fits" in res.stdout + res.stderr, res.stdout[-400:])
    c.check("no traceback", "Traceback" not in res.stderr)
    extra.unlink()  # the fix
    s.verify(c, prod, "after removing it")
