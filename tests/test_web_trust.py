"""Accounts, sessions and abuse (issue 9, points 11-15): logout revokes the session on the
server, sessions expire and end with a password change or deactivation; failed logins are
throttled per account and per address (429 + Retry-After) and Argon2 runs off the event loop;
`mscatlas users passwd/role/deactivate/list --json`; authenticated pages are not cached and
slow headers are cut off; simulations are rate-limited and their results kept. Store-backed
tests run on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import warnings
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from mscatlas.cli import app as cli_app
from mscatlas.kb.store import Store
from mscatlas.kb.store.accounts import LOGIN_FREE_FAILURES
from mscatlas.web import create_app
from mscatlas.web.auth import SESSION_COOKIE
from mscatlas.web.server import HeaderTimeoutProtocol
from mscatlas.web.simulate import ClientRateLimit, SimulationRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
runner = CliRunner()


@pytest.fixture
def store(empty_store: Store) -> Store:
    for name, role in [("cara", "curator"), ("ed", "editor")]:
        empty_store.add_user(name, role, PASSWORD)
    return empty_store


def _csrf(c: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def _login(c: TestClient, name: str, password: str = PASSWORD):
    return c.post("/login", data={"name": name, "password": password, "csrf_token": _csrf(c)})


def _who(c: TestClient) -> str | None:
    match = re.search(r'id="who">(\w+)', c.get("/").text)
    return match.group(1) if match else None


# ------------------------------------------------------------------ 11: sessions


def test_logout_revokes_the_session_on_the_server(store: Store) -> None:
    app = create_app(store, secret_key="k")
    c = TestClient(app, follow_redirects=False)
    assert _login(c, "ed").status_code == 303
    stolen = c.cookies.get(SESSION_COOKIE)
    assert _who(c) == "ed" and store.session_count("ed") == 1
    c.post("/logout", data={"csrf_token": _csrf(c, "/")})
    assert store.session_count("ed") == 0
    replay = TestClient(app, follow_redirects=False)
    replay.cookies.set(SESSION_COOKIE, stolen)
    assert _who(replay) is None  # the replayed cookie is no longer a session


def test_sessions_expire_and_end_with_a_password_change_or_deactivation(store: Store) -> None:
    expired = store.create_session("ed", timedelta(seconds=-1))
    assert store.session_user(expired) is None
    live = store.create_session("ed", timedelta(hours=1))
    assert store.session_user(live).name == "ed"
    store.set_password("ed", "another long password")
    assert store.session_user(live) is None
    app = create_app(store, secret_key="k")
    c = TestClient(app, follow_redirects=False)
    assert _login(c, "cara").status_code == 303 and _who(c) == "cara"
    store.set_active("cara", False)
    assert _who(c) is None
    store.set_active("cara", True)
    assert _who(c) is None  # reactivating does not revive an ended session


def test_a_session_is_valid_across_workers(store: Store) -> None:
    """Two app instances (two workers) over one store and one key share sessions."""
    first = TestClient(create_app(store, secret_key="shared"), follow_redirects=False)
    assert _login(first, "ed").status_code == 303
    second = TestClient(create_app(store, secret_key="shared"), follow_redirects=False)
    second.cookies.set(SESSION_COOKIE, first.cookies.get(SESSION_COOKIE))
    assert _who(second) == "ed"


# ------------------------------------------------------------------ 12: throttling


def test_wrong_passwords_are_throttled_per_account(store: Store) -> None:
    c = TestClient(create_app(store, secret_key="k"), follow_redirects=False)
    for _ in range(LOGIN_FREE_FAILURES + 1):
        assert _login(c, "ed", "wrong password!").status_code == 401
    locked = _login(c, "ed")  # even the right password waits out the lock
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 2
    time.sleep(int(locked.headers["retry-after"]))
    assert _login(c, "ed").status_code == 303  # after the lock, and a success clears the count


def test_wrong_passwords_are_throttled_per_address(store: Store) -> None:
    c = TestClient(create_app(store, secret_key="k"), follow_redirects=False)
    for i in range(LOGIN_FREE_FAILURES + 1):
        assert _login(c, f"guess{i}", "wrong password!").status_code == 401
    refused = _login(c, "somebody-else", "wrong password!")
    assert refused.status_code == 429 and "retry-after" in refused.headers


def test_password_checks_run_off_the_event_loop(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store.authenticate

    def slow(name: str, password: str):
        time.sleep(1.0)  # a blocking check, as Argon2 is
        return real(name, password)

    monkeypatch.setattr(store, "authenticate", slow)
    app = create_app(store, secret_key="k")

    async def scenario() -> tuple[float, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            started = time.perf_counter()

            async def login() -> float:
                await client.post("/login", data={"name": "ed", "password": "x" * 9, "csrf_token": token})
                return time.perf_counter() - started

            async def browse() -> float:
                await asyncio.sleep(0.1)
                await client.get("/api/evidence")
                return time.perf_counter() - started

            return tuple(await asyncio.gather(login(), browse()))  # type: ignore[return-value]

    login_took, browse_took = asyncio.run(scenario())
    assert login_took >= 1.0
    assert browse_took < 0.9  # served while the password check was still running


# ------------------------------------------------------------------ 13: users


def test_users_passwd_role_deactivate_and_list(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    Store.open(db, seed=False).close()
    add = ["users", "add", "ann", "--role", "curator", "--password-stdin", "--db", db]
    assert runner.invoke(cli_app, add, input=PASSWORD + "\n").exit_code == 0
    store = Store.open(db)
    token = store.create_session("ann", timedelta(hours=1))
    result = runner.invoke(
        cli_app, ["users", "passwd", "ann", "--password-stdin", "--db", db], input="new password 1\n"
    )
    assert result.exit_code == 0, result.output
    assert store.authenticate("ann", "new password 1") is not None and store.session_user(token) is None
    assert runner.invoke(cli_app, ["users", "role", "ann", "editor", "--db", db]).exit_code == 0
    bad_role = runner.invoke(cli_app, ["users", "role", "ann", "admin", "--db", db])
    assert bad_role.exit_code != 0
    assert runner.invoke(cli_app, ["users", "deactivate", "ann", "--db", db]).exit_code == 0
    assert store.authenticate("ann", "new password 1") is None
    listed = json.loads(runner.invoke(cli_app, ["users", "list", "--json", "--db", db]).stdout)
    assert listed == [{"name": "ann", "role": "editor", "active": False}]
    assert runner.invoke(cli_app, ["users", "activate", "ann", "--db", db]).exit_code == 0
    assert store.get_user("ann").active
    missing = runner.invoke(cli_app, ["users", "deactivate", "nobody", "--db", db])
    assert missing.exit_code == 1 and "no user" in missing.output


# ------------------------------------------------------------------ 14: caching and slow headers


def test_authenticated_pages_are_not_cached(store: Store) -> None:
    c = TestClient(create_app(store, secret_key="k"), follow_redirects=False)
    assert _login(c, "ed").status_code == 303
    for path in ("/", "/curate", "/api/evidence"):
        assert c.get(path).headers["cache-control"] == "no-store", path
    anonymous = TestClient(create_app(store, secret_key="k"))
    assert "no-store" not in anonymous.get("/api/evidence").headers.get("cache-control", "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuickTimeout(HeaderTimeoutProtocol):
    header_timeout = 0.5


def test_slow_headers_are_cut_off(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}", seed=False)
    port = _free_port()
    config = uvicorn.Config(
        create_app(store, secret_key="k"), port=port, http=_QuickTimeout, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET /api/evidence HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
            started = time.monotonic()
            assert slow.recv(100) == b""  # closed by the server
            assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as fine:
            fine.sendall(b"GET /api/evidence HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert fine.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


# ------------------------------------------------------------------ 15: simulations


class _Instant:
    def __call__(self, spec, progress):
        return {"kind": "test"}, "<svg></svg>"


def test_simulations_are_rate_limited_per_client(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}", seed=False)
    registry = SimulationRegistry(max_workers=1, runner=_Instant())
    c = TestClient(create_app(store, simulations=registry, simulation_limit=ClientRateLimit(per_minute=3)))
    codes = [c.post("/api/simulations", json={}).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    refused = c.post("/api/simulations", json={})
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 20
    doc = c.get("/api/openapi.json").json()["paths"]["/api/simulations"]["post"]["description"]
    assert "rate-limited per client address" in doc and "do not survive a restart" in doc
    assert "kept for at least 30 minutes" in doc
    store.close()


def test_rate_limit_refills_with_time() -> None:
    now = [0.0]
    limit = ClientRateLimit(per_minute=2, clock=lambda: now[0])
    assert [limit.wait("a"), limit.wait("a")] == [0.0, 0.0]
    assert limit.wait("a") == pytest.approx(30.0)
    assert limit.wait("b") == 0.0  # another client has its own bucket
    now[0] = 30.0
    assert limit.wait("a") == 0.0


def test_a_finished_result_is_kept_for_the_retention_time(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}", seed=False)
    registry = SimulationRegistry(max_workers=1, max_jobs=1, retention_s=60, runner=_Instant())
    c = TestClient(create_app(store, simulations=registry))
    first = c.post("/api/simulations", json={}).json()["id"]
    deadline = time.monotonic() + 10
    while c.get(f"/api/simulations/{first}").json()["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    busy = c.post("/api/simulations", json={})
    assert busy.status_code == 503  # rather than forgetting a result nobody has fetched yet
    assert c.get(f"/api/simulations/{first}").json()["result"] == {"kind": "test"}
    store.close()


# ------------------------------------------------------------------ 1: upstream proposals on the web


def test_an_editor_reviews_an_upstream_proposal_with_its_diff(store: Store, mini_path: Path) -> None:
    from mscatlas.kb.records import validate_paths

    release_1, _ = validate_paths([mini_path])
    store.upgrade_shipped(release_1, "release-1")
    store.flag_evidence("ev-029-a", "unverified", "team flag", expected_version=1, by="cara")
    item = release_1.evidence[0].model_copy(update={"source_detail": "upstream <b>detail</b>"})
    release_2 = release_1.model_copy(update={"evidence": [item, *release_1.evidence[1:]]})
    proposal_id = store.upgrade_shipped(release_2, "release-2").proposed["ev-029-a"]

    c = TestClient(create_app(store, secret_key="k"), follow_redirects=False)
    assert _login(c, "ed").status_code == 303
    queue = c.get("/curate").text
    assert f'href="/curate/proposals/{proposal_id}"' in queue
    page = c.get(f"/curate/proposals/{proposal_id}")
    assert page.status_code == 200
    assert "upstream &lt;b&gt;detail" in page.text or "upstream \\u003cb\\u003edetail" in page.text
    assert "flags" in page.text  # accepting would drop the team's flag: the diff shows it
    version = int(re.search(r'name="version" value="(\d+)"', page.text).group(1))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    stale = c.post(
        f"/curate/proposals/{proposal_id}/review",
        data={"csrf_token": token, "version": str(version - 1), "decision": "accept", "reason": "x"},
    )
    assert stale.status_code == 409
    refused = c.post(
        f"/curate/proposals/{proposal_id}/review",
        data={"csrf_token": token, "version": str(version), "decision": "reject", "reason": "keep our flag"},
    )
    assert refused.status_code == 303
    assert store.proposal(proposal_id).status == "rejected"
    assert store.get("ev-029-a").flags[0].note == "team flag"
