"""Options shared by the commands: the store's URL and JSON output."""

from __future__ import annotations

from typing import Annotated

import typer

from mscatlas.cli.output import request_json

__all__ = ["DbOption", "JsonOption"]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: MSCATLAS_DATABASE_URL or a SQLite file in the user data dir)."
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", help="Machine-readable JSON on stdout (errors too: {error, detail}).", callback=request_json
    ),
]
