"""Workspace lock and atomic writes."""

import pytest

from reduce.errors import WorkspaceLockedError
from reduce.fsutil import atomic_path
from reduce.workspace import Workspace


def test_second_run_on_a_workspace_is_refused(tmp_path):
    with Workspace(tmp_path / "ws"):
        with pytest.raises(WorkspaceLockedError, match="in use"):
            Workspace(tmp_path / "ws").lock()
    with Workspace(tmp_path / "ws") as ws:  # released after the first run ends
        assert (ws.root / "stage1").is_dir()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def _killed_writer(final):
    """A process killed (SIGKILL) inside atomic_path(final): its temporary stays behind."""
    import signal
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from reduce.fsutil import atomic_path\n"
            "with atomic_path(Path(sys.argv[1])) as tmp:\n"
            "    tmp.write_bytes(b'half'); print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(final)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_rerun_removes_only_abandoned_packaging_temporaries(tmp_path):
    """kill -9 during packaging: the next run's clean-up removes the .*.part files it left in the
    products folder (WORKSPACE/products and DESTINATION_DIRECTORY), and nothing else."""
    from reduce import config
    from reduce.orchestrate import _remove_scratch
    from reduce.params import PackageParams

    ws = Workspace(tmp_path / "ws").create()
    dest = tmp_path / "dest"
    cfg = config.load(None, {"DESTINATION_DIRECTORY": str(dest)})
    killed = [ws.products / "DEMO" / "F770W" / "DEMO_MIRI_F770W_01Jan2025_i2d.fits",
              ws.products / "manifest.json", dest / "report" / "mosaic.png", dest / "DEMO" / "F770W" / "x_i2d.fits"]
    for final in killed:
        _killed_writer(final)
    left = [p for d in (ws.products, dest) for p in d.rglob(".*.part")]
    assert sorted(p.name.split(".")[1] for p in left) == sorted(f.name.split(".")[0] for f in killed)
    user = [ws.products / ".notes.part", ws.products / "DEMO" / ".keep", dest / ".x.abcdefgh.partial",
            dest / "mine.abcdefgh.part", dest / "DEMO" / "F770W" / "data.fits"]
    for p in user:
        p.write_text("user file")
    (ws.root / "config.toml").write_text("DESTINATION_DIRECTORY = ''\n")  # the killed run's
    with atomic_path(dest / "DEMO" / "live.fits") as live:  # another run packaging right now
        live.write_text("in progress")
        _remove_scratch(ws, PackageParams.from_config(cfg))
        assert live.exists()
    assert not [p for p in left if p.exists()]
    assert all(p.read_text() == "user file" for p in user)
    assert (dest / "DEMO" / "live.fits").read_text() == "in progress"


def test_rerun_removes_abandoned_temporaries_in_stage_subfolders(tmp_path):
    """kill -9 while a cleaning QA figure or a first-pass mosaic mask is written: the next run
    removes the .*.part files left in sub-folders of the stage folders (clean/qa/,
    pass1/clean/qa/, pass1/stage3/<product>/), and nothing else (found by the fault suite)."""
    from reduce.orchestrate import _remove_scratch
    from reduce.params import PackageParams

    ws = Workspace(tmp_path / "ws").create()
    killed = [ws.root / "clean" / "qa" / "group_template.png",
              ws.root / "pass1" / "clean" / "qa" / "x_clean.png",
              ws.root / "pass1" / "stage3" / "prod" / "prod_mosaic_mask.fits"]
    for final in killed:
        _killed_writer(final)
    left = [p for p in ws.root.rglob(".*.part")]
    assert len(left) == len(killed)
    user = ws.root / "clean" / "qa" / "notes.txt"
    user.write_text("user file")
    _remove_scratch(ws, PackageParams())
    assert not [p for p in left if p.exists()]
    assert user.read_text() == "user file"


def test_task_whose_log_disk_is_full_prints_no_traceback(tmp_path, capfd):
    """A pipeline task on a full disk: its log cannot be written either (here /dev/full, ENOSPC);
    the task fails with its reason and nothing reaches the console (found by the fault suite:
    logging printed '--- Logging error ---' and a traceback on stderr)."""
    from reduce.stages.runner import Task, run_task

    task = Task(stage="stage1", name="jw1", inputs=[str(tmp_path / "missing_uncal.fits")],
                outputs=[str(tmp_path / "stage1" / "jw1_rate.fits")], log="/dev/full")
    out = run_task(task)
    assert not out.ok and out.error
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Logging error" not in err, err
