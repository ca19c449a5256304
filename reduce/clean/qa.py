"""Quick-look PNGs of the cleaning (``clean/qa/``): a group's template and one exposure
before and after, with its mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fsutil import atomic_path
from ..workspace import Workspace

def _imshow(ax, img, title):
    finite = img[np.isfinite(img)]
    if finite.size:
        lo, hi = np.percentile(finite, [1, 99])
    else:
        lo, hi = 0, 1
    ax.imshow(img, origin="lower", vmin=lo, vmax=hi, cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def template_png(ws: Workspace, name: str, template: np.ndarray) -> None:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    _imshow(ax, template, f"{name}: median of all members (normalised)")
    _save(fig, ws.dir("clean") / "qa" / f"{name}_template.png")
    plt.close(fig)


def exposure_png(ws: Workspace, stem: str, before, after, smask, bad) -> None:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    _imshow(axes[0], before, f"{stem}: before")
    _imshow(axes[1], after, "after")
    code = smask.astype(np.uint8) + 2 * bad.astype(np.uint8)
    axes[2].imshow(code, origin="lower", cmap="viridis", vmin=0, vmax=3, interpolation="nearest")
    axes[2].set_title("mask (1 source, 2 bad, 3 both)", fontsize=8)
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    _save(fig, ws.dir("clean") / "qa" / f"{stem}_clean.png")
    plt.close(fig)


def _save(fig, final: Path) -> None:
    with atomic_path(final) as tmp:
        fig.savefig(tmp, format="png", dpi=90)


