"""Record pages read as people read (issue 15 point 5): the dose as "MSC:cancer 1:6", not a nested
structure; engineering named; no Python values (True/False/None) or JSON in the visible text;
cell lines in their own casing. The collapsed "Every field" list is the record as stored (field
names and raw values, for curators) and is left out of these checks."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from mscatlas.kb.shipped import shipped_dataset
from mscatlas.kb.store import Store
from mscatlas.web import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('people') / 'kb.sqlite'}")
    yield TestClient(create_app(store, secret_key="test-secret-key"))
    store.close()


def _visible(html: str) -> str:
    html = re.sub(r"<(style|script|head)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<details[^>]*>\s*<summary>Every field</summary>.*?</details>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def _assert_no_leaks(text: str, where: str) -> None:
    for leak in (r"\bTrue\b", r"\bFalse\b", r"\bNone\b", r"\{'", r'\{"', r"\bratios\b", r"\bmsc 1\.0\b"):
        found = re.search(leak, text)
        context = "" if found is None else text[max(0, found.start() - 60) : found.end() + 60]
        assert found is None, f"{where}: {leak} in ...{context}..."


def test_evidence_page_dose_and_values(client: TestClient) -> None:
    response = client.get("/evidence/ev-029-a")
    assert response.status_code == 200
    text = _visible(response.text)
    assert "MSC:cancer 1:6" in text
    _assert_no_leaks(text, "/evidence/ev-029-a")


def test_engineered_item_page_names_its_engineering(client: TestClient) -> None:
    items = shipped_dataset().evidence
    senescent = next(e for e in items if any(g.kind == "senescence" for g in e.engineering))
    native = next(e for e in items if not e.engineering)
    shown = _visible(client.get(f"/evidence/{senescent.id}").text)
    assert "senescence" in shown
    _assert_no_leaks(shown, senescent.id)
    assert "native" in _visible(client.get(f"/evidence/{native.id}").text)


def test_cell_lines_keep_their_casing_on_the_page(client: TestClient) -> None:
    item = next(e for e in shipped_dataset().evidence if {"BJAB", "SKW 6.4"} <= set(e.cell_lines))
    text = _visible(client.get(f"/evidence/{item.id}").text)
    assert "BJAB" in text and "SKW 6.4" in text
    assert "bjab" not in text and "Bjab" not in text
    _assert_no_leaks(text, item.id)


@pytest.mark.parametrize("path", ["/studies/ref29", "/trials/NCT02530047"])
def test_study_and_trial_pages_have_no_python_values(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    _assert_no_leaks(_visible(response.text), path)


def test_the_leak_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        _assert_no_leaks("dose dependent: True vs None", "example")
    with pytest.raises(AssertionError):
        _assert_no_leaks("ratios / msc 1.0 / cancer 10.0", "example")


