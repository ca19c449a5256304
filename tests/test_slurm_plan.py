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
from reduce.params import CleanParams

STEMS = [f"jw09999001001_02101_0000{i}_mirimage" for i in range(1, 6)]
GROUPS = ["F770W_11p68_MIRIMAGE_SUB256_FASTR1", "F1500W_8p69_MIRIMAGE_SUB256_FASTR1"]
MOSAICS = ["jw09999-o001_t001_miri_f770w-sub256", "jw09999-o001_t001_miri_f1500w-sub256"]
LISTS = {"exposures": STEMS, "groups": GROUPS, "mosaics": MOSAICS}


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
    assert 'NAME=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$WS/slurm/exposures.txt")' in lines
    run = next(ln for ln in lines if ln.startswith("/venv/bin/python"))
    assert run == (f'/venv/bin/python -m reduce.cli stage1 {ws} --exposure "$NAME" --jobs 1 '
                   f'--crds-path /crds &')
    assert "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT" in lines
    assert "slurm/done" not in text  # an exposure's own output marks it done


@pytest.mark.parametrize("stage, listed, args", [
    ("clean1", "groups", 'clean {ws} --group "$NAME" --first-pass --jobs 1'),
    ("masks", "mosaics", 'clean {ws} --mosaic-mask "$NAME" --jobs 1'),
    ("clean", "groups", 'clean {ws} --group "$NAME" --jobs 1'),
    ("stage3", "mosaics", 'stage3 {ws} --product "$NAME" --no-package --jobs 1')])
def test_group_and_mosaic_tasks(tmp_path, stage, listed, args):
    ws = tmp_path / "ws"
    text = plan.job_script(stage, ws, native(mem={"stage3": "12G"}, time={"clean": "00:45:00"}))
    assert f'NAME=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$WS/slurm/{listed}.txt")' in text
    assert f"/venv/bin/python -m reduce.cli {args.format(ws=ws)} &" in text
    # a group's or mosaic's task marks itself done (its products do not say which task made them)
    assert f'touch "$WS/slurm/done/{stage}/$NAME"' in text
    assert "#SBATCH --cpus-per-task=1" in text
    assert f"#SBATCH --output={ws}/slurm/logs/%x_%A_%a.out" in text
    if stage == "stage3":
        assert "#SBATCH --mem=12G" in text
    if stage == "clean":
        assert "#SBATCH --time=00:45:00" in text and f"#SBATCH --mem={1024 + 1536}M" in text


def test_whole_workspace_scripts(tmp_path):
    ws = tmp_path / "ws"
    opts = native(partition="short", account="jwst")
    package = plan.job_script("package", ws, opts)
    assert f"reduce.cli package {ws} &" in package
    assert "#SBATCH --partition=short" in package and "#SBATCH --account=jwst" in package
    assert f"#SBATCH --output={ws}/slurm/logs/%x_%j.out" in package
    assert 'touch "$WS/slurm/done/package"' in package
    with pytest.raises(ValueError):  # prepare needs the input folder
        plan.job_script("prepare", ws, opts)
    prep = plan.job_script("prepare", ws, native(input=Path("/raw"), config=Path("/cfg/my.toml")))
    assert f"slurm prepare {ws} --input /raw --config /cfg/my.toml &" in prep


def test_stages_follow_the_cleaning_configuration():
    assert plan.stages_for(CleanParams(second_pass=True, super_bkg_sub=True)) == plan.STAGES
    one = plan.stages_for(CleanParams(second_pass=False, super_bkg_sub=True))
    assert one == ("prepare", "stage1", "stage2", "clean", "stage3", "package")
    assert plan.stages_for(CleanParams(second_pass=True, super_bkg_sub=False)) == one


def test_sif_script_binds_and_uses_the_image_cache(tmp_path):
    ws = tmp_path / "ws"
    opts = Options(sif=Path("/images/mirim-reduce.sif"), input=Path("/data/raw"), binds=[Path("/data/more")])
    text = plan.job_script("stage2", ws, opts)
    assert (f"apptainer run --containall --bind {ws} --bind /data/raw --bind /data/more /images/mirim-reduce.sif "
            f'stage2 {ws} --exposure "$NAME" --jobs 1 &') in text
    assert "--crds-path" not in text
    assert "export APPTAINERENV_MIRIM_IMAGE_REF=/images/mirim-reduce.sif" in text
    assert 'export APPTAINERENV_MIRIM_CWD="$WS"' in text  # not /data: the runscript would refuse it


