"""Forest and funnel plots of a fitted model, as SVG text (standalone files by default, or
elements for inlining in the report: see ``mscatlas._svg``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mscatlas._svg import figure_to_svg
from mscatlas.stats.bias import TrimFill
from mscatlas.stats.meta_model import MetaResult

__all__ = ["forest_plot", "funnel_plot"]

_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "mscatlas-meta", "font.size": 9}


def forest_plot(
    res: MetaResult,
    labels: Sequence[str] | None = None,
    xlabel: str = "Effect size",
    *,
    standalone: bool = True,
) -> str:
    """One row per study (effect with its 95% CI, square sized by weight) and the pooled
    estimate as a diamond, with the prediction interval as a line through it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if res.p != 1:
        raise ValueError("forest plots are drawn for models without moderators")
    k = res.k
    names = list(labels) if labels is not None else [f"Study {i + 1}" for i in range(k)]
    half = res.crit * np.sqrt(res.vi)
    weights = 1 / (res.vi + res.tau2)
    sizes = 20 + 180 * weights / weights.max()
    rows = np.arange(k, 0, -1) + 1.0
    pred = res.predict()
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.28 * (k + 2)))
        ax.hlines(rows, res.yi - half, res.yi + half, color="0.2", linewidth=1)
        ax.scatter(res.yi, rows, s=sizes, marker="s", color="0.2", zorder=3)
        ax.hlines(0.0, pred.pi_lb, pred.pi_ub, color="tab:blue", linewidth=1, linestyle="--")
        diamond_x = [pred.ci_lb, pred.pred, pred.ci_ub, pred.pred]
        ax.fill(diamond_x, [0.0, 0.3, 0.0, -0.3], color="tab:blue", zorder=3)
        ax.axvline(0.0, color="0.6", linewidth=0.8)
        ax.set_yticks([*rows, 0.0], [*names, f"{res.method} model"])
        ax.set_xlabel(xlabel)
        ax.set_ylim(-1, k + 2)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="y", length=0)
        try:
            return figure_to_svg(fig, standalone=standalone)
        finally:
            plt.close(fig)


def funnel_plot(
    res: MetaResult,
    filled: TrimFill | None = None,
    xlabel: str = "Effect size",
    *,
    standalone: bool = True,
) -> str:
    """Effects against their standard errors (inverted axis) with the pseudo 95% region around
    the pooled estimate; studies imputed by trim-and-fill are drawn hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if res.p != 1:
        raise ValueError("funnel plots are drawn for models without moderators")
    se = np.sqrt(res.vi)
    centre = res.estimate if filled is None or filled.k0 == 0 else filled.estimate
    se_max = float(max(se.max(), np.sqrt(filled.filled_vi).max() if filled and filled.k0 else 0.0)) * 1.05
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        edge = np.array([0.0, se_max])
        ax.fill_betweenx(edge, centre - 1.96 * edge, centre + 1.96 * edge, color="0.93")
        ax.plot(centre - 1.96 * edge, edge, color="0.5", linewidth=0.8, linestyle="--")
        ax.plot(centre + 1.96 * edge, edge, color="0.5", linewidth=0.8, linestyle="--")
        ax.axvline(centre, color="0.3", linewidth=0.8)
        ax.scatter(res.yi, se, color="0.15", s=22, zorder=3, label="observed")
        if filled is not None and filled.k0:
            ax.scatter(
                filled.filled_yi,
                np.sqrt(filled.filled_vi),
                facecolors="white",
                edgecolors="0.15",
                s=22,
                zorder=3,
                label=f"filled ({filled.k0})",
            )
            ax.legend(frameon=False)
        ax.set_ylim(se_max, 0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Standard error")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        try:
            return figure_to_svg(fig, standalone=standalone)
        finally:
            plt.close(fig)
