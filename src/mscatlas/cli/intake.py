"""`mscatlas intake ...`: search, import, deduplicate, screen and extract (the living intake).

Thin: every command parses its options, calls :mod:`mscatlas.intake`, and renders a table for
people or JSON for programs (the keys are a contract, see README). The first intake command on
a store brings the shipped search and screening records into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import console, err_console, fail, print_json
from mscatlas.intake.citation import IntakeError
from mscatlas.intake.prisma import prisma_counts, prisma_svg
from mscatlas.intake.readers import FORMATS, read_citations
from mscatlas.intake.screening import DECISIONS, STAGES
from mscatlas.intake.simulate import read_labelled, simulate
from mscatlas.intake.sources import EuropePmcClient, PubMedClient, SourceError
from mscatlas.intake.store import IntakeStore
from mscatlas.intake.suggest import FIELDS, suggest
from mscatlas.intake.workflow import candidate_or_error, labelled_rows, next_candidates, open_intake, status
from mscatlas.kb.display import engineering_text, field_text
from mscatlas.kb.store import Store
from mscatlas.kb.terms import label

__all__ = ["intake_app", "make_source_client"]

intake_app = typer.Typer(
    help="Living intake: search, import, deduplicate, screen, extract.", no_args_is_help=True
)


def _open(db: str | None) -> IntakeStore:
    store = Store.open(db)
    intake, seeded = open_intake(store)
    if seeded is not None and seeded.searches:
        err_console.print(
            f"brought in the shipped search: {seeded.searches} queries, {seeded.records} records, "
            f"{seeded.candidates} candidates, {seeded.decisions} decisions"
            + (
                f" ({len(seeded.problems)} problem(s) in the shipped files: `intake status`)"
                if seeded.problems
                else ""
            ),
            highlight=False,
        )
    return intake


def _show_import(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    console.print(
        f"imported {result['imported']} new candidate(s); {len(result['duplicates'])} duplicate(s); "
        f"{result['candidates']} candidates in all"
    )
    for d in result["duplicates"]:
        console.print(f"  {d['record']} = {d['duplicate_of']} ({d['reason']})", highlight=False)


def import_file(
    file: Annotated[Path, typer.Argument(help="PubMed XML, MEDLINE (.nbib), RIS or CSV export.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"One of {', '.join(FORMATS)} (default: detected).")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="A name for this import.")] = None,
    by: Annotated[str, typer.Option("--by", help="Who imports.")] = "mscatlas",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a file of records as candidates, all or nothing; duplicates are merged with a reason."""
    if fmt is not None and fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        citations, detected = read_citations(file, fmt)  # type: ignore[arg-type]
    except IntakeError as exc:
        if as_json:
            errors = [p.to_dict() for p in exc.problems]
            message = f"{len(exc.problems)} error(s); nothing was imported"
            print_json({"valid": False, "error": message, "detail": errors, "errors": errors})
        for problem in exc.problems:
            err_console.print(f"[red]error[/red] {problem}", highlight=False, soft_wrap=True)
        fail(f"{len(exc.problems)} error(s); nothing was imported", as_json=False)  # JSON is out
    intake = _open(db)
    try:
        result = intake.import_citations(
            citations, source=f"file ({detected})", file=file.name, fmt=detected, label=label, by=by
        )
    except Exception as exc:  # the transaction rolled back: report, the store is as it was
        fail(f"import failed, nothing was imported: {exc}")
    out = result.to_dict()
    out["duplicates"] = [{k: d[k] for k in ("record", "duplicate_of", "reason")} for d in result.duplicates]
    _show_import(out, as_json)


def make_source_client(
    source: str, *, offline: bool, cache_dir: Path | None
) -> PubMedClient | EuropePmcClient:
    """The literature client of `intake search` (tests replace it)."""
    if source == "pubmed":
        return PubMedClient(offline=offline, cache_dir=cache_dir)
    return EuropePmcClient(offline=offline, cache_dir=cache_dir)


