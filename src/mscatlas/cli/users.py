"""`mscatlas users`: accounts of the web interface (viewer, curator, editor).

``add`` is a plain function so that it can be registered on its own or through ``users_app``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from mscatlas.cli.options import DbOption
from mscatlas.kb.store import ROLES, Store

__all__ = ["add", "list_users", "users_app"]

users_app = typer.Typer(help="Accounts of the web interface: viewer, curator, editor.", no_args_is_help=True)



def add(
    name: Annotated[str, typer.Argument(help="Account name (letters, digits, '.', '_', '@', '-').")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")] = "curator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create an account; the password is asked for (twice) unless --password-stdin is given."""
    err = Console(stderr=True)
    if role not in ROLES:
        raise typer.BadParameter(f"unknown role {role!r}; roles: {', '.join(ROLES)}", param_hint="--role")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = Store.open(db)
    try:
        user = store.add_user(name, role, password)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.close()
    err.print(f"added {user.name} ({user.role})")


def list_users(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the accounts (names and roles; never passwords)."""
    store = Store.open(db)
    try:
        users = store.users()
    finally:
        store.close()
    rows = [{"name": u.name, "role": u.role, "active": u.active} for u in users]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['name']}\t{row['role']}" + ("" if row["active"] else "\tinactive"))


users_app.command("add")(add)
users_app.command("list")(list_users)
