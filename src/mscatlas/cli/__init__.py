"""The `mscatlas` command line: parses arguments, calls the core, renders tables or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mscatlas import __version__
from mscatlas.cli.curation import open_store, proposals_app, upgrade
from mscatlas.cli.db import db_app
from mscatlas.cli.intake import intake_app
from mscatlas.cli.meta import meta
from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.sim import sim_app
from mscatlas.cli.sim_sweep import sweep
from mscatlas.cli.synthesis import predict, synthesize
from mscatlas.cli.translate import translate_app
from mscatlas.cli.trials import trials_app
from mscatlas.cli.trials_registry import import_trials, landscape, sync
from mscatlas.cli.trials_roots import roots
from mscatlas.cli.users import users_app
from mscatlas.cli.web import release, serve
from mscatlas.kb.dose import DoseParseError, parse_dose
from mscatlas.kb.enums import Delivery, Direction, Endpoint, MscSource, Setting
from mscatlas.kb.export import export_text
from mscatlas.kb.files import OutputError, atomic_write
from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study
from mscatlas.kb.records import RecordError, RecordFileError, validate_paths
from mscatlas.kb.store import EvidenceFilter, Store

__all__ = ["app", "main"]

app = typer.Typer(
    name="mscatlas",
    help="Mesenchymal stem cell therapy in cancer, made computable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output has no terminal width to follow; 160 columns keeps record tables readable.
console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True)



def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _report_errors(errors: list[RecordError], as_json: bool) -> None:
    if as_json:
        _print_json({"valid": False, "errors": [e.to_dict() for e in errors]})
    else:
        for e in errors:
            err_console.print(f"[red]error[/red] {e}", markup=True, highlight=False, soft_wrap=True)
        err_console.print(f"{len(errors)} error(s)")


def _validate(paths: list[Path], store: Store | None) -> Any:
    from mscatlas.kb.shipped import shipped_dataset

    known = store.study_ids() if store else {s.id for s in shipped_dataset().studies}
    return validate_paths(paths, known_study_ids=known)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="YAML, JSON or CSV record files.")],
    as_json: JsonOption = False,
) -> None:
    """Check record files; every error names file, line, record and field. Exit 1 on any error."""
    dataset, errors = _validate(paths, None)
    if errors:
        _report_errors(errors, as_json)
        raise typer.Exit(1)
    assert dataset is not None
    counts = {
        "studies": len(dataset.studies),
        "evidence": len(dataset.evidence),
        "trials": len(dataset.trials),
    }
    if as_json:
        _print_json({"valid": True, **counts})
    else:
        n_studies, n_items, n_trials = counts.values()
        console.print(f"valid: {n_studies} studies, {n_items} evidence items, {n_trials} trials")


@app.command()
def load(
    paths: Annotated[list[Path], typer.Argument(help="Record files to load.")],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Who loads: needed when the files change stored records (an editor's action; "
            "a curator's with --propose). Must be an active account when the store has accounts.",
        ),
    ] = None,
    propose: Annotated[
        bool,
        typer.Option("--propose", help="File changes to stored records as pending proposals for an editor."),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate record files, then load them in one transaction (all or nothing).

    New records are added. Records that change stored ones are an editor's edit (--by EDITOR)
    or, with --propose, proposals an editor accepts or rejects (`mscatlas proposals`).
    """
    store = open_store(db)
    dataset, errors = _validate(paths, store)
    if errors:
        _report_errors(errors, as_json)
        err_console.print("nothing was loaded")
        raise typer.Exit(1)
    assert dataset is not None
    if by is not None or propose:
        _check_loader(store, by, propose)
    updates = "propose" if propose else ("apply" if by else "refuse")
    try:
        result = store.load(
            dataset,
            changed_by=by or "mscatlas-load",
            reason="mscatlas load " + " ".join(str(p) for p in paths),
            updates=updates,  # type: ignore[arg-type]
        )
    except Exception as exc:  # the transaction rolled back: report, keep the store as it was
        err_console.print(f"[red]error[/red] loading failed, nothing was loaded: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    out = {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    if propose:
        out["proposed"] = result.proposed
    if as_json:
        _print_json(out)
    else:
        console.print("loaded: " + ", ".join(f"{v} {k}" for k, v in out.items()))


def _check_loader(store: Store, by: str | None, propose: bool) -> None:
    """--by names an active account with the rights the load needs (when the store has accounts)."""
    if by is None:
        err_console.print("[red]error[/red] --propose needs --by NAME: a proposal names its author")
        raise typer.Exit(2)
    if not store.users():
        return
    user = store.get_user(by)
    needed = "curator" if propose else "editor"
    if user is None or not user.active:
        err_console.print(f"[red]error[/red] --by {by}: no active account of that name")
        raise typer.Exit(1)
    if not user.can(needed):
        hint = "" if propose else "; a curator can --propose the changes"
        err_console.print(
            f"[red]error[/red] --by {by}: this load needs the {needed} role ({by} is a {user.role}){hint}"
        )
        raise typer.Exit(1)


def _evidence_table(items: list[EvidenceItem], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("id", no_wrap=True)
    for col in ("refs", "MSC source", "cancer type", "delivery, setting", "endpoint", "direction", "dose"):
        table.add_column(col, overflow="fold")
    for e in items:
        table.add_row(
            e.id,
            ",".join(map(str, e.refs)),
            ", ".join(s.value.replace("_", " ") for s in e.msc_source),
            e.cancer_type,
            f"{e.delivery.value.replace('_', ' ')}, {e.setting.value.replace('_', ' ')}",
            e.endpoint.value.replace("_", " "),
            e.direction.value.replace("_", " "),
            e.dose.describe(),
        )
    return table


@app.command()
def query(
    msc_source: Annotated[MscSource | None, typer.Option("--msc-source", help="MSC tissue source.")] = None,
    cancer: Annotated[
        str | None, typer.Option("--cancer", help="Cancer type (substring), class or cell line.")
    ] = None,
    delivery: Annotated[Delivery | None, typer.Option("--delivery")] = None,
    direction: Annotated[Direction | None, typer.Option("--direction")] = None,
    setting: Annotated[Setting | None, typer.Option("--setting")] = None,
    endpoint: Annotated[Endpoint | None, typer.Option("--endpoint")] = None,
    ref: Annotated[int | None, typer.Option("--ref", help="Review reference number.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List evidence items matching all the given filters."""
    store = open_store(db)
    items = store.query_evidence(
        EvidenceFilter(
            msc_source=msc_source.value if msc_source else None,
            cancer=cancer,
            delivery=delivery.value if delivery else None,
            direction=direction.value if direction else None,
            setting=setting.value if setting else None,
            endpoint=endpoint.value if endpoint else None,
            study=f"ref{ref}" if ref is not None else None,
        )
    )
    if as_json:
        _print_json([e.model_dump(mode="json") for e in items])
    else:
        console.print(_evidence_table(items, f"{len(items)} evidence item(s)"))


@app.command()
def show(
    record_id: Annotated[str, typer.Argument(help="Evidence id (ev-029-a), study id (ref29) or NCT id.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One record with its provenance."""
    store = open_store(db)
    record = store.get(record_id)
    if record is None:
        err_console.print(f"no record '{record_id}'")
        raise typer.Exit(1)
    data = record.model_dump(mode="json")
    if as_json:
        _print_json({**data, "revisions": store.revisions(record_id)})
        return
    table = Table(title=_record_title(record), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    if isinstance(record, EvidenceItem):
        data["dose"] = record.dose.describe() + (f"  [{record.dose.text}]" if record.dose.text else "")
    for key, value in data.items():
        if value in (None, [], {}):
            continue
        table.add_row(
            key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
        )
    console.print(table)
    if isinstance(record, Study):
        items = store.query_evidence(EvidenceFilter(study=record.id))
        console.print(_evidence_table(items, f"{len(items)} evidence item(s) from {record.id}"))


def _record_title(record: Study | EvidenceItem | ClinicalTrial) -> str:
    if isinstance(record, EvidenceItem):
        return f"Evidence {record.id}"
    if isinstance(record, Study):
        return f"Study {record.id}: {record.authors[0]} {record.year}"
    return f"Trial {record.nct_id}"


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="json, csv or yaml.")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: stdout), written atomically.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Write through a symbolic link at --out.")] = False,
    db: DbOption = None,
) -> None:
    """Write the whole knowledge base; `mscatlas load` reads it back."""
    if fmt not in ("json", "csv", "yaml"):
        err_console.print(f"unknown format '{fmt}': use json, csv or yaml")
        raise typer.Exit(2)
    text = export_text(open_store(db).dataset(), fmt)  # type: ignore[arg-type]
    if out is None:
        sys.stdout.write(text)
        return
    try:
        atomic_write(out, text.encode("utf-8"), force=force)
    except OutputError as exc:
        err_console.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    err_console.print(f"wrote {out}")


@app.command()
def summary(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Counts over the knowledge base: records, flags, checks, and items by category."""
    from mscatlas.kb.summary import summarize

    counts = summarize(open_store(db).dataset())
    if as_json:
        _print_json(counts)
        return
    table = Table(title="mscatlas knowledge base", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", overflow="fold")
    for key, value in counts.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        table.add_row(key.replace("_", " "), shown)
    console.print(table)


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("report"),
    db: DbOption = None,
) -> None:
    """Build the offline HTML report (DIR/index.html) of the knowledge base."""
    from mscatlas.report import build_report

    path = build_report(open_store(db).dataset(), out)
    console.print(f"wrote {path}")


@app.command("dose")
def dose_cmd(
    text: Annotated[str, typer.Argument(help="Dose wording, e.g. '1:6 (SC:CC)' or 'K562 and MSCs at 10:1'.")],
    as_json: JsonOption = False,
) -> None:
    """Parse dose wording into a structured dose (ratios MSC first)."""
    try:
        dose = parse_dose(text)
    except DoseParseError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        _print_json(dose.model_dump(mode="json", exclude_defaults=True))
    else:
        console.print(dose.describe())


app.command("synthesize")(synthesize)
app.command("predict")(predict)
app.command("meta")(meta)
sim_app.command("sweep")(sweep)
app.add_typer(sim_app, name="sim")
trials_app.command("import")(import_trials)
trials_app.command("sync")(sync)
trials_app.command("landscape")(landscape)
trials_app.command("roots")(roots)
app.add_typer(trials_app, name="trials")
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


def main() -> None:
    try:
        app()
    except RecordFileError as exc:
        # Only reachable when the shipped dataset itself is invalid (a broken install or edit).
        err_console.print("[red]error[/red] the shipped dataset does not validate:")
        for error in exc.errors:
            err_console.print(f"  {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
