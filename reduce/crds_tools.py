"""``mirim-reduce crds check`` (offline) and ``crds sync`` (needs the CRDS server).

``check`` computes the best references of every exposure offline, for all reftypes the three
pipelines prefetch, and lists *every* reference the cache lacks or holds damaged (empty,
truncated, unreadable: :mod:`reduce.reference_check`) with the exposures that need it, before
any stage runs. ``sync`` runs crds' own ``crds.sync`` in a subprocess (crds fixes its
server URL at import, and this process is serverless): the context's mappings, plus with
``--for DIR`` the best references of those data (``--fetch-references --dataset-files``), all
checked with ``--check-sha1sum``; then ``check`` confirms the cache is complete.
"""

from __future__ import annotations

import functools

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import crds_setup, inputs, reference_check
from .acquire.errors import CrdsSyncError
from .errors import CrdsCacheError

DEFAULT_SERVER = "https://jwst-crds.stsci.edu"


@dataclass
class CheckReport:
    context: str
    path: Path
    exposures: list[str] = field(default_factory=list)
    references: dict[str, dict[str, str]] = field(default_factory=dict)   # exposure -> reftype -> name
    missing: dict[str, dict] = field(default_factory=dict)                # file -> {reftype, exposures}
    uncovered: list[tuple[str, str, str]] = field(default_factory=list)   # (exposure, reftype, why)
    damaged: dict[str, dict] = field(default_factory=dict)                # file -> {reftype, exposures, path, problem}

    @property
    def ok(self) -> bool:
        return not self.missing and not self.uncovered and not self.damaged

    def lines(self) -> list[str]:
        out = [f"CRDS context {self.context} in {self.path}: {len(self.exposures)} exposures, "
               f"{len({n for r in self.references.values() for n in r.values() if n != 'N/A'})} reference files"]
        for name, info in sorted(self.missing.items()):
            out.append(f"missing {name} ({info['reftype']}) needed by {', '.join(sorted(info['exposures']))}")
        for name, info in sorted(self.damaged.items()):
            out.append(f"damaged {info['path']} ({info['reftype']}): {info['problem']}")
        for exposure, reftype, why in self.uncovered:
            out.append(f"not covered {exposure} {reftype}: {why}")
        out.append("ok: every reference these data need is in the cache and readable" if self.ok else
                   f"incomplete: {len(self.missing)} file(s) missing, {len(self.damaged)} damaged, "
                   f"{len(self.uncovered)} lookup(s) failed")
        return out

    def error(self) -> CrdsCacheError:
        """One line: what the context does not cover (no sync can fix that), else what the cache lacks."""
        if self.uncovered:
            by_file: dict[str, list[str]] = {}
            for exposure, reftype, _ in self.uncovered:
                by_file.setdefault(exposure, []).append(reftype)
            first, types = next(iter(by_file.items()))
            more = f" (and {len(by_file) - 1} more exposures)" if len(by_file) > 1 else ""
            what = ", ".join(t for t in types if t != "*") or "any"
            return CrdsCacheError(f"CRDS context {self.context} has no {what} reference for "
                                  f"{first}_uncal.fits{more}: {self.uncovered[0][2]}; set CRDS_CONTEXT to a "
                                  f"context that covers these data (get one with `mirim-reduce crds sync "
                                  f"--context jwst_NNNN.pmap --for DIR` where the CRDS server is reachable)")
        if self.damaged:
            name, info = sorted(self.damaged.items())[0]
            more = f" (and {len(self.damaged) - 1} more damaged)" if len(self.damaged) > 1 else ""
            lacks = f"; it also lacks {len(self.missing)} file(s)" if self.missing else ""
            return CrdsCacheError(f"CRDS reference {info['path']} ({info['reftype']}, needed by "
                                  f"{sorted(info['exposures'])[0]}) is damaged: {info['problem']}{more}{lacks}; "
                                  f"delete it and fetch it again with `mirim-reduce crds sync --context "
                                  f"{self.context} --for DIR`")
        parts = [f"{n} ({i['reftype']}; {', '.join(sorted(i['exposures'])[:3])}"
                 f"{'...' if len(i['exposures']) > 3 else ''})" for n, i in sorted(self.missing.items())]
        shown = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
        return CrdsCacheError(f"CRDS cache {self.path} (context {self.context}) lacks {len(parts)} reference "
                              f"file(s) these data need: {shown}; fill it with "
                              f"`mirim-reduce crds sync --context {self.context} --for DIR`")


def check(folder: Path, crds_path: Path | None = None, context: str | None = None) -> CheckReport:
    """Best references of every MIRI imaging exposure of ``folder``, offline; all gaps collected."""
    selection = inputs.select(Path(folder))  # input errors first, as `run` reports them
    settings = crds_setup.configure(crds_path, context)
    return check_exposures([e.path for e in selection.exposures], settings)


@functools.lru_cache(maxsize=4096)
def _crds_parameters(path: str, mtime_ns: int, size: int) -> dict:
    from stdatamodels.jwst import datamodels

    with datamodels.open(path) as model:
        return model.get_crds_parameters()


