"""The report's translation section: each trial's preclinical roots, doses on one axis, and the
trial search flow (records found, trials screened, excluded with reasons, included)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mscatlas._svg import figure_to_svg
from mscatlas.kb.models import Dataset
from mscatlas.trials.dose_compare import DoseComparison, dose_comparison
from mscatlas.trials.flow import trial_flow
from mscatlas.trials.roots import MIN_STUDIES, SHARE_THRESHOLD, roots_of_trials, roots_summary

__all__ = ["dose_figure_svg", "translation_section_context"]

_RC = {"font.size": 9, "svg.fonttype": "none", "svg.hashsalt": "mscatlas"}
_DIRECTION = {"inhibits": "#2166ac", "promotes": "#b2182b", "no_effect": "#888888", "mixed": "#7b3294"}


def dose_figure_svg(c: DoseComparison) -> str:
    """Log axis of cells per dose for a 70 kg adult: preclinical HEDs, trial doses, Kabat's range."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.2, 2.6))
        lo, hi = c.kabat_range
        ax.axvspan(lo, hi, color="#fdd49e", alpha=0.6, label="effective IV range in MSC trials (Kabat 2020)")
        for k, p in enumerate(c.preclinical):
            y = 2 + 0.25 * ((k % 5) - 2) / 2
            ax.plot(p["hed_total_70kg_bsa"], y, "o", color=_DIRECTION[p["direction"]], markersize=5)
            ax.plot(p["hed_total_70kg_bw"], y - 1, "s", color=_DIRECTION[p["direction"]], markersize=4)
        for k, t in enumerate(c.trials):
            y = 0 + 0.3 * ((k % 5) - 2) / 2
            ax.plot([t["low"], t["high"]], [y, y], "-|", color="#333333", linewidth=1.4, markersize=6)
        ax.set_xscale("log")
        ax.set_yticks(
            [0, 1, 2],
            [
                f"trials ({len(c.trials)})",
                "preclinical, by body weight",
                f"preclinical, by body surface ({len(c.preclinical)})",
            ],
        )
        ax.set_ylim(-0.7, 2.7)
        ax.set_xlabel("MSCs per dose for a 70 kg adult (log scale); dots coloured by the finding's direction")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig, standalone=False)


def translation_section_context(dataset: Dataset) -> dict[str, Any]:
    """Roots of every trial with their verdicts, and the dose comparison (empty without trials)."""
    if not dataset.trials:
        return {}
    roots = roots_of_trials(dataset.trials, dataset.evidence)
    doses = dose_comparison(dataset)
    return {
        "roots": [r.to_dict() for r in roots],
        "summary": roots_summary(roots),
        "rule": f">= {MIN_STUDIES} studies and >= {SHARE_THRESHOLD:.0%} of inhibit/promote items one way",
        "doses": doses.to_dict(),
        "dose_svg": dose_figure_svg(doses) if doses.preclinical or doses.trials else "",
        "flow": trial_flow(dataset.trials),
    }
