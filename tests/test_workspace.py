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
