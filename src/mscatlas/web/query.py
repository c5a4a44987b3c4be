"""Sorting, facet counts and search shared by the explorer pages and the API.

Evidence is filtered, sorted, paged and counted by the store, in SQL, with its one filter
language (:class:`mscatlas.kb.store.EvidenceFilter`, see ``kb/store/filters.py``): this module
only names the sort columns for the web. Trials (tens of records) are still filtered here. Facet
counts follow the usual rule of faceted search: the counts of one facet are taken over the items
that match every *other* active filter, so each count is the number of results that choosing
the value would give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from mscatlas.kb.citations import study_citation  # shared with the report's bibliography
from mscatlas.kb.enums import (
    MscSource,
    Phase,
    TrialPurpose,
)
from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study
from mscatlas.kb.store.filters import FACETS, search_terms
from mscatlas.kb.store.tables import evidence_search_text, record_json

__all__ = [
    "EVIDENCE_FACETS",
    "TRIAL_FACETS",
    "EvidenceSort",
    "Hit",
    "ResultsPosted",
    "SortOrder",
    "TrialQuery",
    "TrialSort",
    "date_text",
    "evidence_text",
    "filter_trials",
    "matches_text",
    "search_records",
    "search_terms",
    "sort_trials",
    "study_citation",
    "study_text",
    "trial_facets",
    "trial_text",
]

UNRECORDED = "not_recorded"  # facet and filter value of a trial without a status


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


class EvidenceSort(StrEnum):
    """Columns the evidence explorer can sort by."""

    id = "id"
    reference = "reference"
    msc_source = "msc_source"
    cancer_type = "cancer_type"
    cancer_class = "cancer_class"
    delivery = "delivery"
    setting = "setting"
    endpoint = "endpoint"
    direction = "direction"
    evidence_level = "evidence_level"
    curation_status = "curation_status"


class TrialSort(StrEnum):
    """Columns the trial explorer can sort by."""

    nct_id = "nct_id"
    purpose = "purpose"
    phase = "phase"
    status = "status"
    enrollment = "enrollment"
    start_date = "start_date"
    cancer_type = "cancer_type"


# Facets of the evidence explorer, in the order the page shows them (counted by the store).
EVIDENCE_FACETS: tuple[str, ...] = FACETS


def matches_text(haystack: str, terms: Sequence[str]) -> bool:
    return all(term in haystack for term in terms)


def evidence_text(item: EvidenceItem) -> str:
    """What full-text search looks in (the store's search column holds the same text)."""
    return evidence_search_text(record_json(item))


def study_text(study: Study) -> str:
    parts = [study.id, study_citation(study), study.doi, study.pmid, study.review_citation, study.notes]
    parts += [f"{f.code} {f.note}" for f in study.flags]
    return "\n".join(p for p in parts if p).casefold()


def trial_text(trial: ClinicalTrial) -> str:
    parts = [
        trial.nct_id,
        trial.title,
        trial.treatment,
        trial.cancer_type,
        trial.status,
        trial.notes,
        trial.provenance.summary,
        *trial.conditions,
        *(f"{f.code} {f.note}" for f in trial.flags),
    ]
    return "\n".join(p for p in parts if p).casefold()


def _facet_counts(
    items: Sequence[Any],
    facets: Sequence[str],
    predicates: dict[str, Callable[[Any], bool]],
    values: Callable[[Any, str], list[str]],
) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for facet in facets:
        others = [p for name, p in predicates.items() if name != facet]
        counter: Counter[str] = Counter()
        for item in items:
            if all(p(item) for p in others):
                counter.update(values(item, facet))
        counts[facet] = dict(sorted(counter.items(), key=lambda kv: (-kv[1], _natural(kv[0]))))
    return counts


def _natural(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (10**9, value)


# ---------------------------------------------------------------- trials


class ResultsPosted(StrEnum):
    """Whether a trial has results on the registry: the results gap."""

    yes = "yes"
    no = "no"
    unknown = "unknown"


def date_text(value: Any) -> str | None:
    """A trial date as text, whether the model holds a plain string or a dated object."""
    if value is None:
        return None
    text = getattr(value, "date", value)
    kind = getattr(value, "type", None)
    kind = getattr(kind, "value", kind)
    return f"{text} ({str(kind).lower()})" if kind else str(text)


@dataclass(frozen=True)
class TrialQuery:
    status: str | None = None
    phase: Phase | None = None
    purpose: TrialPurpose | None = None
    msc_source: MscSource | None = None
    product: str | None = None
    engineered: bool | None = None
    results_posted: ResultsPosted | None = None
    q: str | None = None

    def active(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            if isinstance(value, bool):
                out[f.name] = "true" if value else "false"
            else:
                out[f.name] = value.value if isinstance(value, StrEnum) else str(value)
        return out


TRIAL_FACETS: tuple[str, ...] = (
    "status",
    "phase",
    "purpose",
    "msc_source",
    "product",
    "engineered",
    "results_posted",
)


def _trial_values(trial: ClinicalTrial, facet: str) -> list[str]:
    if facet == "status":
        return [trial.status or UNRECORDED]
    if facet == "phase":
        return [p.value for p in trial.phases]
    if facet == "msc_source":
        return list(dict.fromkeys(s.value for s in trial.msc_source))
    if facet == "engineered":
        return ["true" if trial.engineered else "false"]
    if facet == "results_posted":
        posted = getattr(trial, "has_results", None)
        return [ResultsPosted.unknown.value if posted is None else ("yes" if posted else "no")]
    value = getattr(trial, facet)
    return [value.value if isinstance(value, StrEnum) else str(value)]


def _trial_predicates(query: TrialQuery) -> dict[str, Callable[[ClinicalTrial], bool]]:
    preds: dict[str, Callable[[ClinicalTrial], bool]] = {}
    for facet, wanted in query.active().items():
        if facet in TRIAL_FACETS:
            preds[facet] = lambda t, facet=facet, wanted=wanted: wanted in _trial_values(t, facet)
    terms = search_terms(query.q)
    if terms:
        preds["q"] = lambda t: matches_text(trial_text(t), terms)
    return preds


def filter_trials(trials: Iterable[ClinicalTrial], query: TrialQuery) -> list[ClinicalTrial]:
    preds = list(_trial_predicates(query).values())
    return [t for t in trials if all(p(t) for p in preds)]


def trial_facets(trials: Sequence[ClinicalTrial], query: TrialQuery) -> dict[str, dict[str, int]]:
    return _facet_counts(trials, TRIAL_FACETS, _trial_predicates(query), _trial_values)


def _trial_sort_key(trial: ClinicalTrial, column: TrialSort) -> tuple[Any, ...]:
    if column is TrialSort.nct_id:
        return (trial.nct_id,)
    if column is TrialSort.phase:
        order = list(Phase)
        return (order.index(trial.phases[0]), trial.nct_id)
    if column is TrialSort.enrollment:
        # Unknown enrolment sorts after every number in ascending order.
        return (trial.enrollment is None, trial.enrollment or 0, trial.nct_id)
    if column is TrialSort.start_date:
        start = date_text(trial.start_date)
        return (start is None, start or "", trial.nct_id)
    if column is TrialSort.cancer_type:
        return (trial.cancer_type.casefold(), trial.nct_id)
    return (",".join(_trial_values(trial, column.value)), trial.nct_id)


def sort_trials(
    trials: Iterable[ClinicalTrial], column: TrialSort = TrialSort.nct_id, order: SortOrder = SortOrder.asc
) -> list[ClinicalTrial]:
    return sorted(trials, key=lambda t: _trial_sort_key(t, column), reverse=order is SortOrder.desc)


# ---------------------------------------------------------------- search across records


@dataclass(frozen=True)
class Hit:
    kind: str  # "evidence", "study" or "trial"
    id: str
    title: str


def search_records(
    evidence: Iterable[EvidenceItem], studies: Iterable[Study], trials: Iterable[ClinicalTrial], q: str | None
) -> list[Hit]:
    """Every record whose text holds all the words of ``q``: evidence, then studies, then trials."""
    terms = search_terms(q)
    if not terms:
        return []
    hits = [
        Hit("evidence", e.id, e.provenance.summary) for e in evidence if matches_text(evidence_text(e), terms)
    ]
    hits += [Hit("study", s.id, study_citation(s)) for s in studies if matches_text(study_text(s), terms)]
    hits += [Hit("trial", t.nct_id, t.title) for t in trials if matches_text(trial_text(t), terms)]
    return hits
