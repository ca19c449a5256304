"""The run report: ``DEST/report.html``, one page, with its figures in ``DEST/report/``.

Per filter: a quicklook of every mosaic (asinh stretch, TA box drawn when placed), the
super-background templates and the before/after figures of the cleaning when present; the
exposures used (per mosaic) and the files skipped, with reasons; failures; the time of each
stage. Figures are written without timestamps, so identical data give identical PNGs.
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fsutil import atomic_path, write_text


@dataclass
class MosaicEntry:
    """What the report shows of one packaged mosaic."""

    product: str             # stage-3 product name
    filter: str
    target: str
    i2d: Path                # packaged mosaic
    members: list[str]
    tabox: dict | None = None


def quicklook(i2d: Path, png: Path, title: str, tabox: dict | None = None) -> dict:
    """An asinh-stretched PNG of the mosaic's SCI; returns its dynamic-range statistics."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from astropy.io import fits
    from matplotlib.patches import Polygon

    from .tabox import asinh_norm, save_figure

    with fits.open(i2d, memmap=False) as h:
        sci = np.asarray(h["SCI"].data, dtype=float)
        bunit = h["SCI"].header.get("BUNIT", "")
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(sci, origin="lower", cmap="gray", norm=asinh_norm(sci), interpolation="nearest")
    if tabox and tabox.get("pixel_corners"):
        ax.add_patch(Polygon(np.array(tabox["pixel_corners"]), closed=True, fill=False, edgecolor="cyan", lw=1.2))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x [px]")
    ax.set_ylabel("y [px]")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=bunit)
    fig.tight_layout()
    save_figure(fig, None, png, dpi=90)
    plt.close(fig)
    finite = sci[np.isfinite(sci)]
    p1, p99 = (np.percentile(finite, [1, 99]) if finite.size else (np.nan, np.nan))
    return {"finite_fraction": float(finite.size / sci.size), "p1": float(p1), "p99": float(p99)}


def quicklook_path(dest: Path, i2d: Path) -> Path:
    """Where the report keeps the quicklook of packaged mosaic ``i2d``."""
    return dest / "report" / f"{i2d.name.removesuffix('_i2d.fits')}_quicklook.png"


def quicklook_title(m: MosaicEntry) -> str:
    return f"{m.target} {m.filter} ({m.product})"


def _clean_figures(ws_root: Path, filt: str, members: list[str]) -> list[Path]:
    qa = ws_root / "clean" / "qa"
    if not qa.is_dir():
        return []
    out = sorted(qa.glob(f"{filt.upper()}_*_template.png"))
    out += [p for p in sorted(qa.glob("*_clean.png")) if p.name.removesuffix("_clean.png") in members]
    return out


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(dest: Path, ws_root: Path, mosaics: list[MosaicEntry], summary: dict, notes: list[str],
                 *, version: str, date: str, quicklooks: dict[str, dict], figures: list[Path] | None = None
                 ) -> Path:
    """Write ``dest/report.html`` and its figures (appended to ``figures``); return the report path.
    ``quicklooks``: {product: :func:`quicklook` statistics} of every mosaic's quicklook, already
    written at :func:`quicklook_path` (by the packaging, in its workers when it has them)."""
    figures = [] if figures is None else figures
    figdir = dest / "report"
    figdir.mkdir(parents=True, exist_ok=True)
    clean_summary = {}
    cs = ws_root / "clean" / "clean_summary.json"
    if cs.is_file():
        clean_summary = json.loads(cs.read_text())
    parts = [f"<h1>mirim-reduce {html.escape(version)} &mdash; {html.escape(str(ws_root))}</h1>",
             f"<p>CRDS context <b>{html.escape(summary.get('crds_context', ''))}</b>; date stamp {html.escape(date)}; "
             f"{len(summary.get('exposures', []))} exposures reduced, {len(summary.get('skipped', []))} files skipped, "
             f"{len(mosaics)} mosaics.</p>"]
    by_filter: dict[str, list[MosaicEntry]] = {}
    for m in mosaics:
        by_filter.setdefault(m.filter, []).append(m)
    for filt in sorted(by_filter):
        parts.append(f"<h2>{html.escape(filt)}</h2>")
        for m in by_filter[filt]:
            png = quicklook_path(dest, m.i2d)
            stats = quicklooks[m.product]
            figures.append(png)
            rel = m.i2d.relative_to(dest).as_posix()
            parts.append(f"<h3>{html.escape(rel)}</h3>")
            parts.append(f'<img src="report/{png.name}" alt="quicklook {html.escape(m.product)}">')
            parts.append(f"<p>1st/99th percentile {stats['p1']:.4g} / {stats['p99']:.4g}; "
                         f"{100 * stats['finite_fraction']:.0f}% of pixels with data.</p>")
            if m.tabox is not None:
                tb = m.tabox
                files = ", ".join(Path(f).name for f in tb.get("files", [])) or "no cutout"
                parts.append(f"<p>TA box {html.escape(tb['aperture'])}: RA {tb['sky_ref'][0]:.6f} Dec {tb['sky_ref'][1]:.6f}, "
                             f"coverage {100 * tb['coverage']:.0f}% ({html.escape(files)}). "
                             f"{html.escape(tb.get('note', ''))}</p>")
            rows = []
            for stem in m.members:
                e = clean_summary.get("exposures", {}).get(stem, {})
                rows.append([stem, e.get("group", ""), f"{e['scale']:.3g}" if e.get("scale") is not None else "",
                             f"{100 * e['fraction_masked']:.1f}%" if e.get("fraction_masked") is not None else "", e.get("note", "")])
            parts.append(_table(rows, ["exposure used", "cleaning group", "template scale", "masked", "note"]))
            for fig in _clean_figures(ws_root, filt, m.members):
                target = figdir / "qa" / fig.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp:
                    shutil.copyfile(fig, tmp)
                figures.append(target)
                parts.append(f'<img src="report/qa/{fig.name}" alt="{html.escape(fig.stem)}">')
    groups = clean_summary.get("groups", {})
    if groups:
        parts.append("<h2>Cleaning groups</h2>")
        parts.append(_table([[g, len(v.get("members", [])), "yes" if v.get("template") else "no", v.get("reason", "")]
                             for g, v in sorted(groups.items())], ["group", "exposures", "template", "reason"]))
    parts.append("<h2>Skipped files</h2>")
    skipped = summary.get("skipped", [])
    parts.append(_table([list(s) for s in skipped], ["file", "reason"]) if skipped else "<p>none</p>")
    failures = [o for o in summary.get("outcomes", []) if not o.get("ok")]
    if failures:
        parts.append("<h2>Failures</h2>")
        parts.append(_table([[o["stage"], o["name"], o.get("error", "")] for o in failures], ["stage", "task", "error"]))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Times</h2>")
    parts.append(_table([[k, f"{v:.1f}"] for k, v in summary.get("stage_seconds", {}).items()]
                        + [["total (before packaging)", f"{summary.get('total_seconds', 0.0):.1f}"]], ["stage", "wall s"]))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:49%;margin:2px}"
             "table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%}")
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>mirim-reduce report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    path = dest / "report.html"
    write_text(path, page)
    return path
