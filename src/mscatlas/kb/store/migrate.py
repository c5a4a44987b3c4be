"""Bringing a store's schema to the current revision with the Alembic migrations.

A store made by mscatlas 0.1.0 has the tables of ``create_all`` and no ``alembic_version``
table: it is recognised (it has the ``meta`` table) and stamped as revision 0001 before the
later migrations run. A SQLite file is copied, with SQLite's online backup, before any
migration touches it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url

__all__ = [
    "LEGACY_REVISION",
    "MigrationResult",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
]

LEGACY_REVISION = "0001"  # the schema mscatlas 0.1.0 created without Alembic
_PG_LOCK_KEY = 7_212_009  # advisory lock: one process migrates a PostgreSQL store at a time


@dataclass(frozen=True)
class MigrationResult:
    """What opening did to the schema: from which revision (None: an empty database) to which."""

    before: str | None
    after: str
    backup: Path | None = None

    @property
    def created(self) -> bool:
        return self.before is None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("mscatlas.kb").joinpath("migrations")))
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(
            f"the store migrations have {len(heads)} heads ({', '.join(sorted(heads))}): "
            "renumber one onto the other (see mscatlas/kb/migrations/README.md)"
        )
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    """The store's revision; LEGACY_REVISION for a 0.1.0 store; None for an empty database."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" in tables:
            return MigrationContext.configure(connection).get_current_revision()
        return LEGACY_REVISION if "meta" in tables else None


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _backup(path: Path, revision: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.{revision}-{stamp}.bak")
    source = sqlite3.connect(path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    return target


def _transactional_sqlite(engine: Engine) -> None:
    """Run SQLite DDL inside the transaction (pysqlite would commit each statement on its own), so
    a migration is all or nothing and one commit instead of one per statement."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(url: str, *, backup: bool = True, target: str = "head") -> MigrationResult:
    """Apply every pending migration to the store at ``url`` (a SQLite file is backed up first)."""
    # A connection of its own, without the store's per-connection pragmas: SQLite must not
    # check foreign keys while a batch migration copies a table.
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        _transactional_sqlite(engine)
    try:
        before = current_revision(engine)
        head = head_revision() if target == "head" else target
        if before == head:
            return MigrationResult(before, head)
        path = _sqlite_path(url)
        saved = _backup(path, before) if backup and before is not None and path and path.exists() else None
        config = alembic_config()
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            config.attributes["connection"] = connection
            if before == LEGACY_REVISION and "alembic_version" not in inspect(connection).get_table_names():
                command.stamp(config, LEGACY_REVISION)
            command.upgrade(config, target)
        after = current_revision(engine)
        assert after is not None
        return MigrationResult(before, after, saved)
    finally:
        engine.dispose()
