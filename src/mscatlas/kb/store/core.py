"""The store's connection to its database: engine, sessions, meta values, errors and results.

Opening a store brings its schema to the current migration (``migrate``); SQLite runs in WAL
mode with a busy timeout, so readers never fail while a writer (a long ``mscatlas load``)
holds the database.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mscatlas.kb.store import migrate
from mscatlas.kb.store.filters import EvidenceFilter
from mscatlas.kb.store.tables import MetaRow, json_serializer

__all__ = [
    "DEFAULT_DB_ENV",
    "SQLITE_BUSY_TIMEOUT_MS",
    "UNSEEDED",
    "CurationError",
    "EvidenceFilter",
    "LoadResult",
    "StoreCore",
    "TrialMergeResult",
    "UpgradeReport",
    "VersionConflict",
    "default_database_url",
]

DEFAULT_DB_ENV = "MSCATLAS_DATABASE_URL"
UNSEEDED = "unseeded"  # meta value of a store created empty on purpose
SQLITE_BUSY_TIMEOUT_MS = 30_000  # a reader or writer waits this long for a lock before failing


class VersionConflict(Exception):
    """An edit started from a version of a record that is no longer the current one."""

    def __init__(self, record_id: str, expected: int, actual: int | None, last_by: str | None = None) -> None:
        self.record_id = record_id
        self.expected = expected
        self.actual = actual
        self.last_by = last_by
        if actual is None:
            message = f"{record_id} no longer exists"
        else:
            who = f" by {last_by}" if last_by else ""
            message = (
                f"{record_id} was changed{who} after you opened it: you started from version {expected}, "
                f"the current version is {actual}. Your change was not saved; reload the record, "
                "check the other change and apply yours again."
            )
        super().__init__(message)


class CurationError(Exception):
    """A curation step that the record's state or the user's part in it does not allow."""


def default_database_url() -> str:
    """MSCATLAS_DATABASE_URL, else a SQLite file in the user data directory."""
    url = os.environ.get(DEFAULT_DB_ENV)
    if url:
        return url
    directory = Path(platformdirs.user_data_dir("mscatlas", appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mscatlas.sqlite'}"


@dataclass(frozen=True)
class LoadResult:
    added: int
    updated: int
    unchanged: int
    proposed: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated


@dataclass(frozen=True)
class TrialMergeResult:
    """What a registry merge did: trials added, trials updated (with the fields that changed)."""

    added: list[str]
    updated: dict[str, list[str]]
    unchanged: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "added_ids": self.added,
            "changes": self.updated,
        }


@dataclass
class UpgradeReport:
    """What bringing a store up to a shipped dataset did, record by record.

    ``added``: new shipped records; ``updated``: records nobody here had changed, replaced by the
    new shipped version (each with a revision); ``proposed``: records the team had changed whose
    shipped version changed too, filed as pending upstream proposals (proposal ids by record);
    ``kept``: records the team had changed whose shipped version did not change.
    """

    digest: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    proposed: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    unchanged: int = 0
    already_current: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "shipped": self.digest,
            "already_current": self.already_current,
            "added": self.added,
            "updated": self.updated,
            "proposed": self.proposed,
            "kept": self.kept,
            "unchanged": self.unchanged,
        }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers go on while a writer holds the database
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe in WAL mode: a crash loses no committed data
    cursor.close()


class StoreCore:
    """The database of a store: its engine, sessions and meta values."""

    def __init__(self, url: str, *, echo: bool = False, migrate_schema: bool = True) -> None:
        self.url = url
        self.migration = migrate.upgrade(url) if migrate_schema else None
        self.created = bool(self.migration and self.migration.created)
        self.engine: Engine = create_engine(url, echo=echo, future=True, json_serializer=json_serializer)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()  # see queries.QueryMixin
        self._models_lock = threading.Lock()
        self._results: dict[tuple[Any, ...], Any] = {}  # see queries.QueryMixin._by_version
        self._results_version: tuple[int, int] | None = None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on an error."""
        with self._session() as session, session.begin():
            yield session

    def get_meta(self, key: str) -> str | None:
        with self._session() as session:
            row = session.get(MetaRow, key)
            return row.value if row else None

    def meta_default(self, key: str, make: Callable[[], str]) -> str:
        """The meta value under ``key``, stored first from ``make()`` when there is none."""
        value = self.get_meta(key)
        if value is not None:
            return value
        try:
            with self.session() as session:
                session.add(MetaRow(key=key, value=make()))
        except IntegrityError:  # another process stored one first: use theirs
            logging.getLogger(__name__).debug("meta key %s was stored concurrently", key)
        value = self.get_meta(key)
        if value is None:
            raise RuntimeError(f"cannot store meta value {key!r}")
        return value

    def meta_values(self) -> dict[str, str]:
        with self._session() as session:
            return {row.key: row.value for row in session.scalars(select(MetaRow))}
