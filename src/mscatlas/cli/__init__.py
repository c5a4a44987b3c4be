"""The `mscatlas` command line: parses arguments, calls the core, renders tables or JSON.

Exit codes and error output are the same for every command (mscatlas.cli.output): 0 done,
1 not found or failed, 2 bad usage or input; under --json an error is
``{"error": ..., "detail": ...}`` on stdout.

Start-up (issue 14 point 4): the root group lists its commands here, each with the module that
implements it and its help line, and imports a command's module only when that command runs
(:class:`LazyGroup`, click's "lazily loading subcommands" pattern). ``mscatlas --help`` imports
typer and rich only; ``mscatlas meta`` imports the meta-analysis engine but not the store, the
web or the report. ``tests/test_startup.py`` checks which modules load, and that each help line
here is the command's own.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from mscatlas import __version__
from mscatlas.cli.output import BAD_INPUT, FAILED, console, err_console, print_json, request_json

__all__ = ["COMMANDS", "LazyGroup", "app", "load_command", "main"]

# Every top-level command, in the order of `mscatlas --help`: name -> ("module:attribute" of its
# function, typer app, or a builder here of a composite app; its help line in `mscatlas --help`).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "mscatlas.cli.loading:validate",
        (
            "Check record files; every error names file, line, record, field and the bad value. Exit 1 "
            'on\nany error. A label or synonym ("bone marrow", BM-MSC) is read as its value, with a '
            "note."
        ),
    ),
    "load": (
        "mscatlas.cli.loading:load",
        "Validate record files, then load them in one transaction (all or nothing).",
    ),
    "retract": (
        "mscatlas.cli.loading:retract",
        (
            "Withdraw an evidence item: a new version marked rejected with who and why (never a "
            "delete;\n`mscatlas show ID` keeps every earlier version in its history)."
        ),
    ),
    "query": (
        "mscatlas.cli.browse:query",
        "List evidence items matching all the given filters.",
    ),
    "show": (
        "mscatlas.cli.browse:show",
        "One record with its provenance and revision history.",
    ),
    "export": (
        "mscatlas.cli.browse:export",
        "Write the whole knowledge base; `mscatlas load` reads it back.",
    ),
    "summary": (
        "mscatlas.cli.browse:summary",
        "Counts over the knowledge base: records, flags, checks, and items by category.",
    ),
    "report": (
        "mscatlas.cli.browse:report",
        "Build the offline HTML report (DIR/index.html) of the knowledge base.",
    ),
    "dose": (
        "mscatlas.cli.browse:dose_cmd",
        "Parse dose wording into a structured dose (ratios MSC first).",
    ),
    "synthesize": (
        "mscatlas.cli.synthesis:synthesize",
        "Vote counts, conflicts, moderator effects and leave-one-study-out validation.",
    ),
    "predict": (
        "mscatlas.cli.synthesis:predict",
        "P(inhibits) for one combination, with its interval and the items that inform it most.",
    ),
    "meta": (
        "mscatlas.cli.meta:meta",
        "Meta-analyse the studies in FILE (metafor semantics; numbers checked against metafor).",
    ),
    "serve": (
        "mscatlas.cli.web:serve",
        "Serve the web interface (browse and curate) and the JSON API at http://HOST:PORT/.",
    ),
    "release": (
        "mscatlas.cli.web:release",
        "Write a versioned release of the accepted records: JSON, TSV and a manifest with SHA-256 sums.",
    ),
    "upgrade": (
        "mscatlas.cli.curation:upgrade",
        "Bring the store up to the shipped dataset: unchanged records update, changed ones get proposals.",
    ),
    "sim": (
        "mscatlas.cli:_sim_app",
        "In silico lab: simulate co-cultures, conditioned media, vesicles and xenografts.",
    ),
    "trials": (
        "mscatlas.cli:_trials_app",
        (
            "Clinical trials of MSC products in people with cancer. The registry: list (filter the "
            "curated trials), landscape (counts and the results gap), roots (the preclinical evidence "
            "behind each trial), flow (the documented registry search), import and sync "
            "(ClinicalTrials.gov records). Dose-finding designs for a phase I trial: design, "
            "boundaries and next-dose (3+3, BOIN, CRM)."
        ),
    ),
    "translate": (
        "mscatlas.cli.translate:translate_app",
        "Translate preclinical doses into human terms.",
    ),
    "users": (
        "mscatlas.cli.users:users_app",
        "Accounts of the web interface: viewer, curator, editor.",
    ),
    "db": (
        "mscatlas.cli.db:db_app",
        "The store's schema: migrations (Alembic).",
    ),
    "intake": (
        "mscatlas.cli.intake:intake_app",
        "Living intake: search, import, deduplicate, screen, extract.",
    ),
    "proposals": (
        "mscatlas.cli.curation:proposals_app",
        "Whole-record proposals (upstream changes, `load --propose`) waiting for an editor.",
    ),
}


def _sim_app() -> tuple[typer.Typer, str | None]:
    """The sim group with ``sim sweep`` (its own module) added."""
    from mscatlas.cli.sim import sim_app
    from mscatlas.cli.sim_sweep import sweep

    if not any(c.name == "sweep" for c in sim_app.registered_commands):
        sim_app.command("sweep")(sweep)
    return sim_app, None


def _trials_app() -> tuple[typer.Typer, str | None]:
    """The trials group: dose-finding designs, and the registry commands of three modules."""
    from mscatlas.cli.trials import trials_app
    from mscatlas.cli.trials_list import TRIALS_HELP, flow, list_trials
    from mscatlas.cli.trials_registry import import_trials, landscape, sync
    from mscatlas.cli.trials_roots import roots

    registered = {c.name for c in trials_app.registered_commands}
    added = [
        ("import", import_trials),
        ("sync", sync),
        ("landscape", landscape),
        ("roots", roots),
        ("list", list_trials),
        ("flow", flow),
    ]
    for name, function in added:
        if name not in registered:
            trials_app.command(name)(function)
    return trials_app, TRIALS_HELP


def load_command(name: str) -> click.Command:
    """The click command ``name``, built by typer from its module (imported now)."""
    module, attribute = COMMANDS[name][0].split(":")
    target = getattr(importlib.import_module(module), attribute)
    wrapper = typer.Typer()
    if module == __name__:  # a builder of a composite group
        sub, help_text = target()
        wrapper.add_typer(sub, name=name, **({"help": help_text} if help_text else {}))
    elif isinstance(target, typer.Typer):
        wrapper.add_typer(target, name=name)
    else:
        wrapper.command(name)(target)
    return typer.main.get_group(wrapper).commands[name]


class _Commands(Mapping[str, click.Command]):
    """The root's commands by name; a command is built (its module imported) when first read."""

    def __init__(self) -> None:
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in COMMANDS:
            raise KeyError(name)
        if name not in self.loaded:
            self.loaded[name] = load_command(name)
        return self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TyperGroup):
    """The root group: running a command imports its module; listing them (``--help``) does not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands()  # type: ignore[assignment]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command if already built, else a stand-in that carries its help line (what the
        help page reads); :meth:`resolve_command` builds the real one before it runs."""
        commands: _Commands = self.commands  # type: ignore[assignment]
        if cmd_name in commands.loaded:
            return commands.loaded[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        return click.Command(cmd_name, help=COMMANDS[cmd_name][1])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0])
        if name in COMMANDS:
            return name, self.commands[name], args[1:]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="mscatlas",
    help="Mesenchymal stem cell therapy in cancer, made computable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"mscatlas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """mscatlas: MSC therapy in cancer as validated, computable records."""
    request_json(False)  # the command's own --json option sets it again while it is parsed