def test_compress_array_indices():
    assert plan.compress([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert plan.compress([3]) == "3"
    assert plan.compress([]) == ""


def test_chain_of_a_fresh_workspace():
    todo = {"prepare": True, "stage1": STEMS, "stage2": STEMS, "clean1": GROUPS, "masks": MOSAICS,
            "clean": GROUPS, "stage3": MOSAICS, "package": True}
    jobs = plan.plan(LISTS, todo)
    assert [j.stage for j in jobs] == list(plan.STAGES)
    assert [j.after for j in jobs] == [[]] + [[s] for s in plan.STAGES[:-1]]
    assert jobs[1].array_spec(None) == "0-4" and jobs[1].array_spec(2) == "0-4%2"
    assert [j.array_spec(None) for j in jobs[3:7]] == ["0-1"] * 4
    ws = Path("/ws")
    assert plan.sbatch_argv(jobs[2], ws, native(array_limit=1), ["11"]) == [
        "sbatch", "--parsable", "--array=0-4%1", "--dependency=afterok:11", "/ws/slurm/stage2.sh"]
    assert plan.sbatch_argv(jobs[0], ws, native(), []) == ["sbatch", "--parsable", "/ws/slurm/prepare.sh"]


def test_resubmission_plans_only_the_gap_and_what_follows():
    todo = {"prepare": False, "stage1": [STEMS[3]], "stage2": [STEMS[3]], "clean1": [], "masks": [],
            "clean": [GROUPS[1]], "stage3": MOSAICS, "package": True}
    jobs = plan.plan(LISTS, todo, plan.stages_for(CleanParams(second_pass=False)))
    assert [(j.stage, j.indices, j.after) for j in jobs] == [
        ("stage1", [3], []), ("stage2", [3], ["stage1"]), ("clean", [1], ["stage2"]),
        ("stage3", [0, 1], ["clean"]), ("package", None, ["stage3"])]


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
    for stage, names in (("clean1", GROUPS), ("masks", MOSAICS), ("clean", GROUPS), ("stage3", MOSAICS)):
        for n in names:
            _touch(ws / "slurm" / "done" / stage / n)
    _touch(ws / "slurm" / "done" / "package")
    assert not any(state.todo(ws, LISTS).values())
    # one mosaic's stage 3 failed: only it and the packaging
    (ws / "slurm" / "done" / "stage3" / MOSAICS[1]).unlink()
    assert state.todo(ws, LISTS) == {"prepare": False, "stage1": [], "stage2": [], "clean1": [], "masks": [],
                                     "clean": [], "stage3": [MOSAICS[1]], "package": True}
    # an exposure to redo: its chain, then every group's and mosaic's task (they skip what is current)
    (ws / "stage1" / f"{STEMS[2]}_rate.fits").unlink()
    (ws / "stage2" / f"{STEMS[2]}_cal.fits").unlink()
    t = state.todo(ws, LISTS)
    assert t == {"prepare": False, "stage1": [STEMS[2]], "stage2": [STEMS[2]], "clean1": GROUPS, "masks": MOSAICS,
                 "clean": GROUPS, "stage3": MOSAICS, "package": True}
    assert state.todo(ws, LISTS, redo_prepare=True) == {**t, "prepare": True}
    # records written again from an input folder: prepare, then every group's and mosaic's task
    for s in STEMS:
        _touch(ws / "stage1" / f"{s}_rate.fits")
        _touch(ws / "stage2" / f"{s}_cal.fits")
    assert state.todo(ws, LISTS, redo_prepare=True) == {**t, "prepare": True, "stage1": [], "stage2": []}


def test_task_states_from_outputs_and_squeue(tmp_path):
    ws = tmp_path
    _touch(ws / "slurm" / "exposures.txt")
    (ws / "slurm" / "exposures.txt").write_text("".join(f"{s}\n" for s in STEMS[:3]))
    (ws / "slurm" / "groups.txt").write_text("".join(f"{g}\n" for g in GROUPS))
    for f in ("inputs.json", "crds.json", "slurm/done/prepare", f"stage1/{STEMS[0]}_rate.fits"):
        _touch(ws / f)
    record = {"stages": list(plan.stages_for(CleanParams(second_pass=False))), "rounds": [{"jobs": [
        {"stage": "prepare", "job_id": "10", "indices": None},
        {"stage": "stage1", "job_id": "11", "indices": [0, 1, 2]},
        {"stage": "stage2", "job_id": "12", "indices": [0, 1, 2]},
        {"stage": "clean", "job_id": "13", "indices": [0, 1]}]}]}
    q = state.parse_squeue("10|COMPLETED|None\n11_0|COMPLETED|None\n11_1|RUNNING|None\n"
                           "12_0|PENDING|Dependency\n12_1|PENDING|DependencyNeverSatisfied\n13_0|PENDING|Dependency\n"
                           "13_1|PENDING|Dependency\n")
    rows = {(r.stage, r.task): r for r in state.task_states(ws, record, q)}
    assert rows[("prepare", "")].state == "done"
    assert rows[("stage1", STEMS[0])].state == "done"
    assert rows[("stage1", STEMS[1])].state == "running" and rows[("stage1", STEMS[1])].job == "11_1"
    assert rows[("stage1", STEMS[2])].state == "failed"  # gone from the queue without its output
    assert rows[("stage1", STEMS[2])].log == str(ws / "slurm" / "logs" / "mirim-stage1_11_2.out")
    assert rows[("stage2", STEMS[0])].state == "pending"
    assert rows[("stage2", STEMS[1])].state == "blocked"
    assert rows[("clean", GROUPS[0])].state == "pending"
    assert rows[("clean", GROUPS[1])].log == str(ws / "slurm" / "logs" / "mirim-clean_13_1.out")
    assert ("clean1", GROUPS[0]) not in rows  # the configuration runs one cleaning pass
    # once the whole stage-2 array is blocked, what waits on it is blocked as well
    record["rounds"][0]["jobs"][3]["depends"] = ["12"]
    q.update({"11_1": ("CANCELLED", "None"), "12_0": ("PENDING", "DependencyNeverSatisfied")})
    rows = {(r.stage, r.task): r for r in state.task_states(ws, record, q)}
    assert rows[("clean", GROUPS[1])].state == "blocked" and rows[("stage1", STEMS[1])].state == "failed"
    assert rows[("package", "")].state == "not submitted"
    # a group's task is done when its script marked it, whatever the queue says
    _touch(ws / "slurm" / "done" / "clean" / GROUPS[0])
    rows = {(r.stage, r.task): r for r in state.task_states(ws, record, q)}
    assert rows[("clean", GROUPS[0])].state == "done" and rows[("clean", GROUPS[1])].state == "blocked"
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


def _recorded_workspace(tmp_path: Path, raw: Path) -> Path:
    """A workspace whose inputs.json lists the demo's exposures (as `slurm prepare` records them)."""
    from reduce import inputs
    from reduce.fsutil import write_json

    ws = tmp_path / "ws"
    ws.mkdir()
    write_json(ws / "inputs.json", inputs.record(inputs.select(raw), ws))
    (ws / "crds.json").write_text("{}")
    return ws


def _cli(*args):
    import sys

    return subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"})


DEMO_GROUPS = ["F1500W_8p69_MIRIMAGE_SUB256_FASTR1", "F2100W_7p19_MIRIMAGE_SUB256_FASTR1",
               "F770W_11p68_MIRIMAGE_SUB256_FASTR1"]
DEMO_MOSAICS = ["jw09999-o001_t001_miri_f1500w-sub256", "jw09999-o001_t001_miri_f770w-sub256",
                "jw09999-o002_t001_miri_f2100w-sub256", "jw09999-o002_t001_miri_f770w-sub256"]


def test_submit_dry_run_plans_groups_and_mosaics_from_the_uncal_headers(fake_slurm, tmp_path, demo_raw):
    ws = _recorded_workspace(tmp_path, demo_raw)
    proc = _cli("slurm", "submit", ws, "--native", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would submit" in proc.stdout and "prepare.sh" not in proc.stdout  # the workspace has its records
    stems = (ws / "slurm" / "exposures.txt").read_text().split()
    assert len(stems) == 14 and stems == sorted(stems)
    # before stage 2, from the uncal files: the same names the cleaning and stage 3 give them
    # (test_slurm_cluster runs them); the TA and LRS files are not exposures of the workspace
    assert (ws / "slurm" / "groups.txt").read_text().split() == DEMO_GROUPS
    assert (ws / "slurm" / "mosaics.txt").read_text().split() == DEMO_MOSAICS
    assert not (fake_slurm / "sbatch.log").exists() and not (ws / "slurm" / "jobs.json").exists()
    assert "--array=0-13 " in proc.stdout and "clean1.sh" in proc.stdout and "masks.sh" in proc.stdout
    # one cleaning pass: no first-pass arrays
    (ws / "one.toml").write_text("clean_second_pass = false\n")
    proc = _cli("slurm", "submit", ws, "--native", "--dry-run", "--config", ws / "one.toml")
    assert proc.returncode == 0, proc.stderr
    assert "clean1.sh" not in proc.stdout and "masks.sh" not in proc.stdout and "clean.sh" in proc.stdout


def test_submit_status_resubmit_with_a_fake_slurm(fake_slurm, tmp_path, demo_raw):
    ws = _recorded_workspace(tmp_path, demo_raw)
    _touch(ws / "slurm" / "done" / "prepare")
    assert _cli("slurm", "submit", ws, "--native", "--array-limit", "2").returncode == 0
    calls = (fake_slurm / "sbatch.log").read_text().splitlines()
    assert calls == [f"--parsable --array=0-13%2 {ws}/slurm/stage1.sh",
                     f"--parsable --array=0-13%2 --dependency=afterok:101 {ws}/slurm/stage2.sh",
                     f"--parsable --array=0-2%2 --dependency=afterok:102 {ws}/slurm/clean1.sh",
                     f"--parsable --array=0-3%2 --dependency=afterok:103 {ws}/slurm/masks.sh",
                     f"--parsable --array=0-2%2 --dependency=afterok:104 {ws}/slurm/clean.sh",
                     f"--parsable --array=0-3%2 --dependency=afterok:105 {ws}/slurm/stage3.sh",
                     f"--parsable --dependency=afterok:106 {ws}/slurm/package.sh"]
    record = json.loads((ws / "slurm" / "jobs.json").read_text())
    assert [j["job_id"] for j in record["rounds"][0]["jobs"]] == [str(i) for i in range(101, 108)]
    stems = (ws / "slurm" / "exposures.txt").read_text().split()

    # one stage-1 task still running: resubmit refuses (exit 8)
    (fake_slurm / "queue").write_text("101_3|RUNNING|None\n102_0|PENDING|Dependency\n")
    proc = _cli("slurm", "resubmit", ws)
    assert proc.returncode == 8 and "still running or pending" in proc.stderr
    # it was cancelled: the others finished, the later jobs wait forever; resubmit cancels them and
    # submits task 3 of both exposure arrays and everything after
    for i, s in enumerate(stems):
        if i != 3:
            _touch(ws / "stage1" / f"{s}_rate.fits")
    (fake_slurm / "queue").write_text("101_3|CANCELLED|None\n" + "".join(
        f"102_{i}|PENDING|Dependency\n" for i in range(14)) + "103_0|PENDING|Dependency\n")
    status = json.loads(_cli("slurm", "status", ws, "--json").stdout)
    by = {(r["stage"], r["task"]): r["state"] for r in status}
    assert by[("stage1", stems[3])] == "failed" and by[("stage1", stems[0])] == "done"
    assert by[("stage2", stems[0])] == "pending" and by[("clean1", DEMO_GROUPS[0])] == "pending"
    assert by[("stage3", DEMO_MOSAICS[3])] == "failed"  # gone from this fake queue without finishing
    (fake_slurm / "queue").write_text("101_3|CANCELLED|None\n" + "".join(
        f"102_{i}|PENDING|DependencyNeverSatisfied\n" for i in range(14)) + "".join(
        f"{j}_{i}|PENDING|Dependency\n" for j in (103, 104, 105, 106) for i in range(4)) + "107|PENDING|Dependency\n")
    status = json.loads(_cli("slurm", "status", ws, "--json").stdout)
    assert {r["state"] for r in status if r["stage"] not in ("prepare", "stage1")} == {"blocked"}
    proc = _cli("slurm", "resubmit", ws)
    assert proc.returncode == 0, proc.stderr
    assert (fake_slurm / "scancel.log").read_text().split() == ["102", "103", "104", "105", "106", "107"]
    calls = (fake_slurm / "sbatch.log").read_text().splitlines()[7:]
    assert calls == [f"--parsable --array=3%2 {ws}/slurm/stage1.sh",
                     f"--parsable --array=0-13%2 --dependency=afterok:108 {ws}/slurm/stage2.sh",
                     f"--parsable --array=0-2%2 --dependency=afterok:109 {ws}/slurm/clean1.sh",
                     f"--parsable --array=0-3%2 --dependency=afterok:110 {ws}/slurm/masks.sh",
                     f"--parsable --array=0-2%2 --dependency=afterok:111 {ws}/slurm/clean.sh",
                     f"--parsable --array=0-3%2 --dependency=afterok:112 {ws}/slurm/stage3.sh",
                     f"--parsable --dependency=afterok:113 {ws}/slurm/package.sh"]


def test_submit_needs_a_way_to_run(tmp_path, demo_raw):
    ws = _recorded_workspace(tmp_path, demo_raw)
    proc = _cli("slurm", "submit", ws)
    assert proc.returncode == 2 and "--sif" in proc.stderr
    proc = _cli("slurm", "submit", ws, "--native", "--mem", "stage9=1G", "--dry-run")
    assert proc.returncode == 2 and "STAGE=VALUE" in proc.stderr
