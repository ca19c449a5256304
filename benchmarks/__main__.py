"""``python -m benchmarks``: the reduction's speed and memory, per stage and per exposure.

For the demo program (subarray) with --jobs 1 and --jobs 2, and for the full-frame program
with --jobs 2: wall time and peak RSS per stage and per task (one worker process per task,
so RSS is that task's), the time inside the bare jwst pipeline calls next to the total (our
overhead), the cleaning benchmarks of ``benchmarks.bench_clean`` and the cleaning quality
of ``benchmarks.bench_clean_quality`` on every simulated program (``--skip-clean``: neither).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path


def _table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])]
                     + [fmt.format(*map(str, r)) for r in rows])


def bench_reduction(root: Path, size: str, jobs: int, crds_path: Path) -> dict:
    """Simulate (once) and reduce the demo program of ``size`` with ``jobs`` workers."""
    from reduce import config
    from reduce.crds_context import DEMO_CONTEXT
    from reduce.orchestrate import reduce_folder
    from reduce.simulate import simulate_program

    raw = root / size / "raw"
    t0 = time.perf_counter()
    simulate_program(raw, seed=1, size=size)
    t_sim = time.perf_counter() - t0
    ws = root / size / f"jobs{jobs}"
    shutil.rmtree(ws, ignore_errors=True)
    cfg = config.load(None, {"jobs": jobs})
    summary = reduce_folder(raw, ws, cfg, crds_path=crds_path, crds_context=DEMO_CONTEXT)
    return {"size": size, "jobs": jobs, "simulate_s": t_sim, "summary": summary}


def report(result: dict) -> str:
    s = result["summary"]
    lines = [f"\n== {result['size']} program, --jobs {result['jobs']}: {len(s.exposures)} exposures, "
             f"total {s.total_seconds:.1f} s (simulation {result['simulate_s']:.1f} s, not included)"]
    rows = []
    for stage, wall in s.stage_seconds.items():
        outs = [o for o in s.outcomes if o["stage"] == stage]
        pipe = sum(o["pipeline_seconds"] for o in outs)
        task = sum(o["seconds"] for o in outs)
        rss = max((o["peak_rss_mb"] for o in outs), default=0.0)
        rows.append([stage, len(outs), f"{wall:.1f}", f"{task:.1f}", f"{pipe:.1f}",
                     f"{(task - pipe):.1f}", f"{rss:.0f}"])
    lines.append(_table(rows, ["stage", "tasks", "wall s", "sum task s", "sum jwst s", "overhead s",
                               "peak RSS MB"]))
    rows = [[o["stage"], o["name"], f"{o['seconds']:.1f}", f"{o['pipeline_seconds']:.1f}",
             f"{o['peak_rss_mb']:.0f}"] for o in s.outcomes]
    lines.append(_table(rows, ["stage", "task", "task s", "jwst s", "peak RSS MB"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path(os.environ.get("MIRIM_BENCH_DIR", "bench-work")))
    p.add_argument("--crds-path", type=Path, default=None)
    p.add_argument("--skip-full", action="store_true", help="only the subarray demo")
    p.add_argument("--skip-clean", action="store_true", help="skip the cleaning algorithm benchmarks")
    args = p.parse_args(argv)

    os.environ["MIRIM_REDUCE_FRESH_WORKERS"] = "1"
    from reduce import crds_setup

    crds_setup.offline_environment()  # before anything imports crds
    from reduce.cli import ensure_demo_context

    crds_path = ensure_demo_context(args.crds_path or crds_setup.default_cache_path())
    results = [bench_reduction(args.root, "small", jobs, crds_path) for jobs in (1, 2)]
    if not args.skip_full:
        results.append(bench_reduction(args.root, "full", 2, crds_path))
    for r in results:
        print(report(r))
    small = {r["jobs"]: r["summary"].total_seconds for r in results if r["size"] == "small"}
    print(f"\n--jobs 1 vs --jobs 2 (demo): {small[1]:.1f} s vs {small[2]:.1f} s "
          f"(speed-up {small[1] / small[2]:.2f}x)")
    if not args.skip_clean:
        from benchmarks import bench_clean, bench_clean_quality

        bench_clean.main([])
        # cleaning quality against truth on every simulated program (the demo's base: the
        # --jobs 2 reduction above): off / original algorithm / ours / truth
        small_ws = args.root / "small" / "jobs2"
        bench_clean_quality.main(["--workspace", str(small_ws), "--root", str(args.root / "clean-quality"),
                                  "--crds-path", str(crds_path)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
