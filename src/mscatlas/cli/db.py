"""`mscatlas db`: the store's schema migrations (Alembic revisions shipped in the package)."""

from __future__ import annotations

from typing import Annotated

import typer

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import err_console, print_json
from mscatlas.kb.store import default_database_url
from mscatlas.kb.store.migrate import current_revision, head_revision, upgrade

__all__ = ["db_app"]

db_app = typer.Typer(help="The store's schema: migrations (Alembic).", no_args_is_help=True)



@db_app.command("upgrade")
def db_upgrade(
    db: DbOption = None,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Do not copy a SQLite file before migrating it.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply every pending migration (a SQLite file is copied to FILE.<revision>-<time>.bak first)."""
    result = upgrade(db or default_database_url(), backup=not no_backup)
    out = {
        "before": result.before,
        "after": result.after,
        "backup": str(result.backup) if result.backup else None,
    }
    if as_json:
        print_json(out)
        return
    if not result.changed:
        err_console.print(f"the store is at the current revision {result.after}")
        return
    err_console.print(f"migrated the store from {result.before or 'an empty database'} to {result.after}")
    if result.backup:
        err_console.print(f"backup of the previous file: {result.backup}")


@db_app.command("current")
def db_current(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The store's revision and the newest one this mscatlas knows."""
    from sqlalchemy import create_engine

    engine = create_engine(db or default_database_url())
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if as_json:
        print_json({"current": current, "head": head})
    else:
        typer.echo(f"{current or 'empty'} (head: {head})")


@db_app.command("heads")
def db_heads() -> None:
    """The newest revision (a new migration's down_revision)."""
    typer.echo(head_revision())
