"""Quality of the cleaning on every simulated program, against the simulator's truth.

Run: ``python -m benchmarks.bench_clean_quality [--root DIR] [--programs demo,...]
[--variants ours,ours_1pass] [--fresh]``.

Per program (the demo and ``reduce.demo.simulate.program.TEST_PROGRAMS`` when they exist):
simulate into ``ROOT/<program>/raw``, reduce it once (``mirim-reduce run RAW --workdir
ROOT/<program>/base``), then each variant is a copy of that workspace (stage 1 and 2
shared) that differs only in the cleaning; stage 3 is rerun and the variant is scored with
:func:`reduce.demo.evaluate.evaluate_workspace`:

* ``off``: MEDIAN_FILTER and SUPER_BKG_SUB false (stage 3 reads the stage-2 cal files);
* ``original``: :mod:`benchmarks.original_clean` (the notebook's algorithm, defects kept);
* ``ours_1pass``: the product's cleaning with ``clean_second_pass = false`` (one pass);
* ``ours``: the product's cleaning with the default configuration;
* ``truth``: the true background subtracted from every cal file (the truth's BACKGROUND
  extension, or without it a reconstruction from RATE - ILLUM and the sky model): the
  best any background removal can do, and the check of the evaluation itself (flatness
  and rms_ratio ~ 1.00; it is also evaluated with ``check_noise``).

Prints one table per program and mosaic (rows: variants; columns: flatness, mean offset
in sigma, point-source scatter %, flux trend % per dex, median flux ratio, rms_ratio, and
the scatter's difference from cleaning off's and from the true background's, over the
same sources, each with its paired standard error) and
writes them to ``ROOT/quality.md`` and ``ROOT/quality.json`` (every program with results in
ROOT). Resumable: the raw data, the base reduction and every finished variant
(``<variant>/bench_variant.json``, built on the same base) are reused; ``--fresh`` redoes the variants of
``--variants``, ``--reevaluate`` only re-scores them. Variants not in ``--variants`` keep
their earlier results in the tables (with the time they were built). No assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks import markdown_table

VARIANTS = ("off", "original", "ours_1pass", "ours", "truth")
LABELS = {"off": "cleaning off", "original": "original (re-implemented)", "ours_1pass": "ours, one pass",
          "ours": "ours, default", "truth": "truth background removed"}
COLUMNS = [("flatness", "flatness", "{:.3f}"), ("flatness_plane_removed", "flatness −plane", "{:.3f}"),
           ("mean_sigma", "mean σ", "{:+.3f}"),
           ("scatter_pct", "scatter %", "{:.2f}"), ("trend_pct_per_dex", "trend %/dex", "{:+.2f}"),
           ("flux_ratio", "flux ratio", "{:.4f}"), ("rms_ratio", "rms_ratio", "{:.3f}")]
ENV: dict[str, str] = {}  # CRDS settings for the subprocesses (set by main)


def programs_available() -> list[str]:
    """``demo`` plus the simulator's test programs (when that version of it is there)."""
    try:
        from reduce.demo.simulate.program import TEST_PROGRAMS
    except ImportError:
        return ["demo"]
    return ["demo", *[p for p in TEST_PROGRAMS if p != "demo"]]


def _cli(*args) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", **ENV}
    proc = subprocess.run([sys.executable, "-c", "from reduce.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"mirim-reduce {' '.join(map(str, args))} exited {proc.returncode}:\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _set_config(ws: Path, **values) -> None:
    path = ws / "config.toml"
    lines = path.read_text().splitlines()
    for key, value in values.items():
        text = "true" if value is True else "false" if value is False else repr(value)
        if any(ln.split("=")[0].strip() == key for ln in lines):
            lines = [f"{key} = {text}" if ln.split("=")[0].strip() == key else ln for ln in lines]
        else:  # a top-level key goes before the first [table]
            at = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
            lines.insert(at, f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, doc) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=lambda v: None))
    tmp.replace(path)


def clean_code_hash() -> str:
    """Short hash of reduce/clean/*.py: which cleaning code a variant was built with."""
    import reduce.clean

    h = hashlib.sha256()
    for f in sorted(Path(reduce.clean.__file__).parent.glob("*.py")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:10]


