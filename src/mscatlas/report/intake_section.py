"""The report's PRISMA 2020 section: the flow of the shipped systematic search.

The counts come from :func:`mscatlas.intake.workflow.prisma_for_dataset`: the shipped search
and screening files are imported into a new, temporary store holding the report's dataset, as
a user's store would hold them, so the report and ``mscatlas intake status`` count alike.
"""

from __future__ import annotations

from typing import Any

from mscatlas.intake.prisma import prisma_svg
from mscatlas.intake.workflow import prisma_for_dataset
from mscatlas.kb.models import Dataset

__all__ = ["intake_section_context"]


def intake_section_context(dataset: Dataset) -> dict[str, Any]:
    """PRISMA counts and diagram of the shipped search; empty when nothing was searched yet."""
    counts, problems = prisma_for_dataset(dataset)
    if not counts["identified"]["total"]:
        return {}
    return {
        "counts": counts,
        "svg": prisma_svg(counts),
        "problems": problems,
        "n_queries": len(counts["identified"]["by_query"]),
    }
