"""Packaging: the workspace's mosaics sorted as the original sorts them, TA boxes, report, manifest.

Layout (DEST = ``DESTINATION_DIRECTORY``, or ``WORKSPACE/products`` when it is "")::

    DEST/{TARGPROP}/{FILTER}/{TARGPROP}_MIRI_{FILTER}_{DATE}_i2d.fits   (+ _segm.fits, _cat.ecsv)
    DEST/{TARGPROP}/{FILTER}/{TARGPROP}_MIRI_{FILTER}_{DATE}_ta_box.{fits,pdf,png}   (MAKE_CUTOUTS)
    DEST/report.html, DEST/report/*.png
    DEST/manifest.json

``DATE`` is the config's ``DATE``; when that is "", the stamp of DEST's previous packaging of
the same input files (``manifest.json``), so that a rerun or a resumed run on a later day renames
nothing; else today (``%d%b%Y``). ``TARGPROP`` is made safe for paths
(characters other than letters, digits, ``.``, ``_``, ``+``, ``-`` become ``_``). When two
mosaics would get the same name (same target and filter in two observations), the product's
observation token (``o001``; the whole product prefix if that is not enough) is inserted
before the suffix: ``..._{DATE}_o001_i2d.fits``. Files are copied byte for byte from
``stage3/``, atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shutil
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

from .. import __version__
from ..fsutil import atomic_path, write_json
from ..params import PackageParams
from ..stages.parameters import provenance as step_provenance
from ..workspace import Workspace
from . import hashing
from . import manifest as manifest_mod
from . import tabox as tabox_mod
from .report import MosaicEntry, quicklook, quicklook_path, quicklook_title, write_report


@dataclass
class PackageResult:
    dest: Path
    date: str
    products: list[Path] = field(default_factory=list)
    ta_boxes: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    manifest: Path | None = None


def safe_name(name: str) -> str:
    """A target name usable as a folder and file name."""
    s = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(name).strip()).strip("._")
    return s or "UNKNOWN"


def date_stamp(params: PackageParams, today: _dt.date | None = None, previous: str | None = None) -> str:
    """The date stamp of product names: the config's ``DATE``, else ``previous`` (the stamp of the
    destination's last packaging), else ``today`` (default: today), as ``%d%b%Y``."""
    return params.date or previous or (today or _dt.date.today()).strftime("%d%b%Y")


def previous_date_stamp(dest: Path, inputs: list[Path]) -> str | None:
    """The date stamp in ``dest/manifest.json`` of an earlier packaging of the same ``inputs``
    (file names; another program packaged into a shared destination does not count), if any."""
    try:
        man = json.loads((dest / "manifest.json").read_text())
        same = sorted(e["name"] for e in man.get("inputs", [])) == sorted(p.name for p in inputs if p.is_file())
        date = man.get("date")
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    return date if same and isinstance(date, str) and hashing.DATE_STAMP_RE.fullmatch(date) else None


def destination(ws: Workspace, params: PackageParams) -> Path:
    d = params.destination_directory
    return Path(d).absolute() if d else ws.products


def _copy(src: Path, final: Path) -> None:
    with atomic_path(final) as tmp:
        shutil.copyfile(src, tmp)


def _mosaic_info(i2d: Path) -> dict:
    from astropy.io import fits

    h = fits.getheader(i2d)
    return {"target": safe_name(h.get("TARGPROP") or h.get("TARGNAME") or "UNKNOWN"),
            "filter": str(h.get("FILTER", "UNKNOWN")).upper()}


def _names(products: dict[str, dict], date: str) -> dict[str, str]:
    """Product -> packaged base name (without the ``_i2d.fits`` suffix), unique."""
    base = {p: f"{i['target']}_MIRI_{i['filter']}_{date}" for p, i in products.items()}
    out = {}
    for p, b in base.items():
        twins = [q for q, c in base.items() if c == b]
        if len(twins) == 1:
            out[p] = b
            continue
        token = p.split("_")[0].split("-")[-1]  # jw09999-o001_t001_miri_f770w -> o001
        tokens = [q.split("_")[0].split("-")[-1] for q in twins]
        out[p] = f"{b}_{token}" if tokens.count(token) == 1 else f"{b}_{p.split('_')[0]}"
    return out


def _summary_dict(summary) -> dict:
    if summary is None:
        return {}
    if is_dataclass(summary):
        return asdict(summary)
    return dict(summary)


