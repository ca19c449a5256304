"""The fault suite's small program: the demo's 5 F770W dithers of observation 1 (one cleaning
group of 5 = MEDIAN_THRESH: super background and the second pass with its masks; one mosaic),
byte-identical to the demo's own files (same specs, scene and noise generators)."""

from __future__ import annotations

from pathlib import Path


def write_program(outdir: Path, n: int = 5) -> list[Path]:
    """Write the first ``n`` exposures of the demo (observation 1, F770W) into ``outdir``."""
    from reduce.demo.simulate import demo_program, exposure_rng, make_scene, write_exposure

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    scene = make_scene(1)
    specs = demo_program(1, "small")[:n]
    assert all(s.filter == "F770W" and s.observation == 1 for s in specs)
    paths = []
    for i, spec in enumerate(specs):
        p = outdir / spec.filename
        if not p.is_file():
            write_exposure(p, spec, scene, rng=exposure_rng(1, i))
        paths.append(p)
    return paths


if __name__ == "__main__":
    import sys

    for p in write_program(Path(sys.argv[1])):
        print(p)
