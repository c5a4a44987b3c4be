from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mscatlas.kb.store import Store

DATA = Path(__file__).parent / "data"
REVIEW = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "msc-cancer-review.txt"
# Tests that read the review skip without it, unless MSCATLAS_REQUIRE_REVIEW=1 (CI) makes absence fail.
REVIEW_REQUIRED = os.environ.get("MSCATLAS_REQUIRE_REVIEW") == "1"


def review_text() -> str:
    """The review's text; skips the calling test when it is absent (fails where it is required)."""
    if not REVIEW.is_file():
        message = f"review text not found at {REVIEW} (the shared reference folder is absent)"
        if REVIEW_REQUIRED:
            pytest.fail(message + "; MSCATLAS_REQUIRE_REVIEW=1")
        pytest.skip(message)
    return REVIEW.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _isolated_default_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's real store: the default URL points into tmp_path."""
    monkeypatch.setenv("MSCATLAS_DATABASE_URL", f"sqlite:///{tmp_path / 'default.sqlite'}")


@pytest.fixture
def mini_path() -> Path:
    return DATA / "mini.yaml"


POSTGRES_URL = os.environ.get("MSCATLAS_TEST_POSTGRES_URL")


def reset_postgres(url: str) -> None:
    """Drop every table of the test database, the migrations' version table included."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An empty store on SQLite, and on PostgreSQL when MSCATLAS_TEST_POSTGRES_URL names a
    server (CI sets it where it starts one; MSCATLAS_REQUIRE_POSTGRES=1 makes absence fail)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    elif POSTGRES_URL:
        url = POSTGRES_URL
        reset_postgres(url)
    elif os.environ.get("MSCATLAS_REQUIRE_POSTGRES") == "1":
        pytest.fail("MSCATLAS_TEST_POSTGRES_URL is not set but PostgreSQL tests are required")
    else:
        pytest.skip("no PostgreSQL server (set MSCATLAS_TEST_POSTGRES_URL)")
    store = Store.open(url, seed=False)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no tables at all) on SQLite and, when configured, PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blank.sqlite'}"
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)
        return POSTGRES_URL
    if os.environ.get("MSCATLAS_REQUIRE_POSTGRES") == "1":
        pytest.fail("MSCATLAS_TEST_POSTGRES_URL is not set but PostgreSQL tests are required")
    pytest.skip("no PostgreSQL server (set MSCATLAS_TEST_POSTGRES_URL)")
