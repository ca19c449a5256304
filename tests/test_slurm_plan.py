"""The Slurm planner (fast, no Slurm): job scripts, resources, the dependency chain, states,
and ``slurm submit --dry-run`` / ``submit`` / ``resubmit`` against a fake sbatch and squeue."""

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from reduce.hpc import slurm_plan as plan
from reduce.hpc import slurm_state as state
from reduce.hpc.slurm_plan import Options

STEMS = [f"jw09999001001_02101_0000{i}_mirimage" for i in range(1, 6)]


def native(**kw):
    return Options(native=["/venv/bin/python", "-m", "reduce.cli"], **kw)


def test_options_need_one_way_to_run():
    with pytest.raises(ValueError):
        Options()
    with pytest.raises(ValueError):
        Options(sif=Path("x.sif"), native=["mirim-reduce"])


def test_array_script_picks_its_exposure_and_passes_signals(tmp_path):
    ws = tmp_path / "ws"
    text = plan.job_script("stage1", ws, native(crds_path=Path("/crds")))
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --signal=B:TERM@300" in lines
    assert f"#SBATCH --output={ws}/slurm/logs/%x_%A_%a.out" in lines
    assert "#SBATCH --job-name=mirim-stage1" in lines
    assert "#SBATCH --cpus-per-task=1" in lines
    assert "#SBATCH --mem=2560M" in lines  # main process + one stage-1 worker
    assert 'STEM=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$WS/slurm/exposures.txt")' in lines
    run = next(ln for ln in lines if ln.startswith("/venv/bin/python"))
    assert run == (f'/venv/bin/python -m reduce.cli stage1 {ws} --exposure "$STEM" --jobs 1 '
                   f'--crds-path /crds &')
    assert "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT" in lines
    assert "slurm/done" not in text  # an exposure's own output marks it done


def test_whole_stage_scripts(tmp_path):
    ws = tmp_path / "ws"
    opts = native(cpus={"clean": 3}, mem={"stage3": "12G"}, time={"clean": "00:45:00"}, partition="short",
                  account="jwst")
    clean = plan.job_script("clean", ws, opts)
    assert f"clean {ws} --jobs 3 &" in clean
    assert "#SBATCH --cpus-per-task=3" in clean and f"#SBATCH --mem={1024 + 3 * 512}M" in clean
    assert "#SBATCH --time=00:45:00" in clean
    assert "#SBATCH --partition=short" in clean and "#SBATCH --account=jwst" in clean
    assert f"#SBATCH --output={ws}/slurm/logs/%x_%j.out" in clean
    assert 'touch "$WS/slurm/done/clean"' in clean
    assert "#SBATCH --mem=12G" in plan.job_script("stage3", ws, opts)
    assert f"reduce.cli package {ws} &" in plan.job_script("package", ws, opts)
    with pytest.raises(ValueError):  # prepare needs the input folder
        plan.job_script("prepare", ws, opts)
    prep = plan.job_script("prepare", ws, native(input=Path("/raw"), config=Path("/cfg/my.toml")))
    assert f"slurm prepare {ws} --input /raw --config /cfg/my.toml &" in prep


def test_sif_script_binds_and_uses_the_image_cache(tmp_path):
    ws = tmp_path / "ws"
    opts = Options(sif=Path("/images/mirim-reduce.sif"), input=Path("/data/raw"), binds=[Path("/data/more")])
    text = plan.job_script("stage2", ws, opts)
    assert (f"apptainer run --containall --bind {ws} --bind /data/raw --bind /data/more /images/mirim-reduce.sif "
            f'stage2 {ws} --exposure "$STEM" --jobs 1 &') in text
    assert "--crds-path" not in text
    assert "export APPTAINERENV_MIRIM_IMAGE_REF=/images/mirim-reduce.sif" in text


