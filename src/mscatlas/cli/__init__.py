"""The `mscatlas` command line: parses arguments, calls the core, renders tables or JSON.

Exit codes and error output are the same for every command (mscatlas.cli.output): 0 done,
1 not found or failed, 2 bad usage or input; under --json an error is
``{"error": ..., "detail": ...}`` on stdout.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mscatlas import __version__
from mscatlas.cli.browse import dose_cmd, export, query, report, show, summary
from mscatlas.cli.curation import proposals_app, upgrade
from mscatlas.cli.db import db_app
from mscatlas.cli.intake import intake_app
from mscatlas.cli.loading import load, retract, validate
from mscatlas.cli.meta import meta
from mscatlas.cli.output import BAD_INPUT, FAILED, console, err_console, print_json, request_json
from mscatlas.cli.sim import sim_app
from mscatlas.cli.sim_sweep import sweep
from mscatlas.cli.synthesis import predict, synthesize
from mscatlas.cli.translate import translate_app
from mscatlas.cli.trials import trials_app
from mscatlas.cli.trials_list import TRIALS_HELP, flow, list_trials
from mscatlas.cli.trials_registry import import_trials, landscape, sync
from mscatlas.cli.trials_roots import roots
from mscatlas.cli.users import users_app
from mscatlas.cli.web import release, serve
from mscatlas.kb.records import RecordFileError

__all__ = ["app", "main"]

app = typer.Typer(
    name="mscatlas",
    help="Mesenchymal stem cell therapy in cancer, made computable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.command()(validate)
app.command()(load)
app.command()(retract)
app.command()(query)
app.command()(show)
app.command()(export)
app.command()(summary)
app.command()(report)
app.command("dose")(dose_cmd)
app.command("synthesize")(synthesize)
app.command("predict")(predict)
app.command("meta")(meta)
sim_app.command("sweep")(sweep)
app.add_typer(sim_app, name="sim")
trials_app.command("import")(import_trials)
trials_app.command("sync")(sync)
trials_app.command("landscape")(landscape)
trials_app.command("roots")(roots)
trials_app.command("list")(list_trials)
trials_app.command("flow")(flow)
app.add_typer(trials_app, name="trials", help=TRIALS_HELP)
app.add_typer(translate_app, name="translate")
app.command("serve")(serve)
app.command("release")(release)
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(intake_app, name="intake")
app.command("upgrade")(upgrade)
app.add_typer(proposals_app, name="proposals")


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
        if not (hasattr(exc, "format_message") and hasattr(exc, "show")):
            raise
        if "--json" in args:
            ctx = getattr(exc, "ctx", None)
            usage = ctx.get_usage() if ctx is not None else None
            print_json({"error": exc.format_message(), "detail": {"usage": usage}})
        else:
            exc.show()
        sys.exit(getattr(exc, "exit_code", BAD_INPUT) or BAD_INPUT)
    except RecordFileError as exc:
        # Only reachable when the shipped dataset itself is invalid (a broken install or edit).
        err_console.print("[red]error[/red] the shipped dataset does not validate:")
        for error in exc.errors:
            err_console.print(f"  {error}", highlight=False, soft_wrap=True)
        sys.exit(FAILED)
    sys.exit(code if isinstance(code, int) else 0)
