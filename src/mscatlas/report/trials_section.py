"""The report's trial-landscape section: counts, figures and the results gap as a template context."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mscatlas._svg import figure_to_svg
from mscatlas.kb.models import ClinicalTrial
from mscatlas.kb.terms import label
from mscatlas.trials.landscape import landscape

__all__ = ["trials_section_context"]

_RC = {"font.size": 8, "svg.fonttype": "none", "svg.hashsalt": "mscatlas"}


def _bars(counts: dict[str, int], title: str, *, keep_order: bool = False) -> str:
    labels = list(counts) if keep_order else sorted(counts, key=lambda k: (-counts[k], k))
    values = [counts[k] for k in labels]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(4.2, 0.3 * len(labels) + 0.9))
        shown = [label(k) for k in labels]
        ax.barh(shown[::-1], values[::-1], color="#55a868")
        for y, v in enumerate(values[::-1]):
            ax.text(v + 0.05, y, str(v), va="center")
        ax.set_title(title)
        ax.set_xlabel("trials")
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig, standalone=False)


def trials_section_context(
    trials: Sequence[ClinicalTrial], *, today: dt.date | None = None
) -> dict[str, Any]:
    """The ``trials_landscape`` entry of the report context (empty dict when there are no trials)."""
    if not trials:
        return {}
    result = landscape(trials, today=today or dt.date.today())
    counts = {
        "purpose": result.by_purpose,
        "phase": result.by_phase,
        "status": result.by_status,
        "start year": result.by_start_year,
        "MSC source": result.by_msc_source,
        "engineering": result.by_engineering,
        "product": result.by_product,
        "registry": result.by_registry,
        "route": result.by_route,
    }
    return {
        "landscape": result,
        "counts": counts,
        "figures": {
            name: _bars(c, f"Trials by {name}", keep_order=name == "start year")
            for name, c in counts.items()
            if c
        },
    }
