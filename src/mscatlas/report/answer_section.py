"""The report's opening figure: the share of studies that inhibit, per source x product x setting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mscatlas._svg import figure_to_svg
from mscatlas.kb.models import Dataset
from mscatlas.stats.answer import MIN_STUDIES, AnswerRow, answer_rows

__all__ = ["answer_context", "answer_svg"]

_RC = {"font.size": 9, "svg.fonttype": "none", "svg.hashsalt": "mscatlas"}
_COLOURS = {"inhibits": "#2166ac", "promotes": "#b2182b", "contested": "#777777"}


def answer_svg(rows: Sequence[AnswerRow]) -> str:
    """Dots with 95% intervals; blue rows lean to inhibition, red to promotion, grey are contested."""
    shown = [r for r in rows if r.share_inhibits is not None]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(7.6, 0.27 * len(shown) + 1.3))
        for y, row in enumerate(reversed(shown)):
            colour = _COLOURS[row.leaning]
            ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, linewidth=1.6)
            ax.plot([row.share_inhibits], [y], "o", color=colour, markersize=4 + min(row.n_studies, 20) / 3)
        ax.axvline(0.5, color="#999999", linewidth=0.8, linestyle="--")
        ax.set_yticks(
            range(len(shown)), [f"{r.label} ({r.n_studies} studies)" for r in reversed(shown)], fontsize=8
        )
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of studies whose findings inhibit the cancer (95% exact interval)")
        ax.set_title("When do MSC products inhibit cancer? (left: promote; right: inhibit)")
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig, standalone=False)


def answer_context(dataset: Dataset) -> dict[str, Any]:
    """Rows and figure for the top of the report and the web home page (empty without data)."""
    rows = answer_rows(dataset)
    if not rows:
        return {}
    return {
        "rows": [r.to_dict() for r in rows],
        "svg": answer_svg(rows),
        "min_studies": MIN_STUDIES,
        "leaning": {k: sum(r.leaning == k for r in rows) for k in ("inhibits", "promotes", "contested")},
    }
