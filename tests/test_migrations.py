"""Store migrations (issue 9, point 2): Alembic revisions shipped in the package make exactly
the tables of the code, and a store made by mscatlas 0.1.0 opens with nothing lost (a SQLite
file is backed up first). Runs on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import mscatlas.intake.tables  # noqa: F401  (the intake's tables, on the same Base)
from mscatlas.kb.store import Store
from mscatlas.kb.store.migrate import current_revision, head_revision
from mscatlas.kb.store.tables import Base

OLD_STORE_SCRIPT = Path(__file__).parent / "data" / "stores" / "make_store_0_1_0.py"
PASSWORD = "correct horse battery"


def _old_store_module():
    spec = importlib.util.spec_from_file_location("make_store_0_1_0", OLD_STORE_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            dialect = connection.dialect.name

            def include(obj, name, kind, reflected, compare_to) -> bool:
                # An index made on some dialects only (info["dialects"], e.g. SQLite's text index).
                return dialect in getattr(obj, "info", {}).get("dialects", (dialect,))

            opts = {"compare_type": True, "include_object": include}
            context = MigrationContext.configure(connection, opts=opts)
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_migrations_make_exactly_the_tables_of_the_code(blank_url: str) -> None:
    store = Store(blank_url)
    assert store.migration is not None and store.migration.created
    assert current_revision(store.engine) == head_revision()
    store.close()
    assert _schema_differences(blank_url) == []


def test_a_0_1_0_store_opens_with_nothing_lost(blank_url: str, tmp_path: Path) -> None:
    built = _old_store_module().build(blank_url)
    mini = built["mini"]
    assert current_revision(create_engine(blank_url)) == "0001"  # recognised without a version table
    store = Store.open(blank_url)
    assert store.migration is not None and store.migration.before == "0001"
    assert store.migration.after == head_revision()
    if blank_url.startswith("sqlite"):
        backup = store.migration.backup
        assert backup is not None and backup.exists() and backup.parent == tmp_path
        # The backup is the untouched 0.1.0 file: it still has no version table.
        assert current_revision(create_engine(f"sqlite:///{backup}")) == "0001"
    assert store.counts() == {
        "studies": len(mini["studies"]),
        "evidence": len(mini["evidence"]),
        "trials": len(mini["trials"]),
    }
    edited = store.get(built["edited"]["id"])
    assert edited is not None and edited.notes == "checked against the full text"
    history = store.revisions(built["edited"]["id"])
    assert [(r["version"], r["changed_by"]) for r in history] == [(1, "mscatlas-seed"), (2, "ed")]
    assert store.authenticate("ed", PASSWORD) is not None
    assert store.secret_key() == "k" * 64
    # Opening did not apply the shipped dataset over the old one: that is `mscatlas upgrade`'s job.
    assert store.get_meta("seed_hash") == "0123456789abcdef"
    store.close()
    assert _schema_differences(blank_url) == []


def test_upgrading_twice_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.sqlite'}"
    Store(url).close()
    again = Store(url)
    assert again.migration is not None and not again.migration.changed and again.migration.backup is None
    assert not list(tmp_path.glob("*.bak"))
