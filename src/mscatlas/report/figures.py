"""Report figures as inline SVG strings (matplotlib, deterministic, no external references)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mscatlas._svg import figure_to_svg
from mscatlas.kb.enums import MscSource
from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.terms import label
from mscatlas.stats.conflict import Stratum

__all__ = [
    "bar_chart_svg",
    "calibration_svg",
    "evidence_map_svg",
    "forest_svg",
    "harvest_plot_svg",
]

_RC = {
    "svg.fonttype": "none",  # keep text as text: searchable, small
    "svg.hashsalt": "mscatlas",  # stable element ids between runs
    "font.size": 9,
    "font.family": "sans-serif",
}
DIRECTION_COLOURS = {"inhibits": "#2166ac", "promotes": "#b2182b", "no_effect": "#999999", "mixed": "#7b3294"}


def bar_chart_svg(counts: Counter[str], title: str) -> str:
    labels = [k for k, _ in counts.most_common()]
    values = [counts[k] for k in labels]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(5, 0.28 * len(labels) + 0.8))
        ax.barh(labels[::-1], values[::-1], color="#4c72b0")
        for y, v in enumerate(values[::-1]):
            ax.text(v + 0.1, y, str(v), va="center")
        ax.set_title(title)
        ax.set_xlabel("evidence items")
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig)


MAP_SOURCES = 9  # columns before the rest fold into "other sources"
MAP_CANCERS = 40  # rows before the rest fold into "other cancer types"
MAP_LABEL_PT = 10  # cell counts and axis labels; the figure stays ~10 in wide so they stay legible


def _fold(names: list[str], keep: int, other: str) -> dict[str, str]:
    """Each name to itself if among the first ``keep``, else to the ``other`` bucket."""
    folded = {n: n for n in names[:keep]}
    rest = names[keep:]
    folded.update({n: f"{other} ({len(rest)})" for n in rest})
    return folded


def evidence_map_svg(items: Sequence[EvidenceItem]) -> str:
    """Cancer type (rows) x MSC source (columns); colour = (inhibits - promotes) / items; cells
    show i/p/n counts. Cancer types run down the page, so the field's many types make the map
    taller, not wider: a wide figure is scaled down in the page and its labels become unreadable."""
    by_source: Counter[str] = Counter()
    by_cancer: Counter[str] = Counter()
    for item in items:
        for source in dict.fromkeys(s.value for s in item.msc_source):
            by_source[source] += 1
            by_cancer[item.cancer_type] += 1
    source_of = _fold(sorted(by_source, key=lambda s: (-by_source[s], s)), MAP_SOURCES, "other sources")
    cancer_of = _fold(sorted(by_cancer, key=lambda c: (-by_cancer[c], c)), MAP_CANCERS, "other cancer types")
    cells: dict[tuple[str, str], Counter[str]] = {}
    for item in items:
        for source in dict.fromkeys(source_of[s.value] for s in item.msc_source):
            cells.setdefault((cancer_of[item.cancer_type], source), Counter())[item.direction.value] += 1
    sources = list(dict.fromkeys(source_of.values()))
    cancers = list(dict.fromkeys(cancer_of.values()))
    grid = np.full((len(cancers), len(sources)), np.nan)
    for (c, s), counter in cells.items():
        total = sum(counter.values())
        grid[cancers.index(c), sources.index(s)] = (counter["inhibits"] - counter["promotes"]) / total
    with plt.rc_context({**_RC, "font.size": MAP_LABEL_PT}):
        fig, ax = plt.subplots(figsize=(0.62 * len(sources) + 3.6, 0.3 * len(cancers) + 2.6))
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        for (c, s), counter in cells.items():
            counts = f"{counter['inhibits']}/{counter['promotes']}/{counter['no_effect'] + counter['mixed']}"
            row, col = cancers.index(c), sources.index(s)
            colour = "white" if abs(grid[row, col]) > 0.55 else "black"  # legible on dark cells
            ax.text(col, row, counts, ha="center", va="center", fontsize=MAP_LABEL_PT - 1, color=colour)
        ax.set_xticks(range(len(sources)), [label(s) for s in sources], rotation=45, ha="left")
        ax.set_yticks(range(len(cancers)), cancers)
        ax.xaxis.tick_top()
        ax.set_title("Evidence map: items inhibiting / promoting / no effect or mixed", pad=12)
        bar = fig.colorbar(image, ax=ax, shrink=0.5, location="bottom", pad=0.02)
        bar.set_label("(inhibits − promotes) / items")
        return figure_to_svg(fig)


def harvest_plot_svg(strata: Sequence[Stratum]) -> str:
    """Stacked bars of item directions per stratum, with the studies' share inhibiting and its CI."""
    rows = list(strata)[::-1]
    labels = [
        f"{label(s.msc_source, MscSource)} · {s.cancer} · {label(s.delivery)} · {s.setting[3:]}"
        for s in rows
    ]
    with plt.rc_context(_RC):
        fig, (bars, share) = plt.subplots(
            1, 2, figsize=(11, 0.26 * len(rows) + 1.2), sharey=True, gridspec_kw={"width_ratios": [2, 1]}
        )
        left = np.zeros(len(rows))
        for direction in ("inhibits", "promotes", "no_effect", "mixed"):
            counts = np.array([s.item_counts[direction] for s in rows], dtype=float)
            colour = DIRECTION_COLOURS[direction]
            bars.barh(labels, counts, left=left, color=colour, label=label(direction))
            left += counts
        bars.set_xlabel("evidence items")
        bars.legend(loc="lower right", frameon=False)
        bars.set_title("Items by direction")
        for y, s in enumerate(rows):
            if s.share_inhibits is not None:
                share.errorbar(
                    s.share_inhibits, y,
                    xerr=[[s.share_inhibits - s.ci_low], [s.ci_high - s.share_inhibits]],
                    fmt="o", color="black", ms=3, capsize=2,
                )  # fmt: skip
        share.axvline(0.5, color="#999999", lw=0.8, ls="--")
        share.set_xlim(0, 1)
        share.set_xlabel("share of studies inhibiting (exact 95% CI)")
        share.set_title("Study-level vote")
        for ax in (bars, share):
            ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig)


def forest_svg(effects: Sequence[dict[str, float]], title: str, xlabel: str) -> str:
    """Point estimates with 95% intervals, one row per term, a dashed line at zero."""
    rows = list(effects)[::-1]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7, 0.26 * len(rows) + 1.0))
        for y, e in enumerate(rows):
            colour = "black" if e.get("supported") else "#777777"
            ax.errorbar(
                e["estimate"], y, xerr=[[e["estimate"] - e["ci_lb"]], [e["ci_ub"] - e["estimate"]]],
                fmt="o", color=colour, ms=3, capsize=2,
            )  # fmt: skip
        ax.axvline(0, color="#999999", lw=0.8, ls="--")
        ax.set_yticks(range(len(rows)), [label(e["name"]) for e in rows])
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig)


def calibration_svg(bins: Sequence[dict[str, float]]) -> str:
    """Observed share inhibiting against mean held-out prediction, point size by bin count."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--")
        ax.scatter(
            [b["predicted"] for b in bins], [b["observed"] for b in bins],
            s=[20 + 3 * b["n"] for b in bins], color="#2166ac",
        )  # fmt: skip
        for b in bins:
            ax.annotate(
                f"n={b['n']}", (b["predicted"], b["observed"]), textcoords="offset points", xytext=(6, -3)
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted P(inhibits), leave-one-study-out")
        ax.set_ylabel("observed share inhibiting")
        ax.set_title("Calibration")
        return figure_to_svg(fig)
