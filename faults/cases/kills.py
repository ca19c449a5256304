"""kill -9 of the whole process group in each phase, and SIGINT / SIGTERM (exit 130)."""

from __future__ import annotations

import signal

from ..harness import Case, Suite, fault_when, scratch_left
from . import case

#: A finished mosaic: any non-hidden entry of stage3/ (scratch folders and task locks start with ".").
FINISHED_MOSAIC = "stage3/*"


def _complete_under_final_names(c: Case, ws) -> None:
    """Every FITS file under its final name is whole (atomic renames: no half-written product)."""
    from reduce.reference_check import problem

    bad = []
    for p in sorted(ws.rglob("*.fits")):
        if not any(part.startswith(".") for part in p.relative_to(ws).parts):
            why = problem(p)
            if why:
                bad.append(f"{p.relative_to(ws)}: {why}")
    c.check("after the kill: every FITS under a final name is whole", not bad, "; ".join(bad[:3]))


def _kill(s: Suite, c: Case, marker: str, missed_if: str | None, *, stage2: bool = True,
          sig: int = signal.SIGKILL, need_part: bool = False) -> None:
    d = s.case_dir(c.name)
    ws = s.new_workspace(d, stage2=stage2)
    proc = s.start(*s.run_args(s.raw, ws), log=d / "fault")
    hit = fault_when(proc, ws, marker, sig, missed_if=missed_if)
    res = s.finish(proc, c)
    c.fault += f" (at {hit})"
    if sig == signal.SIGKILL:
        c.rc, c.message = res.rc, "(killed: no message)"
        c.check("the run died of SIGKILL", res.rc == -signal.SIGKILL, f"exit {res.rc}")
        left = scratch_left(ws)
        if need_part:
            parts = [p for p in left if p.name.endswith(".part")]
            c.check("a .part file was being written at the kill", parts, "none left by the kill")
        c.fault += f"; {len(left)} scratch path(s) left by the kill"
        _complete_under_final_names(c, ws)
    else:
        s.check_one_line(c, res, 130, prefix="interrupted:")
        s.check_no_scratch(c, ws, "after the interrupt")
    s.rerun_and_verify(c, ws)


@case("kill9-stage1", "kill -9 the process group once the first stage1/*_rate.fits exists")
def kill9_stage1(s, c):
    _kill(s, c, "stage1/*_rate.fits", "stage2/*", stage2=False)


@case("kill9-clean-pass1", "kill -9 the process group once the first pass1/clean/*_cal.fits exists")
def kill9_clean_pass1(s, c):
    _kill(s, c, "pass1/clean/*_cal.fits", "pass1/masks/*")


@case("kill9-masks", "kill -9 the process group once the first-pass mosaic for the masks has begun "
                    "(pass1/stage3/*/*_asn.json), before its mask exists")
def kill9_masks(s, c):
    # the projected masks and the product's .json marker are written within milliseconds of each
    # other; the in-memory mosaic before them takes seconds
    _kill(s, c, "pass1/stage3/*/*_asn.json", "pass1/stage3/*/*_mosaic_mask.fits")


@case("kill9-clean-pass2", "kill -9 the process group once the first clean/*_cal.fits (pass 2) exists")
def kill9_clean_pass2(s, c):
    _kill(s, c, "clean/*_cal.fits", "stage3/*")


@case("kill9-stage3", "kill -9 the process group once stage 3's scratch folder stage3/.*/ exists")
def kill9_stage3(s, c):
    _kill(s, c, "stage3/.*/*", FINISHED_MOSAIC)


@case("kill9-package", "kill -9 the process group once products/ has its first file")
def kill9_package(s, c):
    _kill(s, c, "products/**/*.*", "products/manifest.json")


@case("kill9-part-write", "kill -9 while a cleaning QA figure is written (clean/qa/.*.part exists)")
def kill9_part(s, c):
    _kill(s, c, "clean/qa/.*.part", "stage3/*", need_part=True)


@case("sigint-clean", "SIGINT to the process group once pass1/clean/*_cal.fits exists")
def sigint_clean(s, c):
    _kill(s, c, "pass1/clean/*_cal.fits", "pass1/masks/*", sig=signal.SIGINT)


@case("sigterm-stage3", "SIGTERM to the process group once stage3/.*/ exists")
def sigterm_stage3(s, c):
    _kill(s, c, "stage3/.*/*", FINISHED_MOSAIC, sig=signal.SIGTERM)
