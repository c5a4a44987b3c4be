"""`mscatlas users`: accounts of the web interface (viewer, curator, editor).

``add`` is a plain function so that it can be registered on its own or through ``users_app``.
Changing a password or a role and deactivating an account end every web session of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import err_console, fail, print_json
from mscatlas.kb.store import ROLES, Store, User

__all__ = ["activate", "add", "deactivate", "list_users", "passwd", "role", "users_app"]

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
    if role not in ROLES:
        raise typer.BadParameter(f"unknown role {role!r}; roles: {', '.join(ROLES)}", param_hint="--role")
    password = _read_password(password_stdin)
    store = Store.open(db)
    try:
        user = store.add_user(name, role, password)
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.close()
    err_console.print(f"added {user.name} ({user.role})")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _change(db: str | None, name: str, change: Callable[[Store], User], done: str) -> None:
    """Apply one account change; an unknown account or a refused value exits 1 with the reason."""
    store = Store.open(db)
    try:
        user = change(store)
    except KeyError:
        fail(f"no user {name!r}")
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.close()
    err_console.print(f"{user.name}: {done}; their web sessions are ended")


NameArgument = Annotated[str, typer.Argument(help="Account name.")]


def passwd(
    name: NameArgument,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Set a new password (asked for twice unless --password-stdin)."""
    password = _read_password(password_stdin)
    _change(db, name, lambda store: store.set_password(name, password), "password changed")


def role(
    name: NameArgument,
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help=f"One of: {', '.join(ROLES)}.")],
    db: DbOption = None,
) -> None:
    """Give an account another role."""
    if new_role not in ROLES:
        raise typer.BadParameter(f"unknown role {new_role!r}; roles: {', '.join(ROLES)}", param_hint="ROLE")
    _change(db, name, lambda store: store.set_role(name, new_role), f"now a {new_role}")


def deactivate(name: NameArgument, db: DbOption = None) -> None:
    """Stop an account from logging in (its history stays)."""
    _change(db, name, lambda store: store.set_active(name, False), "deactivated")


def activate(name: NameArgument, db: DbOption = None) -> None:
    """Let a deactivated account log in again."""
    _change(db, name, lambda store: store.set_active(name, True), "activated")


def list_users(
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the accounts (names and roles; never passwords)."""
    store = Store.open(db)
    try:
        users = store.users()
    finally:
        store.close()
    rows = [{"name": u.name, "role": u.role, "active": u.active} for u in users]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']}\t{row['role']}" + ("" if row["active"] else "\tinactive"))


users_app.command("add")(add)
users_app.command("list")(list_users)
users_app.command("passwd")(passwd)
users_app.command("role")(role)
users_app.command("deactivate")(deactivate)
users_app.command("activate")(activate)
