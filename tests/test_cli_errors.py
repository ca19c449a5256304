"""Bad input: one clear line on stderr, a non-zero exit code, no traceback."""

import os
import subprocess
import sys

import numpy as np


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True,
                          text=True, env=os.environ.copy())


def assert_one_line_error(proc, code, text):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_empty_folder(tmp_path):
    proc = run_cli("run", tmp_path, "--workdir", tmp_path / "ws")
    assert_one_line_error(proc, 3, "no *_uncal.fits files")
    assert not (tmp_path / "ws").exists()


def test_missing_crds_cache(tmp_path, crds_cache):
    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    write_exposure(tmp_path, demo_program()[0], make_scene(1), rng=np.random.default_rng(1))
    proc = run_cli("run", tmp_path, "--workdir", tmp_path / "ws", "--crds-path", tmp_path / "no-cache")
    assert_one_line_error(proc, 4, "does not exist")


def test_uncovered_subarray_names_the_reference_before_any_stage(tmp_path, crds_cache):
    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    raw = tmp_path / "raw"
    raw.mkdir()
    write_exposure(raw, demo_program()[0], make_scene(1), rng=np.random.default_rng(1))
    f = next(raw.glob("*_uncal.fits"))
    # The same exposure labelled (primary header and ASDF metadata) with a subarray the context does not cover.
    from stdatamodels.jwst import datamodels
    with datamodels.open(f) as model:
        model.meta.subarray.name = "MASK1065"
        model.save(tmp_path / f.name)
    (tmp_path / f.name).replace(f)
    proc = run_cli("run", raw, "--workdir", tmp_path / "ws", "--crds-path", crds_cache)
    assert_one_line_error(proc, 4, "has no")
    assert "MASK1065" in proc.stderr and f.name in proc.stderr
    # advice that exists for `run`: the CRDS_CONTEXT variable, or `crds sync --context` (run has no --context)
    assert "set CRDS_CONTEXT" in proc.stderr and "crds sync --context jwst_NNNN.pmap" in proc.stderr
    assert "(--context" not in proc.stderr
    assert not list((tmp_path / "ws" / "stage1").glob("*.fits"))


