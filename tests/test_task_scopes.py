"""One part of a workspace per command, as the Slurm tasks run them (slow: cleaning and stage 3
of the demo): the first pass per group, the first-pass mosaic masks, the final pass per group,
stage 3 per mosaic. A part whose prerequisites are not done is refused with a one-line message
(exit 7) naming what is missing and the command that makes it; the parts, in order, give
products identical (verify --exact) to a whole run's."""

import json
import shutil

import pytest

from conftest import cli


def _part_of(demo_ws, dst):
    """A copy of the demo workspace through stage 2 (records, stage 1 and 2 products)."""
    dst.mkdir()
    for name in ("config.toml", "inputs.json", "crds.json"):
        shutil.copy2(demo_ws / name, dst / name)
    for stage in ("stage1", "stage2"):
        shutil.copytree(demo_ws / stage, dst / stage)
    return dst


def _refused(ws, crds_cache, *args):
    proc = cli(*args[:1], ws, *args[1:], "--jobs", "1", "--crds-path", crds_cache, check=False)
    assert proc.returncode == 7, proc.stdout[-500:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.slow
def test_parts_in_order_equal_the_whole_run(demo_run, crds_cache, tmp_path):
    _, demo_ws, _ = demo_run
    ws = _part_of(demo_ws, tmp_path / "ws")
    groups = sorted(json.loads((demo_ws / "clean" / "clean_summary.json").read_text())["groups"])
    mosaics = sorted(p.name for p in (demo_ws / "stage3").iterdir() if p.is_dir())
    assert len(groups) == 3 and len(mosaics) == 4

    msg = _refused(ws, crds_cache, "clean", "--mosaic-mask", mosaics[0])
    assert "first-pass mosaic masks needs every cleaning group done" in msg and "--first-pass" in msg
    msg = _refused(ws, crds_cache, "stage3", "--product", mosaics[0])
    assert groups[0] in msg

    run = ("--jobs", "1", "--crds-path", crds_cache)
    cli("clean", ws, "--first-pass", "--group", groups[0], "--group", groups[1], *run)
    assert not (ws / "pass1" / "clean" / "clean_summary.json").exists()  # a group is missing
    msg = _refused(ws, crds_cache, "clean", "--group", groups[0])
    assert f"not done: {groups[2]}" in msg
    cli("clean", ws, "--first-pass", "--group", groups[2], *run)
    first = json.loads((ws / "pass1" / "clean" / "clean_summary.json").read_text())  # by the last group
    assert sorted(first["groups"]) == groups

    msg = _refused(ws, crds_cache, "clean", "--group", groups[0])
    assert "needs the first-pass mosaic masks" in msg and f"--mosaic-mask {mosaics[0]}" in msg
    cli("clean", ws, *[a for m in mosaics for a in ("--mosaic-mask", m)], *run)
    for g in groups:
        cli("clean", ws, "--group", g, *run)
    for m in mosaics:
        cli("stage3", ws, "--product", m, *run)
    assert not (ws / "products").exists() or not any((ws / "products").iterdir())  # a part never packages
    cli("package", ws)

    proc = cli("verify", ws / "products", demo_ws / "products", "--exact", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for stem_file in (demo_ws / "clean").glob("*_cal.fits"):  # the cleaned files themselves, byte for byte
        assert (ws / "clean" / stem_file.name).read_bytes() == stem_file.read_bytes(), stem_file.name


def test_unknown_parts_are_named(demo_raw, crds_cache, tmp_path):
    """Names that are not a group or mosaic, and parts the configuration does not have (exit 3, 2)."""
    ws = tmp_path / "ws"
    cli("slurm", "prepare", ws, "--input", demo_raw, "--crds-path", crds_cache)
    (ws / "stage2").mkdir(exist_ok=True)
    proc = cli("clean", ws, "--group", "F999W", "--crds-path", crds_cache, check=False)
    assert proc.returncode == 3 and "no cleaning group F999W" in proc.stderr, proc.stderr
    proc = cli("stage3", ws, "--product", "nope", "--crds-path", crds_cache, check=False)
    assert proc.returncode == 3 and "no mosaic nope" in proc.stderr, proc.stderr
    (tmp_path / "one.toml").write_text("clean_second_pass = false\n")
    proc = cli("clean", ws, "--first-pass", "--config", tmp_path / "one.toml", "--crds-path", crds_cache, check=False)
    assert proc.returncode == 3 and "second cleaning pass" in proc.stderr, proc.stderr
    proc = cli("clean", ws, "--mosaic-mask", "x", "--group", "y", check=False)
    assert proc.returncode == 2 and "--mosaic-mask is a part of its own" in proc.stderr, proc.stderr
