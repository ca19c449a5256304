"""Identities carry the digest of the code that made a product (reduce.identity.code_digest):
a product made by other code than the installed one is redone, whatever the version number."""

import hashlib
from pathlib import Path

import pytest

import reduce
from reduce import identity
from reduce.inputs import Exposure
from reduce.params import PipelineParams
from reduce.stages import stage1
from reduce.workspace import Workspace


def test_code_digest_is_the_sources_of_the_parts_named():
    root = Path(reduce.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.joinpath("clean").rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    assert identity.code_digest("clean") == h.hexdigest()
    assert len({identity.code_digest("clean"), identity.code_digest("stages"), identity.code_digest(),
                identity.code_digest("clean", "stages")}) == 4
    assert identity.code_digest("identity") != identity.code_digest("fsutil")  # a module is a part too
    assert identity.versions("ctx", "clean")["mirim-reduce code"] == identity.code_digest("clean")
    assert "mirim-reduce code" not in identity.versions("ctx")
    with pytest.raises(ValueError, match="no Python sources"):  # a misspelt part hashes nothing: refused
        identity.code_digest("no_such_part")


def test_a_product_of_other_code_is_not_current(tmp_path, monkeypatch):
    uncal = tmp_path / "jw01234001001_02101_00001_mirimage_uncal.fits"
    uncal.write_bytes(b"x" * 2880)
    exp = Exposure(uncal, "01234", "001", "001", 1, "F770W", "FULL", "FASTR1", 10, 1, 27.8, "T")
    ws = Workspace(tmp_path / "ws")
    (task,) = stage1.plan(ws, [exp], PipelineParams(), "jwst_9000.pmap", overwrite=False)
    out = Path(task.outputs[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"rate")
    identity.write(out, task.identity, task.made_of)
    assert task.made_of["versions"]["mirim-reduce code"] == identity.code_digest("stages")
    assert stage1.plan(ws, [exp], PipelineParams(), "jwst_9000.pmap", overwrite=False) == []  # current
    monkeypatch.setattr(identity, "code_digest", lambda *parts: "other code")
    (again,) = stage1.plan(ws, [exp], PipelineParams(), "jwst_9000.pmap", overwrite=False)
    assert again.name == exp.stem and again.identity != task.identity
