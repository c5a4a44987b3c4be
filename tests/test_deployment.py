"""A production deployment (issue 9, point 17): `mscatlas serve --workers 2` over one store
(SQLite, and PostgreSQL when MSCATLAS_TEST_POSTGRES_URL is set) serves a logged-in session on
every request, whichever worker answers, and logging out ends it on all of them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import Store

PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def url(blank_url: str, mini_path: Path) -> str:
    """A store on SQLite and, when configured, PostgreSQL, with the mini dataset and an editor."""
    url = blank_url
    store = Store.open(url, seed=False)
    dataset, errors = validate_paths([mini_path])
    assert not errors
    store.load(dataset)
    store.add_user("ed", "editor", PASSWORD)
    store.close()
    return url


def test_two_workers_share_sessions(url: str) -> None:
    port = _free_port()
    command = [sys.executable, "-c", "from mscatlas.cli import main; main()", "serve"]
    command += ["--db", url, "--port", str(port), "--workers", "2"]
    env = {key: value for key, value in os.environ.items() if key != "MSCATLAS_SECRET_KEY"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # each worker imports the app (seconds on a busy machine)
        while True:
            try:
                if httpx.get(f"{base}/api/evidence", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        # A new connection per request, so that the kernel hands requests to both workers.
        with httpx.Client(base_url=base, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
            login = client.post("/login", data={"name": "ed", "password": PASSWORD, "csrf_token": token})
            assert login.status_code == 303
            for _ in range(20):
                page = client.get("/curate")
                assert page.status_code == 200 and 'id="who">ed' in page.text
                assert page.headers["cache-control"] == "no-store"
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            assert client.post("/logout", data={"csrf_token": token}).status_code == 303
            for _ in range(5):
                assert 'id="who"' not in client.get("/curate").text
    finally:
        server.terminate()
        server.wait(30)
