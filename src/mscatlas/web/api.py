"""The JSON API under /api/: the explorer's filters, limit/offset pagination, records by id."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study
from mscatlas.kb.store import EvidenceFilter, Store
from mscatlas.stats.conflict import conflicts, harvest
from mscatlas.stats.harmonize import harmonize
from mscatlas.web.downloads import Format, FormatParam, download
from mscatlas.web.params import (
    Paging,
    evidence_query,
    page_params,
    reject_unknown_params,
    trial_query_dependency,
)
from mscatlas.web.query import (
    EvidenceSort,
    SortOrder,
    TrialQuery,
    TrialSort,
    filter_trials,
    search_records,
    sort_trials,
    study_citation,
    trial_facets,
)

__all__ = [
    "api_router",
    "conflict_download",
    "evidence_download",
    "get_evidence",
    "get_study",
    "get_trial",
    "study_download",
    "trial_download",
]

Level = Literal["type", "class"]


class Revision(BaseModel):
    version: int
    changed_at: str
    changed_by: str
    reason: str
    fields: list[str] = Field(default_factory=list, description="Fields changed from the previous version.")


class EvidencePage(BaseModel):
    total: int = Field(description="Items matching the filters (all pages).")
    limit: int
    offset: int
    sort: EvidenceSort
    order: SortOrder
    filters: dict[str, str] = Field(description="The active filters, as given in the query string.")
    facets: dict[str, dict[str, int]] = Field(
        description="For each facet, its values and how many items match them with the other filters."
    )
    items: list[EvidenceItem]


class EvidenceRecord(BaseModel):
    evidence: EvidenceItem
    dose_description: str
    study: Study | None
    study_citation: str | None
    revisions: list[Revision]


class StudyPage(BaseModel):
    total: int
    limit: int
    offset: int
    evidence_counts: dict[str, int] = Field(description="Evidence items per study id (this page).")
    items: list[Study]


class StudyRecord(BaseModel):
    study: Study
    citation: str
    evidence: list[EvidenceItem]
    revisions: list[Revision]


class TrialPage(BaseModel):
    total: int
    limit: int
    offset: int
    sort: TrialSort
    order: SortOrder
    filters: dict[str, str]
    facets: dict[str, dict[str, int]]
    items: list[ClinicalTrial]


class TrialRecord(BaseModel):
    trial: ClinicalTrial
    revisions: list[Revision]


class SearchHit(BaseModel):
    kind: Literal["evidence", "study", "trial"]
    id: str
    title: str
    url: str = Field(description="The record's page.")
    api_url: str


class SearchResults(BaseModel):
    q: str
    total: int
    limit: int
    offset: int
    hits: list[SearchHit]


class ConflictReport(BaseModel):
    level: Level
    n_items: int = Field(description="Accepted evidence items that entered the vote count.")
    strata: list[dict[str, Any]] = Field(description="Harvest table: one row per stratum.")
    conflicts: list[dict[str, Any]] = Field(description="Strata with items on both sides, and what differs.")


def get_evidence(store: Store, record_id: str) -> EvidenceItem:
    record = store.get(record_id)
    if not isinstance(record, EvidenceItem):
        raise HTTPException(404, f"no evidence item '{record_id}'")
    return record


def get_study(store: Store, record_id: str) -> Study:
    record = store.get(record_id)
    if not isinstance(record, Study):
        raise HTTPException(404, f"no study '{record_id}'")
    return record


def get_trial(store: Store, record_id: str) -> ClinicalTrial:
    record = store.get(record_id)
    if not isinstance(record, ClinicalTrial):
        raise HTTPException(404, f"no trial '{record_id}'")
    return record


RECORD_PATHS = {"evidence": "evidence", "study": "studies", "trial": "trials"}


def api_router(store: Store) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(reject_unknown_params)])

    @router.get(
        "/evidence",
        response_model=EvidencePage,
        summary="Evidence items, filtered and paginated (or the whole filtered list as CSV/JSON)",
    )
    def evidence_list(
        query: Annotated[EvidenceFilter, Depends(evidence_query)],
        paging: Annotated[Paging, Depends(page_params(50))],
        sort: Annotated[EvidenceSort, Query(description="Column to sort by.")] = EvidenceSort.id,
        order: Annotated[SortOrder, Query()] = SortOrder.asc,
        fmt: FormatParam = None,
    ) -> Any:
        if fmt is not None:
            return evidence_download(store, query, sort, order, fmt)
        total, items = store.evidence_page(
            query, sort=sort.value, order=order.value, limit=paging.limit, offset=paging.offset
        )
        return EvidencePage(
            total=total,
            limit=paging.limit,
            offset=paging.offset,
            sort=sort,
            order=order,
            filters=query.active(),
            facets=store.evidence_facets(query),
            items=items,
        )

    @router.get("/evidence/{record_id}", response_model=EvidenceRecord, summary="One evidence item")
    def evidence_one(record_id: str) -> EvidenceRecord:
        item = get_evidence(store, record_id)
        study = store.get(item.study)
        study = study if isinstance(study, Study) else None
        return EvidenceRecord(
            evidence=item,
            dose_description=item.dose.describe(),
            study=study,
            study_citation=study_citation(study) if study else None,
            revisions=[Revision(**r) for r in store.revisions(item.id)],
        )

    @router.get("/studies", response_model=StudyPage, summary="Studies of the review's reference list")
    def study_list(paging: Annotated[Paging, Depends(page_params(100))], fmt: FormatParam = None) -> Any:
        dataset = store.dataset()
        if fmt is not None:
            return study_download(dataset.studies, fmt)
        rows = paging.slice(dataset.studies)
        counts = {s.id: 0 for s in rows}
        for item in dataset.evidence:
            if item.study in counts:
                counts[item.study] += 1
        return StudyPage(
            total=len(dataset.studies),
            limit=paging.limit,
            offset=paging.offset,
            evidence_counts=counts,
            items=rows,
        )

    @router.get("/studies/{record_id}", response_model=StudyRecord, summary="One study with its evidence")
    def study_one(record_id: str) -> StudyRecord:
        study = get_study(store, record_id)
        return StudyRecord(
            study=study,
            citation=study_citation(study),
            evidence=store.query_evidence(EvidenceFilter(study=study.id)),
            revisions=[Revision(**r) for r in store.revisions(study.id)],
        )

    @router.get("/trials", response_model=TrialPage, summary="Clinical trials, filtered and paginated")
    def trial_list(
        query: Annotated[TrialQuery, Depends(trial_query_dependency(store))],
        paging: Annotated[Paging, Depends(page_params(50))],
        sort: Annotated[TrialSort, Query()] = TrialSort.nct_id,
        order: Annotated[SortOrder, Query()] = SortOrder.asc,
        fmt: FormatParam = None,
    ) -> Any:
        trials = store.dataset().trials
        results = sort_trials(filter_trials(trials, query), sort, order)
        if fmt is not None:
            return trial_download(results, fmt)
        return TrialPage(
            total=len(results),
            limit=paging.limit,
            offset=paging.offset,
            sort=sort,
            order=order,
            filters=query.active(),
            facets=trial_facets(trials, query),
            items=paging.slice(results),
        )

    @router.get("/trials/{nct_id}", response_model=TrialRecord, summary="One clinical trial")
    def trial_one(nct_id: str) -> TrialRecord:
        trial = get_trial(store, nct_id)
        return TrialRecord(trial=trial, revisions=[Revision(**r) for r in store.revisions(trial.nct_id)])

    @router.get("/search", response_model=SearchResults, summary="Full-text search over every record")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200, description="Words; all must match.")],
        paging: Annotated[Paging, Depends(page_params(50))],
    ) -> SearchResults:
        dataset = store.dataset()
        hits = search_records(dataset.evidence, dataset.studies, dataset.trials, q)
        return SearchResults(
            q=q,
            total=len(hits),
            limit=paging.limit,
            offset=paging.offset,
            hits=[
                SearchHit(
                    kind=h.kind,  # type: ignore[arg-type]
                    id=h.id,
                    title=h.title,
                    url=f"/{RECORD_PATHS[h.kind]}/{h.id}",
                    api_url=f"/api/{RECORD_PATHS[h.kind]}/{h.id}",
                )
                for h in paging.slice(hits)
            ],
        )

    @router.get("/conflicts", response_model=ConflictReport, summary="Harvest table and conflicts")
    def conflict_report(
        level: Annotated[
            Level, Query(description="Strata by cancer 'type' (fine) or 'class' (coarse).")
        ] = "type",
        fmt: FormatParam = None,
    ) -> Any:
        report = conflict_report_for(store, level)
        return conflict_download(report, fmt) if fmt is not None else report

    return router


def _columns(model: type[BaseModel]) -> list[str]:
    return [*model.model_fields, *model.model_computed_fields]


def evidence_download(
    store: Store, query: EvidenceFilter, sort: EvidenceSort, order: SortOrder, fmt: Format
) -> StreamingResponse:
    """The whole filtered evidence list in the page's order, streamed from the store."""
    rows = (e.model_dump(mode="json") for e in store.iter_evidence(query, sort.value, order.value))
    return download("evidence", fmt, rows, _columns(EvidenceItem))


def study_download(studies: list[Study], fmt: Format) -> StreamingResponse:
    return download("studies", fmt, (s.model_dump(mode="json") for s in studies), _columns(Study))


def trial_download(trials: list[ClinicalTrial], fmt: Format) -> StreamingResponse:
    return download("trials", fmt, (t.model_dump(mode="json") for t in trials), _columns(ClinicalTrial))


def conflict_download(report: ConflictReport, fmt: Format) -> StreamingResponse:
    """The conflicts (strata with items on both sides) as rows."""
    columns = list(dict.fromkeys(k for c in report.conflicts for k in c))
    return download(f"conflicts-{report.level}", fmt, report.conflicts, columns)


def conflict_report_for(store: Store, level: Level) -> ConflictReport:
    items = harmonize(store.dataset().evidence)
    return ConflictReport(
        level=level,
        n_items=len(items),
        strata=[s.to_dict() for s in harvest(items, level)],
        conflicts=[c.to_dict() for c in conflicts(items, level)],
    )
