"""CRDS parameter references (pars-*): honoured as jwst honours them, below our configuration.

A context derived from the test cache (:func:`reduce.demo.crds_context.pars.derive_context`, in a
copy whose reference files are links) maps pars-sourcecatalogstep (values our configuration does
not set), pars-tweakregstep (searchrad, which it sets, and snr_threshold, which it does not) and
pars-image3pipeline (a ``steps`` table: outlier_detection.maskpt, which it sets). The pipeline
is built exactly as ``Step.call`` builds it (``build_config`` + ``from_config_section``).
"""

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from reduce import config
from reduce.errors import CrdsCacheError
from reduce.params import parse

PARS = {
    "pars-sourcecatalogstep": {"snr_threshold": 7.5, "npixels": 12},
    "pars-tweakregstep": {"searchrad": 3.0, "snr_threshold": 20.0},
    "pars-image3pipeline": {"steps": {"outlier_detection": {"maskpt": 0.5}}},
}
SERIAL = 9100
PARS_CONTEXT = f"jwst_{SERIAL}.pmap"


def _link_cache(src: Path, dst: Path) -> None:
    """A writable copy of a CRDS cache: config and mappings copied, reference files linked."""
    shutil.copytree(src / "config", dst / "config")
    shutil.copytree(src / "mappings", dst / "mappings")
    for inst in (src / "references" / "jwst").iterdir():
        (dst / "references" / "jwst" / inst.name).mkdir(parents=True)
        for f in inst.iterdir():
            (dst / "references" / "jwst" / inst.name / f.name).symlink_to(f)


@pytest.fixture(scope="module")
def uncal(crds_cache, tmp_path_factory) -> Path:
    """One simulated MIRI imaging exposure."""
    import numpy as np

    from reduce.demo.simulate import demo_program, make_scene, write_exposure

    path = tmp_path_factory.mktemp("pars-raw") / "jw09999001001_02101_00001_mirimage_uncal.fits"
    write_exposure(path, demo_program()[0], make_scene(1), rng=np.random.default_rng(3))
    return path


@pytest.fixture(scope="module")
def pars_cache(crds_cache, tmp_path_factory) -> Path:
    """The test cache plus the context PARS_CONTEXT (= the demo context + PARS)."""
    from reduce.demo.crds_context.pars import derive_context

    dst = tmp_path_factory.mktemp("pars-crds") / "crds"
    _link_cache(crds_cache, dst)
    assert derive_context(dst, PARS, serial=SERIAL, base="jwst_9000.pmap") == PARS_CONTEXT
    return dst


@pytest.fixture
def use_cache(monkeypatch):
    """Point CRDS at another cache and context in this process (crds caches the context it
    resolved, hence the cleared caches; a reduction's worker processes each start afresh)."""
    from crds.core.utils import clear_function_caches

    def use(path: Path, context: str):
        monkeypatch.setenv("CRDS_PATH", str(path))
        monkeypatch.setenv("CRDS_CONTEXT", context)
        clear_function_caches()
    yield use
    monkeypatch.undo()
    clear_function_caches()


def _built(pipeline_class, uncal: Path, cfg: dict, section: str):
    """The pipeline as ``pipeline_class.call(uncal, steps=...)`` configures it (without running it)."""
    conf, conf_file = pipeline_class.build_config(str(uncal), steps=parse(cfg).pipeline.steps(section))
    conf.pop("class", None)
    return pipeline_class.from_config_section(conf, name=conf.get("name"), config_file=conf_file)


def test_step_pars_are_not_disabled_behind_the_users_back(crds_cache):
    from reduce import crds_setup

    crds_setup.offline_environment()
    assert "STPIPE_DISABLE_CRDS_STEPPARS" not in os.environ


