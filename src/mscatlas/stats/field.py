"""The review's selection beside the field, and study quality as data.

The knowledge base holds two kinds of studies: the review's references (``Study.in_review``)
and the studies the systematic search included (``docs/protocol.md``). Counting directions in
each, side by side, shows how far one review's choice of citations moves the picture. Risk of
bias (SYRCLE) and reporting completeness (ISCT, MISEV) are summarised per item of the tools.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mscatlas.kb.enums import CurationStatus, Direction
from mscatlas.kb.models import SYRCLE_ITEMS, Dataset, EvidenceItem, Study

__all__ = [
    "DirectionTable",
    "reporting_summary",
    "review_vs_field",
    "rob_summary",
    "study_origin",
]

FACETS = ("msc_source", "delivery", "setting")
ORIGINS = ("review", "search")


def study_origin(study: Study | None) -> str:
    """``review`` for the review's references, ``search`` for studies the systematic search added."""
    return "review" if study is None or study.in_review else "search"


def _facet_values(item: EvidenceItem, facet: str) -> list[str]:
    if facet == "msc_source":
        return list(dict.fromkeys(s.value for s in item.msc_source))
    return [getattr(item, facet).value]


@dataclass(frozen=True)
class DirectionTable:
    """Direction counts per facet value, for the review's selection and for the search's studies."""

    facet: str
    counts: dict[str, dict[str, dict[str, int]]]  # origin -> facet value -> direction -> n
    studies: dict[str, dict[str, int]]  # origin -> facet value -> number of studies

    def share_promotes(self, origin: str, value: str) -> float | None:
        """Promoting items over items with a direction (inhibits or promotes); None if none."""
        c = self.counts[origin].get(value, {})
        directional = c.get("inhibits", 0) + c.get("promotes", 0)
        return c.get("promotes", 0) / directional if directional else None

    def to_dict(self) -> dict[str, Any]:
        return {"facet": self.facet, "counts": self.counts, "studies": self.studies}


def review_vs_field(dataset: Dataset, facet: str) -> DirectionTable:
    """Direction counts by ``facet`` (msc_source, delivery or setting), review vs search."""
    if facet not in FACETS:
        raise ValueError(f"facet must be one of {FACETS}, not {facet!r}")
    studies = {s.id: s for s in dataset.studies}
    counts: dict[str, dict[str, Counter[str]]] = {o: {} for o in ORIGINS}
    study_sets: dict[str, dict[str, set[str]]] = {o: {} for o in ORIGINS}
    for item in dataset.evidence:
        if item.curation_status is not CurationStatus.accepted:
            continue
        origin = study_origin(studies.get(item.study))
        for value in _facet_values(item, facet):
            counts[origin].setdefault(value, Counter())[item.direction.value] += 1
            study_sets[origin].setdefault(value, set()).add(item.study)
    return DirectionTable(
        facet=facet,
        counts={
            o: {v: {d.value: c[d.value] for d in Direction} for v, c in sorted(counts[o].items())}
            for o in ORIGINS
        },
        studies={o: {v: len(s) for v, s in sorted(study_sets[o].items())} for o in ORIGINS},
    )


def rob_summary(studies: Sequence[Study]) -> dict[str, Any]:
    """SYRCLE answers per item across the studies assessed, and how many were read in full."""
    assessed = [s for s in studies if s.risk_of_bias is not None]
    per_item = {
        name: dict(Counter(s.risk_of_bias.answers()[name] for s in assessed))  # type: ignore[union-attr]
        for name in SYRCLE_ITEMS
    }
    return {
        "n_assessed": len(assessed),
        "from_full_text": sum(1 for s in assessed if s.risk_of_bias.assessed_from == "full_text"),  # type: ignore[union-attr]
        "items": {
            name: {a: per_item[name].get(a, 0) for a in ("yes", "no", "unclear")} for name in SYRCLE_ITEMS
        },
        "labels": SYRCLE_ITEMS,
        "studies": {s.id: s.risk_of_bias.answers() for s in assessed},  # type: ignore[union-attr]
    }


def reporting_summary(studies: Sequence[Study]) -> dict[str, Any]:
    """How many studies report each ISCT/MISEV element (reported / not reported / cannot tell)."""
    rated = [s.reporting for s in studies if s.reporting is not None]
    fields: dict[str, list[bool | None]] = {
        "surface markers (ISCT)": [r.surface_markers for r in rated],
        "trilineage differentiation (ISCT)": [r.trilineage for r in rated],
        # passage and donor are free text, left empty when the paper does not state them
        "passage stated": [r.passage is not None for r in rated],
        "donor stated": [r.donor is not None for r in rated],
    }
    ev = [r.ev for r in rated if r.ev is not None]
    fields |= {
        "EV isolation method": [e.isolation_method is not None for e in ev],
        "EV particle quantification": [e.particle_quantification for e in ev],
        "EV positive markers": [e.positive_markers for e in ev],
        "EV negative markers": [e.negative_markers for e in ev],
        "EV electron microscopy": [e.electron_microscopy for e in ev],
        "EV nanoparticle tracking": [e.nanoparticle_tracking for e in ev],
    }
    return {
        "n_rated": len(rated),
        "n_ev": len(ev),
        "fields": {
            name: {
                "reported": sum(1 for v in values if v is True),
                "not_reported": sum(1 for v in values if v is False),
                "unknown": sum(1 for v in values if v is None),
            }
            for name, values in fields.items()
        },
    }
