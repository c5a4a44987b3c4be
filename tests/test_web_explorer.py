"""The web pages: evidence explorer (filters, facet counts, sorting, search), record pages, trials,
the conflict map. Expected values are computed from the store, never written in."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.store import Store
from mscatlas.stats.conflict import conflicts, harvest
from mscatlas.stats.harmonize import harmonize
from mscatlas.web import create_app
from mscatlas.web.params import MAX_LIMIT

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 instead of httpx; both work
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("web") / "w.sqlite"
    store = Store.open(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


def table_ids(html: str, table_id: str, prefix: str) -> list[str]:
    """Record ids linked from the first column of a table, in page order."""
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table {table_id}"
    return re.findall(rf'<tr>\s*<td[^>]*><a href="/{prefix}/([^"]+)">', match.group(0))


def shown_total(html: str) -> int:
    return int(re.search(r'<strong id="total">(\d+)</strong>', html).group(1))


def evidence(store: Store) -> list[EvidenceItem]:
    return store.dataset().evidence


# ------------------------------------------------------------------ filters


FILTERS = [
    ("direction", "promotes", lambda e: e.direction.value == "promotes"),
    ("delivery", "conditioned_medium", lambda e: e.delivery.value == "conditioned_medium"),
    ("msc_source", "umbilical_cord", lambda e: any(s.value == "umbilical_cord" for s in e.msc_source)),
    ("setting", "in_vivo", lambda e: e.setting.value == "in_vivo"),
    ("endpoint", "apoptosis", lambda e: e.endpoint.value == "apoptosis"),
    ("cancer_class", "hematological", lambda e: e.cancer_class.value == "hematological"),
    ("cancer_type", "breast carcinoma", lambda e: e.cancer_type == "breast carcinoma"),
    ("reference", "29", lambda e: e.study == "ref29"),
    ("curation_status", "accepted", lambda e: e.curation_status.value == "accepted"),
]


@pytest.mark.parametrize(("param", "value", "predicate"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_shows_exactly_the_matching_items(client, store, param, value, predicate) -> None:
    expected = sorted(e.id for e in evidence(store) if predicate(e))
    assert expected, "the shipped data should have items for this filter"
    page = client.get("/evidence", params={param: value, "limit": MAX_LIMIT})
    assert page.status_code == 200
    assert table_ids(page.text, "evidence-table", "evidence") == expected
    assert shown_total(page.text) == len(expected)


def test_filters_combine_and_live_in_the_url(client, store) -> None:
    items = [e for e in evidence(store) if e.setting.value == "in_vitro" and e.direction.value == "inhibits"]
    page = client.get(f"/evidence?setting=in_vitro&direction=inhibits&limit={MAX_LIMIT}")
    assert sorted(table_ids(page.text, "evidence-table", "evidence")) == sorted(e.id for e in items)
    # Links on the page keep the active filters, so the URL can be shared and reopened.
    links = [unescape(h) for h in re.findall(r'href="(/evidence\?[^"]+)"', page.text)]
    facet_links = [h for h in links if "msc_source=" in h]
    assert facet_links
    assert all("setting=in_vitro" in h and "direction=inhibits" in h for h in facet_links)
    sort_link = next(h for h in links if "sort=endpoint" in h)
    assert "direction=inhibits" in sort_link and "setting=in_vitro" in sort_link


def test_empty_form_fields_mean_any(client, store) -> None:
    page = client.get(f"/evidence?direction=&msc_source=&q=&limit={MAX_LIMIT}")
    assert page.status_code == 200
    assert shown_total(page.text) == len(evidence(store))


# ------------------------------------------------------------------ facet counts


def test_facet_counts_are_taken_over_the_other_filters(client, store) -> None:
    items = evidence(store)
    facets = client.get("/api/evidence", params={"direction": "promotes"}).json()["facets"]
    promoting = [e for e in items if e.direction.value == "promotes"]
    expected_sources = Counter(s for e in promoting for s in dict.fromkeys(x.value for x in e.msc_source))
    assert facets["msc_source"] == dict(expected_sources)
    # The direction facet ignores its own filter: it shows what every other direction would give.
    assert facets["direction"] == dict(Counter(e.direction.value for e in items))


def test_a_facet_count_is_the_number_of_results_its_link_gives(client) -> None:
    base = {"setting": "in_vitro"}
    facets = client.get("/api/evidence", params=base).json()["facets"]
    for facet in ("delivery", "endpoint", "msc_source"):
        for value, count in facets[facet].items():
            total = client.get("/api/evidence", params={**base, facet: value, "limit": 1}).json()["total"]
            assert total == count, (facet, value)


def test_facet_counts_on_the_page_change_with_the_filters(client, store) -> None:
    def source_count(html: str, source: str) -> int:
        section = re.search(r"<h3>MSC source</h3>.*?</section>", html, re.S).group(0)
        label = source.replace("_", " ")
        return int(re.search(rf">{label}</a> <span class=\"count\">(\d+)</span>", section).group(1))

    items = evidence(store)
    everything = client.get("/evidence").text
    in_vivo = client.get("/evidence?setting=in_vivo").text
    n_all = sum("bone_marrow" in [s.value for s in e.msc_source] for e in items)
    n_vivo = sum(
        "bone_marrow" in [s.value for s in e.msc_source] and e.setting.value == "in_vivo" for e in items
    )
    assert source_count(everything, "bone_marrow") == n_all
    assert source_count(in_vivo, "bone_marrow") == n_vivo
    assert n_all != n_vivo


# ------------------------------------------------------------------ sorting


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_by_reference(client, store, order) -> None:
    page = client.get("/evidence", params={"sort": "reference", "order": order, "limit": MAX_LIMIT}).text
    ids = table_ids(page, "evidence-table", "evidence")
    by_id = {e.id: e for e in evidence(store)}
    # The review's items by reference number, then the field's (no review reference) by study.
    keys = [by_id[i].reference_key()[:3] for i in ids]
    assert keys == sorted(keys, reverse=order == "desc")
    assert len(ids) == len(by_id)


def test_sorting_by_direction_groups_directions(client, store) -> None:
    data = client.get("/api/evidence", params={"sort": "direction", "limit": MAX_LIMIT}).json()
    directions = [e["direction"] for e in data["items"]]
    assert directions == sorted(directions)
    html_ids = table_ids(
        client.get(f"/evidence?sort=direction&limit={MAX_LIMIT}").text, "evidence-table", "evidence"
    )
    assert html_ids == [e["id"] for e in data["items"]]


def test_header_link_toggles_the_order(client) -> None:
    page = client.get("/evidence?sort=endpoint&order=asc").text
    header = re.search(r'<th aria-sort="ascending"><a href="([^"]+)"', page).group(1)
    assert "order=desc" in unescape(header) and "sort=endpoint" in unescape(header)


def test_unknown_sort_column_is_422(client) -> None:
    response = client.get("/evidence?sort=password")
    assert response.status_code == 422
    assert "sort" in response.text


# ------------------------------------------------------------------ search


def test_search_finds_cell_lines_case_insensitively(client, store) -> None:
    line = next(e.cell_lines[0] for e in evidence(store) if e.cell_lines)
    with_line = {e.id for e in evidence(store) if line in e.cell_lines}
    found = set(
        table_ids(
            client.get("/evidence", params={"q": line.lower(), "limit": MAX_LIMIT}).text,
            "evidence-table",
            "evidence",
        )
    )
    assert with_line <= found
    for item_id in found:
        item = store.get(item_id)
        assert line.casefold() in item.model_dump_json().casefold()


def test_search_needs_every_word(client, store) -> None:
    item = next(e for e in evidence(store) if e.notes and len(e.notes.split()) > 3)
    words = [w for w in item.notes.split() if len(w) > 5][:2]
    one = client.get("/api/evidence", params={"q": words[0], "limit": MAX_LIMIT}).json()
    both = client.get("/api/evidence", params={"q": " ".join(words), "limit": MAX_LIMIT}).json()
    assert item.id in [e["id"] for e in both["items"]]
    assert both["total"] <= one["total"]
    nothing = client.get("/api/evidence", params={"q": words[0] + " zzqqxx-nowhere"}).json()
    assert nothing["total"] == 0


def test_search_by_id_and_summary(client, store) -> None:
    item = evidence(store)[5]
    by_id = client.get("/api/evidence", params={"q": item.id}).json()
    assert item.id in [e["id"] for e in by_id["items"]]
    fragment = " ".join(item.provenance.summary.split()[:4])
    by_summary = client.get("/api/evidence", params={"q": fragment, "limit": MAX_LIMIT}).json()
    assert item.id in [e["id"] for e in by_summary["items"]]


def test_site_search_covers_studies_and_trials(client, store) -> None:
    trial = store.dataset().trials[0]
    page = client.get("/search", params={"q": trial.nct_id}).text
    assert f'href="/trials/{trial.nct_id}"' in page
    study = store.dataset().studies[10]
    page = client.get("/search", params={"q": study.title.split()[0] + " " + str(study.year)}).text
    assert f'href="/studies/{study.id}"' in page


# ------------------------------------------------------------------ record pages


def test_evidence_page_shows_every_field_dose_provenance_flags_and_history(client, store) -> None:
    item = next(e for e in evidence(store) if e.flags and e.notes and not e.dose.is_empty)
    page = client.get(f"/evidence/{item.id}")
    assert page.status_code == 200
    html = page.text
    for field in item.model_dump():
        assert f'id="field-{field}"' in html, field
    text = unescape(html)
    assert item.dose.describe() in text
    if item.dose.text:
        assert item.dose.text in text
    study = store.get(item.study)
    assert study.title.rstrip(".") in text and str(study.year) in text
    assert item.provenance.summary in text and item.provenance.review_location in text
    for flag in item.flags:
        assert flag.note in text and flag.code.replace("_", " ") in text
    assert item.notes in text
    revisions = store.revisions(item.id)
    assert revisions
    for r in revisions:
        assert r["changed_at"] in text and r["reason"] in text


def test_revision_history_shows_a_new_version(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'w.sqlite'}")
    item = store.get("ev-029-a")
    changed = item.model_copy(update={"notes": "Re-read against the full text."})
    store.load(
        store.dataset().model_copy(update={"evidence": [changed], "studies": [], "trials": []}),
        reason="re-check",
    )
    html = TestClient(create_app(store)).get("/evidence/ev-029-a").text
    rows = re.findall(r"<tr><td>(\d+)</td><td>[^<]+</td><td>([^<]+)</td><td>([^<]+)</td></tr>", html)
    assert [r[0] for r in rows] == ["1", "2"]
    assert "re-check" in rows[1][2]
    assert "Re-read against the full text." in html


def test_study_page_lists_its_evidence(client, store) -> None:
    counts = Counter(e.study for e in evidence(store))
    study_id, n = counts.most_common(1)[0]
    page = client.get(f"/studies/{study_id}").text
    linked = set(re.findall(r'<td[^>]*><a href="/evidence/([^"]+)">', page))
    assert linked == {e.id for e in evidence(store) if e.study == study_id}
    assert len(linked) == n
    study = store.get(study_id)
    for field in study.model_dump():
        assert f'id="field-{field}"' in page


def test_study_list_counts_evidence(client, store) -> None:
    page = client.get("/studies").text
    assert table_ids(page, "study-table", "studies") == [s.id for s in store.dataset().studies]


def test_trial_page_shows_every_field(client, store) -> None:
    trial = next(t for t in store.dataset().trials if t.flags)
    page = client.get(f"/trials/{trial.nct_id}").text
    for field in trial.model_dump():
        assert f'id="field-{field}"' in page
    assert unescape(trial.flags[0].note) in unescape(page)
    assert trial.provenance.review_location in unescape(page)


def test_trial_page_lists_its_preclinical_roots(client, store) -> None:
    from mscatlas.trials.roots import trial_roots

    dataset = store.dataset(only_accepted=True)
    rooted = [(t, trial_roots(t, dataset.evidence)) for t in dataset.trials]
    trial, roots = next((t, r) for t, r in rooted if r.items)
    page = client.get(f"/trials/{trial.nct_id}").text
    section = page[page.index('id="roots"') : page.index("<h2>Flags</h2>")]
    assert re.findall(r'href="/evidence/([^"]+)"', section) == roots.items
    assert roots.verdict.replace("_", " ") in section


# ------------------------------------------------------------------ trials


def test_trial_explorer_filters_and_counts(client, store) -> None:
    trials = store.dataset().trials
    purpose = Counter(t.purpose.value for t in trials).most_common(1)[0][0]
    page = client.get("/trials", params={"purpose": purpose}).text
    expected = sorted(t.nct_id for t in trials if t.purpose.value == purpose)
    assert table_ids(page, "trial-table", "trials") == expected
    data = client.get("/api/trials", params={"purpose": purpose}).json()
    assert data["facets"]["phase"] == dict(
        Counter(p.value for t in trials if t.purpose.value == purpose for p in t.phases)
    )
    statuses = Counter(t.status or "not_recorded" for t in trials)
    for status, n in statuses.items():
        assert client.get("/api/trials", params={"status": status}).json()["total"] == n


def test_trial_explorer_sorts_by_enrolment(client, store) -> None:
    ids = table_ids(client.get("/trials?sort=enrollment&order=asc").text, "trial-table", "trials")
    by_id = {t.nct_id: t for t in store.dataset().trials}
    known = [by_id[i].enrollment for i in ids if by_id[i].enrollment is not None]
    assert known == sorted(known)
    # Trials without an enrolment come last.
    missing = [by_id[i].enrollment is None for i in ids]
    assert missing == sorted(missing)


# ------------------------------------------------------------------ conflict map and home


@pytest.mark.parametrize("level", ["type", "class"])
def test_conflict_map_shows_every_stratum_and_conflict(client, store, level) -> None:
    items = harmonize(store.dataset().evidence)
    strata = harvest(items, level)
    found = conflicts(items, level)
    page = client.get("/conflicts", params={"level": level}).text
    harvest_table = re.search(r'<table class="data" id="harvest">.*?</table>', page, re.S).group(0)
    assert harvest_table.count("<tr>") - 1 == len(strata)
    for conflict in found:
        for item in conflict.inhibiting + conflict.promoting:
            assert f'href="/evidence/{item.id}"' in page


def test_home_page_counts(client, store) -> None:
    page = client.get("/").text
    counts = store.counts()
    for kind in ("evidence", "studies", "trials"):
        assert f"<strong>{counts[kind]}</strong>" in page


def test_home_page_opens_with_the_answer_figure(client, store) -> None:
    from mscatlas.stats.answer import answer_rows

    page = client.get("/").text
    rows = answer_rows(store.dataset())
    assert rows, "the shipped data give at least one row"
    assert page.index('class="answer"') < page.index("evidence items</a>")
    figure = re.search(r'<figure class="answer">(.*?)</figure>', page, re.S).group(1)
    assert "style=" not in figure  # CSP: presentation attributes only
    for row in rows:
        assert unescape(row.label) in unescape(figure)


def _start(trial) -> str | None:
    value = trial.model_dump(mode="json").get("start_date")
    return value.get("date") if isinstance(value, dict) else value


def test_trial_explorer_sorts_by_start_date_and_shows_it(client, store) -> None:
    trials = {t.nct_id: t for t in store.dataset().trials}
    html = client.get("/trials?sort=start_date&order=asc").text
    ids = table_ids(html, "trial-table", "trials")
    starts = [_start(trials[i]) for i in ids]
    known = [s for s in starts if s is not None]
    assert known and known == sorted(known)
    assert [s is None for s in starts] == sorted(s is None for s in starts)
    dated = next(t for t in trials.values() if _start(t))
    page = client.get(f"/trials/{dated.nct_id}").text
    assert f"start {_start(dated)}" in page


def test_results_posted_facet_counts_every_trial(client, store) -> None:
    trials = store.dataset().trials
    facets = client.get("/api/trials").json()["facets"]["results_posted"]
    expected = Counter(
        "unknown" if getattr(t, "has_results", None) is None else ("yes" if t.has_results else "no")
        for t in trials
    )
    assert facets == dict(expected)
    for value, n in facets.items():
        assert client.get("/api/trials", params={"results_posted": value}).json()["total"] == n
