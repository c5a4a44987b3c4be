"""The one evidence filter language: what the CLI, the web explorer, the API and the Python API
ask the store for, turned into parameterised SQL.

An :class:`EvidenceFilter` holds what a person typed. :meth:`EvidenceFilter.resolved` turns
each value into what the store holds through the term resolver (:mod:`mscatlas.kb.terms`):
labels and synonyms ("bone marrow", BM-MSC) become enum values, and a free cancer term
("pancreas") becomes the cancer types, class or cell line it names through the OncoTree/NCIt
hierarchy. A value that names nothing raises :class:`FilterValueError`, which names the filter,
the value and the nearest values. :func:`conditions` gives the SQL conditions of a resolved
filter, one per filter name, so that facet counts can leave one of them out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import ColumnElement, false, literal, or_, select
from sqlalchemy.orm import aliased

from mscatlas.kb import enums
from mscatlas.kb.store.tables import EvidenceRow
from mscatlas.kb.terms import UnknownTermError, cancer_query, enum_choices, resolve_value
from mscatlas.kb.vocab import load_vocabulary

__all__ = [
    "ENUM_FILTERS",
    "FACETS",
    "SORTS",
    "SQL_ONLY",
    "EvidenceFilter",
    "FilterValueError",
    "conditions",
    "row_predicates",
    "search_terms",
]

# Filters whose values are enum values (a label or synonym is accepted), with their enum.
ENUM_FILTERS: dict[str, type[Any]] = {
    "msc_source": enums.MscSource,
    "cancer_class": enums.CancerClass,
    "delivery": enums.Delivery,
    "direction": enums.Direction,
    "setting": enums.Setting,
    "endpoint": enums.Endpoint,
    "curation_status": enums.CurationStatus,
    "evidence_level": enums.EvidenceLevel,
}
# Facets the store counts, in the order pages show them.
FACETS: tuple[str, ...] = (
    "msc_source",
    "cancer_class",
    "cancer_type",
    "delivery",
    "setting",
    "direction",
    "endpoint",
    "reference",
    "curation_status",
)
# Sort columns: each sorts by its column, then by id.
SORTS: tuple[str, ...] = (
    "id",
    "reference",
    "msc_source",
    "cancer_type",
    "cancer_class",
    "delivery",
    "setting",
    "endpoint",
    "direction",
    "evidence_level",
    "curation_status",
)


class FilterValueError(ValueError):
    """A filter value that names nothing the store holds."""

    def __init__(self, name: str, value: str, allowed: list[str], suggestions: list[str]) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        self.suggestions = suggestions
        hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown value '{value}' for filter '{name}'{hint}")


def search_terms(q: str | None) -> list[str]:
    """Whitespace-separated terms of a search, case-folded; every term must match."""
    return [t.casefold() for t in (q or "").split() if t]


@dataclass(frozen=True)
class EvidenceFilter:
    """Evidence filters; None means any. Every given filter must match.

    ``cancer`` is a free term (a cancer type or a word of one, an OncoTree tissue, a class or a
    cell line); ``cancer_type`` a type of the vocabulary (or its synonym); ``study`` a study id;
    ``reference`` a reference number of the review; ``q`` words that must all appear in the
    item's text (ids, summaries, notes, cell lines, mechanisms, flags).
    """

    msc_source: str | None = None
    cancer: str | None = None
    cancer_class: str | None = None
    cancer_type: str | None = None
    delivery: str | None = None
    direction: str | None = None
    setting: str | None = None
    endpoint: str | None = None
    study: str | None = None
    reference: int | None = None
    curation_status: str | None = None
    evidence_level: str | None = None
    q: str | None = None

    def active(self) -> dict[str, str]:
        """The filters that are set, as text."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value != "":
                out[f.name] = getattr(value, "value", None) or str(value)
        return out

    def resolved(self) -> EvidenceFilter:
        """This filter with every value turned into what the store holds (FilterValueError if none)."""
        changes: dict[str, Any] = {}
        for name, cls in ENUM_FILTERS.items():
            value = getattr(self, name)
            if value is None or value == "":
                continue
            text = getattr(value, "value", value)
            try:
                changes[name] = resolve_value(cls, str(text))
            except UnknownTermError as exc:
                raise FilterValueError(name, str(text), enum_choices(cls), exc.suggestions) from exc
        if self.cancer_type:
            terms = load_vocabulary().cancer_types
            try:
                changes["cancer_type"] = terms.resolve(self.cancer_type)
            except UnknownTermError as exc:
                raise FilterValueError(
                    "cancer_type", self.cancer_type, sorted(terms.entries), exc.suggestions
                ) from exc
        if self.cancer is not None and not self.cancer.strip():
            changes["cancer"] = None
        if self.q is not None:
            changes["q"] = self.q.strip() or None
        return replace(self, **changes)


