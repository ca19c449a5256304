"""Test session set-up.

CRDS reads its server URL and mode once, at import: every test shares one synthetic CRDS
cache, built once per session, and the environment is set here before anything imports
crds or jwst. Override the location with MIRIM_TEST_CRDS_PATH to reuse a built cache.
"""

import os
import shutil
import tempfile
from pathlib import Path

_CRDS_PATH = Path(os.environ.get("MIRIM_TEST_CRDS_PATH")
                  or Path(tempfile.gettempdir()) / f"mirim-test-crds-{os.getuid()}")
os.environ["CRDS_PATH"] = str(_CRDS_PATH)
os.environ["CRDS_SERVER_URL"] = "https://jwst-serverless-mode.stsci.edu"
os.environ.pop("CRDS_CONTEXT", None)  # set by the crds_cache fixture once built

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def crds_cache() -> Path:
    """A complete synthetic CRDS cache (built on first use, reused across sessions)."""
    from reduce.demo.crds_context import build_demo_context, DEMO_CONTEXT

    if not (_CRDS_PATH / "mappings" / "jwst" / DEMO_CONTEXT).exists():
        build_demo_context(_CRDS_PATH)
    os.environ["CRDS_CONTEXT"] = DEMO_CONTEXT
    return _CRDS_PATH


# ------------------------------------------------------------------ the demo, reduced twice
# The real pipeline takes ~2 min per demo run on 2 cores, so the slow tests share two runs:
# ``demo_run`` (--jobs 2) and ``demo_run_jobs1`` (--jobs 1, interrupted by SIGTERM during
# stage 1, then resumed). Tests that modify a workspace must restore what they change.

def cli(*args, check=True, env=None):
    """``python -m reduce.cli ARGS`` in a subprocess, as a user would run it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"mirim-reduce {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def demo_raw(crds_cache, tmp_path_factory) -> Path:
    """The simulated demo program plus a target acquisition and an LRS exposure (to be skipped)."""
    import numpy as np

    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    raw = tmp_path_factory.mktemp("demo") / "raw"
    cli("simulate", raw)
    spec, scn, rng = demo_program()[0], make_scene(1), np.random.default_rng(5)
    write_exposure(raw / "jw09999003001_02101_00001_mirimage_uncal.fits", spec, scn, rng=rng,
                   exp_type="MIR_TACQ", observation=3, ngroups=5)
    write_exposure(raw / "jw09999004001_02101_00001_mirimage_uncal.fits", spec, scn, rng=rng,
                   exp_type="MIR_LRS-FIXEDSLIT", observation=4, ngroups=5)
    return raw


@pytest.fixture(scope="session")
def demo_run(demo_raw, crds_cache):
    """(raw, workspace, completed process) of ``run RAW --jobs 2``."""
    ws = demo_raw.parent / "ws"
    proc = cli("run", demo_raw, "--workdir", ws, "--jobs", "2", "--crds-path", crds_cache)
    return demo_raw, ws, proc


@pytest.fixture(scope="session")
def demo_run_jobs1(demo_run, crds_cache):
    """``run RAW --jobs 1`` stopped by SIGTERM to its whole process group (as ``docker stop``
    through tini -g, ``scancel`` or systemd do) while stage 1 works on its third exposure,
    then rerun to the end.

    The stop is sent on a marker, not a time: at least two rate files exist and the stage-1
    log of an exposure without a rate file (the task under way) has been opened. It is
    asserted that the run was still going when signalled and that stage 1 was cut short.

    Returns (workspace, interrupted process' (returncode, stderr, cal files at the stop),
    rate files done before the stop, rerun process)."""
    import signal
    import subprocess
    import sys
    import time

    raw, ws2, _ = demo_run
    ws1 = raw.parent / "ws-jobs1"
    args = ["run", str(raw), "--workdir", str(ws1), "--jobs", "1", "--crds-path", str(crds_cache)]
    out_path, err_path = raw.parent / "jobs1.stdout", raw.parent / "jobs1.stderr"  # files: a full pipe
    with open(out_path, "w") as out, open(err_path, "w") as errf:                  # would block the run
        proc = subprocess.Popen([sys.executable, "-m", "reduce.cli", *args], stdout=out, stderr=errf,
                                env={**os.environ, "MPLBACKEND": "Agg"}, start_new_session=True)

    def under_way():
        rates = {p.name.removesuffix("_rate.fits") for p in (ws1 / "stage1").glob("*_rate.fits")}
        started = {p.stem for p in (ws1 / "logs" / "stage1").glob("*.log")}
        return len(rates) >= 2 and bool(started - rates)

    deadline = time.monotonic() + 900
    while not under_way():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            pytest.fail(f"stage 1 of the --jobs 1 run never had a third exposure under way "
                        f"(exit {proc.returncode}):\n{err_path.read_text()[-3000:]}")
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it was signalled"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=600)
    err = err_path.read_text()
    done = sorted(p.name for p in (ws1 / "stage1").glob("*_rate.fits"))
    cal_before = sorted(p.name for p in (ws1 / "stage2").glob("*_cal.fits"))
    assert 2 <= len(done) < len(list(raw.glob("jw0999900[12]*_uncal.fits"))), \
        f"not interrupted mid stage 1: {len(done)} rate files"
    rerun = cli(*args)
    return ws1, (proc.returncode, err, cal_before), done, rerun


@pytest.fixture(scope="session")
def demo_o002_run(demo_raw, crds_cache):
    """(raw, workspace, completed process) of ``run RAW --jobs 2`` on observation 2 of the
    demo only (F770W x2, F2100W x2: two cleaning groups, two mosaics). The Slurm test runs
    every task of a round as its own process, ~6 s of start-up each on 2 cores: it drives
    this smaller round, whose tasks are of every kind (exposures, groups, mosaics, package)."""
    raw = demo_raw.parent / "raw-o002"  # the session's own directory: made once, here
    raw.mkdir()
    for src in sorted(demo_raw.glob("jw09999002001_*_uncal.fits")):
        shutil.copy2(src, raw / src.name)
    ws = demo_raw.parent / "ws-o002"
    proc = cli("run", raw, "--workdir", ws, "--jobs", "2", "--crds-path", crds_cache)
    return raw, ws, proc
