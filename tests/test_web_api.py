"""The JSON API: pagination, filters, records by id, search, conflicts, 422s and the OpenAPI schema."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

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
from mscatlas.stats.conflict import conflicts, harvest
from mscatlas.stats.harmonize import harmonize
from mscatlas.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 instead of httpx; both work
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("api") / "w.sqlite"
    store = Store.open(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


# ------------------------------------------------------------------ pagination


def test_pages_add_up_to_the_whole_list(client, store) -> None:
    n = store.counts()["evidence"]
    seen: list[str] = []
    offset = 0
    while True:
        page = client.get("/api/evidence", params={"limit": 17, "offset": offset}).json()
        assert page["total"] == n and page["limit"] == 17 and page["offset"] == offset
        if not page["items"]:
            break
        assert len(page["items"]) <= 17
        seen += [e["id"] for e in page["items"]]
        offset += 17
    assert seen == sorted(e.id for e in store.dataset().evidence)
    assert offset >= n


def test_pagination_keeps_filters_and_sorting(client, store) -> None:
    expected = [
        e.id
        for e in sorted(
            store.query_evidence(EvidenceFilter(setting="in_vitro")),
            key=lambda e: e.reference_key(),
            reverse=True,
        )
    ]
    params = {"setting": "in_vitro", "sort": "reference", "order": "desc", "limit": 5}
    first = client.get("/api/evidence", params=params).json()
    second = client.get("/api/evidence", params={**params, "offset": 5}).json()
    assert [e["id"] for e in first["items"] + second["items"]] == expected[:10]
    assert first["total"] == len(expected)
    assert first["filters"] == {"setting": "in_vitro"}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 100000}, {"offset": -1}, {"limit": "ten"}])
def test_bad_pagination_is_422(client, params) -> None:
    response = client.get("/api/evidence", params=params)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["param"] == next(iter(params))


def test_study_list_is_paginated_with_evidence_counts(client, store) -> None:
    studies = store.dataset().studies
    page = client.get("/api/studies", params={"limit": 10, "offset": 20}).json()
    assert page["total"] == len(studies)
    assert [s["id"] for s in page["items"]] == [s.id for s in studies[20:30]]
    for study_id, n in page["evidence_counts"].items():
        assert n == len(store.query_evidence(EvidenceFilter(study=study_id)))


# ------------------------------------------------------------------ 422 with the allowed values

ENUM_PARAMS = [
    ("/api/evidence", "msc_source", MscSource),
    ("/api/evidence", "cancer_class", CancerClass),
    ("/api/evidence", "delivery", Delivery),
    ("/api/evidence", "setting", Setting),
    ("/api/evidence", "direction", Direction),
    ("/api/evidence", "endpoint", Endpoint),
    ("/api/evidence", "curation_status", CurationStatus),
    ("/api/trials", "phase", Phase),
    ("/api/trials", "purpose", TrialPurpose),
    ("/api/trials", "msc_source", MscSource),
]


@pytest.mark.parametrize(("path", "param", "enum"), ENUM_PARAMS, ids=[f"{p[0]}:{p[1]}" for p in ENUM_PARAMS])
def test_unknown_enum_value_is_422_naming_parameter_and_allowed_values(client, path, param, enum) -> None:
    response = client.get(path, params={param: "no-such-value"})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["param"] == param
    assert problem["value"] == "no-such-value"
    assert problem["allowed"] == [m.value for m in enum]
    assert param in problem["message"]
    assert all(m.value in problem["message"] for m in enum)


def test_unknown_cancer_type_is_422_with_a_suggestion(client) -> None:
    response = client.get("/api/evidence", params={"cancer_type": "brest carcinoma"})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["param"] == "cancer_type"
    assert "breast carcinoma" in problem["allowed"]
    assert "did you mean" in problem["message"] and "breast carcinoma" in problem["message"]


def test_cancer_type_synonyms_resolve(client, store) -> None:
    exact = client.get("/api/evidence", params={"cancer_type": "breast carcinoma", "limit": 500}).json()
    loose = client.get("/api/evidence", params={"cancer_type": "Breast-Carcinoma", "limit": 500}).json()
    assert exact["total"] > 0 and exact["items"] == loose["items"]
    assert exact["filters"]["cancer_type"] == "breast carcinoma"


def test_unknown_trial_status_lists_the_statuses_in_the_store(client, store) -> None:
    response = client.get("/api/trials", params={"status": "ON_MARS"})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["param"] == "status"
    assert set(problem["allowed"]) == {t.status or "not_recorded" for t in store.dataset().trials}


def test_bad_reference_and_sort_are_422(client) -> None:
    assert client.get("/api/evidence", params={"reference": 81}).status_code == 422
    response = client.get("/api/evidence", params={"sort": "nope"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["param"] == "sort"
    assert client.get("/api/conflicts", params={"level": "planet"}).status_code == 422


def test_explorer_page_answers_422_as_html(client) -> None:
    response = client.get("/evidence", params={"delivery": "by-post"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "delivery" in response.text and "conditioned_medium" in response.text


# ------------------------------------------------------------------ records


def test_evidence_by_id(client, store) -> None:
    item = store.dataset().evidence[3]
    data = client.get(f"/api/evidence/{item.id}").json()
    assert data["evidence"] == item.model_dump(mode="json")
    assert data["dose_description"] == item.dose.describe()
    assert data["study"]["id"] == item.study
    assert data["study_citation"].startswith(store.get(item.study).authors[0])
    assert [r["version"] for r in data["revisions"]] == [r["version"] for r in store.revisions(item.id)]


def test_study_by_id_with_its_evidence(client, store) -> None:
    study = store.dataset().studies[28]
    data = client.get(f"/api/studies/{study.id}").json()
    assert data["study"] == study.model_dump(mode="json")
    assert [e["id"] for e in data["evidence"]] == [
        e.id for e in store.query_evidence(EvidenceFilter(study=study.id))
    ]


def test_trial_by_id_accepts_lower_case(client, store) -> None:
    trial = store.dataset().trials[2]
    data = client.get(f"/api/trials/{trial.nct_id.lower()}").json()
    assert data["trial"] == trial.model_dump(mode="json")


@pytest.mark.parametrize("path", ["/api/evidence/ev-none", "/api/studies/ref999", "/api/trials/NCT00000000"])
def test_unknown_ids_are_404(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert path.rsplit("/", 1)[-1] in response.json()["detail"]


def test_a_study_id_is_not_an_evidence_item(client) -> None:
    assert client.get("/api/evidence/ref29").status_code == 404


def test_trial_filters(client, store) -> None:
    trials = store.dataset().trials
    data = client.get("/api/trials", params={"phase": "PHASE1", "limit": 500}).json()
    assert [t["nct_id"] for t in data["items"]] == sorted(
        t.nct_id for t in trials if Phase.PHASE1 in t.phases
    )
    engineered = client.get("/api/trials", params={"engineered": "true"}).json()
    assert engineered["total"] == sum(t.engineered for t in trials)


# ------------------------------------------------------------------ search and conflicts


def test_search_spans_record_kinds(client, store) -> None:
    dataset = store.dataset()
    item = next(e for e in dataset.evidence if e.cell_lines)
    data = client.get("/api/search", params={"q": item.cell_lines[0], "limit": 500}).json()
    assert {"kind": "evidence", "id": item.id} in [{"kind": h["kind"], "id": h["id"]} for h in data["hits"]]
    assert data["total"] >= len(data["hits"])
    trial = dataset.trials[0]
    hits = client.get("/api/search", params={"q": trial.nct_id}).json()["hits"]
    assert hits[0]["kind"] == "trial" and hits[0]["url"] == f"/trials/{trial.nct_id}"
    assert client.get(hits[0]["api_url"]).status_code == 200


def test_search_needs_a_query(client) -> None:
    response = client.get("/api/search")
    assert response.status_code == 422
    assert response.json()["detail"][0]["param"] == "q"


@pytest.mark.parametrize("level", ["type", "class"])
def test_conflicts_match_the_statistics(client, store, level) -> None:
    items = harmonize(store.dataset().evidence)
    data = client.get("/api/conflicts", params={"level": level}).json()
    assert data["conflicts"] == [c.to_dict() for c in conflicts(items, level)]
    assert [s["item_ids"] for s in data["strata"]] == [s.to_dict()["item_ids"] for s in harvest(items, level)]
    assert data["n_items"] == len(items)


# ------------------------------------------------------------------ OpenAPI


def test_openapi_schema_documents_the_api(client) -> None:
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/evidence",
        "/api/evidence/{record_id}",
        "/api/studies",
        "/api/studies/{record_id}",
        "/api/trials",
        "/api/trials/{nct_id}",
        "/api/search",
        "/api/conflicts",
    ):
        assert "get" in paths[path], path
    params = {p["name"]: p for p in paths["/api/evidence"]["get"]["parameters"]}
    for name in (
        "msc_source",
        "cancer_class",
        "cancer_type",
        "delivery",
        "setting",
        "direction",
        "endpoint",
        "reference",
        "q",
        "limit",
        "offset",
        "sort",
        "order",
    ):
        assert name in params, name
    # Enum filters take labels and synonyms too: the values are documented beside the string type.
    assert params["direction"]["schema"]["x-values"] == [d.value for d in Direction]
    assert "_format" in params
    # Pages are not part of the API schema.
    assert "/evidence" not in paths


def test_api_index_page_lists_every_endpoint(client) -> None:
    schema = client.get("/api/openapi.json").json()
    page = client.get("/api").text
    for path in schema["paths"]:
        assert f"GET {path}" in page


def test_interactive_docs_that_need_a_cdn_are_off(client) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


# ------------------------------------------------------------------ downloads, unknown parameters, synonyms


def test_unknown_parameter_is_422_naming_it(client) -> None:
    for path in ("/api/evidence", "/evidence", "/api/trials", "/trials", "/studies", "/conflicts"):
        response = client.get(path, params={"source": "bone_marrow"}, headers={"accept": "application/json"})
        assert response.status_code == 422, path
        assert "unknown parameter 'source'" in unescape(response.text), path


def test_format_is_not_silently_json(client) -> None:
    response = client.get("/api/evidence", params={"format": "csv"})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["param"] == "format" and "_format=csv" in problem["message"]
    assert client.get("/api/evidence", params={"_format": "xlsx"}).status_code == 422


def _csv_ids(text: str, column: str = "id") -> list[str]:
    import csv
    import io

    return [row[column] for row in csv.DictReader(io.StringIO(text))]


def test_evidence_downloads_carry_the_filters_and_sort(client, store) -> None:
    params = {"setting": "in_vivo", "sort": "direction", "order": "desc"}
    page = client.get("/api/evidence", params={**params, "limit": 1000}).json()
    expected = [e["id"] for e in page["items"]]
    assert 0 < len(expected) < store.counts()["evidence"]
    as_csv = client.get("/api/evidence", params={**params, "_format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert _csv_ids(as_csv.text) == expected
    assert client.get("/evidence.csv", params=params).text == as_csv.text
    assert client.get("/evidence", params={**params, "_format": "csv"}).text == as_csv.text
    as_json = client.get("/evidence.json", params=params).json()
    assert [e["id"] for e in as_json] == expected
    assert as_json == page["items"]
    # Every field of the model is a column; lists are JSON in their cells.
    header = as_csv.text.splitlines()[0].split(",")
    assert {"id", "msc_source", "dose", "provenance"} <= set(header)


def test_studies_trials_and_conflicts_download(client, store) -> None:
    dataset = store.dataset()
    assert _csv_ids(client.get("/studies.csv").text) == [s.id for s in dataset.studies]
    assert [s["id"] for s in client.get("/api/studies", params={"_format": "json"}).json()] == [
        s.id for s in dataset.studies
    ]
    anti = client.get("/api/trials", params={"purpose": "anti_tumor", "limit": 1000}).json()
    ids = [t["nct_id"] for t in anti["items"]]
    assert ids and _csv_ids(client.get("/trials.csv", params={"purpose": "anti_tumor"}).text, "nct_id") == ids
    report = client.get("/api/conflicts", params={"level": "class"}).json()
    assert client.get("/conflicts.json", params={"level": "class"}).json() == report["conflicts"]
    rows = client.get("/conflicts", params={"level": "class", "_format": "csv"}).text.splitlines()
    assert len(rows) == 1 + len(report["conflicts"])


def test_list_pages_link_their_downloads_with_the_filters(client) -> None:
    html = client.get("/evidence", params={"setting": "in_vivo", "limit": 20}).text
    assert 'href="/evidence.csv?setting=in_vivo"' in html and 'href="/evidence.json?setting=in_vivo"' in html
    trials = client.get("/trials", params={"purpose": "anti_tumor"}).text
    assert 'href="/trials.csv?purpose=anti_tumor"' in trials
    assert 'href="/studies.csv"' in client.get("/studies").text
    assert 'href="/conflicts.json?level=class"' in client.get("/conflicts", params={"level": "class"}).text


def test_filters_accept_labels_and_synonyms(client) -> None:
    exact = client.get("/api/evidence", params={"msc_source": "umbilical_cord", "limit": 1000}).json()
    assert exact["total"] > 0
    for typed in ("umbilical cord", "UC-MSC", "Umbilical-Cord"):
        loose = client.get("/api/evidence", params={"msc_source": typed, "limit": 1000}).json()
        assert loose["items"] == exact["items"] and loose["filters"]["msc_source"] == "umbilical_cord"
    html = client.get("/evidence", params={"msc_source": "UC-MSC"})
    assert html.status_code == 200 and f'<strong id="total">{exact["total"]}</strong>' in html.text
    pancreas = client.get("/api/evidence", params={"cancer": "pancreas", "limit": 1000}).json()
    assert pancreas["total"] > 0
    assert all("pancrea" in e["cancer_type"] for e in pancreas["items"])