def test_demo_context_maps_pars_na_without_error_or_network(crds_cache, uncal, use_cache, caplog):
    from jwst import pipeline as jp

    from reduce.demo.crds_context import DEMO_CONTEXT
    from reduce.stages import parameters

    use_cache(crds_cache, DEMO_CONTEXT)
    found = parameters.lookup([uncal], DEMO_CONTEXT)
    assert found["disabled"] is False and found["missing"] == {} and found["files"] == {}
    assert found["exposures"] == {uncal.name.removesuffix("_uncal.fits"): {}}
    with caplog.at_level(logging.DEBUG):
        pipe = _built(jp.Image3Pipeline, uncal, config.defaults(), "image3")
    assert pipe.tweakreg.searchrad == 1.0 and pipe.source_catalog.snr_threshold == 3.0  # ours, jwst's
    text = caplog.text
    assert "CRDS - ERROR" not in text and "parameters found" not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_pars_reference_is_honoured_below_our_config(pars_cache, uncal, use_cache, caplog):
    from jwst import pipeline as jp

    use_cache(pars_cache, PARS_CONTEXT)
    with caplog.at_level(logging.INFO):
        pipe = _built(jp.Image3Pipeline, uncal, config.defaults(), "image3")
    for reftype in PARS:
        assert f"{reftype.upper()} parameters found" in caplog.text
    # (a) values our configuration does not set come from the CRDS references
    assert pipe.source_catalog.snr_threshold == 7.5 and pipe.source_catalog.npixels == 12
    assert pipe.tweakreg.snr_threshold == 20.0
    # (b) values it sets keep ours (call arguments win over CRDS, as in stpipe)
    assert pipe.tweakreg.searchrad == 1.0
    assert pipe.outlier_detection.maskpt == 0.2
    # a command-line value wins too
    cli = config.load(None, {"SKIP_BKGSUB": True})
    assert _built(jp.Image3Pipeline, uncal, cli, "image3").skymatch.skip is True


def test_provenance_reports_every_origin(pars_cache, uncal, use_cache, tmp_path):
    from reduce.stages import parameters

    use_cache(pars_cache, PARS_CONTEXT)
    f = tmp_path / "c.toml"
    f.write_text("[image3.tweakreg]\nminobj = 9\n[image3.source_catalog]\nnpixels = 30\n")
    cfg = config.load(f, {"SKIP_BKGSUB": True})
    found = parameters.lookup([uncal], PARS_CONTEXT)
    assert set(found["exposures"][uncal.name.removesuffix("_uncal.fits")]) == set(PARS)
    prov = parameters.provenance(cfg, found)
    assert prov["precedence"].startswith("jwst default < CRDS pars reference < config default")
    [group] = prov["image3"]
    assert group["exposures"] == [uncal.name.removesuffix("_uncal.fits")]
    steps = group["steps"]
    ref = {t: f"CRDS pars reference {group['pars_references'][t]}" for t in PARS}
    cat, tweak = steps["source_catalog"], steps["tweakreg"]
    assert cat["snr_threshold"] == {"value": 7.5, "origin": ref["pars-sourcecatalogstep"], "jwst_default": 3.0}
    assert cat["npixels"]["value"] == 30 and cat["npixels"]["origin"] == f"config file {f.absolute()}"
    assert cat["npixels"]["superseded"] == [{"origin": ref["pars-sourcecatalogstep"], "value": 12}]
    assert tweak["searchrad"]["origin"] == "config default" and tweak["searchrad"]["value"] == 1.0
    assert tweak["searchrad"]["superseded"] == [{"origin": ref["pars-tweakregstep"], "value": 3.0}]
    assert tweak["snr_threshold"]["origin"] == ref["pars-tweakregstep"]
    assert tweak["minobj"]["origin"] == f"config file {f.absolute()}"
    assert steps["outlier_detection"]["maskpt"]["superseded"][0]["origin"] == ref["pars-image3pipeline"]
    assert steps["skymatch"]["skip"]["origin"].startswith("command line")
    assert "kernel_fwhm" not in cat  # set by nothing: jwst default, not listed
    # stage 1 and 2 steps have no pars references in this context
    assert prov["detector1"][0]["pars_references"] == {}
    assert prov["detector1"][0]["steps"]["jump"]["maximum_cores"]["origin"] == "config default"