def _record_file_error(exc: Exception) -> bool:
    """Whether ``exc`` is a RecordFileError (its module is imported only when there is an error)."""
    from mscatlas.kb.records import RecordFileError

    return isinstance(exc, RecordFileError)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; usage errors given with --json come out as JSON too."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="mscatlas", standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(FAILED)
    except Exception as exc:
        # Click's usage errors (unknown option, missing argument, bad value) carry a message and
        # an exit code; typer may vendor click, so they are recognised by those, not by class.
        if hasattr(exc, "format_message") and hasattr(exc, "show"):
            if "--json" in args:
                ctx = getattr(exc, "ctx", None)
                usage = ctx.get_usage() if ctx is not None else None
                print_json({"error": exc.format_message(), "detail": {"usage": usage}})
            else:
                exc.show()
            sys.exit(getattr(exc, "exit_code", BAD_INPUT) or BAD_INPUT)
        if not _record_file_error(exc):
            raise
        # Only reachable when the shipped dataset itself is invalid (a broken install or edit).
        err_console.print("[red]error[/red] the shipped dataset does not validate:")
        for error in exc.errors:  # type: ignore[attr-defined]
            err_console.print(f"  {error}", highlight=False, soft_wrap=True)
        sys.exit(FAILED)
    sys.exit(code if isinstance(code, int) else 0)
