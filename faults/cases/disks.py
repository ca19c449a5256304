"""The workspace's disk full, read-only, or its products folder read-only."""

from __future__ import annotations

import subprocess

from ..harness import copy_tree, du_mb, mount_tmpfs, need_root, umount
from . import case


def _disk_full(s, c, size_mb: int, template=None, check=None):
    """Run on a ``size_mb`` tmpfs (holding a copy of ``template``, if given): exit 15, one line,
    no scratch; then the same workspace on a bigger disk is rerun and verified."""
    need_root()
    d = s.case_dir(c.name)
    mnt = d / "small-disk"
    mount_tmpfs(mnt, size_mb)
    try:
        ws = mnt / "ws"
        if template is not None:
            copy_tree(template, ws)
        res = s.cli(*s.run_args(s.raw, ws), case=c, log=d / "fault")
        s.check_one_line(c, res, 15, mentions=("disk full",))
        if check is not None:
            check(ws)
        s.check_no_scratch(c, ws, "after the failure")
        fixed = d / "ws"
        copy_tree(ws, fixed)  # the fix: the same workspace on a bigger disk
    finally:
        umount(mnt)
    s.rerun_and_verify(c, fixed)


@case("disk-full", "stage-2 workspace copied onto a tmpfs with 14 MB free; run")
def disk_full(s, c):
    size = int(du_mb(s.stage2_template) + 14)
    c.fault = f"stage-2 workspace on a {size} MB tmpfs (14 MB free); run"
    _disk_full(s, c, size, template=s.stage2_template)


@case("disk-full-stage2", "a fresh workspace on a 30 MB tmpfs (fills up in stage 2, in jwst's own writes); run")
def disk_full_stage2(s, c):
    def stage1_done(ws):
        c.check("stage 1 finished before the disk was full", len(list((ws / "stage1").glob("*_rate.fits"))) == 5)

    _disk_full(s, c, 30, check=stage1_done)


@case("readonly-workspace", "stage-2 workspace on a tmpfs remounted read-only; run")
def readonly_workspace(s, c):
    need_root()
    d = s.case_dir(c.name)
    mnt = d / "ro"
    mount_tmpfs(mnt, int(du_mb(s.stage2_template) + 200))
    try:
        ws = mnt / "ws"
        copy_tree(s.stage2_template, ws)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        res = s.cli(*s.run_args(s.raw, ws), case=c, log=d / "fault")
        s.check_one_line(c, res, 7, mentions=(str(ws),))
        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)  # the fix
        s.rerun_and_verify(c, ws)
    finally:
        umount(mnt)


@case("readonly-products", "products/ a read-only bind mount; run (fails at packaging)")
def readonly_products(s, c):
    need_root()
    d = s.case_dir(c.name)
    ws = s.new_workspace(d)
    prod = ws / "products"
    prod.mkdir()
    subprocess.run(["mount", "--bind", str(prod), str(prod)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(prod)], check=True)
        res = s.cli(*s.run_args(s.raw, ws), case=c, log=d / "fault")
        s.check_one_line(c, res, 7, mentions=("products",))
        c.check("stage 3 finished before the failure", any((ws / "stage3").glob("*/*_i2d.fits")))
    finally:
        umount(prod)  # the fix
    s.rerun_and_verify(c, ws)
