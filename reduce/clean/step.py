"""The cleaning step: groups, resumption and the summary, around :mod:`.group`.

Exposures are grouped by :func:`.super_background.group_key`; :func:`.group.clean_group`
cleans one group (masks, the background model the group's data choose, subtraction, fill,
products). Stage-2 files are only read. Cleaned files appear under their final names
complete (written to a temporary file, then renamed). The unit of resumption is the group,
since every member's template depends on all the others. Groups are cleaned in parallel
in the run's worker pool (:func:`clean_group_task`), each with its own log; results do not
depend on the number of workers. The second pass is :mod:`.second_pass`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import identity
from ..fsutil import write_json
from ..params import CleanParams
from ..workspace import Workspace
from . import super_background as sb
from .group import clean_group, group_name
from .member import FILLED_VARIANCE_FACTOR, MAP_BITS, TEMPLATE_VARIANCE, FirstPassMasks

log = logging.getLogger(__name__)


def exposure_key(model) -> tuple:
    """The grouping key of an open ImageModel."""
    m = model.meta
    dur = m.exposure.effective_exposure_time
    if dur is None:
        dur = m.exposure.duration
    return sb.group_key(m.instrument.filter or "", float(dur if dur is not None else math.nan),
                        m.instrument.detector or "", m.subarray.name or "", m.exposure.readpatt or "")


def header_key(path: Path) -> tuple:
    """The grouping key from a cal file's primary header (FILTER, EFFEXPTM or DURATION,
    DETECTOR, SUBARRAY, READPATT), without opening the data model."""
    from astropy.io import fits

    h = fits.getheader(path, 0)
    dur = h.get("EFFEXPTM", h.get("DURATION"))
    return sb.group_key(h.get("FILTER", ""), float(dur if dur is not None else math.nan),
                        h.get("DETECTOR", ""), h.get("SUBARRAY", ""), h.get("READPATT", ""))


# ----------------------------------------------------------------------------- driver

@dataclass
class CleanResult:
    files: list[Path]
    notes: list[str] = field(default_factory=list)
    exposures: dict[str, dict] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)
    outcomes: list = field(default_factory=list)  # one Outcome per group cleaned
    pending: list[str] = field(default_factory=list)  # groups not done (``only`` left them out)


@dataclass
class GroupJob:
    """One group to clean in a worker (picklable): ``first`` is the first pass's root when
    this is the second pass (its projected masks are added; with ``promote``, the group had
    none and pass 1's files are copied, ``previous`` holding pass 1's records)."""

    root: str
    first_pass: bool
    key: tuple
    members: list[str]
    params: CleanParams
    qa: bool
    label: str
    first: str | None = None
    promote: bool = False
    previous: dict | None = None
    identity: str = ""  # reduce.identity of the group's cleaning, written beside each cleaned file
    made_of: dict | None = None
    reuse: FirstPassMasks | None = None  # second pass: pass 1's own masks, where current


def _workspace(root: str, first_pass: bool) -> Workspace:
    from ..workspace import FirstPass

    return FirstPass(Path(root)) if first_pass else Workspace(Path(root))


def group_record_path(ws: Workspace, name: str) -> Path:
    """A cleaned group's record (``clean/groups/<group>.json``: its summary and its members',
    with the cleaning's identity), written last: the group is done when it is current."""
    return ws.dir("clean") / "groups" / f"{name}.json"