def search(
    source: Annotated[str, typer.Argument(help="pubmed or europepmc.")],
    query: Annotated[str, typer.Option("--query", help="The query, in the source's own syntax.")],
    max_records: Annotated[
        int | None, typer.Option("--max", min=1, help="At most this many records.")
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Answer from the on-disk cache only.")] = False,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    by: Annotated[str, typer.Option("--by", help="Who runs the search.")] = "mscatlas",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search PubMed (E-utilities, history server) or Europe PMC (cursorMark) and import the records."""
    if source not in ("pubmed", "europepmc"):
        fail(f"unknown source {source!r}: pubmed or europepmc")
    try:
        with make_source_client(source, offline=offline, cache_dir=cache_dir) as client:
            citations = client.search(query, max_records=max_records)
    except SourceError as exc:
        fail(f"{exc}; nothing was imported")
    intake = _open(db)
    result = intake.import_citations(citations, source=source, query=query, by=by)
    out = {**result.to_dict(), "source": source, "query": query, "returned": len(citations)}
    out["duplicates"] = [{k: d[k] for k in ("record", "duplicate_of", "reason")} for d in result.duplicates]
    _show_import(out, as_json)


def next_(
    n: Annotated[int, typer.Option("--n", min=1, help="How many.")] = 10,
    by: Annotated[str | None, typer.Option("--by", help="Your account (two-reviewer mode).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the tie-breaking order.")] = 0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The highest-priority unscreened candidates (active learning, refitted on every call)."""
    rows = next_candidates(_open(db), n=n, by=by, seed=seed)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"next {len(rows)} candidate(s) to screen")
    for column in ("id", "score", "year", "title"):
        table.add_column(column, overflow="fold")
    for r in rows:
        score = "-" if r["score"] is None else f"{r['score']:.3f}"
        table.add_row(
            r["id"], score, str(r["year"] or ""), r["title"] + (" [RETRACTED]" if r["retracted"] else "")
        )
    console.print(table)


def screen(
    candidate: Annotated[str, typer.Argument(help="Candidate id, e.g. c12.")],
    decision: Annotated[str, typer.Option("--decision", help=" | ".join(DECISIONS))],
    by: Annotated[str, typer.Option("--by", help="Your account name.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Reason code (intake/exclusion_reasons.yaml).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note.")] = None,
    stage: Annotated[str, typer.Option("--stage", help=" | ".join(STAGES))] = "title_abstract",
    resolves: Annotated[
        bool, typer.Option("--resolves", help="Resolves a two-reviewer disagreement.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a screening decision (who and when are kept; nothing is overwritten)."""
    intake = _open(db)
    try:
        made = intake.screen(
            candidate, decision, by=by, reason=reason, note=note, stage=stage, resolves=resolves
        )
    except (ValueError, KeyError) as exc:
        fail(f"{candidate}: {exc.args[0] if exc.args else exc}")
    state = intake.states()[candidate]
    if as_json:
        print_json({**made.to_dict(), "state": state.status})
    else:
        console.print(f"{candidate}: {decision} by {by} at {made.at.isoformat()} (now {state.status})")


def status_cmd(
    target_recall: Annotated[float, typer.Option("--target-recall", min=0.5, max=0.999)] = 0.95,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.999)] = 0.95,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Screening progress, the PRISMA 2020 flow, and the stopping rule's estimate."""
    intake = _open(db)
    out = status(intake, target_recall=target_recall, confidence=confidence)
    if as_json:
        print_json(out)
        return
    prisma, stop = out["prisma"], out["stopping"]
    console.print(
        f"candidates: {out['candidates']} ({', '.join(f'{k} {v}' for k, v in out['by_status'].items())})"
    )
    flow = [
        ("identified", prisma["identified"]["total"]),
        ("duplicates removed", prisma["duplicates_removed"]),
        ("already in the base", prisma["already_in_base"]),
        ("screened", prisma["screened"]),
        ("excluded", prisma["excluded"]["total"]),
        ("full text assessed", prisma["assessed"]),
        ("included", prisma["included"]),
    ]
    console.print("PRISMA: " + ", ".join(f"{name} {n}" for name, n in flow))
    for problem in out["shipped_problems"]:
        console.print(f"  shipped file problem: {problem['file']}:{problem['line']} {problem['message']}")
    verdict = "the target is reached" if stop["can_stop"] else "keep screening"
    console.print(
        f"stopping rule: recall >= {stop['estimated_recall']:.3f} at {stop['confidence']:.0%} confidence "
        f"(target {stop['target_recall']}, p = {stop['p_value']:.4f}): {verdict}. It never stops on its own."
    )


def simulate_cmd(
    file: Annotated[Path, typer.Argument(help="Labelled CSV: title, abstract, label_included.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Replay a fully labelled set in active-learning and random order: WSS@95, RRF@10, stopping point."""
    try:
        data = read_labelled(file)
    except IntakeError as exc:
        errors = [p.to_dict() for p in exc.problems]
        fail(f"{len(exc.problems)} error(s) in {file}: {'; '.join(map(str, exc.problems))}", detail=errors)
    result = simulate(data, seed=seed)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{file.name}: {result['n']} records, {result['n_included']} relevant")
    for column in ("order", "WSS@95", "RRF@10", "stops at", "recall there"):
        table.add_column(column)
    for name, m in (("active learning", result), ("random", result["random"])):
        table.add_row(
            name, f"{m['wss95']:.3f}", f"{m['rrf10']:.3f}", str(m["stopped_at"]), f"{m['recall_at_stop']:.3f}"
        )
    console.print(table)


def labelled(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    db: DbOption = None,
) -> None:
    """Write the store's screening log as a labelled set for `intake simulate` (include/maybe = 1)."""
    import csv

    rows = labelled_rows(_open(db))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["title", "abstract", "label_included"])
        writer.writeheader()
        writer.writerows(rows)
    relevant = sum(r["label_included"] for r in rows)
    err_console.print(f"wrote {out}: {len(rows)} screened records, {relevant} relevant")


def suggest_cmd(
    candidate: Annotated[str, typer.Argument(help="Candidate id, e.g. c12.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Suggested evidence-item fields from the candidate's title and abstract, each with a confidence."""
    intake = _open(db)
    try:
        c = candidate_or_error(intake, candidate)
    except KeyError as exc:
        fail(str(exc.args[0]))
    found = suggest(c.title, c.abstract)
    if as_json:
        print_json({"candidate": c.id, "fields": {k: v.to_dict() for k, v in found.items()}})
        return
    table = Table(title=f"{c.id}: {c.title}")
    for column in ("field", "suggestion", "confidence", "from"):
        table.add_column(column, overflow="fold")
    for name in FIELDS:
        if name in found:
            s = found[name]
            table.add_row(
                label(name),
                engineering_text(s.value) if name == "engineering" else field_text(s.value, name),
                f"{s.confidence:.2f}",
                "; ".join(s.evidence[:3]),
            )
    console.print(table)
    console.print("suggestions only: check each against the paper before curating")


def promote(
    candidate: Annotated[str, typer.Argument(help="Candidate id, e.g. c12.")],
    by: Annotated[str, typer.Option("--by", help="Your account name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an included candidate a study of the knowledge base (the study keeps the link)."""
    intake = _open(db)
    try:
        study = intake.promote(candidate, by=by)
    except (ValueError, KeyError) as exc:
        fail(f"{candidate}: {exc.args[0] if exc.args else exc}")
    if as_json:
        print_json(study.model_dump(mode="json", exclude_none=True))
    else:
        console.print(
            f"{candidate} is study {study.id}; add evidence items with `mscatlas load` or the web form"
        )


def reviewers(
    n: Annotated[int, typer.Argument(min=1, max=2, help="1 or 2 reviewers per record.")],
    db: DbOption = None,
) -> None:
    """Set one- or two-reviewer screening (two: disagreements are listed for resolution)."""
    intake = _open(db)
    intake.set_reviewers(n)
    console.print(f"screening with {n} reviewer(s)")


def disagreements(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Candidates whose two reviewers disagree (resolve with `intake screen --resolves`)."""
    rows = _open(db).disagreements()
    if as_json:
        print_json(rows)
        return
    for row in rows:
        votes = ", ".join(f"{d['by']}: {d['decision']}" for d in row["decisions"])
        console.print(f"{row['candidate']} ({row['stage']}): {votes}")
    console.print(f"{len(rows)} disagreement(s)")


def prisma(
    svg: Annotated[
        Path | None, typer.Option("--svg", help="Also write the flow diagram to this file.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The PRISMA 2020 flow counts (JSON) and, with --svg, the diagram."""
    counts = prisma_counts(_open(db))
    if svg is not None:
        svg.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(prisma_svg(counts, standalone=True), encoding="utf-8")
        err_console.print(f"wrote {svg}")
    if as_json or svg is None:
        print_json(counts)


intake_app.command("import")(import_file)
intake_app.command("search")(search)
intake_app.command("next")(next_)
intake_app.command("screen")(screen)
intake_app.command("status")(status_cmd)
intake_app.command("simulate")(simulate_cmd)
intake_app.command("suggest")(suggest_cmd)
intake_app.command("labelled")(labelled)
intake_app.command("promote")(promote)
intake_app.command("reviewers")(reviewers)
intake_app.command("disagreements")(disagreements)
intake_app.command("prisma")(prisma)