def truth_clean(ws: Path, truth_dir: Path) -> None:
    """clean/<stem>_cal.fits = stage-2 cal minus its true background (MJy/sr): the rate
    truth's BACKGROUND (DN/s of everything that is not source light) converted as stage 2
    does (:func:`reduce.demo.evaluate.rate_to_cal`); for truths without it, (RATE - ILLUM)
    converted (pattern and new hot pixels) plus the sky model sky(xi, eta). 0 where the
    flat is 0."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import ImageModel

    from reduce.demo.evaluate import rate_to_cal
    from reduce.demo.simulate import geometry

    truth = json.loads((truth_dir / "truth.json").read_text())
    for e in truth["exposures"]:
        cal = ws / "stage2" / f"{e['stem']}_cal.fits"
        if not cal.exists():
            continue
        filt = e["filter"]
        m = ImageModel(str(cal))
        with fits.open(truth_dir / e["rate_truth_file"]) as h:
            if "BACKGROUND" in h:
                back = np.nan_to_num(rate_to_cal(np.array(h["BACKGROUND"].data, np.float64), filt, e["subarray"]))
            else:
                extra = np.array(h["RATE"].data, np.float64) - np.array(h["ILLUM"].data, np.float64)
                ra0, dec0 = truth["target"]["ra"], truth["target"]["dec"]
                gx, gy = truth["sky"]["gradient_per_arcsec"]
                yy, xx = np.mgrid[0:m.data.shape[0], 0:m.data.shape[1]].astype(np.float64)
                xi, eta = geometry.sky_to_plane(*m.meta.wcs(xx, yy), ra0, dec0)
                sky = truth["sky"]["nominal_mjysr"][filt] * e["sky_factor"] * (1.0 + gx * xi + gy * eta)
                back = np.nan_to_num(rate_to_cal(extra, filt, e["subarray"]), nan=0.0) + sky
        m.data = (np.asarray(m.data, np.float64) - back).astype(np.float32)
        m.meta.filename = cal.name
        with open(ws / "clean" / cal.name, "wb") as fh:
            m.to_fits(fh)
        m.close()


def _restage3(ws: Path) -> None:
    _set_config(ws, OVERWRITE=False)  # `clean --overwrite` recorded OVERWRITE = true in config.toml
    for d in (ws / "stage3").glob("*"):
        shutil.rmtree(d) if d.is_dir() else d.unlink()
    _cli("stage3", ws)  # no --overwrite: the clean/ files written here are kept


def build_variant(base: Path, ws: Path, name: str, truth_dir: Path) -> None:
    """``ws`` = a copy of ``base`` reduced with variant ``name`` (stage 1 and 2 shared)."""
    from benchmarks import original_clean

    shutil.rmtree(ws, ignore_errors=True)
    # stages 1 and 2 and the records only: the base's cleaning, first-pass mosaics and masks may
    # come from older code (a stale pass1/ once gave every variant masks it did not make itself)
    shutil.copytree(base, ws, symlinks=True,
                    ignore=shutil.ignore_patterns("products", ".lock*", "pass1", "clean", "stage3", "logs"))
    if name == "off":
        _set_config(ws, MEDIAN_FILTER=False, SUPER_BKG_SUB=False)
        _cli("clean", ws, "--overwrite")
        _cli("stage3", ws, "--overwrite")
    elif name in ("ours", "ours_1pass"):
        _set_config(ws, MEDIAN_FILTER=True, SUPER_BKG_SUB=True, clean_second_pass=name == "ours")
        _cli("clean", ws, "--overwrite")
        _cli("stage3", ws, "--overwrite")
    elif name in ("original", "truth"):
        _set_config(ws, MEDIAN_FILTER=True, SUPER_BKG_SUB=True, clean_second_pass=False)
        _cli("clean", ws, "--overwrite")  # our groups in clean_summary.json: stage 3 then keeps clean/
        if name == "original":
            original_clean.run(ws)
        else:
            truth_clean(ws, truth_dir)
        _restage3(ws)
    else:
        raise ValueError(name)


def prepare_program(root: Path, program: str, seed: int, jobs: int, base: Path | None = None) -> dict:
    """Simulate and reduce ``program`` once (skipped when done); its record
    (``ROOT/<program>/bench_program.json``: paths and times)."""
    pdir = root / program
    pdir.mkdir(parents=True, exist_ok=True)
    rec_path = pdir / "bench_program.json"
    rec = _read_json(rec_path)
    if base is not None:  # a finished demo workspace given with --workspace: not redone
        exps = _read_json(base / "inputs.json").get("exposures") or [{"path": base / "raw" / "x"}]
        raw = (base / exps[0]["path"]).parent  # absolute, or relative to the workspace
        if not ((base / "summary.json").is_file() and (raw / "truth" / "truth.json").is_file()):
            raise RuntimeError(f"--workspace {base}: not a finished reduction of a simulated program")
        rec.update(program=program, raw=str(raw), base=str(base), simulate_s=0.0, reduce_s=0.0, given=True)
        _write_json(rec_path, rec)
    raw, base = Path(rec.get("raw", pdir / "raw")), Path(rec.get("base", pdir / "base"))
    if "simulate_s" not in rec or not (raw / "truth" / "truth.json").is_file():
        print(f"[{program}] simulating into {raw}", file=sys.stderr)
        t0 = time.perf_counter()
        _cli("simulate", raw, "--seed", seed, *(["--program", program] if program != "demo" else []))
        rec.update(program=program, seed=seed, raw=str(raw), simulate_s=time.perf_counter() - t0)
        _write_json(rec_path, rec)
    if "reduce_s" not in rec or not (base / "summary.json").is_file():
        print(f"[{program}] reducing into {base}", file=sys.stderr)
        t0 = time.perf_counter()
        _cli("run", raw, "--workdir", base, "--jobs", jobs)
        rec.update(base=str(base), reduce_s=time.perf_counter() - t0,
                   reduced_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write_json(rec_path, rec)
    return rec


def run_variant(rec: dict, root: Path, name: str, fresh: bool, reevaluate: bool) -> dict:
    """Build (unless finished) and evaluate variant ``name`` of a program; its record."""
    from reduce.demo.evaluate import evaluate_workspace

    ws = root / rec["program"] / name
    done_path = ws / "bench_variant.json"
    done = {} if fresh else _read_json(done_path)
    truth_dir = Path(rec["raw"]) / "truth"
    stamp = hashlib.sha256((Path(rec["base"]) / "summary.json").read_bytes()).hexdigest()[:10]
    if not done.get("built_at") or done.get("base") != stamp:  # not finished, or on another base
        print(f"[{rec['program']}] building {name}", file=sys.stderr)
        t0 = time.perf_counter()
        build_variant(Path(rec["base"]), ws, name, truth_dir)
        done = {"variant": name, "program": rec["program"], "build_s": time.perf_counter() - t0,
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "clean_code": clean_code_hash(), "base": stamp}
        _write_json(done_path, done)
    if reevaluate or "rows" not in done:
        t0 = time.perf_counter()
        rows = evaluate_workspace(ws, truth_dir, check_noise=name == "truth")
        done.update(rows=[asdict(r) for r in rows], evaluate_s=time.perf_counter() - t0,
                    evaluated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _write_json(done_path, done)
    return done


PAIRED_HEADERS = ("scatter - off %", "scatter - truth %")


def _scatter_vs(row: dict, ref: dict | None) -> str:
    """The variant's point-source scatter minus that of ``ref`` (cleaning off; the true
    background removed), over the same sources, and its paired standard error
    (:func:`reduce.demo.evaluate.paired_scatter_difference`), in %; "—" for ``ref`` itself or
    without both source lists. Against truth it tells a harm the cleaning causes from one
    that removing the background perfectly causes too (e.g. where the sources' local
    background estimate prefers the background left on)."""
    from reduce.demo.evaluate import paired_scatter_difference

    if ref is None or row is ref or not row.get("ratios") or not ref.get("ratios"):
        return "—"
    d, se, _ = paired_scatter_difference(row["ratios"], row["true_flux_jy"], ref["ratios"], ref["true_flux_jy"])
    return "—" if not math.isfinite(d) else f"{100 * d:+.2f} ± {100 * se:.2f}"


def _fmt(v, spec: str) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else spec.format(v)


def collect(root: Path) -> dict:
    """Every program with results in ROOT: {program: {"record", "variants": {name: record}}}."""
    out = {}
    names = programs_available()
    names += sorted(p.parent.name for p in root.glob("*/bench_program.json") if p.parent.name not in names)
    for program in names:
        rec = _read_json(root / program / "bench_program.json")
        variants = {v: d for v in VARIANTS if (d := _read_json(root / program / v / "bench_variant.json")).get("rows")}
        if rec or variants:
            out[program] = {"record": rec, "variants": variants}
    return out


def report(results: dict, markdown: bool) -> str:
    """One table per program and mosaic (variants as rows), then when each variant ran."""
    def table(header, rows):
        if markdown:
            return markdown_table(header, rows)
        w = [max(len(x) for x in col) for col in zip(header, *rows)]
        return "\n".join("  ".join(x.ljust(w[0]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(r))
                         for r in [header, ["-" * n for n in w], *rows])

    out = []
    for program, res in results.items():
        rec, variants = res["record"], res["variants"]
        total = (rec.get("simulate_s", 0) + rec.get("reduce_s", 0)
                 + sum(d.get("build_s", 0) + d.get("evaluate_s", 0) for d in variants.values()))
        out.append(f"\n{'## ' if markdown else '== '}{program}: simulate {rec.get('simulate_s', math.nan):.0f} s, "
                   f"reduce {rec.get('reduce_s', math.nan):.0f} s, variants "
                   f"{sum(d.get('build_s', 0) + d.get('evaluate_s', 0) for d in variants.values()):.0f} s "
                   f"(total {total:.0f} s)\n")
        mosaics: dict[str, dict] = {}
        for v, d in variants.items():
            for r in d["rows"]:
                mosaics.setdefault(r["mosaic"], {})[v] = r
        for mosaic, rows in mosaics.items():
            any_row = next(iter(rows.values()))
            noise = rows.get("truth", {}).get("noise_flatness")
            out.append(f"{'### ' if markdown else ''}{program} {any_row['filter']} ({mosaic}): "
                       f"{any_row['n_sources']} point sources, {any_row['n_blocks']} blocks of 16x16 px, "
                       f"{any_row['n_sky']} sky px"
                       + (" (no source-free sky: smooth extended emission taken as sky)"
                          if any_row.get("sky_on_extended") else "")
                       + (f"; noise mosaic vs Gaussian noise flatness {_fmt(noise, '{:.3f}')}" if noise else "") + "\n")
            body = [[LABELS[v]] + [_fmt(r.get(k), f) for k, _, f in COLUMNS]
                    + [_scatter_vs(r, rows.get("off")), _scatter_vs(r, rows.get("truth"))] for v, r in rows.items()]
            out.append(table(["variant"] + [h for _, h, _ in COLUMNS] + list(PAIRED_HEADERS), body) + "\n")
        runs = [[v, d.get("built_at", "?"), d.get("clean_code", "?"), f"{d.get('build_s', math.nan):.0f}",
                 d.get("evaluated_at", "?"), f"{d.get('evaluate_s', math.nan):.0f}"] for v, d in variants.items()]
        out.append(table(["variant", "built (UTC)", "reduce/clean hash", "build s", "evaluated (UTC)", "evaluate s"],
                         runs) + "\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("bench-clean-quality"), help="scratch folder")
    ap.add_argument("--programs", default=None, help="comma-separated (default: demo and TEST_PROGRAMS)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    ap.add_argument("--fresh", action="store_true", help="rebuild the --variants even when finished")
    ap.add_argument("--reevaluate", action="store_true", help="re-score finished --variants (no rebuild)")
    ap.add_argument("--workspace", type=Path, help="a finished reduction of the demo to use as its base")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--crds-path", type=Path, default=None)
    args = ap.parse_args(argv)
    from reduce import crds_setup
    from reduce.demo.crds_context import DEMO_CONTEXT

    crds_setup.offline_environment()
    from reduce.cli import ensure_demo_context

    crds_path = ensure_demo_context(args.crds_path or crds_setup.default_cache_path())
    ENV.update(CRDS_PATH=str(crds_path), CRDS_CONTEXT=DEMO_CONTEXT)
    programs = args.programs.split(",") if args.programs else programs_available()
    variants = [v for v in args.variants.split(",") if v]
    if unknown := sorted(set(variants) - set(VARIANTS)):
        ap.error(f"unknown variants {unknown}; choose from {VARIANTS}")
    args.root.mkdir(parents=True, exist_ok=True)
    for program in programs:
        t0 = time.perf_counter()
        try:
            rec = prepare_program(args.root, program, args.seed, args.jobs,
                                  args.workspace if program == "demo" else None)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next program
            print(f"[{program}] FAILED: {exc}", file=sys.stderr)
            continue
        for name in variants:
            t1 = time.perf_counter()
            try:
                run_variant(rec, args.root, name, args.fresh, args.reevaluate)
            except Exception as exc:  # noqa: BLE001
                print(f"[{program}] {name} FAILED: {exc}", file=sys.stderr)
                continue
            print(f"[{program}] {name}: done in {time.perf_counter() - t1:.0f} s", file=sys.stderr)
        print(f"[{program}] {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        results = collect(args.root)
        (args.root / "quality.md").write_text("# Cleaning quality against the simulator's truth\n"
                                              + report(results, markdown=True) + "\n")
        _write_json(args.root / "quality.json", results)
    print(report(collect(args.root), markdown=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
