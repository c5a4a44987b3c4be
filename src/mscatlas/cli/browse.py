"""`mscatlas query`, `show`, `export`, `summary`, `report` and `dose`: reading the knowledge base.

Typed values go through the one term resolver (mscatlas.kb.terms): labels and synonyms are
accepted, and an unknown value exits 2 with the nearest values. Records are shown as people
read them (mscatlas.kb.display), never as JSON blobs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.curation import open_store
from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import bad_input, console, err_console, fail, print_json, request_json, term
from mscatlas.kb.display import engineering_text, record_fields
from mscatlas.kb.dose import ACCEPTED_FORMS, DoseParseError, parse_dose
from mscatlas.kb.enums import CurationStatus, Delivery, Direction, Endpoint, MscSource, Setting
from mscatlas.kb.export import export_chunks
from mscatlas.kb.files import OutputError, atomic_write_chunks
from mscatlas.kb.models import ClinicalTrial, EvidenceItem, Study
from mscatlas.kb.store import EvidenceFilter, Store
from mscatlas.kb.terms import cancer_query, enum_choices, label

__all__ = ["dose_cmd", "export", "query", "report", "show", "summary"]


def _choices(cls: type, example: str) -> str:
    return f"One of: {', '.join(enum_choices(cls))}; labels and synonyms such as {example} work too."


def evidence_table(items: list[EvidenceItem], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("id", no_wrap=True)
    for col in (
        "refs",
        "MSC source",
        "product",
        "cancer type",
        "delivery, setting",
        "endpoint",
        "direction",
        "dose",
    ):
        table.add_column(col, overflow="fold")
    for e in items:
        status = "" if e.curation_status is CurationStatus.accepted else f" ({label(e.curation_status)})"
        table.add_row(
            e.id + status,
            ", ".join(map(str, e.refs)) or e.study,
            ", ".join(label(s) for s in e.msc_source),
            engineering_text(e.engineering),
            e.cancer_type + (f" ({', '.join(e.cell_lines)})" if e.cell_lines else ""),
            f"{label(e.delivery)}, {label(e.setting)}",
            label(e.endpoint),
            label(e.direction),
            e.dose.describe(),
        )
    return table


def query(
    msc_source: Annotated[
        str | None,
        typer.Option(
            "--msc-source", help="MSC tissue source. " + _choices(MscSource, "'bone marrow', BM-MSC, UC-MSC")
        ),
    ] = None,
    cancer: Annotated[
        str | None,
        typer.Option(
            "--cancer",
            help="Cancer type, its synonym or words ('pancreas' finds pancreatic adenocarcinoma through "
            "the OncoTree tissue), class (solid, hematological) or cell line (K562).",
        ),
    ] = None,
    delivery: Annotated[
        str | None, typer.Option("--delivery", help=_choices(Delivery, "'conditioned medium', exosomes"))
    ] = None,
    direction: Annotated[str | None, typer.Option("--direction", help=_choices(Direction, "inhibit"))] = None,
    setting: Annotated[str | None, typer.Option("--setting", help=_choices(Setting, "'in vivo'"))] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help=_choices(Endpoint, "'tumour growth'"))
    ] = None,
    ref: Annotated[int | None, typer.Option("--ref", help="Review reference number.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List evidence items matching all the given filters."""
    source = term(MscSource, msc_source, "--msc-source")
    how = term(Delivery, delivery, "--delivery")
    effect = term(Direction, direction, "--direction")
    where = term(Setting, setting, "--setting")
    measured = term(Endpoint, endpoint, "--endpoint")
    store = open_store(db)
    items = store.query_evidence(
        EvidenceFilter(
            msc_source=source.value if source else None,
            cancer=cancer,
            delivery=how.value if how else None,
            direction=effect.value if effect else None,
            setting=where.value if where else None,
            endpoint=measured.value if measured else None,
            study=f"ref{ref}" if ref is not None else None,
        )
    )
    if as_json:
        print_json([e.model_dump(mode="json") for e in items])
        return
    console.print(evidence_table(items, f"{len(items)} evidence item(s)"))
    if cancer and not items:
        wanted = cancer_query(cancer)
        hint = wanted.suggestions()
        if wanted.empty:
            err_console.print(
                f"no cancer type, class or cell line is named '{cancer}'"
                + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""),
                highlight=False,
                soft_wrap=True,
            )


def _find(store: Store, record_id: str) -> Study | EvidenceItem | ClinicalTrial | None:
    """A record by its id; a bare reference number (44) or 'ref 44' finds the study ref44."""
    record = store.get(record_id)
    if record is None:
        number = re.fullmatch(r"\s*(?:ref(?:erence)?\s*)?(\d+)\s*", record_id, re.IGNORECASE)
        if number:
            record = store.get(f"ref{int(number.group(1))}")
    return record


