"""The reduction in data-flow order: inputs -> CRDS check -> stage 1 -> stage 2 -> cleaning
-> stage 3, on a locked, resumable workspace. The CLI only parses arguments and calls here.

The configuration is parsed once (:func:`reduce.params.parse`); each stage receives its own
section. The whole :class:`reduce.config.Config` goes only where it is recorded or checked
(``config.toml``, the step-parameter check, the manifest).
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from . import __version__, clean, config as config_mod, crds_setup, crds_tools, inputs
from .params import PackageParams, Params, parse
from .errors import InputError, StageError
from .fsutil import remove_tree, write_json, write_text
from .stages import parameters, stage1, stage2, stage3
from .stages.runner import run_task
from .stages.task import Outcome, Task
from .workers import WorkerPool
from .workspace import STAGES, FirstPass, Workspace

console = Console(stderr=True)


@dataclass
class RunSummary:
    workspace: str
    version: str = __version__
    crds_context: str = ""
    exposures: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def failures(self) -> list[dict]:
        return [o for o in self.outcomes if not o["ok"]]


def _remove_scratch(ws: Workspace, package: PackageParams) -> None:
    """Remove scratch files and folders an interrupted run left behind (names start with '.'),
    and the packaging's abandoned temporaries in the products folder of this run and of the
    last one (only atomic_path's own ``.*.part`` files: the destination may hold user files)."""
    import tomllib

    from .fsutil import sweep_scratch
    from .products.package import destination

    first = FirstPass(ws.root)
    for d in [ws.dir(stage) for stage in STAGES] + [first.dir(s) for s in ("clean", "stage3", "masks")]:
        if d.is_dir():
            for p in d.glob(".*"):
                remove_tree(p) if p.is_dir() else p.unlink(missing_ok=True)
            # atomic_path temporaries in sub-folders (clean/qa/, pass1/stage3/<product>/, ...)
            sweep_scratch(d, depth=3)
    dests = {destination(ws, package)}
    try:
        last = tomllib.loads((ws.root / "config.toml").read_text()).get("DESTINATION_DIRECTORY", "")
        dests.add(destination(ws, PackageParams(destination_directory=last if isinstance(last, str) else "")))
    except (OSError, ValueError):
        pass
    for dest in dests:
        if dest.is_dir():
            sweep_scratch(dest)


@dataclass(frozen=True)
class Scope:
    """The part of a workspace one command works on: all of it (the default), or, for HPC tasks
    sharing the workspace, some exposures (stages 1-2), some cleaning groups (of the first pass
    with ``first_pass``), some first-pass mosaic masks, or some stage-3 mosaics. What a scoped
    command needs from earlier stages is checked, never run."""

    exposures: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    first_pass: bool = False
    masks: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    @property
    def shared(self) -> bool:
        return bool(self.exposures or self.groups or self.masks or self.products)


def execute(tasks: list[Task], pool: WorkerPool, label: str) -> list[Outcome]:
    """Run pipeline tasks in the run's workers with a progress bar; outcomes sorted by name."""
    outs = pool.run(run_task, tasks, label, describe=lambda o: "" if o.ok else f"FAILED {o.name}",
                    cost=lambda t: len(t.inputs))
    return sorted(outs, key=lambda o: o.name)


def reduce_folder(input_dir: Path | None, workdir: Path, cfg: dict, *, crds_path: Path | None = None,
                  crds_context: str | None = None, stages: tuple[str, ...] = STAGES, scope: Scope = Scope(),
                  package: bool = True) -> RunSummary:
    """Reduce the MIRI imaging exposures of ``input_dir`` in workspace ``workdir`` (and package
    the mosaics when stage 3 is among ``stages``, unless ``package`` is False or the scope is a part).
    ``cfg``: a validated configuration (:func:`reduce.config.load`)."""
    t_start = time.perf_counter()
    p = parse(cfg)
    ws = Workspace(workdir)
    summary = RunSummary(workspace=str(ws.root))
    selection = inputs.select(Path(input_dir)) if input_dir else _recorded_inputs(ws)
    only = scope.exposures
    exposures = [e for e in selection.exposures if not only or e.stem in only]
    if only and not exposures:
        raise InputError(f"none of {', '.join(only)} is an exposure of this workspace")
    if only and set(stages) - {"stage1", "stage2"}:
        raise InputError("--exposure applies to stage1 and stage2 only: the cleaning and stage 3 work on whole "
                         "groups and mosaics (`clean WORKSPACE --group NAME`, `stage3 WORKSPACE --product NAME`)")
    if (scope.first_pass or scope.masks) and not p.clean.two_passes:
        raise InputError("--first-pass and --mosaic-mask are parts of the second cleaning pass, which this "
                         "configuration does not run (clean_second_pass and SUPER_BKG_SUB are not both true)")
    # CRDS before the workspace is touched: every reference of every exposure, offline, with
    # all gaps listed in one error (the same check as `mirim-reduce crds check`).
    settings = crds_setup.configure(crds_path, crds_context)
    with ExitStack() as stack:
        pool = stack.enter_context(WorkerPool(p.run.jobs))
        # jwst's pipelines are imported only in the workers (which need them for stage 1 anyway):
        # one checks the step parameters and lists the reference types while this process reads
        # the exposures' CRDS parameters; then the CRDS cache is checked here
        t0 = time.perf_counter()
        types = pool.submit(parameters.preflight, dict(cfg))
        files = [e.path for e in exposures]
        for f in files:
            crds_tools.crds_parameters(f)
        types = types.result()
        check = crds_tools.check_exposures(files, settings, types["required"])
        if not check.ok:
            raise check.error()
        step_pars = parameters.lookup(files, settings.context, pars_types=types["pars"])  # CRDS pars-* references
        crds_seconds = time.perf_counter() - t0
        _reduce(ws, summary, pool, selection, exposures, settings, check, step_pars, crds_seconds, cfg, p, stages,
                input_dir, t_start, package and not scope.shared, scope)
    return summary


def _reduce(ws, summary, pool, selection, exposures, settings, check, step_pars, crds_seconds, cfg, p: Params,
            stages, input_dir, t_start, package: bool = True, scope: Scope = Scope()) -> None:
    """The stages, on the locked workspace (after the inputs, CRDS and parameter checks).

    A run of a part only (some exposures, groups, masks or mosaics: an HPC task) shares the
    workspace with other such runs: it leaves the workspace's records (config.toml, inputs.json,
    crds.json, summary.json) and other runs' scratch alone; each product's identity file says
    what made it."""
    shared = scope.shared
    with ws.locked(shared=shared), _run_log(ws) as log:
        if not shared:
            _remove_scratch(ws, p.package)
            write_text(ws.root / "config.toml", config_mod.to_toml(cfg))
        log.info("mirim-reduce %s in %s; input %s", __version__, ws.root, input_dir or "(recorded inputs)")
        for e in selection.exposures:
            log.info("exposure %s: %s %s %s ngroups=%d", e.stem, e.filter, e.subarray, e.readpatt, e.ngroups)
        for name, reason in selection.skipped:
            log.info("skipped %s: %s", name, reason)
        summary.exposures = [e.stem for e in exposures]
        summary.skipped = selection.skipped
        if not shared:
            write_json(ws.root / "inputs.json", inputs.record(selection, ws.root))

        summary.crds_context = settings.context
        log.info("CRDS context %s in %s (read-only: %s)", settings.context, settings.path, settings.readonly)
        if not shared:
            write_json(ws.root / "crds.json", {"context": settings.context, "path": str(settings.path),
                                                "references": _local_references(check.references),
                                                "parameter_references": step_pars})
        summary.stage_seconds["crds"] = crds_seconds

        stems = [e.stem for e in exposures]
        overwrite = p.run.overwrite
        cleaning = None
        for stage in stages:
            t0 = time.perf_counter()
            if stage == "stage1":
                outs = execute(stage1.plan(ws, exposures, p.pipeline, settings.context, overwrite=overwrite),
                               pool, "stage 1")
            elif stage == "stage2":
                outs = execute(stage2.plan(ws, stems, p.pipeline, settings.context, overwrite=overwrite),
                               pool, "stage 2")
            elif stage == "clean":
                cleaning, outs = _clean(ws, stems, p, pool, settings.context, groups=list(scope.groups) or None,
                                        first_pass=scope.first_pass, masks=list(scope.masks) or None)
                summary.notes += cleaning.notes
            else:
                # stage 3 on its own: the cleaning's files (finished groups are not redone)
                outs = []
                if cleaning is None and scope.products:  # another task's cleaning: checked, not run
                    cleaning, outs = _clean(ws, stems, p, pool, settings.context, groups=[])
                    cleaning.require_complete("stage 3 of a mosaic")
                elif cleaning is None:
                    cleaning, outs = _clean(ws, stems, p, pool, settings.context)
                report = cleaning
                if report.sky_subtracted:
                    summary.notes.append("stage 3: skymatch skipped for mosaics whose every exposure had a super "
                                         "background subtracted (sky measured on source-masked pixels)")
                outs = outs + execute(stage3.plan(ws, report.files, p.pipeline, crds_context=settings.context,
                                                  overwrite=overwrite, sky_subtracted=report.sky_subtracted,
                                                  only=list(scope.products) or None),
                                      pool, "stage 3")
            summary.outcomes += [asdict(o) for o in outs]
            for o in outs:
                log.info("%s %s: %s in %.1f s%s", stage, o.name, "ok" if o.ok else "FAILED", o.seconds,
                         f" ({o.error})" if o.error else "")
            summary.stage_seconds[stage] = time.perf_counter() - t0
        summary.products = sorted(str(p.relative_to(ws.root)) for p in ws.dir("stage3").glob("*/*_i2d.fits"))

        # --- packaging (reduce.products): DEST/{TARGPROP}/{FILTER}/..., TA boxes, report, manifest
        if "stage3" in stages and package:
            from . import products

            t0 = time.perf_counter()
            summary.total_seconds = t0 - t_start  # the report shows the time before packaging
            packaged = products.package(ws, p.package, cfg, summary, pool=pool)
            summary.notes += packaged.notes
            summary.products += [str(p.relative_to(ws.root) if p.is_relative_to(ws.root) else p)
                                 for p in [*packaged.products, packaged.report, packaged.manifest]
                                 if p is not None and p.name.endswith(("_i2d.fits", "_ta_box.fits", ".html", ".json"))]
            log.info("packaged %d files into %s", len(packaged.products), packaged.dest)
            summary.stage_seconds["package"] = time.perf_counter() - t0
        # --- end packaging

        summary.total_seconds = time.perf_counter() - t_start
        if not shared:
            write_json(ws.root / "summary.json", asdict(summary))


def _clean(ws: Workspace, stems: list[str], p: Params, pool: WorkerPool, crds_context: str, *,
           groups: list[str] | None = None, first_pass: bool = False, masks: list[str] | None = None
           ) -> tuple[clean.CleanReport, list[Outcome]]:
    """The cleaning: one pass, or with ``clean_second_pass`` (and SUPER_BKG_SUB) two
    (:mod:`reduce.clean.second_pass`), or the part of it that ``groups`` (``[]``: none, only
    the report of what is done), ``first_pass`` and ``masks`` name. Returns the report of the
    last pass and the outcomes of its tasks (groups, first-pass mosaic masks). Every part
    resumes like the stages do."""
    if not p.clean.two_passes:
        report = clean.run(ws, stems, p.clean, overwrite=p.run.overwrite, pool=pool, only=groups)
        return report, report.outcomes
    from .clean.second_pass import run_two_passes

    return run_two_passes(ws, stems, p.clean, p.pipeline, pool, crds_context, overwrite=p.run.overwrite,
                          groups=groups, first_pass=first_pass, masks=masks)


@contextmanager
def _run_log(ws: Workspace):
    """The run's own log (what was selected, skipped, done, failed): WORKSPACE/logs/run.log."""
    path = ws.root / "logs" / "run.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("mirim_reduce.run")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    try:
        yield log
    except BaseException as exc:
        log.error("run stopped: %s: %s", type(exc).__name__, exc)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()


def _local_references(references: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """{uncal file name: {reftype: local path or 'N/A'}} from {exposure: {reftype: reference name}}."""
    import crds

    return {f"{stem}_uncal.fits": {t: ref if ref == "N/A" else crds.locate_file(ref, "jwst")
                                   for t, ref in refs.items()}
            for stem, refs in references.items()}


def raise_on_failures(summary: RunSummary) -> None:
    """StageError naming the first failed task and its log, if any task failed."""
    if summary.failures:
        first = summary.failures[0]
        log = Workspace(summary.workspace).log(first["stage"], first["name"])
        raise StageError(f"{len(summary.failures)} task(s) failed, first {first['stage']} {first['name']}: "
                         f"{first['error']} (log: {log})")


def _recorded_inputs(ws: Workspace) -> inputs.Selection:
    """The exposures a previous run of this workspace selected (for single-stage reruns)."""
    return inputs.load_record(ws.root)


def print_summary(summary: RunSummary) -> None:
    """The final console table: exposures, skipped files and why, products, times."""
    from rich.table import Table

    by_stage: dict[str, list[dict]] = {}
    for o in summary.outcomes:
        by_stage.setdefault(o["stage"], []).append(o)
    table = Table(title=f"mirim-reduce {summary.version} - {summary.workspace}", show_lines=False)
    for col in ("stage", "done", "failed", "wall s", "pipeline s (sum)"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for stage, secs in summary.stage_seconds.items():
        outs = by_stage.get(stage, [])
        table.add_row(stage, str(sum(o["ok"] for o in outs)), str(sum(not o["ok"] for o in outs)),
                      f"{secs:.1f}", f"{sum(o['pipeline_seconds'] for o in outs):.1f}")
    console.print(table)
    console.print(f"exposures reduced: {len(summary.exposures)}; CRDS context {summary.crds_context}")
    for name, reason in summary.skipped:
        console.print(f"  skipped {name}: {reason}")
    for o in summary.failures:
        console.print(f"  [red]failed[/red] {o['stage']} {o['name']}: {o['error']}")
    for note in summary.notes:
        console.print(f"  note: {note}")
    console.print(f"products ({len(summary.products)}):")
    for p in summary.products:
        console.print(f"  {p}")
    console.print(f"total {summary.total_seconds:.1f} s")
