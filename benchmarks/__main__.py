"""``python -m benchmarks``: the reduction's speed and memory, per stage and per exposure.

For the demo program at subarray and at full-frame size, each with --jobs 1 and --jobs 2:
wall time, share and peak RSS per stage and per task, the cleaning's phases
(:mod:`benchmarks.clean_phases`) (workers are reused across stages, as in
a real run, so a task's RSS is its worker's peak so far), the speed-up, the time inside the
bare jwst calls and our overhead outside them (``ROOT/bench.md``: the README table), whether
--jobs 1 and --jobs 2 give identical products, the cleaning benchmarks of ``benchmarks.bench_clean`` and the cleaning quality
of ``benchmarks.bench_clean_quality`` on every simulated program (``--skip-clean``: neither).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks import markdown_table


def _table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])]
                     + [fmt.format(*map(str, r)) for r in rows])


def bench_reduction(root: Path, size: str, jobs: int, crds_path: Path) -> dict:
    """Simulate (once) and reduce the demo program of ``size`` with ``jobs`` workers."""
    from reduce import config
    from reduce.demo.crds_context import DEMO_CONTEXT
    from reduce.orchestrate import reduce_folder
    from reduce.demo.simulate import simulate_program

    raw = root / size / "raw"
    t0 = time.perf_counter()
    simulate_program(raw, seed=1, size=size)
    t_sim = time.perf_counter() - t0
    ws = root / size / f"jobs{jobs}"
    shutil.rmtree(ws, ignore_errors=True)
    cfg = config.load(None, {"jobs": jobs})
    summary = reduce_folder(raw, ws, cfg, crds_path=crds_path, crds_context=DEMO_CONTEXT)
    return {"size": size, "jobs": jobs, "simulate_s": t_sim, "summary": summary, "workspace": ws}


def _jwst_seconds(outcomes: list[dict]) -> float:
    """Seconds inside the bare jwst calls (pipelines, and the second pass's tweakreg/resample)."""
    return sum(o["pipeline_seconds"] for o in outcomes)


def _overhead_seconds(s, jobs: int) -> float:
    """Wall seconds of ours outside jwst's calls, the cleaning and the packaging: the checks
    before stage 1 plus, per pipeline task, its time outside the jwst call (process and import
    start-up, associations, moving files) divided by the workers that ran them in parallel."""
    tasks = [o for o in s.outcomes if o["stage"] in ("stage1", "stage2", "stage3")]
    return s.stage_seconds.get("crds", 0.0) + sum(o["seconds"] - o["pipeline_seconds"] for o in tasks) / jobs


def report(result: dict) -> str:
    s = result["summary"]
    lines = [f"\n== {result['size']} program, --jobs {result['jobs']}: {len(s.exposures)} exposures, "
             f"total {s.total_seconds:.1f} s (simulation {result['simulate_s']:.1f} s, not included)"]
    rows = []
    for stage, wall in s.stage_seconds.items():
        outs = [o for o in s.outcomes if o["stage"] == stage]
        pipe = _jwst_seconds(outs)
        task = sum(o["seconds"] for o in outs)
        rss = max((o["peak_rss_mb"] for o in outs), default=0.0)
        rows.append([stage, len(outs), f"{wall:.1f}", f"{100 * wall / s.total_seconds:.0f}%", f"{task:.1f}",
                     f"{pipe:.1f}", f"{rss:.0f}"])
    lines.append(_table(rows, ["stage", "tasks", "wall s", "share", "sum task s", "sum jwst s",
                               "peak RSS MB/worker"]))
    rows = [[o["stage"], o["name"], f"{o['seconds']:.1f}", f"{o['pipeline_seconds']:.1f}",
             f"{o['peak_rss_mb']:.0f}"] for o in s.outcomes]
    lines.append(_table(rows, ["stage", "task", "task s", "jwst s", "peak RSS MB (worker so far)"]))
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    """The README table: per program and --jobs, total, speed-up, stage shares, cleaning share,
    peak RSS per worker, jwst's time and our overhead."""
    header = ["program", "jobs", "total s", "speed-up", "stage1", "stage2", "clean", "stage3", "package",
              "peak RSS MB", "jwst s (sum)", "overhead"]
    rows = []
    for r in results:
        s = r["summary"]
        base = next((x["summary"].total_seconds for x in results if x["size"] == r["size"] and x["jobs"] == 1), None)
        share = {k: f"{100 * s.stage_seconds.get(k, 0.0) / s.total_seconds:.0f}%"
                 for k in ("stage1", "stage2", "clean", "stage3", "package")}
        rss = max((o["peak_rss_mb"] for o in s.outcomes), default=0.0)
        over = _overhead_seconds(s, r["jobs"])
        rows.append([f"{r['size']} ({len(s.exposures)} exp)", r["jobs"], f"{s.total_seconds:.1f}",
                     f"{base / s.total_seconds:.2f}x" if base else "", *share.values(), f"{rss:.0f}",
                     f"{_jwst_seconds(s.outcomes):.1f}", f"{over:.1f} s ({100 * over / s.total_seconds:.1f}%)"])
    return markdown_table(header, rows)


def contention_table(results: list[dict]) -> str:
    """How much slower each task runs beside another: per program and stage, the sum of the
    tasks' own seconds at --jobs 2 over that at --jobs 1 (the same tasks; 1.00 = no slow-down),
    and the speed-up that perfect scheduling could reach with it: ``jobs * t1 / t2`` over the
    parallel stages. A slow-down is the machine's (the same jwst calls, each in its own process),
    not the scheduling's."""
    header = ["program", "stage", "task s, jobs 1", "task s, jobs 2", "slow-down"]
    rows, ceilings = [], []
    for size in dict.fromkeys(r["size"] for r in results):
        by_jobs = {r["jobs"]: r["summary"] for r in results if r["size"] == size}
        if 1 not in by_jobs or 2 not in by_jobs:
            continue
        tot = {1: 0.0, 2: 0.0}
        for stage in ("stage1", "stage2", "clean", "stage3"):
            t = {j: sum(o["seconds"] for o in by_jobs[j].outcomes if o["stage"] == stage) for j in (1, 2)}
            if t[1] > 0:
                rows.append([size, stage, f"{t[1]:.1f}", f"{t[2]:.1f}", f"{t[2] / t[1]:.2f}"])
                tot[1] += t[1]
                tot[2] += t[2]
        if tot[1] > 0:
            ceilings.append(f"{size}: tasks {tot[2] / tot[1]:.2f}x slower side by side; speed-up ceiling of the "
                            f"parallel stages on 2 cores {2 * tot[1] / tot[2]:.2f}x")
    return "\n".join([markdown_table(header, rows), "", *ceilings])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path(os.environ.get("MIRIM_BENCH_DIR", "bench-work")))
    p.add_argument("--crds-path", type=Path, default=None)
    p.add_argument("--skip-full", action="store_true", help="only the subarray demo")
    p.add_argument("--skip-clean", action="store_true", help="skip the cleaning algorithm benchmarks")
    args = p.parse_args(argv)

    from reduce import crds_setup

    crds_setup.offline_environment()  # before anything imports crds
    from reduce.cli import ensure_demo_context

    crds_path = ensure_demo_context(args.crds_path or crds_setup.default_cache_path())
    sizes = ["small"] + ([] if args.skip_full else ["full"])
    results = [bench_reduction(args.root, size, jobs, crds_path) for size in sizes for jobs in (1, 2)]
    for r in results:
        print(report(r))
    from benchmarks.clean_phases import phases_table

    table = summary_table(results) + "\n\n" + contention_table(results) + "\n\n" + phases_table(results)
    (args.root / "bench.md").write_text(table + "\n")
    print("\n" + table)
    for size in sizes:
        ws = {r["jobs"]: args.root / size / f"jobs{r['jobs']}" for r in results if r["size"] == size}
        same = _verify_exact(ws[1], ws[2])
        print(f"{size}: --jobs 1 and --jobs 2 products identical (verify --exact): {same}")
    if not args.skip_clean:
        from benchmarks import bench_clean, bench_clean_quality

        bench_clean.main([])
        # cleaning quality against truth on every simulated program (the demo's base: the
        # --jobs 2 reduction above): off / original algorithm / ours / truth
        small_ws = args.root / "small" / "jobs2"
        bench_clean_quality.main(["--workspace", str(small_ws), "--root", str(args.root / "clean-quality"),
                                  "--crds-path", str(crds_path)])
    return 0


def _verify_exact(a: Path, b: Path) -> bool:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "reduce.cli", "verify", str(a / "products"), str(b / "products"),
                           "--exact"], capture_output=True, text=True)
    return proc.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
