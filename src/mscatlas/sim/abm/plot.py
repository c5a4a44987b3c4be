"""Pictures of a spatial run: PNG snapshots, a time-series figure and an optional GIF.

Matplotlib draws off-screen (Agg). The GIF uses matplotlib's ``PillowWriter``: Pillow is a
dependency of matplotlib (and of mscatlas), so it is always there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from mscatlas.sim.abm.agents import CANCER, MSC
from mscatlas.sim.abm.model import AbmResult, Snapshot

__all__ = ["draw_tissue", "plot_series", "plot_snapshot", "save_animation"]


def draw_tissue(ax: Axes, snap: Snapshot, extent: float, vmax: float) -> None:
    ax.clear()
    ax.imshow(
        snap.cxcl12,
        origin="lower",
        extent=(0.0, extent, 0.0, extent),
        cmap="Greys",
        vmin=0.0,
        vmax=vmax,
        interpolation="nearest",
    )
    if snap.tumour.any():
        ax.contour(
            snap.tumour.astype(float),
            levels=[0.5],
            extent=(0.0, extent, 0.0, extent),
            colors="tab:orange",
            linewidths=0.8,
        )
    cancer = snap.kind == CANCER
    msc = snap.kind == MSC
    ax.scatter(snap.x[cancer], snap.y[cancer], s=1.0, c="tab:red", linewidths=0, label="cancer cells")
    ax.scatter(snap.x[msc], snap.y[msc], s=6.0, c="tab:blue", linewidths=0, label="MSCs")
    ax.set_xlim(0, extent)
    ax.set_ylim(0, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("µm")
    ax.set_ylabel("µm")
    ax.set_title(
        f"t = {snap.time_h:.0f} h: {int(cancer.sum())} cancer cells, {int(msc.sum())} MSCs "
        "(grey: CXCL12; orange: tumour edge)",
        fontsize=8,
    )


def plot_snapshot(snap: Snapshot, extent: float, path: str | Path, *, vmax: float | None = None) -> Path:
    """One PNG of cells over the CXCL12 field."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    draw_tissue(ax, snap, extent, vmax if vmax is not None else max(float(snap.cxcl12.max()), 1e-12))
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_series(result: AbmResult, path: str | Path) -> Path:
    """Cell counts and homing fraction against time, one PNG."""
    path = Path(path)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), dpi=110, sharex=True)
    top.plot(result.time_h, result.cancer, color="tab:red", label="cancer cells")
    top.set_ylabel("cancer cells")
    twin = top.twinx()
    twin.plot(result.time_h, result.msc, color="tab:blue", label="MSCs")
    twin.set_ylabel("MSCs")
    bottom.plot(result.time_h, 100.0 * np.asarray(result.homing_fraction), color="tab:blue")
    bottom.set_ylabel("MSCs in tumour, %")
    bottom.set_xlabel("time, h")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_animation(snaps: Sequence[Snapshot], extent: float, path: str | Path, *, fps: int = 4) -> bool:
    """A GIF of the snapshots; ``False`` (nothing written) when there are none."""
    if not snaps:
        return False
    from matplotlib.animation import FuncAnimation, PillowWriter

    vmax = max(max(float(s.cxcl12.max()) for s in snaps), 1e-12)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    anim = FuncAnimation(fig, lambda i: draw_tissue(ax, snaps[i], extent, vmax), frames=len(snaps))
    anim.save(str(path), writer=PillowWriter(fps=fps))
    plt.close(fig)
    return True
