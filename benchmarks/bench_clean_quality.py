"""Quality of the cleaning on the demo program, against the simulator's truth.

Run: ``python -m benchmarks.bench_clean_quality [--workspace WS] [--root DIR]``.
From a finished demo workspace (raw data + truth in WS/raw; made with ``mirim-reduce demo``
when --workspace is not given) the variants share stage 1 and stage 2 (copies of the
workspace) and differ only in the cleaning, then stage 3 is rerun and each is evaluated
with :mod:`reduce.evaluate`:

* ``off``: MEDIAN_FILTER and SUPER_BKG_SUB false (stage 3 reads the stage-2 cal files);
* ``original``: :mod:`benchmarks.original_clean` (the notebook's algorithm, defects kept);
* ``ours_1pass``: the product's cleaning with ``clean_second_pass = false`` (one pass);
* ``ours``: the product's cleaning with the default configuration (two passes: the second
  adds the first mosaics' source masks);
* ``truth``: the true background (detector pattern, sky with its gradient, new hot
  pixels) subtracted from every cal file: the best any background removal can do, and the
  check that the noise floor of the evaluation is right (rms_ratio ~ 1.00).

Prints one table per filter (mosaic): rms_ratio, mean_sigma, flux_ratio per variant.
No assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = ("off", "original", "ours_1pass", "ours", "truth")


def _cli(*args) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "reduce.cli", *map(str, args)], capture_output=True,
                          text=True, env=env)
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


def truth_clean(ws: Path, truth_dir: Path) -> None:
    """clean/<stem>_cal.fits = stage-2 cal minus its true background (MJy/sr):
    (RATE - ILLUM) * PHOTMJSR / flat (pattern and new hot pixels) + sky(xi, eta)."""
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import ImageModel

    from reduce.evaluate import rate_to_cal
    from reduce.simulate import geometry

    truth = json.loads((truth_dir / "truth.json").read_text())
    ra0, dec0 = truth["target"]["ra"], truth["target"]["dec"]
    gx, gy = truth["sky"]["gradient_per_arcsec"]
    for e in truth["exposures"]:
        cal = ws / "stage2" / f"{e['stem']}_cal.fits"
        if not cal.exists():
            continue
        filt = e["filter"]
        with fits.open(truth_dir / e["rate_truth_file"]) as h:
            extra = np.array(h["RATE"].data, np.float64) - np.array(h["ILLUM"].data, np.float64)
        m = ImageModel(str(cal))
        yy, xx = np.mgrid[0:m.data.shape[0], 0:m.data.shape[1]].astype(np.float64)
        ra, dec = m.meta.wcs(xx, yy)
        xi, eta = geometry.sky_to_plane(ra, dec, ra0, dec0)
        sky = truth["sky"]["nominal_mjysr"][filt] * e["sky_factor"] * (1.0 + gx * xi + gy * eta)
        back = np.nan_to_num(rate_to_cal(extra, filt, e["subarray"]), nan=0.0) + sky  # 0 where flat is 0
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


def build_variant(base: Path, root: Path, name: str) -> Path:
    """A copy of ``base`` reduced with variant ``name`` (stage 1 and 2 shared)."""
    from benchmarks import original_clean

    ws = root / name
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(base, ws, symlinks=True)
    for p in ws.glob(".lock*"):
        p.unlink()
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
            truth_clean(ws, ws / "raw" / "truth")
        _restage3(ws)
    else:
        raise ValueError(name)
    return ws


def table(results: dict[str, list]) -> str:
    """One table per mosaic: the variants as rows."""
    by_mosaic: dict[str, dict[str, object]] = {}
    for variant, rows in results.items():
        for r in rows:
            by_mosaic.setdefault(r.mosaic, {})[variant] = r
    out = []
    for mosaic, rows in by_mosaic.items():
        filt = next(iter(rows.values())).filter
        out.append(f"\n{filt} ({mosaic})")
        out.append(f"  {'variant':10s} {'rms_ratio':>9s} {'mean_sigma':>10s} {'flux_ratio':>10s} {'n_sky':>6s} {'n_src':>5s}")
        for variant, r in rows.items():
            out.append(f"  {variant:10s} {r.rms_ratio:9.3f} {r.mean_sigma:10.3f} {r.flux_ratio:10.4f} "
                       f"{r.n_sky:6d} {r.n_sources:5d}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from reduce.evaluate import evaluate_workspace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, help="finished demo workspace (default: make one)")
    ap.add_argument("--root", type=Path, default=Path("bench-clean-quality"), help="scratch folder")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    base = args.workspace
    if base is None:
        base = args.root / "demo"
        if not (base / "summary.json").exists():
            _cli("demo", "--workdir", base, "--jobs", "2")
    results = {}
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        ws = build_variant(base, args.root, name)
        results[name] = evaluate_workspace(ws)
        print(f"{name}: reduced and evaluated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
