"""The fault suite: ``python -m faults.run_faults [--only CASE,...] [--tmp DIR] [--keep]``.

Simulates a small program (the demo's 5 F770W dithers of observation 1), reduces it once
without faults (the reference run), makes a stage-2-complete workspace from it, then runs
every case (:mod:`faults.cases`): set up, fault, check, fix, rerun, check. Prints one row per
case and exits 1 if any case failed, errored, or missed its fault (a kill that came after the
phase it aimed at had finished: retime the case). Needs root for the mount cases (skipped
otherwise). Results: ``TMP/results.json``; a failed case's folder is kept in ``TMP/cases``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .harness import (Case, CaseSkipped, FaultMissed, Suite, copy_tree, dump, force_remove, sha256_tree,
                      wait_group_gone)

COLUMNS = ("case", "fault", "exit", "message", "checks", "s")


def _row(c: Case) -> str:
    total = len(c.checks)
    msg = (c.message if c.status in ("PASS", "FAIL") or not c.error else c.error.splitlines()[0]).replace("|", "/")
    if len(msg) > 110:
        msg = msg[:107] + "..."
    status = "" if c.status == "PASS" else f"**{c.status}** "
    return (f"| {c.name} | {c.fault} | {'' if c.rc is None else c.rc} | {msg} | "
            f"{status}{c.passed}/{total} | {c.seconds:.0f} |")


def setup(s: Suite, log=print) -> float:
    """Inputs, the CRDS copy, the configuration, the reference run and the stage-2 template."""
    from .program import write_program

    t0 = time.perf_counter()
    s.root.mkdir(parents=True, exist_ok=True)
    if not (s.crds_src / "mappings" / "jwst" / "jwst_9000.pmap").is_file():
        log(f"building the demo CRDS context in {s.crds_src}")
        r = s.cli("crds", "build-demo-context", s.crds_src, log=s.root / "build-crds")
        if r.rc:
            raise SystemExit(f"error: building the CRDS context failed: {r.message or r.stderr[-500:]}")
    if not s.crds.is_dir():
        copy_tree(s.crds_src, s.crds)
    write_program(s.raw)
    s.config.write_text('DATE = "01Jan2030"\n')
    if not (s.ref / "products" / "manifest.json").is_file():
        force_remove(s.ref)
        log(f"reference run: {' '.join(map(str, s.run_args(s.raw, s.ref)))}")
        r = s.cli(*s.run_args(s.raw, s.ref), log=s.root / "reference")
        if r.rc:
            raise SystemExit(f"error: the reference run failed (exit {r.rc}): {r.message or r.stderr[-500:]}")
        log(f"reference run: {r.seconds:.0f} s")
    if not s.stage2_template.is_dir():
        tmp = s.root / "stage2-template.tmp"
        force_remove(tmp)
        copy_tree(s.ref, tmp)
        for d in ("clean", "pass1", "stage3", "products"):
            force_remove(tmp / d)
        for f in ("summary.json",):
            (tmp / f).unlink(missing_ok=True)
        os.replace(tmp, s.stage2_template)
    return time.perf_counter() - t0


def run_case(s: Suite, name: str, fault: str, fn) -> Case:
    c = Case(name, fault)
    t0 = time.perf_counter()
    before = sha256_tree(s.raw)
    crds_before = sha256_tree(s.crds)
    try:
        fn(s, c)
    except FaultMissed as exc:
        c.status, c.error = "FAULT MISSED", str(exc)
    except CaseSkipped as exc:
        c.status, c.error = "SKIP", str(exc)
    except Exception as exc:  # noqa: BLE001 - a broken case is reported, the suite goes on
        c.status, c.error = "ERROR", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    if c.status != "SKIP":
        c.check("inputs byte-identical (sha256)", sha256_tree(s.raw) == before)
        c.check("the suite's CRDS cache byte-identical", sha256_tree(s.crds) == crds_before)
    c.finish()
    c.seconds = time.perf_counter() - t0
    if c.status in ("PASS", "SKIP") and not s.keep:
        force_remove(s.root / "cases" / name)
    return c


def unmount_below(root: Path) -> None:
    from .harness import umount

    try:
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for m in sorted(mounts, key=len, reverse=True):
        if Path(m).is_relative_to(root):
            umount(Path(m))


def main(argv=None) -> int:
    from .cases import CASES

    ap = argparse.ArgumentParser(prog="python -m faults.run_faults", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()) / "mirim-faults",
                    help="scratch folder of the suite (reference run kept there for reruns)")
    ap.add_argument("--crds-path", type=Path, default=Path(os.environ.get("MIRIM_TEST_CRDS_PATH") or
                                                          Path(tempfile.gettempdir()) / f"mirim-test-crds-{os.getuid()}"),
                    help="a synthetic demo CRDS cache (built if missing; never modified: the suite copies it)")
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep every case's folder")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse TMP's reference run if there is one (development only: it must come from this code)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    a = ap.parse_args(argv)
    if a.list:
        for name, fault, _ in CASES:
            print(f"{name:24s} {fault}")
        return 0
    only = [n for n in a.only.split(",") if n]
    unknown = set(only) - {n for n, _, _ in CASES}
    if unknown:
        print(f"error: unknown case(s) {', '.join(sorted(unknown))} (--list)", file=sys.stderr)
        return 2
    s = Suite(root=a.tmp.absolute(), crds_src=a.crds_path.absolute(), jobs=a.jobs, keep=a.keep)
    unmount_below(s.root)  # mounts a killed suite left behind
    if not a.reuse:
        force_remove(s.root)
    t0 = time.perf_counter()
    setup_s = setup(s, log=lambda m: print(m, flush=True))
    print(f"setup (inputs, CRDS copy, reference run, stage-2 template): {setup_s:.0f} s in {s.root}", flush=True)
    header = "| " + " | ".join(COLUMNS) + " |"
    print(header + "\n|" + "---|" * len(COLUMNS), flush=True)
    results = []
    for name, fault, fn in CASES:
        if only and name not in only:
            continue
        c = run_case(s, name, fault, fn)
        results.append(c)
        print(_row(c), flush=True)
    total = time.perf_counter() - t0
    bad = [c for c in results if c.status not in ("PASS", "SKIP")]
    print()
    print(header + "\n|" + "---|" * len(COLUMNS))
    for c in results:
        print(_row(c))
    for c in results:
        failed = [(w, d) for w, ok, d in c.checks if not ok]
        if failed or c.error:
            print(f"\n{c.name}: {c.status}{': ' + c.error.splitlines()[0] if c.error else ''}")
            for w, d in failed:
                print(f"  failed: {w}{': ' + d[:400] if d else ''}")
    dump({"total_seconds": total, "setup_seconds": setup_s,
          "cases": [c.__dict__ for c in results]}, s.root / "results.json")
    n_skip = sum(c.status == "SKIP" for c in results)
    print(f"\n{len(results) - len(bad) - n_skip} passed, {len(bad)} failed, {n_skip} skipped; "
          f"total {total:.0f} s (setup {setup_s:.0f} s); details: {s.root / 'results.json'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