def show(
    record_id: Annotated[
        str, typer.Argument(help="Evidence id (ev-029-a), study id (ref29, or just 29) or NCT id.")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One record with its provenance and revision history."""
    store = open_store(db)
    record = _find(store, record_id)
    if record is None:
        fail(
            f"no record '{record_id}'",
            detail={"id": record_id, "looked_in": ["evidence", "studies", "trials"]},
        )
    key = record.nct_id if isinstance(record, ClinicalTrial) else record.id
    revisions = store.revisions(key)
    if as_json:
        print_json({**record.model_dump(mode="json"), "revisions": revisions})
        return
    table = Table(title=_record_title(record), show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, text in record_fields(record):
        table.add_row(name, text)
    console.print(table, highlight=False)
    if revisions:
        history = Table(title="history", show_lines=False)
        for col in ("version", "when", "who", "why"):
            history.add_column(col, overflow="fold")
        for r in revisions:
            history.add_row(
                str(r["version"]), r["changed_at"][:19].replace("T", " "), r["changed_by"], r["reason"]
            )
        console.print(history, highlight=False)
    if isinstance(record, Study):
        items = store.query_evidence(EvidenceFilter(study=record.id))
        console.print(evidence_table(items, f"{len(items)} evidence item(s) from {record.id}"))


def _record_title(record: Study | EvidenceItem | ClinicalTrial) -> str:
    if isinstance(record, EvidenceItem):
        return f"Evidence {record.id}"
    if isinstance(record, Study):
        first = record.authors[0] if record.authors else "(authors not recorded)"
        return f"Study {record.id}: {first} {record.year}"
    return f"Trial {record.nct_id}"


def export(
    fmt: Annotated[str, typer.Option("--format", help="json, csv or yaml.")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: stdout), written atomically.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Write through a symbolic link at --out.")] = False,
    db: DbOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="With --out: a JSON summary of what was written, on stdout.", callback=request_json
        ),
    ] = False,
) -> None:
    """Write the whole knowledge base; `mscatlas load` reads it back."""
    if fmt not in ("json", "csv", "yaml"):
        bad_input(f"unknown format '{fmt}': use json, csv or yaml", detail={"format": fmt})
    if as_json and out is None:
        bad_input("--json summarises what --out received; without --out the export itself is the output")
    store = open_store(db)
    chunks = export_chunks(store, fmt)  # type: ignore[arg-type]  # streamed: memory flat in n
    if out is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    try:
        written = atomic_write_chunks(out, (c.encode("utf-8") for c in chunks), force=force)
    except OutputError as exc:
        fail(str(exc), detail={"out": str(out)})
    if as_json:
        print_json({"written": str(out), "format": fmt, "bytes": written, **store.counts()})
    else:
        err_console.print(f"wrote {out}")


def summary(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Counts over the knowledge base: records, flags, checks, and items by category."""
    from mscatlas.kb.summary import summarize

    counts = summarize(open_store(db).dataset())
    if as_json:
        print_json(counts)
        return
    table = Table(title="mscatlas knowledge base", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", overflow="fold")
    for key, value in counts.items():
        shown = (
            ", ".join(f"{label(k)}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        )
        table.add_row(label(key), shown)
    console.print(table)


def report(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("report"),
    db: DbOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON summary of the files written.", callback=request_json)
    ] = False,
) -> None:
    """Build the offline HTML report (DIR/index.html) of the knowledge base."""
    from mscatlas.report import build_report

    try:
        path = build_report(open_store(db).dataset(), out)
    except OutputError as exc:
        fail(str(exc), detail={"out": str(out)})
    if as_json:
        files = sorted(p for p in Path(out).rglob("*") if p.is_file())
        print_json(
            {
                "written": str(path),
                "files": [str(p) for p in files],
                "bytes": sum(p.stat().st_size for p in files),
            }
        )
    else:
        console.print(f"wrote {path}")


def dose_cmd(
    text: Annotated[str, typer.Argument(help="Dose wording, e.g. '1:6 (SC:CC)' or 'K562 and MSCs at 10:1'.")],
    as_json: JsonOption = False,
) -> None:
    """Parse dose wording into a structured dose (ratios MSC first)."""
    try:
        dose = parse_dose(text)
    except DoseParseError as exc:
        bad_input(str(exc), detail={"text": text, "accepted_forms": ACCEPTED_FORMS})
    if as_json:
        print_json(dose.model_dump(mode="json", exclude_defaults=True))
    else:
        console.print(dose.describe())
