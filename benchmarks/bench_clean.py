"""Benchmarks of the cleaning algorithms on full-frame MIRI images (1032 x 1024, float32).

Run: ``python benchmarks/bench_clean.py [--n 50]``. Prints a table; no assertions.

* median filter of one frame with 2% NaN pixels (goal: well under 0.1 s);
* leave-one-out templates of a group of N exposures next to ONE ``np.nanmedian`` of the
  same stack (goal: < 2x), and the peak memory of the leave-one-out computation relative
  to the stack (goal: < 2x the stack, stack included).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from reduce.clean import median_filter as mf
from reduce.clean import super_background as sb

NY, NX = 1024, 1032


def _best(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_median_filter(rng) -> list[tuple[str, str]]:
    img = rng.normal(100, 1, (NY, NX)).astype(np.float32)
    img[rng.random(img.shape) < 0.02] = np.nan
    err = np.full(img.shape, 1.0, np.float32)
    var = {k: np.full(img.shape, 1 / 3, np.float32) for k in ("var_poisson", "var_rnoise", "var_flat")}
    rows = []
    t, res = _best(lambda: mf.median_fill(img))
    rows.append(("median filter, SCI only, 2% NaN", f"{t * 1e3:.1f} ms ({res.n_filled} px filled)"))
    t, res = _best(lambda: mf.median_fill(img, err, variances=var))
    rows.append(("median filter, SCI+ERR+3 variances", f"{t * 1e3:.1f} ms"))
    t, res = _best(lambda: mf.median_fill(img, err, variances=var, outlier_sigma=5.0), repeat=1)
    rows.append(("  + outlier (hot pixel) search", f"{t * 1e3:.1f} ms"))
    return rows


def bench_leave_one_out(rng, n: int) -> list[tuple[str, str]]:
    stack = rng.normal(1, 0.01, (n, NY, NX)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.05] = np.nan
    stack_mb = stack.nbytes / 2 ** 20

    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.nanmedian(stack, axis=0)
    t_nanmedian = time.perf_counter() - t0

    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    loo = sb.leave_one_out(stack)
    t_sort = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(n):
        tmpl, _ = loo.template(stack[i])
        del tmpl
    t_templates = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mb = peak / 2 ** 20
    total = t_sort + t_templates
    return [
        (f"stack of {n} full frames", f"{stack_mb:.0f} MiB"),
        ("one np.nanmedian(stack, axis=0)", f"{t_nanmedian:.2f} s"),
        ("leave-one-out: sort + order statistics", f"{t_sort:.2f} s"),
        (f"leave-one-out: {n} templates from them", f"{t_templates:.2f} s"),
        ("leave-one-out total / one nanmedian", f"{total:.2f} s = {total / t_nanmedian:.2f}x"),
        ("peak extra memory (tracemalloc)", f"{peak_mb:.0f} MiB = {peak_mb / stack_mb:.2f}x stack"),
        ("peak incl. the stack", f"{(peak_mb + stack_mb) / stack_mb:.2f}x stack"),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="exposures in the group")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = bench_median_filter(rng) + bench_leave_one_out(rng, args.n)
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark (1032 x 1024 float32)':<{width}}  result")
    print("-" * (width + 30))
    for name, val in rows:
        print(f"{name:<{width}}  {val}")


if __name__ == "__main__":
    main()
