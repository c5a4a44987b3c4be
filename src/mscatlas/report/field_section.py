"""The report's "review vs field" section: direction side by side, risk of bias, reporting, and
one effect plot per moderator of the field moderator model (:mod:`mscatlas.stats.field_model`)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mscatlas._svg import figure_to_svg
from mscatlas.kb.models import Dataset
from mscatlas.kb.terms import label
from mscatlas.stats.field import DirectionTable, reporting_summary, review_vs_field, rob_summary
from mscatlas.stats.field_model import FIELD_SPEC, NOT_IN_VIVO, field_covariates, marginal_effects
from mscatlas.stats.harmonize import harmonize
from mscatlas.stats.moderators import design, fit_design

__all__ = ["effect_plot_svg", "field_effects", "field_section_context"]

_RC = {"font.size": 9, "svg.fonttype": "none", "svg.hashsalt": "mscatlas"}
_DIRECTIONS = ("inhibits", "no_effect", "mixed", "promotes")
_COLOURS = {"inhibits": "#2166ac", "promotes": "#b2182b", "no_effect": "#bbbbbb", "mixed": "#7b3294"}
_ROB_COLOURS = {"yes": "#1a9850", "unclear": "#fee08b", "no": "#d73027"}
_ORIGIN_LABEL = {"review": "review's selection", "search": "systematic search"}


def _side_by_side_svg(table: DirectionTable, title: str) -> str:
    """Per facet value, two stacked bars (review, search) of direction shares, with item counts."""
    values = sorted(
        {v for o in table.counts for v in table.counts[o]},
        key=lambda v: -sum(sum(table.counts[o].get(v, {}).values()) for o in table.counts),
    )
    rows = [(v, o) for v in values for o in ("review", "search")]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.2, 0.26 * len(rows) + 1.2))
        y = np.arange(len(rows))[::-1]
        left = np.zeros(len(rows))
        for d in _DIRECTIONS:
            totals = np.array([max(sum(table.counts[o].get(v, {}).values()), 1) for v, o in rows])
            share = np.array([table.counts[o].get(v, {}).get(d, 0) for v, o in rows]) / totals
            ax.barh(y, share, left=left, color=_COLOURS[d], label=label(d), height=0.8)
            left += share
        labels = []
        for v, o in rows:
            n = sum(table.counts[o].get(v, {}).values())
            k = table.studies[o].get(v, 0)
            labels.append(f"{label(v)}: {_ORIGIN_LABEL[o]} ({n} items, {k} studies)")
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of evidence items")
        ax.set_title(title)
        ax.legend(
            ncol=4,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12 - 1.2 / (0.26 * len(rows) + 1.2)),
            frameon=False,
        )
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig, standalone=False)


def _rob_svg(summary: dict[str, Any]) -> str:
    """Traffic-light summary: per SYRCLE item, the share of studies at low / unclear / high risk."""
    names = list(summary["labels"])
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.2, 0.32 * len(names) + 1.3))
        y = np.arange(len(names))[::-1]
        left = np.zeros(len(names))
        n = max(summary["n_assessed"], 1)
        for answer, legend in (("yes", "low risk (yes)"), ("unclear", "unclear"), ("no", "high risk (no)")):
            share = np.array([summary["items"][k][answer] for k in names]) / n
            ax.barh(y, share, left=left, color=_ROB_COLOURS[answer], label=legend, height=0.75)
            left += share
        ax.set_yticks(y, [summary["labels"][k] for k in names])
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of {summary['n_assessed']} in vivo studies (SYRCLE)")
        ax.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig, standalone=False)


def effect_plot_svg(moderator: str, levels: list[dict[str, Any]], overall: float | None = None) -> str:
    """Dots with 95% intervals: P(inhibits) for an average study at each level of one moderator."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(3.6, 0.24 * len(levels) + 0.95))
        y = np.arange(len(levels))[::-1]
        p = np.array([lv["p_inhibits"] for lv in levels])
        ax.hlines(
            y, [lv["ci_lb"] for lv in levels], [lv["ci_ub"] for lv in levels], color=_COLOURS["inhibits"]
        )
        ax.plot(p, y, "o", color=_COLOURS["inhibits"], markersize=4)
        if overall is not None:
            ax.axvline(overall, color="#888888", linestyle="--", linewidth=0.8)
        labels = [
            label(lv["level"]) + ("" if lv["n_items"] is None else f" ({lv['n_items']})")
            for lv in levels
        ]
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 1)
        ax.set_xlabel("P(inhibits), average study")
        where = " (in vivo items)" if moderator in NOT_IN_VIVO else ""
        ax.set_title(label(moderator) + where, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig, standalone=False)


def field_effects(dataset: Dataset) -> dict[str, Any]:
    """The field moderator model's marginal predictions by moderator level, and one SVG each."""
    items = harmonize(dataset.evidence)
    d = design(items, FIELD_SPEC, field_covariates(dataset.evidence, dataset.studies))
    if len(d.y) == 0:
        return {}
    effects = marginal_effects(fit_design(d))
    overall = float(np.mean(d.y))
    return {
        "n_items": len(d.y),
        "n_studies": len(d.studies),
        "share_inhibits": overall,
        "levels": effects,
        "figures": {name: effect_plot_svg(name, levels, overall) for name, levels in effects.items()},
    }


def field_section_context(dataset: Dataset) -> dict[str, Any]:
    """The ``field`` entry of the report context: empty when the base holds no searched studies."""
    if all(s.in_review for s in dataset.studies):
        return {}
    tables = {facet: review_vs_field(dataset, facet) for facet in ("msc_source", "delivery", "setting")}
    titles = {"msc_source": "MSC source", "delivery": "delivery", "setting": "setting"}
    rob = rob_summary(dataset.studies)
    reporting = reporting_summary(dataset.studies)
    search_studies = [s for s in dataset.studies if not s.in_review]
    return {
        "tables": {f: t.to_dict() for f, t in tables.items()},
        "figures": {
            f: _side_by_side_svg(
                t, f"Direction by {titles[f]}: the review's selection vs the systematic search"
            )
            for f, t in tables.items()
        },
        "rob": rob,
        "rob_svg": _rob_svg(rob) if rob["n_assessed"] else "",
        "reporting": reporting,
        "effects": field_effects(dataset),
        "n_search_studies": len(search_studies),
        "n_review_studies": len(dataset.studies) - len(search_studies),
    }