def test_bad_config_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("DETECT_TRESH = 3\n")
    proc = run_cli("run", tmp_path, "--config", cfg)
    assert_one_line_error(proc, 2, "DETECT_TRESH")


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("run", tmp_path, "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# ------------------------------------------------ documented exit codes, not 70 (issue 12, 4 and 5)

def _one_exposure(folder):
    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    folder.mkdir(parents=True, exist_ok=True)
    write_exposure(folder, demo_program()[0], make_scene(1), rng=np.random.default_rng(1))
    return folder


def _main(monkeypatch, capsys, *args):
    """``mirim-reduce ARGS`` in this process: (exit code, stderr)."""
    import pytest

    from reduce import cli

    monkeypatch.setattr(sys, "argv", ["mirim-reduce", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
        raise SystemExit(0)
    return exc.value.code, capsys.readouterr().err


def _failing_run(monkeypatch, exc=None, failure=None):
    """``orchestrate.reduce_folder`` raising ``exc``, or returning a summary with one failed task."""
    from reduce import orchestrate

    def fake(input_dir, workdir, cfg, **kw):
        if exc is not None:
            raise exc
        return orchestrate.RunSummary(workspace=str(workdir), outcomes=[
            {"stage": "stage1", "name": "jw1", "ok": False, "seconds": 1.0, "pipeline_seconds": 1.0,
             "peak_rss_mb": 1.0, "error": failure}])

    monkeypatch.setattr(orchestrate, "reduce_folder", fake)
    monkeypatch.setattr(orchestrate, "print_summary", lambda s: None)


def test_disk_full_is_exit_15(tmp_path, monkeypatch, capsys):
    import errno

    _failing_run(monkeypatch, OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ws" / "x.fits")))
    code, err = _main(monkeypatch, capsys, "run", tmp_path, "--workdir", tmp_path / "ws")
    assert code == 15 and err.startswith("error: disk full writing") and str(tmp_path / "ws" / "x.fits") in err, err
    # the same in a worker: the task fails with the OSError's text
    _failing_run(monkeypatch, failure="OSError: [Errno 28] No space left on device: '/ws/stage1/.jw1.abc/x.fits'")
    code, err = _main(monkeypatch, capsys, "run", tmp_path, "--workdir", tmp_path / "ws")
    assert code == 15 and "error: disk full" in err, err


def test_disk_full_without_errno_is_exit_15(tmp_path, monkeypatch, capsys):
    """astropy re-raises a full disk as OSError("Not enough space on disk: ...") without errno,
    and a worker's OSError reaches the main process without it (found by the fault suite:
    it was exit 70, 'unexpected')."""
    _failing_run(monkeypatch, OSError("Not enough space on disk: requested 1889810, available 0. "
                                      "65536 requested and 13952 written"))
    code, err = _main(monkeypatch, capsys, "run", tmp_path, "--workdir", tmp_path / "ws")
    assert code == 15 and err.startswith("error: disk full") and "\n" not in err.strip(), err
    _failing_run(monkeypatch, failure="OSError: Not enough space on disk: requested 8000, available 0.")
    code, err = _main(monkeypatch, capsys, "run", tmp_path, "--workdir", tmp_path / "ws")
    assert code == 15 and "error: disk full" in err, err


def test_read_only_workspace_is_a_workspace_error(tmp_path, monkeypatch, capsys):
    import errno

    import pytest

    from reduce import workspace
    from reduce.errors import WorkspaceError

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ws" / ".lock"))

    monkeypatch.setattr(workspace.os, "open", read_only)
    with pytest.raises(WorkspaceError, match="Read-only file system.*ws/.lock"):
        workspace.Workspace(tmp_path / "ws").lock()
    monkeypatch.undo()
    _failing_run(monkeypatch, PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ws" / "crds.json")))
    code, err = _main(monkeypatch, capsys, "run", tmp_path, "--workdir", tmp_path / "ws")
    assert code == WorkspaceError.exit_code == 7 and err.startswith("error: Permission denied: ") and "\n" not in err.strip()


def test_workdir_that_is_a_file(tmp_path, crds_cache):
    raw = _one_exposure(tmp_path / "raw")
    (tmp_path / "ws").write_text("a file")
    proc = run_cli("run", raw, "--workdir", tmp_path / "ws", "--crds-path", crds_cache)
    assert_one_line_error(proc, 7, "is a file, not a folder")
    proc = run_cli("stage2", tmp_path / "ws")
    assert_one_line_error(proc, 7, "is a file, not a folder")
    assert (tmp_path / "ws").read_text() == "a file"


def test_config_file_that_is_not_utf8(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes("DATE = '01Jan2025'  # caf\u00e9\n".encode("latin-1"))
    proc = run_cli("run", tmp_path, "--config", cfg)
    assert_one_line_error(proc, 2, "not UTF-8")


def test_crds_context_that_is_not_a_pipeline_context(tmp_path, crds_cache):
    raw = _one_exposure(tmp_path / "raw")
    env = {**os.environ, "CRDS_CONTEXT": "jwst_miri_9000.imap"}  # exists in the demo cache
    for args in (["crds", "check", raw, "--crds-path", crds_cache],
                 ["run", raw, "--workdir", tmp_path / "ws", "--crds-path", crds_cache]):
        proc = subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True, text=True,
                              env=env)
        assert_one_line_error(proc, 4, "jwst_NNNN.pmap")
        assert "CRDS_CONTEXT" in proc.stderr and "jwst_miri_9000.imap" in proc.stderr
    assert not (tmp_path / "ws").exists()


def test_debug_keeps_the_exit_code(tmp_path):
    proc = run_cli("run", tmp_path, "--debug")  # an empty folder: input error
    assert proc.returncode == 3 and "Traceback" in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no *_uncal.fits files")
