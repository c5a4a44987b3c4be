"""The trial landscape: counts by category and the results gap.

The results gap lists trials that ended (COMPLETED or TERMINATED) with neither results posted
on the registry nor a linked publication about them, with the years since completion counted
to a ``today`` the caller gives, so the same data always give the same numbers. Trials whose
results status was never read from the registry (``has_results`` empty) are listed apart as
unchecked rather than counted in the gap.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mscatlas.kb.models import ClinicalTrial, TrialDate

__all__ = [
    "ENDED_STATUSES",
    "GapEntry",
    "Landscape",
    "in_results_gap",
    "landscape",
    "latest_day",
    "results_state",
]

ENDED_STATUSES = frozenset({"COMPLETED", "TERMINATED"})
NOT_RECORDED = "not recorded"


def results_state(trial: ClinicalTrial) -> str:
    """``posted`` (registry results), ``published`` (a linked publication), ``none`` (the registry
    was read and shows none, no publication linked) or ``unknown`` (never read, none linked).

    The landscape, ``trials list`` and the web all judge results by this one function."""
    if trial.has_results:
        return "posted"
    if trial.pmids or trial.result_pmids:
        return "published"
    return "unknown" if trial.has_results is None else "none"


def in_results_gap(trial: ClinicalTrial) -> bool:
    """An ended trial whose registry shows no results and that no publication reports."""
    return trial.status in ENDED_STATUSES and results_state(trial) == "none"


@dataclass(frozen=True)
class GapEntry:
    nct_id: str
    title: str
    status: str
    completion: str | None  # the stated date, with its own precision
    completion_type: str | None
    years_since_completion: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Landscape:
    total: int
    today: dt.date
    by_purpose: dict[str, int]
    by_phase: dict[str, int]
    by_status: dict[str, int]
    by_start_year: dict[str, int]
    by_msc_source: dict[str, int]
    by_engineering: dict[str, int]
    by_product: dict[str, int]
    by_registry: dict[str, int]
    by_route: dict[str, int]
    ended: int
    with_results: int
    results_gap: list[GapEntry] = field(default_factory=list)
    unchecked: list[GapEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "today": self.today.isoformat(),
            "by_purpose": self.by_purpose,
            "by_phase": self.by_phase,
            "by_status": self.by_status,
            "by_start_year": self.by_start_year,
            "by_msc_source": self.by_msc_source,
            "by_engineering": self.by_engineering,
            "by_product": self.by_product,
            "by_registry": self.by_registry,
            "by_route": self.by_route,
            "ended": self.ended,
            "with_results": self.with_results,
            "results_gap": [g.to_dict() for g in self.results_gap],
            "unchecked": [g.to_dict() for g in self.unchecked],
        }


def latest_day(date: TrialDate) -> dt.date:
    """The last day a stated date can mean (31 December for a year, month end for a month)."""
    parts = [int(x) for x in date.date.split("-")]
    if len(parts) == 1:
        return dt.date(parts[0], 12, 31)
    if len(parts) == 2:
        return dt.date(parts[0], parts[1], calendar.monthrange(parts[0], parts[1])[1])
    return dt.date(*parts)


def _years_since(date: TrialDate | None, today: dt.date) -> float | None:
    """Whole years to one decimal from the latest day the date can mean (a lower bound)."""
    if date is None:
        return None
    return round((today - latest_day(date)).days / 365.25, 1)


def _sorted(counter: Counter[str], *, by_key: bool = False) -> dict[str, int]:
    if by_key:
        # Years ascending, with "not recorded" last.
        return dict(sorted(counter.items(), key=lambda kv: (kv[0] == NOT_RECORDED, kv[0])))
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def landscape(trials: Sequence[ClinicalTrial], *, today: dt.date) -> Landscape:
    """Counts by purpose, phase, status, start year, MSC source and engineering; the results gap.

    Phases count per combination as registered ("PHASE1/PHASE2"); a trial with two MSC sources
    counts under each; a native product counts as engineering "none".
    """
    sources: Counter[str] = Counter()
    engineering: Counter[str] = Counter()
    for t in trials:
        for s in dict.fromkeys(x.value for x in t.msc_source):
            sources[s] += 1
        for e in dict.fromkeys(x.value for x in t.engineering) or ["none"]:
            engineering[e] += 1
    gap: list[GapEntry] = []
    unchecked: list[GapEntry] = []
    ended = with_results = 0
    for t in sorted(trials, key=lambda x: x.nct_id):
        if t.status not in ENDED_STATUSES:
            continue
        ended += 1
        state = results_state(t)
        if state in ("posted", "published"):
            with_results += 1
            continue
        completion = t.completion_date or t.primary_completion_date
        entry = GapEntry(
            nct_id=t.nct_id,
            title=t.title,
            status=t.status or "",
            completion=completion.date if completion else None,
            completion_type=completion.type if completion else None,
            years_since_completion=_years_since(completion, today),
        )
        (unchecked if state == "unknown" else gap).append(entry)
    return Landscape(
        total=len(trials),
        today=today,
        by_purpose=_sorted(Counter(t.purpose.value for t in trials)),
        by_phase=_sorted(Counter("/".join(p.value for p in t.phases) for t in trials)),
        by_status=_sorted(Counter(t.status or NOT_RECORDED for t in trials)),
        by_start_year=_sorted(
            Counter(str(t.start_date.year) if t.start_date else NOT_RECORDED for t in trials), by_key=True
        ),
        by_msc_source=_sorted(sources),
        by_engineering=_sorted(engineering),
        by_product=_sorted(Counter(t.product for t in trials)),
        by_registry=_sorted(Counter(t.registry for t in trials)),
        by_route=_sorted(Counter(t.route or NOT_RECORDED for t in trials)),
        ended=ended,
        with_results=with_results,
        results_gap=gap,
        unchecked=unchecked,
    )