def _cancer_condition(text: str) -> ColumnElement[bool]:
    found = cancer_query(text)
    options: list[ColumnElement[bool]] = [
        EvidenceRow.cancer_type.ilike(f"%{_escape_like(found.text)}%", escape="\\")
    ]
    if found.types:
        options.append(EvidenceRow.cancer_type.in_(sorted(found.types)))
    if found.cancer_class is not None:
        options.append(EvidenceRow.cancer_class == found.cancer_class)
    for line in {x.casefold() for x in (found.text, found.cell_line) if x}:
        options.append(EvidenceRow.cell_lines.contains(f"\n{line}\n", autoescape=True))
    return or_(*options)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions(flt: EvidenceFilter) -> dict[str, ColumnElement[bool]]:
    """The SQL condition of each active filter of a resolved filter, keyed by the filter's name."""
    out: dict[str, ColumnElement[bool]] = {}
    if flt.msc_source:
        # In the item's comma-joined sources (a column of the scan index), not an EXISTS on
        # evidence_source: that read one row of another table per item, 10^5 times for a count.
        joined = literal(",") + EvidenceRow.msc_sources + literal(",")
        out["msc_source"] = joined.contains(f",{flt.msc_source},", autoescape=True)
    for name in ("cancer_class", "cancer_type", "delivery", "direction", "setting", "endpoint"):
        value = getattr(flt, name)
        if value:
            out[name] = getattr(EvidenceRow, name) == value
    for name in ("curation_status", "evidence_level"):
        value = getattr(flt, name)
        if value:
            out[name] = getattr(EvidenceRow, name) == value
    if flt.cancer:
        out["cancer"] = _cancer_condition(flt.cancer.strip())
    studies = [s for s in (flt.study, f"ref{flt.reference}" if flt.reference is not None else None) if s]
    if studies:
        # Both given and different: nothing matches.
        out["reference"] = EvidenceRow.study_id == studies[0] if len(set(studies)) == 1 else false()
    terms = search_terms(flt.q)
    if terms:
        # Through the ids of a subquery: on SQLite it reads the narrow text index (ix_evidence_text)
        # where a condition on the row read every wide row.
        text = aliased(EvidenceRow)
        found = select(text.id).where(*(text.search_text.contains(t, autoescape=True) for t in terms))
        out["q"] = EvidenceRow.id.in_(found)
    return out


# Filters that only SQL evaluates (free text over cancer types, cell lines and item text); every
# other filter is also a predicate on one row of facet columns (``row_predicates``).
SQL_ONLY = frozenset({"cancer", "q"})


def row_predicates(flt: EvidenceFilter) -> dict[str, Callable[[Mapping[str, Any]], bool]]:
    """The same tests as :func:`conditions` for every filter not in ``SQL_ONLY``, on a mapping of
    evidence columns (``msc_sources`` comma-joined, ``study_id``): facet counts are then summed
    in Python over the distinct combinations of those columns (``QueryMixin.evidence_facets``)."""
    out: dict[str, Callable[[Mapping[str, Any]], bool]] = {}
    if flt.msc_source:
        out["msc_source"] = lambda row, s=flt.msc_source: s in row["msc_sources"].split(",")
    for name in ENUM_FILTERS.keys() - {"msc_source"} | {"cancer_type"}:
        value = getattr(flt, name)
        if value:
            out[name] = lambda row, name=name, value=value: row[name] == value
    studies = [s for s in (flt.study, f"ref{flt.reference}" if flt.reference is not None else None) if s]
    if studies:
        wanted = studies[0] if len(set(studies)) == 1 else None
        out["reference"] = lambda row: row["study_id"] == wanted
    return out