def test_manifest_records_step_parameter_origins(pars_cache, uncal, use_cache, tmp_path):
    from reduce.products import manifest
    from reduce.stages import parameters

    use_cache(pars_cache, PARS_CONTEXT)
    cfg = config.load(None, {"jobs": 2})
    crds = {"context": PARS_CONTEXT, "parameter_references": parameters.lookup([uncal], PARS_CONTEXT)}
    man = json.loads(json.dumps(manifest.build(tmp_path, [], tool_version="test", cfg=cfg, date="01Jan2025",
                                               crds=crds, inputs=[], ta_boxes=[])))
    assert man["config_origins"] == {"jobs": "command line"}
    cat = man["step_parameters"]["image3"][0]["steps"]["source_catalog"]
    assert cat["npixels"]["origin"].startswith("CRDS pars reference jwst_miri_pars-sourcecatalogstep_")
    assert man["crds"]["parameter_references"]["files"]  # the values read from the cache


def test_missing_pars_reference_is_an_error(pars_cache, uncal, use_cache, tmp_path):
    from reduce.stages import parameters

    broken = tmp_path / "crds"
    _link_cache(pars_cache, broken)
    victim = next((broken / "references" / "jwst" / "miri").glob("jwst_miri_pars-tweakregstep_*.asdf"))
    victim.unlink()
    use_cache(broken, PARS_CONTEXT)
    with pytest.raises(CrdsCacheError, match=victim.name):
        parameters.lookup([uncal], PARS_CONTEXT)
    assert victim.name in parameters.lookup([uncal], PARS_CONTEXT, strict=False)["missing"]


def test_disabled_by_the_user_means_no_crds_values(pars_cache, uncal, use_cache, monkeypatch):
    from reduce.stages import parameters

    use_cache(pars_cache, PARS_CONTEXT)
    monkeypatch.setenv("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    found = parameters.lookup([uncal], PARS_CONTEXT)
    assert found["disabled"] is True and found["exposures"] == {}
    prov = parameters.provenance(config.defaults(), found)
    origins = {e["origin"] for g in prov["image3"] for s in g["steps"].values() for e in s.values()}
    assert origins == {"config default"}


STAGE1_SCRIPT = """
import sys
from pathlib import Path
if __name__ == "__main__":
    from reduce import config, orchestrate
    cfg = config.load(None, {"jobs": 1})
    s = orchestrate.reduce_folder(Path(sys.argv[1]), Path(sys.argv[2]), cfg, stages=("stage1",))
    sys.exit(1 if s.failures else 0)
"""


@pytest.mark.slow
def test_real_stage1_run_honours_a_pars_reference_offline(pars_cache, uncal, tmp_path):
    """Detector1 through the orchestrator, offline (no network namespace where possible), with a
    pars-jumpstep setting rejection_threshold (ours does not) and maximum_cores (ours does)."""
    import subprocess
    import sys

    from reduce.demo.crds_context.pars import derive_context

    cache = tmp_path / "crds"
    _link_cache(pars_cache, cache)
    ctx = derive_context(cache, {"pars-jumpstep": {"rejection_threshold": 5.5, "maximum_cores": "4"}},
                         serial=SERIAL + 10, base=PARS_CONTEXT)
    script = tmp_path / "stage1.py"
    script.write_text(STAGE1_SCRIPT)
    ws = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if k != "STPIPE_DISABLE_CRDS_STEPPARS"}
    env.update(CRDS_PATH=str(cache), CRDS_CONTEXT=ctx, MPLBACKEND="Agg", PYTHONPATH=str(Path(__file__).parents[1]))
    cmd = [sys.executable, str(script), str(uncal.parent), str(ws)]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    log = next((ws / "logs" / "stage1").glob("*.log")).read_text()
    assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:]
    assert "PARS-JUMPSTEP parameters found" in log and " ERROR " not in log
    jump = log[log.index("    jump:"):]
    assert "rejection_threshold: 5.5" in jump[:3000]  # from CRDS
    assert "maximum_cores: '1'" in jump[:3000]  # ours, over CRDS' '4'
    recorded = json.loads((ws / "crds.json").read_text())["parameter_references"]
    [refs] = recorded["exposures"].values()
    assert refs["pars-jumpstep"].startswith("jwst_miri_pars-jumpstep_")
