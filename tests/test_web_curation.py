"""Curation in the browser: accounts and roles, sessions, CSRF, submit and review, flags,
revisions with who/when/why, and optimistic locking. Runs on SQLite and, when a server is
configured, PostgreSQL (through the ``empty_store`` fixture)."""

from __future__ import annotations

import re
import warnings
from html import unescape
from pathlib import Path

import pytest
import yaml

from mscatlas.kb.models import EvidenceItem
from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import Store
from mscatlas.web import create_app
from mscatlas.web.auth import SESSION_COOKIE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2 instead of httpx; both work
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
PAYLOAD = '<script>alert("x")</script>'


@pytest.fixture
def store(empty_store: Store, mini_path: Path) -> Store:
    dataset, errors = validate_paths([mini_path])
    assert not errors
    empty_store.load(dataset)
    for name, role in [("vic", "viewer"), ("cara", "curator"), ("ed", "editor"), ("eve", "editor")]:
        empty_store.add_user(name, role, PASSWORD)
    return empty_store


@pytest.fixture
def app(store: Store):
    return create_app(store, secret_key="test-secret-key")


def client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def csrf(c: TestClient, path: str = "/login") -> str:
    page = c.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def login(app, name: str) -> TestClient:
    c = client(app)
    response = c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf(c)})
    assert response.status_code == 303, response.text
    return c


def new_item_yaml(store: Store, **changes) -> str:
    """A valid new evidence item: a copy of a stored one under a fresh id, as YAML."""
    base = store.query_evidence()[0]
    data = base.model_dump(
        mode="json", exclude_none=True, exclude={"engineered", "ontology", "curation_status"}
    )
    data.update({"id": "ev-web-a", **changes})
    return yaml.safe_dump(data, sort_keys=False)


def submit(c: TestClient, text: str, reason: str = "from the full text"):
    return c.post(
        "/curate/submit", data={"yaml": text, "reason": reason, "csrf_token": csrf(c, "/curate/submit")}
    )


def version_on_page(c: TestClient, record_id: str) -> int:
    html = c.get(f"/evidence/{record_id}").text
    return int(re.search(r'name="version" value="(\d+)"', html).group(1))


# ------------------------------------------------------------------ accounts and sessions


