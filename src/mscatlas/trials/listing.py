"""Selecting trials by purpose, status, registry, phase and MSC source, as rows for a listing.

The core of ``mscatlas trials list``: the CLI only parses options and renders the rows. Values
are checked here so that a typo is an error naming the option and the accepted values, never an
empty list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mscatlas.kb.enums import MscSource, Phase, TrialPurpose
from mscatlas.kb.models import ClinicalTrial
from mscatlas.kb.trial_dose import REGISTRY_PATTERNS
from mscatlas.trials.landscape import in_results_gap, results_state

__all__ = ["OVERALL_STATUSES", "TrialFilter", "select_trials", "trial_row"]

# ClinicalTrials.gov API v2, enum OverallStatus (https://clinicaltrials.gov/data-api/about-api/study-data-structure).
OVERALL_STATUSES = (
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
)
NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class TrialFilter:
    purpose: TrialPurpose | None = None
    status: str | None = None  # an OVERALL_STATUSES value, or "not_recorded"
    registry: str | None = None  # a key of REGISTRY_PATTERNS
    phase: Phase | None = None
    source: MscSource | None = None
    results_gap: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in (*OVERALL_STATUSES, NOT_RECORDED):
            raise ValueError(
                f"status: {self.status!r} is not a ClinicalTrials.gov status; accepted: "
                + ", ".join((*OVERALL_STATUSES, NOT_RECORDED))
            )
        if self.registry is not None and self.registry not in REGISTRY_PATTERNS:
            raise ValueError(f"registry: {self.registry!r} is not one of {', '.join(REGISTRY_PATTERNS)}")

    def matches(self, t: ClinicalTrial) -> bool:
        return (
            (self.purpose is None or t.purpose is self.purpose)
            and (self.status is None or (t.status or NOT_RECORDED) == self.status)
            and (self.registry is None or t.registry == self.registry)
            and (self.phase is None or self.phase in t.phases)
            and (self.source is None or self.source in t.msc_source)
            and (not self.results_gap or in_results_gap(t))
        )


def select_trials(trials: Iterable[ClinicalTrial], where: TrialFilter) -> list[ClinicalTrial]:
    """The trials that match every filter given, sorted by id."""
    return sorted((t for t in trials if where.matches(t)), key=lambda t: t.nct_id)


def _dose_text(t: ClinicalTrial) -> str | None:
    if t.dose is None:
        return None
    return t.dose.describe()


def trial_row(t: ClinicalTrial) -> dict[str, Any]:
    """One trial as a flat row: the fields people filter and compare on."""
    return {
        "id": t.nct_id,
        "registry": t.registry,
        "title": t.title,
        "purpose": t.purpose.value,
        "phases": [p.value for p in t.phases],
        "status": t.status,
        "msc_source": [s.value for s in t.msc_source],
        "product": t.product,
        "engineered": t.engineered,
        "route": t.route,
        "dose": _dose_text(t),
        "enrollment": t.enrollment,
        "start": t.start_date.date if t.start_date else None,
        "results": results_state(t),
        "results_gap": in_results_gap(t),
    }