def clean_group_task(job: GroupJob) -> dict:
    """Worker: clean (or, in pass 2, promote) one group; its log is ``logs/[pass1/]clean/<group>.log``.
    The group's lock (``clean/groups/.<group>.clean.lock``, :func:`reduce.fsutil.claimed`) keeps
    two processes (HPC tasks sharing the workspace) from cleaning it at once. Returns
    {"group": GroupStats dict, "exposures": [ExposureStats dicts], "outcome": Outcome}."""
    from ..fsutil import claimed
    from ..stages.task import Outcome
    from ..workers import peak_rss_mb, task_log

    ws = _workspace(job.root, job.first_pass)
    name = group_name(job.key)
    start = time.perf_counter()
    record = group_record_path(ws, name)
    with claimed(record.parent, name, "clean", f"cleaning group {name}"):
        with task_log(ws.log("clean", name)):
            with warnings.catch_warnings():
                if job.params.suppress_warnings:
                    warnings.simplefilter("ignore", RuntimeWarning)
                gst, est = _clean_or_promote(ws, job, name)
                for stem in job.members:  # after every member's files: a partial group is redone
                    identity.write(ws.output("clean", stem), job.identity, job.made_of or {})
                gst["identity"] = job.identity
                write_json(record, {"group": gst, "exposures": est})  # last: the group is done
            seconds = time.perf_counter() - start
            log.info("clean group %s (%d exposures): %.1f s", name, len(job.members), seconds)
    label = f"{job.label} " if job.label else ""
    return {"group": gst, "exposures": est,
            "outcome": Outcome("clean", f"{label}{name}", True, seconds, 0.0, peak_rss_mb())}


def _clean_or_promote(ws: Workspace, job: GroupJob, name: str) -> tuple[dict, list[dict]]:
    from ..workspace import FirstPass

    if job.promote:
        from .pass_files import promote

        promote(FirstPass(Path(job.first)), ws, job.members, name, job.label)
        prev = job.previous or {}
        gst = {**prev["group"], "promoted_from": "pass 1 (no projected mosaic mask: identical inputs)"}
        return gst, [prev["exposures"][s] for s in job.members]
    masks = alignments = None
    if job.first:
        from .pass_files import read_mask

        first = FirstPass(Path(job.first))
        found = {s: m for s in job.members if (m := read_mask(first, s)) is not None}
        masks = {s: m[0] for s, m in found.items()}
        alignments = {s: m[1] for s, m in found.items() if m[1] is not None}
    gst, est = clean_group(ws, job.key, job.members, job.params, qa=job.qa, extra_masks=masks, label=job.label,
                           reuse=job.reuse, alignments=alignments)
    return asdict(gst), [asdict(e) for e in est]


def group_identity(ws: Workspace, members: list[str], params: CleanParams, label: str,
                   first: Workspace | None) -> dict:
    """What a group's cleaning depends on: its members' stage-2 files (their identities), the
    cleaning parameters (:meth:`reduce.params.CleanParams.parameters`), stage 3's good_bits
    (which pixels are bad), the pass, the projected masks (second pass) and the versions."""
    made_of = {"stage": "clean", "pass": label,
               "members": {s: identity.read(ws.output("stage2", s)) for s in sorted(members)},
               "parameters": params.parameters(),
               "good_bits": params.good_bits, "versions": identity.versions("", "clean")}
    if first is not None:
        from .pass_files import mask_path

        made_of["masks"] = {s: identity.read(mask_path(first, s)) for s in sorted(members)}
    return made_of


def cleaning_groups(files: dict[str, Path]) -> dict[tuple, list[str]]:
    """{group key: sorted stems} of ``{stem: file}``, from the files' primary headers (cal files,
    or uncal files to plan ahead: stages 1 and 2 do not change the keywords of the key)."""
    return sb.group_by_key({stem: header_key(path) for stem, path in files.items()})


def _current_record(ws: Workspace, name: str, members: list[str], ident: str) -> dict | None:
    """The group's record when the group is done with identity ``ident`` (record and every
    member's cleaned file), else None."""
    record = _load_json(group_record_path(ws, name))
    if record.get("group", {}).get("identity") != ident:
        return None
    if not all(identity.is_current(ws.output("clean", s), ident) for s in members):
        return None
    return record