def crds_parameters(path) -> dict:
    """The CRDS matching parameters of a data file (opened once per process while unchanged:
    the reference check and the parameter-reference lookup both need them)."""
    st = os.stat(path)
    return dict(_crds_parameters(str(Path(path).resolve()), st.st_mtime_ns, st.st_size))


def check_exposures(files: list[Path], settings: crds_setup.CrdsSettings,
                    types: list[str] | None = None) -> CheckReport:
    """The best references of ``files`` for every type in ``types`` (default: every type the
    three pipelines prefetch, :func:`reduce.reftypes.required_reference_types`; that imports
    jwst's pipelines, so a run passes the list a worker computed)."""
    import crds
    from crds.core.exceptions import CrdsError

    if types is None:
        from .reftypes import required_reference_types

        types = sorted(set().union(*required_reference_types().values()))
    report = CheckReport(context=settings.context, path=settings.path)
    checked: dict[str, str | None] = {}
    for f in files:
        name = Path(f).name.removesuffix("_uncal.fits")
        report.exposures.append(name)
        params = crds_parameters(f)
        try:
            best = crds.getrecommendations(params, reftypes=types, context=settings.context, observatory="jwst")
        except CrdsError as exc:
            report.uncovered.append((name, "*", str(exc).splitlines()[0][:200]))
            continue
        refs = report.references.setdefault(name, {})
        for reftype, ref in sorted(best.items()):
            if ref.startswith("NOT FOUND"):
                if "n/a" in ref.lower():
                    refs[reftype] = "N/A"
                else:
                    report.uncovered.append((name, reftype, ref))
                continue
            refs[reftype] = ref
            local = Path(crds.locate_file(ref, "jwst"))
            if not local.is_file():
                entry = report.missing.setdefault(ref, {"reftype": reftype, "exposures": []})
                entry["exposures"].append(name)
                continue
            if ref not in checked:  # each file once: whole and readable? (headers only, no arrays)
                checked[ref] = reference_check.problem(local)
            if checked[ref]:
                entry = report.damaged.setdefault(ref, {"reftype": reftype, "exposures": [], "path": str(local),
                                                        "problem": checked[ref]})
                entry["exposures"].append(name)
    return report


def require_complete(folder: Path, crds_path: Path | None = None, context: str | None = None) -> CheckReport:
    """:func:`check`, raising one CrdsCacheError that lists everything missing."""
    report = check(folder, crds_path, context)
    if not report.ok:
        raise report.error()
    return report


# ------------------------------------------------------------------------------------------
def server_url() -> str:
    """The CRDS server for ``sync``: $MIRIM_CRDS_SERVER_URL, else a non-serverless $CRDS_SERVER_URL,
    else the JWST operational server."""
    url = os.environ.get("MIRIM_CRDS_SERVER_URL") or os.environ.get("CRDS_SERVER_URL", "")
    return url if url and "serverless" not in url else DEFAULT_SERVER


def sync_command(context: str, dataset_files: list[Path] | None = None) -> list[str]:
    """The ``crds.sync`` command line: mappings of ``context``; with data, their best references too."""
    cmd = [sys.executable, "-m", "crds.sync", "--contexts", context, "--check-sha1sum"]
    if dataset_files:
        cmd += ["--fetch-references", "--dataset-files", *[str(p) for p in dataset_files]]
    return cmd


def sync(context: str, folder: Path | None = None, crds_path: Path | None = None, echo=print) -> CheckReport | None:
    """Fill the cache for ``context`` (and the data in ``folder``) from the CRDS server, then check it."""
    if not (context.startswith("jwst_") and context.endswith(".pmap")):
        raise CrdsSyncError(f"--context must name a JWST pipeline context like jwst_1584.pmap, not {context!r}")
    path = Path(crds_path) if crds_path else crds_setup.default_cache_path()
    if os.environ.get("CRDS_READONLY_CACHE") == "1" or (path.exists() and not os.access(path, os.W_OK)):
        raise CrdsSyncError(f"CRDS cache {path} is read-only (CRDS_READONLY_CACHE or permissions): "
                            f"sync into a writable cache with --crds-path")
    files = [e.path for e in inputs.select(Path(folder)).exposures] if folder else None
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CRDS_CONTEXT", "CRDS_READONLY_CACHE")}
    env.update(CRDS_PATH=str(path), CRDS_SERVER_URL=server_url())
    proc = subprocess.run(sync_command(context, files), env=env, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        echo(line)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if created:  # leave no half-made cache behind
            shutil.rmtree(path, ignore_errors=True)
        if any(m in text for m in ("server connection and cache load FAILED", "Failed connecting",
                                   "Name or service not known", "Network is unreachable")):
            raise CrdsSyncError(f"cannot reach the CRDS server {env['CRDS_SERVER_URL']}: sync where the "
                                f"network exists, then copy {path} here (check it with `mirim-reduce crds check DIR`)")
        lines = [ln for ln in text.splitlines() if "ERROR" in ln] or text.strip().splitlines() or ["no output"]
        raise CrdsSyncError(f"crds sync failed (exit {proc.returncode}): {lines[-1].strip()[:300]}")
    if folder:
        return require_complete(Path(folder), path, context)
    return None