def test_compress_array_indices():
    assert plan.compress([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert plan.compress([3]) == "3"
    assert plan.compress([]) == ""


def test_chain_of_a_fresh_workspace():
    todo = {"prepare": True, "stage1": STEMS, "stage2": STEMS, "clean": True, "stage3": True, "package": True}
    jobs = plan.plan(STEMS, todo)
    assert [j.stage for j in jobs] == list(plan.STAGES)
    assert [j.after for j in jobs] == [[], ["prepare"], ["stage1"], ["stage2"], ["clean"], ["stage3"]]
    assert jobs[1].array_spec(None) == "0-4" and jobs[1].array_spec(2) == "0-4%2"
    ws = Path("/ws")
    assert plan.sbatch_argv(jobs[2], ws, native(array_limit=1), ["11"]) == [
        "sbatch", "--parsable", "--array=0-4%1", "--dependency=afterok:11", "/ws/slurm/stage2.sh"]
    assert plan.sbatch_argv(jobs[0], ws, native(), []) == ["sbatch", "--parsable", "/ws/slurm/prepare.sh"]


def test_resubmission_plans_only_the_gap_and_what_follows():
    todo = {"prepare": False, "stage1": [STEMS[3]], "stage2": [STEMS[3]], "clean": True, "stage3": True,
            "package": True}
    jobs = plan.plan(STEMS, todo)
    assert [(j.stage, j.indices, j.after) for j in jobs] == [
        ("stage1", [3], []), ("stage2", [3], ["stage1"]), ("clean", None, ["stage2"]),
        ("stage3", None, ["clean"]), ("package", None, ["stage3"])]


def _touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    if path.name.endswith(("_rate.fits", "_cal.fits")):  # a finished task records its identity
        from reduce import identity

        identity.write(path, "test", {})


def test_todo_follows_the_outputs(tmp_path):
    ws = tmp_path
    for f in ("inputs.json", "crds.json", "slurm/done/prepare"):
        _touch(ws / f)
    for s in STEMS:
        _touch(ws / "stage1" / f"{s}_rate.fits")
        _touch(ws / "stage2" / f"{s}_cal.fits")
    for s in ("clean", "stage3", "package"):
        _touch(ws / "slurm" / "done" / s)
    assert not any(state.todo(ws, STEMS).values())
    (ws / "stage1" / f"{STEMS[2]}_rate.fits").unlink()
    (ws / "stage2" / f"{STEMS[2]}_cal.fits").unlink()
    t = state.todo(ws, STEMS)
    assert t == {"prepare": False, "stage1": [STEMS[2]], "stage2": [STEMS[2]], "clean": True, "stage3": True,
                 "package": True}
    assert state.todo_after(t, "prepare")["prepare"] is True


def test_task_states_from_outputs_and_squeue(tmp_path):
    ws = tmp_path
    _touch(ws / "slurm" / "exposures.txt")
    (ws / "slurm" / "exposures.txt").write_text("".join(f"{s}\n" for s in STEMS[:3]))
    for f in ("inputs.json", "crds.json", "slurm/done/prepare", f"stage1/{STEMS[0]}_rate.fits"):
        _touch(ws / f)
    record = {"rounds": [{"jobs": [
        {"stage": "prepare", "job_id": "10", "indices": None},
        {"stage": "stage1", "job_id": "11", "indices": [0, 1, 2]},
        {"stage": "stage2", "job_id": "12", "indices": [0, 1, 2]},
        {"stage": "clean", "job_id": "13", "indices": None}]}]}
    q = state.parse_squeue("10|COMPLETED|None\n11_0|COMPLETED|None\n11_1|RUNNING|None\n"
                           "12_0|PENDING|Dependency\n12_1|PENDING|DependencyNeverSatisfied\n13|PENDING|Dependency\n")
    rows = {(r.stage, r.task): r for r in state.task_states(ws, record, q)}
    assert rows[("prepare", "")].state == "done"
    assert rows[("stage1", STEMS[0])].state == "done"
    assert rows[("stage1", STEMS[1])].state == "running" and rows[("stage1", STEMS[1])].job == "11_1"
    assert rows[("stage1", STEMS[2])].state == "failed"  # gone from the queue without its output
    assert rows[("stage1", STEMS[2])].log == str(ws / "slurm" / "logs" / "mirim-stage1_11_2.out")
    assert rows[("stage2", STEMS[0])].state == "pending"
    assert rows[("stage2", STEMS[1])].state == "blocked"
    assert rows[("clean", "")].state == "pending"
    assert rows[("clean", "")].log == str(ws / "slurm" / "logs" / "mirim-clean_13.out")
    # once the whole stage-2 array is blocked, what waits on it is blocked as well
    record["rounds"][0]["jobs"][3]["depends"] = ["12"]
    q.update({"11_1": ("CANCELLED", "None"), "12_0": ("PENDING", "DependencyNeverSatisfied")})
    rows = {(r.stage, r.task): r for r in state.task_states(ws, record, q)}
    assert rows[("clean", "")].state == "blocked" and rows[("stage1", STEMS[1])].state == "failed"
    assert rows[("stage3", "")].state == "not submitted"
    # a newer round wins
    record["rounds"].append({"jobs": [{"stage": "stage1", "job_id": "20", "indices": [2]}]})
    rows = {(r.stage, r.task): r for r in state.task_states(ws, record, {"20_2": ("PENDING", "Priority")})}
    assert rows[("stage1", STEMS[2])].state == "pending" and rows[("stage1", STEMS[2])].job == "20_2"
    assert rows[("stage1", STEMS[1])].job == "11_1"


def test_options_round_trip():
    opts = Options(sif=Path("/x.sif"), input=Path("/raw"), binds=[Path("/a")], mem={"stage1": "3G"}, array_limit=2)
    assert Options.from_json(json.loads(json.dumps(opts.to_json()))) == opts


# ----------------------------------------------------------- the CLI with a fake Slurm on PATH

FAKE_SBATCH = """#!/bin/bash
n=$(( $(cat "$FAKE_SLURM/next" 2>/dev/null || echo 100) + 1 )); echo $n > "$FAKE_SLURM/next"
echo "$*" >> "$FAKE_SLURM/sbatch.log"; echo "$n"
"""
FAKE_SQUEUE = """#!/bin/bash
cat "$FAKE_SLURM/queue" 2>/dev/null; true
"""
FAKE_SCANCEL = """#!/bin/bash
echo "$*" >> "$FAKE_SLURM/scancel.log"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE), ("scancel", FAKE_SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(tmp_path))
    return tmp_path


def _recorded_workspace(tmp_path: Path) -> Path:
    """A workspace whose inputs.json lists five exposures (empty files: never opened here)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    exposures = []
    for s in STEMS:
        (raw / f"{s}_uncal.fits").write_text("")
        exposures.append({"path": str(raw / f"{s}_uncal.fits"), "program": "09999", "observation": "001",
                          "visit": "001", "exposure": 1, "filter": "F770W", "subarray": "SUB256",
                          "readpatt": "FASTR1", "ngroups": 5, "nints": 1, "duration": 7.5, "targprop": "X"})
    (ws / "inputs.json").write_text(json.dumps({"format": "mirim-reduce-inputs/2", "exposures": exposures,
                                                "skipped": []}))
    (ws / "crds.json").write_text("{}")
    return ws


def _cli(*args):
    import sys

    return subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})