def run_clean(ws: Workspace, stems: list[str], params: CleanParams, *, overwrite: bool, pool=None, qa: bool = True,
              label: str = "", first: Workspace | None = None, only: list[str] | None = None) -> CleanResult:
    """Clean every group of ``stems`` (skipping finished groups unless ``overwrite``), the groups
    in parallel in ``pool`` (a :class:`reduce.workers.WorkerPool`; one of one worker if None).

    ``first`` (second pass): the first pass's workspace, whose projected masks are added
    to each exposure's own (:mod:`.second_pass`); ``label`` names the pass in the summary
    file. A group is redone when its record or any of its cleaned files lacks the identity of
    this run's cleaning of it (:func:`group_identity`: changed inputs, parameters, pass, masks
    or versions). ``only``: clean these groups only (by name; ``[]``: none), the others are
    reported as done or listed in ``CleanResult.pending`` (an HPC task per group)."""
    from ..errors import check_names
    from ..workspace import FirstPass

    cal = {s: ws.output("stage2", s) for s in stems if ws.output("stage2", s).exists()}
    missing = [s for s in stems if s not in cal]
    notes: list[str] = []
    if missing:
        notes.append(f"cleaning: {len(missing)} exposure(s) without a stage-2 cal file: {', '.join(missing)}")
    if not params.median_filter and not params.super_bkg_sub:
        notes.append("cleaning off (MEDIAN_FILTER and SUPER_BKG_SUB are false): stage 3 uses the stage-2 cal files")
        return CleanResult(files=list(cal.values()), notes=notes)

    groups = cleaning_groups(cal)
    check_names(only, [group_name(k) for k in groups], "cleaning group", "groups")

    out_groups: dict[str, dict] = {}
    out_exp: dict[str, dict] = {}

    def done_before(name: str, record: dict) -> None:  # a group this call did not clean
        out_groups[name] = {**record["group"], "skipped": True}
        out_exp.update({e["stem"]: e for e in record["exposures"]})

    n_done = 0
    jobs: list[GroupJob] = []
    pending: list[str] = []
    for key, members in groups.items():
        name = group_name(key)
        made_of = group_identity(ws, members, params, label, first)
        ident = identity.digest(made_of)
        record = None if overwrite and (only is None or name in only) else _current_record(
            ws, name, members, ident)
        if record is not None:
            done_before(name, record)
            n_done += 1
            continue
        if only is not None and name not in only:
            pending.append((name, members, ident))
            continue
        job = GroupJob(str(ws.root), isinstance(ws, FirstPass), key, members, params, qa, label,
                       first=str(first.root) if first is not None else None, identity=ident, made_of=made_of)
        if first is not None:
            p1 = _load_json(group_record_path(first, name))  # pass 1's record of the group
            _plan_promotion(job, first, p1, members)
            job.reuse = None if job.promote else _first_pass_masks(first, p1, members, params)
        jobs.append(job)

    from ..workers import WorkerPool

    with WorkerPool(1) if pool is None else nullcontext(pool) as workers:
        results = workers.run(clean_group_task, jobs, f"clean {label}".strip(), cost=lambda j: len(j.members))
    for job, res in zip(jobs, results):
        out_groups[group_name(job.key)] = res["group"]
        for e in res["exposures"]:
            out_exp[e["stem"]] = e
    # groups left to other processes may have finished meanwhile (each writes its record before
    # looking here): whoever finds every group done writes the summary
    for name, members, ident in list(pending):
        record = _current_record(ws, name, members, ident)
        if record is not None:
            pending.remove((name, members, ident))
            done_before(name, record)
    out_groups = dict(sorted(out_groups.items()))
    out_exp = {s: out_exp[s] for s in cal if s in out_exp}
    pending = [name for name, _, _ in pending]
    if not pending:
        _write_summary(ws, params, label, out_groups, out_exp)
    else:
        notes.append(f"cleaning: {len(pending)} group(s) not cleaned yet: {', '.join(pending)}")

    n_tmpl = sum(1 for g in out_groups.values() if g.get("template"))
    n_b2d = sum(1 for g in out_groups.values() if g.get("method") == "background2d")
    notes.append(f"cleaning: {len(cal)} exposure(s) in {len(groups)} group(s); super background in "
                 f"{n_tmpl} group(s), Background2D in {n_b2d}; {n_done} group(s) already done")
    for name, g in out_groups.items():
        if g.get("template") or g.get("method") == "background2d":
            notes.append(f"cleaning: group {name}: {g.get('method')} {g.get('model', '')} (chosen by "
                         f"cross-validation over {len(g.get('cv_members', []))} member(s))")
        elif params.super_bkg_sub:
            notes.append(f"cleaning: group {name}: no background removed ({g.get('reason', '')})")
    filled = sum(e.get("n_filled", 0) for e in out_exp.values())
    unfilled = sum(e.get("n_unfilled", 0) for e in out_exp.values())
    uncovered = sum(e.get("n_uncovered", 0) for e in out_exp.values())
    if params.median_filter:
        notes.append(f"cleaning: {filled} pixel(s) median-filled (DQ FLUX_ESTIMATED), "
                     f"{unfilled} left without a finite neighbour")
    if uncovered:
        notes.append(f"cleaning: {uncovered} science pixel(s) not covered by their template (template "
                     "interpolated from its surroundings there; CLEANMAP bit UNCOVERED)")
    files = [ws.output("clean", s) for s in cal]
    return CleanResult(files=files, notes=notes, exposures=out_exp, groups=out_groups,
                       outcomes=[r["outcome"] for r in results], pending=pending)