def package(ws: Workspace, params: PackageParams, config: dict, summary=None, *,
            cutout_size: int = tabox_mod.DEFAULT_CUTOUT_SIZE, today: _dt.date | None = None,
            pool=None) -> PackageResult:
    """Package the mosaics of workspace ``ws`` (see the module doc); returns what was written.

    ``params``: the packaging's section of the configuration; ``config``: the whole
    configuration (a :class:`reduce.config.Config`), which the manifest records. ``pool``: a
    :class:`reduce.workers.WorkerPool` whose workers make the TA boxes and report quicklooks (one
    mosaic per task), the manifest's content hashes (one product per task) and its step
    parameters (which import jwst's pipelines: the workers have them); without it, this
    process does. The files are the same either way."""
    ws_root = ws.root
    crds = json.loads((ws_root / "crds.json").read_text()) if (ws_root / "crds.json").is_file() else {}
    crds.pop("path", None)  # where the cache is does not change the results
    step_parameters = (pool.submit(step_provenance, config, crds.get("parameter_references"))
                       if pool is not None else None)
    summ = _summary_dict(summary)
    if not summ and (ws_root / "summary.json").is_file():
        summ = json.loads((ws_root / "summary.json").read_text())
    dest = destination(ws, params)
    inputs = []
    if (ws_root / "inputs.json").is_file():  # paths absolute or relative to the workspace
        from ..inputs import load_record

        inputs = [e.path for e in load_record(ws_root).exposures]
    date = date_stamp(params, today, previous_date_stamp(dest, inputs))
    result = PackageResult(dest=dest, date=date)
    i2ds = sorted(ws.dir("stage3").glob("*/*_i2d.fits"))
    infos = {p.parent.name: {**_mosaic_info(p), "i2d": p} for p in i2ds}
    names = _names(infos, date)
    copied, boxes = [], []  # per mosaic: (report entry, files copied); its TA box and quicklook's arguments
    for product, info in infos.items():
        folder = dest / info["target"] / info["filter"]
        base = names[product]
        src_dir = info["i2d"].parent
        packaged = folder / f"{base}_i2d.fits"
        files = []
        for suffix in ("_segm.fits", "_cat.ecsv", "_i2d.fits"):  # the mosaic last: it marks completion
            src = src_dir / f"{product}{suffix}"
            if src.is_file():
                _copy(src, folder / f"{base}{suffix}")
                files.append(folder / f"{base}{suffix}")
        entry = MosaicEntry(product=product, filter=info["filter"], target=info["target"], i2d=packaged,
                            members=_members(src_dir))
        copied.append((entry, files))
        boxes.append((ws_root, info, src_dir, packaged, folder / f"{base}_ta_box" if params.make_cutouts else None,
                      cutout_size, quicklook_path(dest, packaged), quicklook_title(entry)))
    mosaics, quicklooks = [], {}
    for (entry, files), (box_files, box_notes, box, stats) in zip(copied, _in_pool(_mosaic_figures, boxes, pool)):
        result.products += files + box_files
        result.notes += box_notes
        if box is not None:
            result.ta_boxes.append(box)
        entry.tabox, quicklooks[entry.product] = box, stats
        mosaics.append(entry)
    if not i2ds:
        result.notes.append("packaging: no mosaics in stage3/")
    figures: list[Path] = []
    result.report = write_report(dest, ws_root, mosaics, summ, [*summ.get("notes", []), *result.notes],
                                 version=__version__, date=date, figures=figures, quicklooks=quicklooks)
    result.products += sorted(set(figures))
    if params.save_outputs:
        logs = sorted(p for p in (ws_root / "logs").rglob("*.log") if p.is_file())
        for log in logs:
            _copy(log, dest / manifest_mod.LOGS / log.relative_to(ws_root / "logs"))
        result.notes.append(f"save_outputs: {len(logs)} pipeline log(s) copied to {dest / manifest_mod.LOGS}")
    listed = sorted(set(result.products))
    entries = _in_pool(manifest_mod.product_entry, [(dest, p) for p in listed], pool)  # content hashes
    man = manifest_mod.build(dest, listed, tool_version=__version__, cfg=config, date=date, crds=crds,
                             inputs=inputs, ta_boxes=result.ta_boxes, entries=entries,
                             step_parameters=None if step_parameters is None else step_parameters.result())
    result.manifest = dest / "manifest.json"
    write_json(result.manifest, man)
    return result


def _members(product_dir: Path) -> list[str]:
    asns = sorted(product_dir.glob("*_asn.json"))
    if not asns:
        return []
    data = json.loads(asns[0].read_text())
    return sorted(Path(m["expname"]).name.removesuffix("_cal.fits") for p in data["products"] for m in p["members"])


def _in_pool(fn, jobs: list[tuple], pool) -> list:
    """``[fn(*job) for job in jobs]``, in the pool's workers (one job per task) when there is a pool."""
    if pool is None:
        return [fn(*job) for job in jobs]
    futures = [pool.submit(fn, *job) for job in jobs]
    return [f.result() for f in futures]


def _mosaic_figures(ws_root: Path, info: dict, src_dir: Path, packaged: Path, ta_base: Path | None, size: int,
                    quicklook_png: Path, title: str) -> tuple[list[Path], list[str], dict | None, dict]:
    """One packaged mosaic's TA box (:func:`_ta_box`; none when ``ta_base`` is None) and its
    report quicklook: (TA-box files, notes, TA box record, quicklook statistics)."""
    files, notes, box = _ta_box(ws_root, info, src_dir, packaged, ta_base, size) if ta_base else ([], [], None)
    quicklook_png.parent.mkdir(parents=True, exist_ok=True)
    return files, notes, box, quicklook(packaged, quicklook_png, title, box)


def _ta_box(ws_root: Path, info: dict, src_dir: Path, packaged: Path, out_base: Path, size: int
            ) -> tuple[list[Path], list[str], dict | None]:
    """The TA box of one packaged mosaic: (files written, notes, the box's record or None when
    no member has a WCS)."""
    member, aligned = tabox_mod.reference_member(src_dir, ws_root)
    if member is None:
        return [], [f"TA box of {packaged.name}: no member exposure with a WCS found; no cutout"], None
    box = tabox_mod.place(packaged, member, aligned)
    box.mosaic = packaged.name
    files: list[Path] = []
    if box.inside:
        files = tabox_mod.make_cutout(packaged, box, out_base, size=size, target=info["target"],
                                      filt=info["filter"], version=__version__)
        box.files = [f.name for f in files]
    else:
        for ext in (".fits", ".pdf", ".png"):  # a stale cutout of an earlier run would mislead
            (out_base.parent / (out_base.name + ext)).unlink(missing_ok=True)
    return files, [f"TA box of {packaged.name}: {box.note}"] if box.note else [], box.to_dict()
