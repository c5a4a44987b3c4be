"""Server-rendered pages: explorers, record pages, search, the conflict map and the API index."""

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from mscatlas import __version__
from mscatlas._svg import csp_safe_svg
from mscatlas.kb.links import anchor
from mscatlas.kb.models import FLAG_CODES, Dataset, Study
from mscatlas.kb.store import EvidenceFilter, Store
from mscatlas.kb.terms import label
from mscatlas.report.answer_section import answer_context
from mscatlas.trials.roots import MIN_STUDIES as ROOTS_MIN_STUDIES
from mscatlas.trials.roots import SHARE_THRESHOLD as ROOTS_SHARE
from mscatlas.trials.roots import trial_roots
from mscatlas.web.api import (
    RECORD_PATHS,
    Level,
    conflict_download,
    conflict_report_for,
    evidence_download,
    get_evidence,
    get_study,
    get_trial,
    study_download,
    trial_download,
)
from mscatlas.web.downloads import Format, FormatParam, format_links
from mscatlas.web.params import (
    Paging,
    evidence_query,
    page_params,
    reject_unknown_params,
    trial_query_dependency,
)
from mscatlas.web.query import (
    EVIDENCE_FACETS,
    TRIAL_FACETS,
    EvidenceSort,
    SortOrder,
    TrialQuery,
    TrialSort,
    date_text,
    filter_trials,
    search_records,
    sort_trials,
    study_citation,
    trial_facets,
)

__all__ = ["make_templates", "pages_router", "render"]

Renderer = Callable[..., HTMLResponse]
CHECKED = [Depends(reject_unknown_params)]  # list pages: an unknown query parameter is a 422


def query_url(path: str, params: dict[str, Any], **changes: Any) -> str:
    """``path`` with the query string of ``params`` updated by ``changes`` (None removes a key)."""
    merged = {**params, **changes}
    pairs = [(k, str(v)) for k, v in merged.items() if v is not None and v != ""]
    return path + ("?" + urlencode(pairs) if pairs else "")


# Record fields that hold identifiers of one kind (kb/links.py), linked where a page shows them.
ID_FIELDS = {
    "doi": "doi",
    "pmid": "pmid",
    "pmcid": "pmcid",
    "nct_id": "trial",
    "pmids": "pmid",
    "result_pmids": "pmid",
}

FACET_TITLES = {
    "msc_source": "MSC source",
    "curation_status": "curation status",
    "cancer_class": "cancer class",
    "results_posted": "results posted",
}


def make_templates() -> Environment:
    env = Environment(
        loader=PackageLoader("mscatlas.web", "templates"),
        autoescape=True,  # every page is HTML: every value is escaped unless marked safe
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        query_url=query_url,
        package_version=__version__,
        flag_meaning=FLAG_CODES,
        record_paths=RECORD_PATHS,
        id_kinds=ID_FIELDS,
    )
    env.filters["label"] = label  # the one label function (kb.terms.label)
    env.filters["link"] = anchor  # identifiers to their public pages (kb/links.py)
    env.filters["shown"] = label  # None reads "not stated", booleans yes/no
    env.filters["trial_date"] = lambda value: date_text(value) or "not recorded"
    env.filters["facet_title"] = lambda name: FACET_TITLES.get(name, label(name))
    return env


