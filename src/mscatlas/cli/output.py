"""What every command prints: tables for people, JSON for programs, and errors in the same form.

Exit codes of every `mscatlas` command:

- 0: done.
- 1 (``FAILED``): not found or failed: no such record, proposal or account; record files that do
  not validate; a load, import or run that failed (nothing was written).
- 2 (``BAD_INPUT``): bad usage or input: an unknown option or value ("--msc-source xyz"), a
  malformed argument ("dose '10 to 1'"), options that exclude each other.

An error goes to stderr as one line for people; when the command was given ``--json`` it goes
to stdout as ``{"error": ..., "detail": ...}`` instead, so that a program reading stdout always
gets JSON, with the same exit code.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

__all__ = [
    "BAD_INPUT",
    "FAILED",
    "bad_input",
    "console",
    "err_console",
    "fail",
    "print_json",
    "request_json",
    "term",
    "wants_json",
]

FAILED = 1
BAD_INPUT = 2

# Piped output has no terminal width to follow; 160 columns keeps record tables readable.
console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True)

E = TypeVar("E", bound=StrEnum)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# Whether the running command was given --json: set by the --json option's callback
# (cli.options.JsonOption) and reset by the root command before each command is parsed.
_json_requested = [False]


def request_json(value: bool) -> bool:
    """Remember whether this invocation asked for JSON (the --json option's callback)."""
    _json_requested[0] = bool(value)
    return value


def wants_json() -> bool:
    """Whether the running command was given ``--json``."""
    return _json_requested[0]


def fail(message: str, code: int = FAILED, *, detail: Any = None, as_json: bool | None = None) -> NoReturn:
    """Report an error (JSON on stdout under ``--json``, a line on stderr otherwise) and exit."""
    if as_json if as_json is not None else wants_json():
        print_json({"error": message, "detail": detail})
    else:
        err_console.print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def bad_input(message: str, *, detail: Any = None, as_json: bool | None = None) -> NoReturn:
    """An error in what the user typed (exit 2)."""
    fail(message, code=BAD_INPUT, detail=detail, as_json=as_json)


def term(cls: type[E], text: str | None, option: str) -> E | None:
    """The enum member a typed option value names (labels and synonyms accepted), or exit 2
    naming the option, the nearest values and every accepted value."""
    if text is None:
        return None
    from mscatlas.kb.terms import UnknownTermError, resolve  # here: `mscatlas --help` stays light

    try:
        return resolve(cls, text)
    except UnknownTermError as exc:
        values = [m.value for m in cls]
        known = "" if exc.suggestions else f"; one of {', '.join(values)}"
        bad_input(
            f"{option}: {exc}{known}",
            detail={"option": option, "value": text, "suggestions": exc.suggestions, "accepted": values},
        )