def test_login_sets_a_protected_session_cookie_and_logout_ends_it(app) -> None:
    c = client(app)
    token = csrf(c)
    bad = c.post("/login", data={"name": "ed", "password": "wrong password", "csrf_token": token})
    assert bad.status_code == 401 and "wrong name or password" in bad.text
    response = c.post(
        "/login", data={"name": "ed", "password": PASSWORD, "csrf_token": csrf(c), "next": "/curate"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/curate"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http in tests; https adds it
    page = c.get("/curate").text
    assert re.search(r'id="who">ed <span class="muted">\(editor\)', page)
    # The token changes on login (no session fixation of the CSRF token).
    assert csrf(c, "/curate") != token
    out = c.post("/logout", data={"csrf_token": csrf(c, "/curate")})
    assert out.status_code == 303
    assert 'id="who"' not in c.get("/curate").text
    assert c.get("/curate/submit").status_code == 303  # back to the login page


def test_cookie_is_secure_over_https(app) -> None:
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    response = c.post("/login", data={"name": "ed", "password": PASSWORD, "csrf_token": csrf(c)})
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_login_redirect_stays_on_this_site(app) -> None:
    c = client(app)
    response = c.post(
        "/login",
        data={"name": "ed", "password": PASSWORD, "csrf_token": csrf(c), "next": "//evil.example/x"},
    )
    assert response.headers["location"] == "/"


def test_a_forged_or_stale_cookie_is_not_a_session(app, store: Store) -> None:
    c = login(app, "cara")
    assert 'id="who">cara' in c.get("/").text
    store.set_password("cara", "a brand new password")  # ends every session of cara
    assert 'id="who"' not in c.get("/").text
    forged = client(app)
    forged.cookies.set(SESSION_COOKIE, "eyJ1IjoiZWQifQ.forged.signature")
    assert 'id="who"' not in forged.get("/").text


def test_roles_decide_who_writes(app, store: Store) -> None:
    anonymous = client(app)
    assert anonymous.get("/curate/submit").headers["location"].startswith("/login?next=")
    token = csrf(anonymous)
    refused = anonymous.post("/curate/submit", data={"yaml": new_item_yaml(store), "csrf_token": token})
    assert refused.status_code == 403
    viewer = login(app, "vic")
    assert viewer.get("/curate/submit").status_code == 403
    token = csrf(viewer, "/curate")
    assert (
        viewer.post("/curate/submit", data={"yaml": new_item_yaml(store), "csrf_token": token}).status_code
        == 403
    )
    assert store.evidence_version("ev-web-a") is None
    curator = login(app, "cara")
    assert submit(curator, new_item_yaml(store)).status_code == 303
    # A curator cannot review, even someone else's item.
    version = version_on_page(curator, "ev-web-a")
    other = login(app, "cara")
    response = other.post(
        "/evidence/ev-web-a/review",
        data={"decision": "accept", "version": version, "csrf_token": csrf(other, "/curate")},
    )
    assert response.status_code == 403 and "editor" in unescape(response.text)
    assert store.get("ev-web-a").curation_status.value == "submitted"


# ------------------------------------------------------------------ CSRF


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_posts_without_the_session_csrf_token_are_refused(app, store: Store, token: str | None) -> None:
    c = login(app, "cara")
    item_id = store.query_evidence()[0].id
    version = store.evidence_version(item_id)
    forms = {
        "/curate/submit": {"yaml": new_item_yaml(store)},
        f"/evidence/{item_id}/flag": {"code": "unverified", "note": "check", "version": version},
        "/logout": {},
        "/login": {"name": "ed", "password": PASSWORD},
    }
    for path, data in forms.items():
        if token is not None:
            data = {**data, "csrf_token": token}
        response = c.post(path, data=data)
        assert response.status_code == 403, path
        assert "CSRF" in response.text
    assert store.evidence_version("ev-web-a") is None
    assert store.evidence_version(item_id) == version
    assert 'id="who">cara' in c.get("/").text  # the refused logout did not log out


def test_token_of_another_session_is_refused(app, store: Store) -> None:
    mine = login(app, "cara")
    theirs = login(app, "ed")
    response = mine.post(
        "/curate/submit", data={"yaml": new_item_yaml(store), "csrf_token": csrf(theirs, "/")}
    )
    assert response.status_code == 403


def test_cross_site_origin_is_refused(app, store: Store) -> None:
    c = login(app, "cara")
    response = c.post(
        "/curate/submit",
        data={"yaml": new_item_yaml(store), "csrf_token": csrf(c, "/curate")},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert store.evidence_version("ev-web-a") is None


def test_form_posts_keep_the_size_limit(store: Store) -> None:
    app = create_app(store, secret_key="k", max_body_bytes=2048)
    c = login(app, "cara")
    response = c.post("/curate/submit", data={"yaml": "x" * 4096, "csrf_token": csrf(c, "/curate")})
    assert response.status_code == 413


# ------------------------------------------------------------------ submit and review


def test_submit_with_an_error_then_fixed_then_accepted_by_another_editor(app, store: Store) -> None:
    ed = login(app, "ed")
    bad = submit(ed, new_item_yaml(store, direction="sideways", cancer_type="no such cancer"))
    assert bad.status_code == 422
    text = unescape(bad.text)
    errors = re.findall(r'<li class="field-error" data-field="([^"]*)">', bad.text)
    assert set(errors) == {"direction", "cancer_type"}
    assert "sideways" in text  # the text typed is kept in the form
    assert store.evidence_version("ev-web-a") is None

    good = submit(ed, new_item_yaml(store))
    assert good.status_code == 303 and good.headers["location"] == "/evidence/ev-web-a"
    stored = store.get("ev-web-a")
    assert isinstance(stored, EvidenceItem) and stored.curation_status.value == "submitted"
    page = ed.get("/evidence/ev-web-a").text
    assert "unreviewed" in page
    assert "ev-web-a" in ed.get("/curate").text
    assert "submitted" in client(app).get("/evidence?curation_status=submitted").text

    # The submitter cannot review their own item, even as an editor.
    version = version_on_page(ed, "ev-web-a")
    assert "Accept" not in ed.get("/evidence/ev-web-a").text
    own = ed.post(
        "/evidence/ev-web-a/review",
        data={"decision": "accept", "version": version, "csrf_token": csrf(ed, "/curate")},
    )
    assert own.status_code == 403
    assert store.get("ev-web-a").curation_status.value == "submitted"

    eve = login(app, "eve")
    accepted = eve.post(
        "/evidence/ev-web-a/review",
        data={
            "decision": "accept",
            "version": version,
            "reason": "checked",
            "csrf_token": csrf(eve, "/curate"),
        },
    )
    assert accepted.status_code == 303
    assert store.get("ev-web-a").curation_status.value == "accepted"
    assert "ev-web-a" not in eve.get("/curate").text
    history = store.revisions("ev-web-a")
    assert [(r["changed_by"], r["reason"]) for r in history] == [
        ("ed", "submitted: from the full text"),
        ("eve", "accepted: checked"),
    ]
    assert history[-1]["fields"] == ["curation_status"]
    # Reviewing again is refused: the item no longer awaits review.
    again = eve.post(
        "/evidence/ev-web-a/review",
        data={"decision": "reject", "version": version + 1, "reason": "no", "csrf_token": csrf(eve, "/")},
    )
    assert again.status_code == 409


def test_submission_cannot_claim_acceptance_or_reuse_an_id(app, store: Store) -> None:
    c = login(app, "cara")
    claimed = submit(c, new_item_yaml(store) + "curation_status: accepted\n")
    assert claimed.status_code == 422 and 'data-field="curation_status"' in claimed.text
    taken = store.query_evidence()[0].id
    reused = submit(c, new_item_yaml(store, id=taken))
    assert reused.status_code == 422 and 'data-field="id"' in reused.text
    broken = submit(c, "id: [unclosed")
    assert broken.status_code == 422 and "invalid YAML" in broken.text


def test_reject_needs_a_reason_and_is_recorded(app, store: Store) -> None:
    cara = login(app, "cara")
    assert submit(cara, new_item_yaml(store)).status_code == 303
    ed = login(app, "ed")
    version = version_on_page(ed, "ev-web-a")
    silent = ed.post(
        "/evidence/ev-web-a/review",
        data={"decision": "reject", "version": version, "csrf_token": csrf(ed, "/")},
    )
    assert silent.status_code == 422
    rejected = ed.post(
        "/evidence/ev-web-a/review",
        data={"decision": "reject", "version": version, "reason": "wrong model", "csrf_token": csrf(ed, "/")},
    )
    assert rejected.status_code == 303
    assert store.get("ev-web-a").curation_status.value == "rejected"
    assert store.revisions("ev-web-a")[-1]["reason"] == "rejected: wrong model"


def test_an_editor_who_edited_a_submission_cannot_review_it(app, store: Store) -> None:
    cara = login(app, "cara")
    assert submit(cara, new_item_yaml(store)).status_code == 303
    ed = login(app, "ed")
    version = version_on_page(ed, "ev-web-a")
    edited = ed.post(
        "/evidence/ev-web-a/edit",
        data={
            "yaml": new_item_yaml(store, notes="tightened the summary"),
            "version": version,
            "reason": "wording",
            "csrf_token": csrf(ed, "/"),
        },
    )
    assert edited.status_code == 303
    assert store.submitters("ev-web-a") == {"cara", "ed"}
    own = ed.post(
        "/evidence/ev-web-a/review",
        data={"decision": "accept", "version": version + 1, "csrf_token": csrf(ed, "/")},
    )
    assert own.status_code == 403


# ------------------------------------------------------------------ flags and history


def test_flag_and_unflag_with_comments_show_in_the_history(app, store: Store) -> None:
    item_id = store.query_evidence()[0].id
    before = len(store.get(item_id).flags)
    cara = login(app, "cara")
    version = version_on_page(cara, item_id)
    flagged = cara.post(
        f"/evidence/{item_id}/flag",
        data={
            "code": "abstract_only",
            "note": "only the abstract was read",
            "version": version,
            "csrf_token": csrf(cara, "/"),
        },
    )
    assert flagged.status_code == 303
    flags = store.get(item_id).flags
    assert len(flags) == before + 1 and flags[-1].code == "abstract_only"
    unknown = cara.post(
        f"/evidence/{item_id}/flag",
        data={"code": "made_up", "note": "x", "version": version + 1, "csrf_token": csrf(cara, "/")},
    )
    assert unknown.status_code == 422
    unflagged = cara.post(
        f"/evidence/{item_id}/unflag",
        data={
            "index": len(flags),
            "code": "abstract_only",
            "comment": "full text read now",
            "version": version + 1,
            "csrf_token": csrf(cara, "/"),
        },
    )
    assert unflagged.status_code == 303
    assert len(store.get(item_id).flags) == before
    page = unescape(client(app).get(f"/evidence/{item_id}").text)
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", page)
    history = store.revisions(item_id)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (str(h["version"]), h["changed_at"], h["changed_by"], h["reason"]) for h in history
    ]
    assert rows[-2][2:] == ("cara", "flagged abstract_only: only the abstract was read")
    assert rows[-1][2:] == ("cara", "unflagged abstract_only: full text read now")
    assert "fields changed: flags" in page


def test_submitted_text_is_escaped(app, store: Store) -> None:
    cara = login(app, "cara")
    assert (
        submit(cara, new_item_yaml(store, notes=f"note {PAYLOAD}"), reason=f"why {PAYLOAD}").status_code
        == 303
    )
    version = version_on_page(cara, "ev-web-a")
    cara.post(
        "/evidence/ev-web-a/flag",
        data={
            "code": "unverified",
            "note": f"flag {PAYLOAD}",
            "version": version,
            "csrf_token": csrf(cara, "/"),
        },
    )
    for path in ("/evidence/ev-web-a", "/curate"):
        html = client(app).get(path).text
        assert "<script" not in html.lower()
    html = client(app).get("/evidence/ev-web-a").text
    assert "&lt;script&gt;" in html and PAYLOAD in unescape(html)
    bad = submit(cara, new_item_yaml(store, id="ev-web-b", direction=PAYLOAD))
    assert bad.status_code == 422 and "<script" not in bad.text.lower()


# ------------------------------------------------------------------ optimistic locking


def test_two_sessions_editing_one_record_conflict_instead_of_overwriting(app, store: Store) -> None:
    item_id = store.query_evidence()[0].id
    cara, ed = login(app, "cara"), login(app, "ed")
    start = version_on_page(cara, item_id)
    assert version_on_page(ed, item_id) == start
    first = cara.post(
        f"/evidence/{item_id}/edit",
        data={
            "yaml": _edited(store, item_id, "first curator's note"),
            "version": start,
            "reason": "note",
            "csrf_token": csrf(cara, "/"),
        },
    )
    assert first.status_code == 303
    second = ed.post(
        f"/evidence/{item_id}/edit",
        data={
            "yaml": _edited(store, item_id, "second curator's note"),
            "version": start,
            "reason": "note",
            "csrf_token": csrf(ed, "/"),
        },
    )
    assert second.status_code == 409
    text = unescape(second.text)
    assert f"version {start}" in text and f"version is {start + 1}" in text and "cara" in text
    assert "second curator's note" in text  # the losing text is shown, not lost
    assert store.get(item_id).notes == "first curator's note"
    assert store.evidence_version(item_id) == start + 1
    # A stale flag or review is refused the same way.
    stale_flag = ed.post(
        f"/evidence/{item_id}/flag",
        data={"code": "unverified", "note": "n", "version": start, "csrf_token": csrf(ed, "/")},
    )
    assert stale_flag.status_code == 409
    stale_review = ed.post(
        f"/evidence/{item_id}/review",
        data={"decision": "accept", "version": start, "csrf_token": csrf(ed, "/")},
    )
    assert stale_review.status_code == 409
    assert store.get(item_id).curation_status.value == "submitted"
    # Starting again from the current version works.
    again = ed.post(
        f"/evidence/{item_id}/edit",
        data={
            "yaml": _edited(store, item_id, "merged note"),
            "version": start + 1,
            "reason": "merge",
            "csrf_token": csrf(ed, "/"),
        },
    )
    assert again.status_code == 303 and store.get(item_id).notes == "merged note"


def test_edit_needs_a_reason_and_keeps_the_id(app, store: Store) -> None:
    item_id = store.query_evidence()[0].id
    cara = login(app, "cara")
    form = cara.get(f"/evidence/{item_id}/edit").text
    shown = unescape(re.search(r'<textarea id="item-yaml"[^>]*>(.*?)</textarea>', form, re.S).group(1))
    assert yaml.safe_load(shown)["id"] == item_id
    version = store.evidence_version(item_id)
    no_reason = cara.post(
        f"/evidence/{item_id}/edit",
        data={"yaml": shown, "version": version, "reason": "", "csrf_token": csrf(cara, "/")},
    )
    assert no_reason.status_code == 422 and 'data-field="reason"' in no_reason.text
    renamed = cara.post(
        f"/evidence/{item_id}/edit",
        data={
            "yaml": shown.replace(f"id: {item_id}", "id: ev-other-z"),
            "version": version,
            "reason": "x",
            "csrf_token": csrf(cara, "/"),
        },
    )
    assert renamed.status_code == 422 and 'data-field="id"' in renamed.text
    assert store.evidence_version(item_id) == version


def _edited(store: Store, item_id: str, notes: str) -> str:
    data = store.get(item_id).model_dump(
        mode="json", exclude_none=True, exclude={"engineered", "ontology", "curation_status"}
    )
    data["notes"] = notes
    return yaml.safe_dump(data, sort_keys=False)


def test_footer_shows_the_package_version_on_curation_pages(app, store: Store) -> None:
    """Issue 15 point 13: a page's own ``version`` (the record's, or None on submit) must not
    replace the package version in the footer."""
    from mscatlas import __version__

    item_id = store.query_evidence()[0].id
    editor = login(app, "ed")
    for path in ["/", "/curate/submit", f"/evidence/{item_id}/edit"]:
        page = editor.get(path)
        assert page.status_code == 200, (path, page.text)
        footer = re.search(r"<footer>mscatlas ([^ <]+)", page.text)
        assert footer, f"no footer on {path}"
        assert footer.group(1) == __version__, (path, footer.group(1))
