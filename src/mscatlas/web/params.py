"""Query-string parameters of the explorer pages and the API, with their validation.

Enum-valued filters are typed with the data model's enums, so FastAPI rejects an unknown value
with a 422 and documents the allowed values in the OpenAPI schema. Values whose set is not an
enum (cancer types of the vocabulary, trial statuses present in the store) are checked here and
raise :class:`FilterError`, which the app turns into the same kind of 422.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request

from mscatlas.kb.enums import (
    CancerClass,
    CurationStatus,
    Delivery,
    Direction,
    Endpoint,
    MscSource,
    Phase,
    Setting,
    TrialPurpose,
)
from mscatlas.kb.store import EvidenceFilter, Store
from mscatlas.kb.store.filters import FilterValueError
from mscatlas.web.query import UNRECORDED, ResultsPosted, TrialQuery

__all__ = [
    "MAX_LIMIT",
    "PARAM_ENUMS",
    "FilterError",
    "Paging",
    "UnknownParameterError",
    "evidence_query",
    "page_params",
    "reject_unknown_params",
    "trial_query_dependency",
]

MAX_LIMIT = 1000  # one page can hold the whole field base today (about 700 items)
T = TypeVar("T")
PRODUCTS = ("cells", "extracellular_vesicles", "cells_with_hsc")

# Allowed values of each enum-typed parameter, named in 422 messages.
PARAM_ENUMS: dict[str, Sequence[str]] = {
    "msc_source": [m.value for m in MscSource],
    "cancer_class": [m.value for m in CancerClass],
    "delivery": [m.value for m in Delivery],
    "setting": [m.value for m in Setting],
    "direction": [m.value for m in Direction],
    "endpoint": [m.value for m in Endpoint],
    "curation_status": [m.value for m in CurationStatus],
    "phase": [m.value for m in Phase],
    "purpose": [m.value for m in TrialPurpose],
    "product": list(PRODUCTS),
    "results_posted": [m.value for m in ResultsPosted],
    "order": ["asc", "desc"],
    "level": ["type", "class"],
}


class FilterError(Exception):
    """A query parameter with a value outside its allowed set."""

    def __init__(self, param: str, value: str, allowed: Sequence[str], hint: str = "") -> None:
        self.param = param
        self.value = value
        self.allowed = list(allowed)
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"unknown value '{self.value}' for parameter '{self.param}'"
        if self.hint:
            text += f" ({self.hint})"
        return text + "; allowed values: " + ", ".join(self.allowed)


def _enum_param(name: str, description: str) -> Any:
    values = PARAM_ENUMS[name]
    return Query(
        max_length=64,
        description=f"{description} One of {', '.join(values)} (a label or synonym is accepted).".strip(),
        json_schema_extra={"x-values": list(values)},
    )


def evidence_query(
    msc_source: Annotated[str | None, _enum_param("msc_source", "MSC tissue source.")] = None,
    cancer_class: Annotated[str | None, _enum_param("cancer_class", "Solid or hematological.")] = None,
    cancer_type: Annotated[
        str | None,
        Query(max_length=200, description="Cancer type of the vocabulary (a synonym is accepted)."),
    ] = None,
    cancer: Annotated[
        str | None,
        Query(
            max_length=200,
            description="A cancer term: a type or a word of one, an OncoTree tissue (pancreas), a class "
            "or a cell line.",
        ),
    ] = None,
    delivery: Annotated[str | None, _enum_param("delivery", "How the MSC product reached it.")] = None,
    setting: Annotated[str | None, _enum_param("setting", "")] = None,
    direction: Annotated[str | None, _enum_param("direction", "Effect on the cancer.")] = None,
    endpoint: Annotated[str | None, _enum_param("endpoint", "")] = None,
    reference: Annotated[
        int | None, Query(ge=1, le=80, description="Reference number in the review.")
    ] = None,
    curation_status: Annotated[str | None, _enum_param("curation_status", "")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Full-text search (ids, summaries, notes, cell lines); all words."),
    ] = None,
) -> EvidenceFilter:
    """The evidence filters, resolved by the store's one filter language (FilterError if a value
    names nothing)."""
    flt = EvidenceFilter(
        msc_source=msc_source,
        cancer_class=cancer_class,
        cancer_type=cancer_type,
        cancer=cancer,
        delivery=delivery,
        setting=setting,
        direction=direction,
        endpoint=endpoint,
        reference=reference,
        curation_status=curation_status,
        q=q,
    )
    try:
        return flt.resolved()
    except FilterValueError as exc:
        hint = f"did you mean {', '.join(exc.suggestions)}?" if exc.suggestions else ""
        raise FilterError(exc.name, exc.value, exc.allowed, hint) from exc


class UnknownParameterError(FilterError):
    """A query parameter the endpoint does not take (never silently ignored)."""

    @property
    def message(self) -> str:
        text = f"unknown parameter '{self.param}'"
        if self.hint:
            text += f" ({self.hint})"
        return text + "; known parameters: " + ", ".join(self.allowed)


HINTS = {"format": "use _format=csv or _format=json", "source": "use msc_source"}


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def reject_unknown_params(request: Request) -> None:
    """A dependency: 422 for a query parameter that the route does not declare."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = sorted(_query_names(dependant))
    for name in request.query_params:
        if name not in known:
            raise UnknownParameterError(name, request.query_params[name], known, HINTS.get(name, ""))


class Paging:
    """limit/offset pagination."""

    def __init__(self, limit: int, offset: int) -> None:
        self.limit = limit
        self.offset = offset

    def slice(self, rows: Sequence[T]) -> list[T]:
        return list(rows[self.offset : self.offset + self.limit])


def page_params(default_limit: int) -> Callable[..., Paging]:
    def dependency(
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (at most {MAX_LIMIT}).")
        ] = default_limit,
        offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
    ) -> Paging:
        return Paging(limit, offset)

    return dependency


def trial_query_dependency(store: Store) -> Callable[..., TrialQuery]:
    """The trial filters; ``status`` must be a status some trial in the store has."""

    def dependency(
        status: Annotated[
            str | None,
            Query(
                max_length=64,
                description=f"ClinicalTrials.gov overall status, or '{UNRECORDED}' for trials without one.",
            ),
        ] = None,
        phase: Annotated[Phase | None, Query(description="ClinicalTrials.gov phase.")] = None,
        purpose: Annotated[TrialPurpose | None, Query()] = None,
        msc_source: Annotated[MscSource | None, Query()] = None,
        product: Annotated[str | None, Query(max_length=64, description=", ".join(PRODUCTS))] = None,
        engineered: Annotated[bool | None, Query()] = None,
        results_posted: Annotated[
            ResultsPosted | None, Query(description="Results posted on the registry (the results gap).")
        ] = None,
        q: Annotated[str | None, Query(max_length=200, description="Full-text search; all words.")] = None,
    ) -> TrialQuery:
        if status is not None:
            known = sorted({t.status or UNRECORDED for t in store.dataset().trials})
            if status not in known:
                raise FilterError("status", status, known)
        if product is not None and product not in PRODUCTS:
            raise FilterError("product", product, PRODUCTS)
        return TrialQuery(
            status=status,
            phase=phase,
            purpose=purpose,
            msc_source=msc_source,
            product=product,
            engineered=engineered,
            results_posted=results_posted,
            q=q.strip() if q else None,
        )

    return dependency