def test_submit_dry_run_submits_nothing(fake_slurm, tmp_path):
    ws = _recorded_workspace(tmp_path)
    proc = _cli("slurm", "submit", ws, "--native", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would submit" in proc.stdout and "prepare.sh" not in proc.stdout  # the workspace has its records
    assert (ws / "slurm" / "exposures.txt").read_text().split() == STEMS
    assert not (fake_slurm / "sbatch.log").exists() and not (ws / "slurm" / "jobs.json").exists()
    # a recorded workspace without the prepare marker is prepared again only with --input
    assert "--array=0-4 " in proc.stdout


def test_submit_status_resubmit_with_a_fake_slurm(fake_slurm, tmp_path):
    ws = _recorded_workspace(tmp_path)
    _touch(ws / "slurm" / "done" / "prepare")
    assert _cli("slurm", "submit", ws, "--native", "--array-limit", "2").returncode == 0
    calls = (fake_slurm / "sbatch.log").read_text().splitlines()
    assert calls == [f"--parsable --array=0-4%2 {ws}/slurm/stage1.sh",
                     f"--parsable --array=0-4%2 --dependency=afterok:101 {ws}/slurm/stage2.sh",
                     f"--parsable --dependency=afterok:102 {ws}/slurm/clean.sh",
                     f"--parsable --dependency=afterok:103 {ws}/slurm/stage3.sh",
                     f"--parsable --dependency=afterok:104 {ws}/slurm/package.sh"]
    record = json.loads((ws / "slurm" / "jobs.json").read_text())
    assert [j["job_id"] for j in record["rounds"][0]["jobs"]] == ["101", "102", "103", "104", "105"]

    # one stage-1 task still running: resubmit refuses (exit 8)
    (fake_slurm / "queue").write_text("101_3|RUNNING|None\n102_0|PENDING|Dependency\n")
    proc = _cli("slurm", "resubmit", ws)
    assert proc.returncode == 8 and "still running or pending" in proc.stderr
    # it was cancelled: the others finished, the later jobs wait forever; resubmit cancels them and
    # submits task 3 of both arrays and everything after
    for i, s in enumerate(STEMS):
        if i != 3:
            _touch(ws / "stage1" / f"{s}_rate.fits")
    (fake_slurm / "queue").write_text("101_3|CANCELLED|None\n" + "".join(
        f"102_{i}|PENDING|Dependency\n" for i in range(5)) + "103|PENDING|Dependency\n")
    status = json.loads(_cli("slurm", "status", ws, "--json").stdout)
    by = {(r["stage"], r["task"]): r["state"] for r in status}
    assert by[("stage1", STEMS[3])] == "failed" and by[("stage1", STEMS[0])] == "done"
    assert by[("stage2", STEMS[0])] == "pending" and by[("clean", "")] == "pending"  # Slurm has not decided yet
    (fake_slurm / "queue").write_text("101_3|CANCELLED|None\n" + "".join(
        f"102_{i}|PENDING|DependencyNeverSatisfied\n" for i in range(5)) + "".join(
        f"{j}|PENDING|Dependency\n" for j in (103, 104, 105)))
    status = json.loads(_cli("slurm", "status", ws, "--json").stdout)
    assert {r["state"] for r in status if r["stage"] in ("stage2", "clean", "stage3", "package")} == {"blocked"}
    proc = _cli("slurm", "resubmit", ws)
    assert proc.returncode == 0, proc.stderr
    assert (fake_slurm / "scancel.log").read_text().split() == ["102", "103", "104", "105"]
    calls = (fake_slurm / "sbatch.log").read_text().splitlines()[5:]
    assert calls == [f"--parsable --array=3%2 {ws}/slurm/stage1.sh",
                     f"--parsable --array=0-4%2 --dependency=afterok:106 {ws}/slurm/stage2.sh",
                     f"--parsable --dependency=afterok:107 {ws}/slurm/clean.sh",
                     f"--parsable --dependency=afterok:108 {ws}/slurm/stage3.sh",
                     f"--parsable --dependency=afterok:109 {ws}/slurm/package.sh"]


def test_submit_needs_a_way_to_run(tmp_path):
    ws = _recorded_workspace(tmp_path)
    proc = _cli("slurm", "submit", ws)
    assert proc.returncode == 2 and "--sif" in proc.stderr
    proc = _cli("slurm", "submit", ws, "--native", "--mem", "stage9=1G", "--dry-run")
    assert proc.returncode == 2 and "STAGE=VALUE" in proc.stderr
