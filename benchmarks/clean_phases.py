"""Where the cleaning's time goes: its phases per pass, read from a finished workspace.

Each cleaning group logs one line of phase seconds (``clean group NAME: phases masks 1.20 s,
...``: :class:`reduce.clean.group.PhaseClock`) into ``logs/pass1/clean/`` (first pass) and
``logs/clean/`` (second pass); the first-pass mosaic masks are the run's ``mosaic mask``
outcomes (their seconds, and those inside jwst's tweakreg / skymatch / resample).

From these, a lower bound: the cleaning's share of the run if it did nothing but each
exposure's masks and subtraction (both passes; no model choice, no self-calibration, no
mosaic masks), its wall time taken as those task seconds over the cleaning's own parallel
efficiency in that run. It is an estimate, labelled as one.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks import markdown_table

PHASE_LINE = re.compile(r"clean group (\S+): phases (.*)$")
PHASE_ITEM = re.compile(r"([a-z][a-z -]*?) ([0-9.]+) s")
FLOOR_PHASES = ("masks", "subtraction")


def phase_seconds(workspace: Path) -> dict[str, dict[str, float]]:
    """``{"pass 1": {phase: seconds summed over groups}, "pass 2": {...}}`` from the group logs
    (a pass-2 group copied from pass 1 logs no phases)."""
    out: dict[str, dict[str, float]] = {}
    for label, folder in (("pass 1", "logs/pass1/clean"), ("pass 2", "logs/clean")):
        sums: dict[str, float] = {}
        for log in sorted((Path(workspace) / folder).glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                m = PHASE_LINE.search(line)
                if m:
                    for phase, secs in PHASE_ITEM.findall(m.group(2)):
                        sums[phase] = sums.get(phase, 0.0) + float(secs)
        out[label] = sums
    return out


def phases_table(results: list[dict]) -> str:
    """Markdown: per program and --jobs, each phase's task seconds (both passes), the mosaic
    masks (ours / inside jwst), and the lower-bound share described in the module docstring."""
    phases = ["masks", "stack and frame test", "model choice", "self-calibration", "subtraction"]
    header = ["program", "jobs", *phases, "mosaic masks (jwst)", "clean task s", "clean share",
              "masks + subtraction only (estimate)"]
    rows = []
    for r in results:
        s = r["summary"]
        per = phase_seconds(r["workspace"])
        both = {p: sum(per[k].get(p, 0.0) for k in per) for p in phases}
        outs = [o for o in s.outcomes if o["stage"] == "clean"]
        mm = [o for o in outs if o["name"].startswith("mosaic mask")]
        task = sum(o["seconds"] for o in outs)
        wall = s.stage_seconds.get("clean", 0.0)
        floor_task = sum(both[p] for p in FLOOR_PHASES)
        floor_wall = floor_task * wall / task if task > 0 else 0.0
        floor_total = s.total_seconds - wall + floor_wall
        rows.append([r["size"], r["jobs"], *(f"{both[p]:.1f}" for p in phases),
                     f"{sum(o['seconds'] for o in mm):.1f} ({sum(o['pipeline_seconds'] for o in mm):.1f})",
                     f"{task:.1f}", f"{100 * wall / s.total_seconds:.0f}%",
                     f"{floor_task:.1f} s: {100 * floor_wall / floor_total:.0f}%" if floor_total > 0 else ""])
    return markdown_table(header, rows)
