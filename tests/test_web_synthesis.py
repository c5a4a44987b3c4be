"""The synthesis, in silico and trial-landscape pages and the predictions API. Expected values are
computed by calling the statistics directly on the store's items, never written in."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from mscatlas.kb.store import Store
from mscatlas.sim.calibrate import load_calibration
from mscatlas.stats.harmonize import harmonize
from mscatlas.stats.moderators import fit_moderator_model, leave_one_study_out, verdict
from mscatlas.trials.landscape import landscape
from mscatlas.web import create_app
from mscatlas.web.synthesis import SEED

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("websyn") / "s.sqlite"
    store = Store.open(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


@pytest.fixture(scope="module")
def expected(store: Store) -> dict:
    items = harmonize(store.dataset().evidence)
    fit = fit_moderator_model(items, seed=SEED)
    validation = leave_one_study_out(items, seed=SEED).to_dict()
    effects = fit.effects()
    return {
        "items": items,
        "effects": effects,
        "sd": fit.sigma_summary(),
        "validation": validation,
        "verdict": verdict(effects, validation),
    }


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table {table_id}"
    return match.group(0)


# ------------------------------------------------------------------ synthesis


def test_synthesis_api_matches_stats(client: TestClient, expected: dict) -> None:
    data = client.get("/api/synthesis").json()
    assert data["seed"] == SEED
    assert data["effects"] == expected["effects"]
    assert data["study_sd"] == expected["sd"]
    assert data["validation"] == expected["validation"]
    assert data["verdict"] == expected["verdict"]


def test_synthesis_page_shows_effects_validation_and_verdict(client: TestClient, expected: dict) -> None:
    response = client.get("/synthesis")
    assert response.status_code == 200
    html = response.text
    effects = table(html, "effects")
    rows = re.findall(
        r"<tr[^>]*>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", effects
    )
    assert len(rows) == len(expected["effects"])
    for (name, est, ci, odds), e in zip(rows, expected["effects"], strict=True):
        assert name.replace(" ★", "") == e["name"]
        assert est == f"{e['estimate']:.2f}"
        assert ci == f"[{e['ci_lb']:.2f}, {e['ci_ub']:.2f}]"
        assert odds == f"{e['odds_ratio']:.2f}"
    sd = expected["sd"]
    assert f"{sd['mean']:.2f}" in text(re.search(r'id="study-sd".*?</p>', html, re.S).group(0))
    validation = text(table(html, "validation"))
    v = expected["validation"]
    for key in ("log_loss", "brier", "accuracy"):
        assert f"{v['model'][key]:.3f}" in validation
        assert f"{v['majority_baseline'][key]:.3f}" in validation
    assert expected["verdict"] in text(re.search(r'id="verdict".*?</p>', html, re.S).group(0))
    assert 'id="no-prediction"' in html


def test_the_cli_uses_the_shared_verdict() -> None:
    """The CLI, like the web, renders the one pipeline, whose verdict is the shared function."""
    from mscatlas.cli import synthesis as cli
    from mscatlas.stats import synthesis as pipeline

    assert cli.run_synthesis is pipeline.run_synthesis
    assert pipeline.moderator_verdict is verdict


# ------------------------------------------------------------------ predictions


QUERIES = [
    {"msc_source": "bone_marrow", "cancer_class": "solid", "delivery": "direct_coculture"},
    {
        "msc_source": "umbilical_cord",
        "cancer_class": "solid",
        "delivery": "conditioned_medium",
        "setting": "in_vitro",
        "engineered": True,
        "dose": 50.0,
    },
    {"msc_source": "adipose_tissue", "cancer_class": "hematological", "delivery": "cell_injection",
     "setting": "in_vivo"},
]  # fmt: skip


@pytest.mark.parametrize("query", QUERIES)
def test_predictions_match_a_fresh_fit(client: TestClient, expected: dict, query: dict) -> None:
    covariates = {"setting": "in_vitro", "engineered": False, "dose": None, **query}
    want = fit_moderator_model(expected["items"], seed=SEED).predict(**covariates)
    params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.items()}
    for _ in range(2):  # the same answer every time: the cached fit is not consumed by a request
        got = client.get("/api/predictions", params=params)
        assert got.status_code == 200, got.text
        data = got.json()
        for key in ("p_inhibits", "ci_lb", "ci_ub", "p_inhibits_new_study"):
            assert data[key] == want[key]
        assert data["covariates"] == want["covariates"]
        assert [(c["id"], c["direction"], c["mismatches"]) for c in data["closest_items"]] == [
            (c["id"], c["direction"], c["mismatches"]) for c in want["closest_items"]
        ]
        assert all(c["url"] == f"/evidence/{c['id']}" for c in data["closest_items"])


def test_prediction_form_shows_probability_and_links_items(client: TestClient, expected: dict) -> None:
    query = QUERIES[1]
    want = fit_moderator_model(expected["items"], seed=SEED).predict(**query)
    html = client.get(
        "/synthesis",
        params={**query, "engineered": "true"},
    ).text
    assert re.search(r'id="p-inhibits">([\d.]+)<', html).group(1) == f"{want['p_inhibits']:.2f}"
    assert f"{want['ci_lb']:.2f}, {want['ci_ub']:.2f}" in html
    closest = table(html, "closest")
    assert re.findall(r'<a href="/evidence/([^"]+)">', closest) == [c["id"] for c in want["closest_items"]]
    for c in want["closest_items"]:
        assert client.get(f"/evidence/{c['id']}").status_code == 200
    link = unescape(re.search(r'id="prediction-json" href="([^"]+)"', html).group(1))
    assert client.get(link).json()["p_inhibits"] == want["p_inhibits"]
    # The form keeps its choices.
    assert '<option value="umbilical_cord" selected>' in html
    assert 'name="engineered" value="true" checked' in html


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"msc_source": "nope", "cancer_class": "solid", "delivery": "direct_coculture"}, "msc_source"),
        (
            {"msc_source": "bone_marrow", "cancer_class": "liquid", "delivery": "direct_coculture"},
            "cancer_class",
        ),
        ({"msc_source": "bone_marrow", "cancer_class": "solid", "delivery": "by_post"}, "delivery"),
        (
            {"msc_source": "bone_marrow", "cancer_class": "solid", "delivery": "transwell", "setting": "x"},
            "setting",
        ),
        (
            {"msc_source": "bone_marrow", "cancer_class": "solid", "delivery": "transwell", "dose": "lots"},
            "dose",
        ),
        ({"cancer_class": "solid", "delivery": "transwell"}, "msc_source"),
    ],
)
def test_predictions_422_names_the_parameter(client: TestClient, params: dict, param: str) -> None:
    response = client.get("/api/predictions", params=params)
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert param in [p["param"] for p in problems]
    problem = next(p for p in problems if p["param"] == param)
    assert param in problem["message"]
    if param in ("msc_source", "cancer_class", "delivery", "setting") and param in params:
        assert problem["allowed"]


def test_enum_value_absent_from_the_evidence_is_a_422(client: TestClient, expected: dict) -> None:
    present = {h.msc_source[0] for h in expected["items"]}
    absent = next(
        s for s in ("placenta", "dental_pulp", "hair_follicle", "skeletal_muscle") if s not in present
    )
    params = {"msc_source": absent, "cancer_class": "solid", "delivery": "direct_coculture"}
    response = client.get("/api/predictions", params=params)
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["param"] == "msc_source"
    assert absent not in problem["allowed"]
    assert "bone_marrow" in problem["allowed"]
    page = client.get("/synthesis", params=params)
    assert page.status_code == 422
    assert "msc_source" in text(page.text)


def test_unknown_value_in_the_form_is_a_422_page(client: TestClient) -> None:
    response = client.get("/synthesis", params={"delivery": "<script>x</script>"})
    assert response.status_code == 422
    assert "<script>x</script>" not in response.text
    assert "allowed values" in text(response.text)


# ------------------------------------------------------------------ cache


def test_the_fit_is_cached_until_the_store_changes(tmp_path: Path) -> None:
    own = Store.open(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    try:
        client = TestClient(create_app(own))
        cache = client.app.state.synthesis
        first = cache.get(own)
        assert cache.get(own) is first
        assert client.get("/api/predictions", params=QUERIES[0]).status_code == 200
        assert cache.get(own) is first
        item = own.dataset().evidence[0]
        version = own.evidence_version(item.id)
        own.flag_evidence(
            item.id, "unverified", "a flag from the cache test", expected_version=version, by="t"
        )
        second = cache.get(own)
        assert second is not first
        assert cache.get(own) is second
        # The refit agrees with a direct fit of the changed store.
        direct = fit_moderator_model(harmonize(own.dataset().evidence), seed=SEED)
        assert second.effects == direct.effects()
    finally:
        own.close()


# ------------------------------------------------------------------ in silico and trials


def test_in_silico_page_shows_the_stored_replay(client: TestClient) -> None:
    html = client.get("/in-silico").text
    assert 'href="/simulate"' in html
    calibration = load_calibration()
    if calibration is None:
        assert 'id="no-calibration"' in html
        return
    validation = calibration.provenance["validation"]
    replay = table(html, "replay")
    for key in ("accuracy", "loo_accuracy", "baseline_accuracy", "moderator_loo_accuracy"):
        row = re.search(rf'<tr id="row-{key}">.*?</tr>', replay, re.S).group(0)
        assert f"{100 * validation[key]:.1f}%" in row


def test_in_silico_page_does_not_recalibrate(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import mscatlas.sim.calibrate as calibrate

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request must not re-calibrate")

    monkeypatch.setattr(calibrate, "calibrate_knowledge_base", forbidden)
    monkeypatch.setattr(calibrate, "fit", forbidden)
    assert client.get("/in-silico").status_code == 200


def test_trial_landscape_page(client: TestClient, store: Store) -> None:
    report = landscape(store.dataset().trials, today=dt.date.today())
    response = client.get("/trials/landscape")
    assert response.status_code == 200
    html = response.text
    assert re.search(r'<strong id="total">(\d+)</strong>', html).group(1) == str(report.total)
    for table_id, counts in (
        ("by-purpose", report.by_purpose),
        ("by-phase", report.by_phase),
        ("by-status", report.by_status),
        ("by-start-year", report.by_start_year),
        ("by-msc-source", report.by_msc_source),
        ("by-engineering", report.by_engineering),
    ):
        rows = re.findall(r"<tr><td>(.*?)</td><td>(\d+)</td></tr>", table(html, table_id))
        assert [(unescape(k), int(n)) for k, n in rows] == [
            (k.replace("_", " "), n) for k, n in counts.items()
        ], table_id
    assert re.search(r'id="ended">(\d+)<', html).group(1) == str(report.ended)
    assert re.search(r'id="with-results">(\d+)<', html).group(1) == str(report.with_results)
    assert re.search(r'id="gap-count">(\d+)<', html).group(1) == str(len(report.results_gap))
    if report.results_gap:
        gap = table(html, "gap")
        assert re.findall(r'<a href="/trials/([^"]+)">', gap) == [g.nct_id for g in report.results_gap]
    assert 'href="/trials/landscape"' in client.get("/trials").text


# ------------------------------------------------------------------ header, schema, safety


def test_header_links_the_new_pages(client: TestClient) -> None:
    html = client.get("/").text
    nav = re.search(r"<nav>.*?</nav>", html, re.S).group(0)
    for path in ("/synthesis", "/in-silico", "/trials/landscape"):
        assert f'href="{path}"' in nav


def test_openapi_lists_the_new_endpoints(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    assert "/api/predictions" in schema["paths"]
    assert "/api/synthesis" in schema["paths"]
    names = {p["name"] for p in schema["paths"]["/api/predictions"]["get"]["parameters"]}
    assert {"msc_source", "cancer_class", "delivery", "setting", "engineered", "dose"} <= names
    for page in ("/synthesis", "/in-silico", "/trials/landscape"):
        assert page not in schema["paths"]
    index = client.get("/api").text
    assert "/api/predictions" in index and "/api/synthesis" in index


def test_new_pages_have_no_inline_script_style_or_external_urls(client: TestClient) -> None:
    for path in ("/synthesis?msc_source=bone_marrow&cancer_class=solid&delivery=transwell", "/in-silico",
                 "/trials/landscape"):  # fmt: skip
        html = client.get(path).text
        assert "<script" not in html
        assert "<style" not in html
        assert " style=" not in html
        assert not re.search(r'(href|src|action)="(https?:)?//', html)