def _plan_promotion(job: GroupJob, first: Workspace, p1: dict, members: list[str]) -> None:
    """Second pass: a group none of whose members has a projected mask is promoted from pass 1
    (same members, pass 1 done; ``p1``: pass 1's record of the group, {} if none):
    ``job.promote`` and pass 1's records in ``job.previous``."""
    from .pass_files import mask_path

    if (p1 and sorted(p1["group"].get("members", [])) == sorted(members)
            and not any(mask_path(first, s).is_file() for s in members)
            and sorted(e["stem"] for e in p1["exposures"]) == sorted(members)):
        job.promote = True
        job.previous = {"group": {k: v for k, v in p1["group"].items() if k not in ("skipped", "identity")},
                        "exposures": {e["stem"]: e for e in p1["exposures"]}}


def _first_pass_masks(first: Workspace, p1: dict, members: list[str], params: CleanParams
                      ) -> FirstPassMasks | None:
    """Second pass: pass 1's own masks of the group, when pass 1 cleaned it from the same
    stage-2 files with the same parameters and versions (its identity, as pass 1 computed it;
    ``p1``: pass 1's record of the group): the detection depends on nothing else, so it is
    not run again."""
    from .pass_files import FIRST_PASS_LABEL

    ident = identity.digest(group_identity(first, members, params, FIRST_PASS_LABEL, None))
    if p1.get("group", {}).get("identity") != ident:
        return None
    removed = {e["stem"]: int(e.get("n_small_removed", 0)) for e in p1.get("exposures", [])}
    return FirstPassMasks(str(first.root), ident, {s: removed[s] for s in members if s in removed})


def _write_summary(ws: Workspace, params: CleanParams, label: str, groups: dict, exposures: dict) -> None:
    """``clean/clean_summary.json`` of a pass whose every group is done."""
    summary = {"parameters": params.parameters(),
               "pass": label,
               "bad_pixels": f"DQ flags outside good_bits {params.good_bits!r} (stage 3's resample), "
                             "non-finite SCI or ERR",
               "dq_filled": (f"DO_NOT_USE cleared, FLUX_ESTIMATED set, VAR_RNOISE x {FILLED_VARIANCE_FACTOR:g} "
                             "(ivm weight 1e-4 of a measured pixel)"),
               "template_variance": TEMPLATE_VARIANCE,
               "map_bits": MAP_BITS,
               "groups": groups, "exposures": exposures}
    write_json(ws.dir("clean") / "clean_summary.json", summary)


def _load_json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
