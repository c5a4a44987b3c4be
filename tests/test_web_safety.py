"""Safety of the web app: escaping, security headers, body size limit, 404s, hostile input."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import pytest

from mscatlas.kb.models import Dataset, EvidenceItem
from mscatlas.kb.store import Store
from mscatlas.web import create_app
from mscatlas.web.security import SECURITY_HEADERS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 instead of httpx; both work
    from fastapi.testclient import TestClient

PAYLOAD = '<script>alert("pwned")</script>'
ATTR_PAYLOAD = '"><img src=x onerror=alert(1)>'
LIMIT = 4096


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A store holding, besides the shipped data, one item whose free text is hostile HTML."""
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('safe') / 'w.sqlite'}")
    base = store.get("ev-029-a")
    data = base.model_dump(mode="json", exclude={"engineered", "ontology"})
    data.update(
        id="ev-xss-a",
        notes=f"Curator note {PAYLOAD} and {ATTR_PAYLOAD}",
        source_detail=PAYLOAD,
        provenance={**data["provenance"], "summary": f"Summary {PAYLOAD}"},
        flags=[{"code": "unverified", "note": f"flag {PAYLOAD}"}],
    )
    store.load(Dataset(evidence=[EvidenceItem.model_validate(data)]), reason=f"test {PAYLOAD}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store, max_body_bytes=LIMIT))


ESCAPED = "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;"


def assert_no_live_markup(html: str) -> None:
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "onerror=alert" not in html or "&#34;&gt;&lt;img" in html


@pytest.mark.parametrize(
    "path",
    [
        "/evidence/ev-xss-a",
        "/evidence?q=pwned",
        "/search?q=pwned",
        "/studies/ref29",
        "/conflicts",
        "/evidence?reference=29",
    ],
)
def test_hostile_text_is_shown_as_text(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert PAYLOAD not in response.text
    assert_no_live_markup(response.text)


def test_record_page_shows_the_escaped_note(client) -> None:
    html = client.get("/evidence/ev-xss-a").text
    assert ESCAPED in html  # the note is there, as text
    assert "Curator note " + ESCAPED in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    # The revision reason came from the loader: escaped too.
    assert "test " + ESCAPED in html


def test_reflected_query_is_escaped_in_attributes_and_text(client) -> None:
    for path in ("/evidence", "/search", "/trials"):
        html = client.get(path, params={"q": ATTR_PAYLOAD}).text
        assert ATTR_PAYLOAD not in html
        assert "<img" not in html
        assert 'value="&#34;&gt;&lt;img' in html


def test_error_messages_are_escaped(client) -> None:
    response = client.get("/evidence", params={"direction": PAYLOAD})
    assert response.status_code == 422
    assert PAYLOAD not in response.text and "&lt;script&gt;" in response.text
    response = client.get("/evidence/" + "%3Cscript%3Ex%3C%2Fscript%3E")
    assert response.status_code == 404
    assert "<script>x" not in response.text and "&lt;script&gt;x" in response.text


def test_api_returns_the_text_as_data(client) -> None:
    data = client.get("/api/evidence/ev-xss-a").json()
    assert PAYLOAD in data["evidence"]["notes"]
    response = client.get("/api/evidence/ev-xss-a")
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/evidence",
        "/evidence/ev-029-a",
        "/api/evidence",
        "/nowhere",
        "/evidence?setting=x",
        "/static/style.css",
    ],
)
def test_security_headers_on_every_response(client, path) -> None:
    response = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    csp = response.headers["content-security-policy"]
    assert "http:" not in csp and "https:" not in csp and "*" not in csp
    assert "default-src 'none'" in csp


@pytest.mark.parametrize(
    "path", ["/", "/evidence", "/evidence/ev-029-a", "/studies", "/trials", "/conflicts", "/api"]
)
def test_pages_load_nothing_from_elsewhere_and_run_no_script(client, path) -> None:
    html = client.get(path).text
    assert "<script" not in html
    assert not re.search(r'src="(?:https?:)?//', html)  # nothing is fetched from elsewhere...
    # ...though identifiers link out to their public pages (issue 15 point 10): anchors only
    assert set(re.findall(r'<(\w+)\b[^>]*\bhref="(?:https?:)?//', html)) <= {"a"}
    assert " style=" not in html  # inline styles would be blocked by the CSP


def test_body_over_the_limit_is_413(client) -> None:
    response = client.post("/api/evidence", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_chunked_body_over_the_limit_is_413(client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 512 + 2):
            yield b"y" * 512

    response = client.post("/api/evidence", content=chunks())
    assert response.status_code == 413


def test_small_body_reaches_the_router(client) -> None:
    # The API is read-only: a small POST is refused by method, not by size.
    response = client.post("/api/evidence", content=b"{}")
    assert response.status_code == 405


@pytest.mark.parametrize(
    "path",
    ["/evidence/ev-nope", "/studies/ref999", "/trials/NCT99999999", "/studies/ev-029-a", "/trials/ref29"],
)
def test_unknown_ids_get_a_404_page(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert path.rsplit("/", 1)[-1] in response.text


def test_sql_looking_input_is_just_text(client, store) -> None:
    n = store.counts()["evidence"]
    assert client.get("/evidence/ev-029-a' OR '1'='1").status_code == 404
    data = client.get("/api/evidence", params={"q": "' OR 1=1 --"}).json()
    assert data["total"] == 0
    assert client.get("/api/evidence", params={"limit": 500}).json()["total"] == n
    assert client.get("/api/trials", params={"status": "x' OR '1'='1"}).status_code == 422


def test_overlong_query_is_422(client) -> None:
    assert client.get("/api/evidence", params={"q": "a" * 1000}).status_code == 422
