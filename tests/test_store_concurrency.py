"""SQLite under concurrent use (issue 9, point 16): WAL mode lets readers go on while a writer
(a long `mscatlas load`) holds the database, and a busy timeout makes a second writer wait
for the first instead of failing with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from mscatlas.kb.records import validate_paths
from mscatlas.kb.store import Store
from mscatlas.kb.store.core import SQLITE_BUSY_TIMEOUT_MS


def _store(tmp_path: Path, mini_path: Path) -> tuple[Store, Path]:
    path = tmp_path / "kb.sqlite"
    store = Store.open(f"sqlite:///{path}", seed=False)
    dataset, errors = validate_paths([mini_path])
    assert not errors
    store.load(dataset)
    return store, path


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path, mini_path: Path) -> None:
    store, _ = _store(tmp_path, mini_path)
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS
    store.close()


def test_reads_go_on_while_a_writer_holds_the_database(tmp_path: Path, mini_path: Path) -> None:
    store, path = _store(tmp_path, mini_path)
    writer = sqlite3.connect(path, timeout=0, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # what a load does while it commits a big transaction
    writer.execute("UPDATE meta SET value = 'loading' WHERE key = 'schema_version'")
    try:
        started = time.perf_counter()
        for _ in range(20):
            assert store.get("ref29") is not None
            assert len(store.query_evidence()) == 3
        assert time.perf_counter() - started < 2.0  # never waited for the writer
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    store.close()


def test_a_second_writer_waits_instead_of_failing(tmp_path: Path, mini_path: Path) -> None:
    store, path = _store(tmp_path, mini_path)
    writer = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE meta SET value = 'loading' WHERE key = 'schema_version'")
    released = threading.Timer(1.0, lambda: writer.execute("COMMIT"))
    released.start()
    try:
        started = time.perf_counter()
        version = store.flag_evidence(
            "ev-029-a", "unverified", "waits for the load", expected_version=1, by="cara"
        )
        waited = time.perf_counter() - started
    finally:
        released.join()
        writer.close()
    assert version == 2
    assert 0.5 < waited < SQLITE_BUSY_TIMEOUT_MS / 1000
    store.close()