def render(
    env: Environment, request: Request, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page; with the app's sessions, it knows the logged-in user and carries the CSRF token."""
    sessions = getattr(request.app.state, "sessions", None)
    session = sessions.of(request) if sessions is not None else None
    html = env.get_template(name).render(
        request_path=request.url.path,
        current_user=session.user if session else None,
        csrf_token=session.csrf if session else "",
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if sessions is not None:
        sessions.write(request, response)
    return response


def _sort_links(
    path: str, params: dict[str, Any], columns: list[str], sort: str, order: SortOrder
) -> dict[str, str]:
    """For each column, the URL that sorts by it (toggling the order on the current column)."""
    links = {}
    for column in columns:
        next_order = "desc" if column == sort and order is SortOrder.asc else "asc"
        links[column] = query_url(path, params, sort=column, order=next_order, offset=None)
    return links


def _pager(path: str, params: dict[str, Any], paging: Paging, total: int) -> dict[str, Any]:
    prev_offset = max(paging.offset - paging.limit, 0) if paging.offset > 0 else None
    next_offset = paging.offset + paging.limit if paging.offset + paging.limit < total else None
    return {
        "first": paging.offset + 1 if total else 0,
        "last": min(paging.offset + paging.limit, total),
        "total": total,
        "prev": query_url(path, params, offset=prev_offset or None) if prev_offset is not None else None,
        "next": query_url(path, params, offset=next_offset) if next_offset is not None else None,
    }


# What the answer figure reads from each item (stats/answer.py).
_ANSWER_FIELDS = {
    "id",
    "study",
    "msc_source",
    "delivery",
    "setting",
    "engineering",
    "direction",
    "curation_status",
    "flags",
}


def pages_router(store: Store, env: Environment) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    answer_cache: dict[str, dict[str, Any]] = {}
    answer_lock = threading.Lock()

    def answer_for(dataset: Dataset) -> dict[str, Any]:
        # The answer figure is recomputed only when the records it reads change.
        fingerprint = hashlib.sha256(
            json.dumps(
                [e.model_dump(mode="json", include=_ANSWER_FIELDS) for e in dataset.evidence]
                + [s.model_dump(mode="json", include={"id", "risk_of_bias"}) for s in dataset.studies],
                sort_keys=True,
            ).encode()
        ).hexdigest()
        with answer_lock:
            if fingerprint not in answer_cache:
                answer_cache.clear()
                context = answer_context(dataset)
                if context:
                    context = {**context, "svg": csp_safe_svg(context["svg"])}
                answer_cache[fingerprint] = context
            return answer_cache[fingerprint]

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        dataset = store.dataset()
        return render(
            env,
            request,
            "home.html.j2",
            counts=store.counts(),
            n_flagged=sum(1 for e in dataset.evidence if e.flags),
            n_submitted=sum(1 for e in dataset.evidence if e.curation_status.value == "submitted"),
            answer=answer_for(dataset),
        )

    @router.get("/evidence.{fmt}", dependencies=CHECKED)
    def evidence_file(
        fmt: Format,
        query: Annotated[EvidenceFilter, Depends(evidence_query)],
        sort: Annotated[EvidenceSort, Query()] = EvidenceSort.id,
        order: Annotated[SortOrder, Query()] = SortOrder.asc,
    ) -> Response:
        return evidence_download(store, query, sort, order, fmt)

    @router.get("/evidence", response_class=HTMLResponse, dependencies=CHECKED)
    def evidence_explorer(
        request: Request,
        query: Annotated[EvidenceFilter, Depends(evidence_query)],
        paging: Annotated[Paging, Depends(page_params(100))],
        sort: Annotated[EvidenceSort, Query()] = EvidenceSort.id,
        order: Annotated[SortOrder, Query()] = SortOrder.asc,
        fmt: FormatParam = None,
    ) -> Response:
        if fmt is not None:
            return evidence_download(store, query, sort, order, fmt)
        total, items = store.evidence_page(
            query, sort=sort.value, order=order.value, limit=paging.limit, offset=paging.offset
        )
        params: dict[str, Any] = {**query.active()}
        if sort is not EvidenceSort.id or order is not SortOrder.asc:
            params.update(sort=sort.value, order=order.value)
        if paging.limit != 100:
            params["limit"] = paging.limit
        filter_params = {k: v for k, v in params.items() if k not in ("limit",)}
        return render(
            env,
            request,
            "evidence_list.html.j2",
            query=query,
            active=query.active(),
            params=params,
            items=items,
            total=total,
            n_all=store.counts()["evidence"],
            facets=store.evidence_facets(query),
            facet_names=EVIDENCE_FACETS,
            downloads=format_links("/evidence", params),
            sort=sort.value,
            order=order.value,
            sort_links=_sort_links(
                "/evidence", filter_params, [c.value for c in EvidenceSort], sort.value, order
            ),
            pager=_pager("/evidence", params, paging, total),
        )

    @router.get("/evidence/{record_id}", response_class=HTMLResponse)
    def evidence_page(request: Request, record_id: str) -> HTMLResponse:
        item = get_evidence(store, record_id)
        study = store.get(item.study)
        return render(
            env,
            request,
            "evidence.html.j2",
            item=item,
            data=item.model_dump(mode="json"),
            study=study if isinstance(study, Study) else None,
            citation=study_citation(study) if isinstance(study, Study) else None,
            revisions=store.revisions(item.id),
            record_version=store.evidence_version(item.id),
            submitters=store.submitters(item.id),
        )

    @router.get("/studies.{fmt}", dependencies=CHECKED)
    def study_file(fmt: Format) -> Response:
        return study_download(store.dataset().studies, fmt)

    @router.get("/studies", response_class=HTMLResponse, dependencies=CHECKED)
    def study_list(request: Request, fmt: FormatParam = None) -> Response:
        dataset = store.dataset()
        if fmt is not None:
            return study_download(dataset.studies, fmt)
        counts: dict[str, int] = {}
        for item in dataset.evidence:
            counts[item.study] = counts.get(item.study, 0) + 1
        return render(
            env,
            request,
            "study_list.html.j2",
            studies=dataset.studies,
            counts=counts,
            citation=study_citation,
            downloads=format_links("/studies", {}),
        )

    @router.get("/studies/{record_id}", response_class=HTMLResponse)
    def study_page(request: Request, record_id: str) -> HTMLResponse:
        study = get_study(store, record_id)
        return render(
            env,
            request,
            "study.html.j2",
            study=study,
            data=study.model_dump(mode="json"),
            citation=study_citation(study),
            items=store.query_evidence(EvidenceFilter(study=study.id)),
            revisions=store.revisions(study.id),
        )

    @router.get("/trials.{fmt}", dependencies=CHECKED)
    def trial_file(
        fmt: Format,
        query: Annotated[TrialQuery, Depends(trial_query_dependency(store))],
        sort: Annotated[TrialSort, Query()] = TrialSort.nct_id,
        order: Annotated[SortOrder, Query()] = SortOrder.asc,
    ) -> Response:
        return trial_download(sort_trials(filter_trials(store.dataset().trials, query), sort, order), fmt)

    @router.get("/trials", response_class=HTMLResponse, dependencies=CHECKED)
    def trial_explorer(
        request: Request,
        query: Annotated[TrialQuery, Depends(trial_query_dependency(store))],
        sort: Annotated[TrialSort, Query()] = TrialSort.nct_id,
        order: Annotated[SortOrder, Query()] = SortOrder.asc,
        fmt: FormatParam = None,
    ) -> Response:
        trials = store.dataset().trials
        results = sort_trials(filter_trials(trials, query), sort, order)
        if fmt is not None:
            return trial_download(results, fmt)
        params: dict[str, Any] = {**query.active()}
        if sort is not TrialSort.nct_id or order is not SortOrder.asc:
            params.update(sort=sort.value, order=order.value)
        return render(
            env,
            request,
            "trial_list.html.j2",
            query=query,
            active=query.active(),
            params=params,
            trials=results,
            n_all=len(trials),
            facets=trial_facets(trials, query),
            facet_names=TRIAL_FACETS,
            downloads=format_links("/trials", params),
            sort=sort.value,
            order=order.value,
            sort_links=_sort_links("/trials", params, [c.value for c in TrialSort], sort.value, order),
        )

    @router.get("/trials/{nct_id}", response_class=HTMLResponse)
    def trial_page(request: Request, nct_id: str) -> HTMLResponse:
        trial = get_trial(store, nct_id)
        return render(
            env,
            request,
            "trial.html.j2",
            trial=trial,
            data=trial.model_dump(mode="json"),
            revisions=store.revisions(trial.nct_id),
            roots=trial_roots(trial, store.dataset(only_accepted=True).evidence),
            roots_rule=f">= {ROOTS_MIN_STUDIES} studies and >= {ROOTS_SHARE:.0%} of items one way",
        )

    @router.get("/search", response_class=HTMLResponse)
    def search_page(
        request: Request,
        q: Annotated[str | None, Query(max_length=200)] = None,
    ) -> HTMLResponse:
        dataset = store.dataset()
        hits = search_records(dataset.evidence, dataset.studies, dataset.trials, q)
        return render(env, request, "search.html.j2", q=q or "", hits=hits)

    @router.get("/conflicts.{fmt}", dependencies=CHECKED)
    def conflict_file(fmt: Format, level: Annotated[Level, Query()] = "type") -> Response:
        return conflict_download(conflict_report_for(store, level), fmt)

    @router.get("/conflicts", response_class=HTMLResponse, dependencies=CHECKED)
    def conflict_page(
        request: Request, level: Annotated[Level, Query()] = "type", fmt: FormatParam = None
    ) -> Response:
        report = conflict_report_for(store, level)
        if fmt is not None:
            return conflict_download(report, fmt)
        summaries = {e.id: e.provenance.summary for e in store.query_evidence()}
        return render(
            env,
            request,
            "conflicts.html.j2",
            report=report,
            summaries=summaries,
            downloads=format_links("/conflicts", {"level": level}),
        )

    @router.get("/api", response_class=HTMLResponse)
    def api_index(request: Request) -> HTMLResponse:
        schema = request.app.openapi()
        endpoints = []
        for path, methods in schema["paths"].items():
            for method, op in methods.items():
                endpoints.append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "summary": op.get("summary", ""),
                        "parameters": [
                            {
                                "name": p["name"],
                                "where": p["in"],
                                "description": p.get("description", ""),
                                "allowed": _allowed(p.get("schema", {}), schema),
                            }
                            for p in op.get("parameters", [])
                        ],
                    }
                )
        return render(env, request, "api.html.j2", endpoints=endpoints)

    return router


def _allowed(param_schema: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Enum values of a parameter (its x-values, or enums following $ref and anyOf)."""
    options = param_schema.get("anyOf", [param_schema])
    values: list[str] = [str(v) for v in param_schema.get("x-values", [])]
    for option in options:
        if "$ref" in option:
            option = schema["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        values += [str(v) for v in option.get("enum", [])]
    return values
