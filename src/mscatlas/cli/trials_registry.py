"""`mscatlas trials import | sync | landscape`: the trial registry against ClinicalTrials.gov.

Plain command functions; the lead registers them on the ``trials`` sub-app. Each parses
options, calls ``mscatlas.trials`` and the store, and renders a table (people) or JSON
(programs). Writes are all or nothing: a bad record or a failed request leaves the store as
it was.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import console, err_console, fail, print_json
from mscatlas.kb.models import ClinicalTrial
from mscatlas.kb.store import Store, TrialMergeResult
from mscatlas.kb.terms import label
from mscatlas.trials.ctgov import CtgovClient, CtgovError, search_params
from mscatlas.trials.landscape import Landscape
from mscatlas.trials.landscape import landscape as compute_landscape
from mscatlas.trials.parse import StudyParseError, parse_studies, read_study_file

__all__ = ["DEFAULT_SYNC_COND", "DEFAULT_SYNC_QUERY", "import_trials", "landscape", "make_client", "sync"]


# A default search for MSC products in cancer and its treatment's side effects.
DEFAULT_SYNC_QUERY = '"mesenchymal stem cells" OR "mesenchymal stromal cells" OR "mesenchymal stem cell"'
DEFAULT_SYNC_COND = "cancer OR neoplasm OR tumor OR leukemia OR lymphoma OR myeloma OR myelodysplastic"

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: MSCATLAS_DATABASE_URL or a SQLite file in the user data dir)."
    ),
]


def _report_parse_errors(exc: StudyParseError, as_json: bool) -> NoReturn:
    message = f"{len(exc.errors)} error(s); nothing was written"
    if as_json:
        errors = [e.to_dict() for e in exc.errors]
        print_json({"valid": False, "error": message, "detail": errors, "errors": errors})
    for e in exc.errors:
        err_console.print(f"[red]error[/red] {e}", highlight=False, soft_wrap=True)
    fail(message, as_json=False)  # the JSON report is already out


def _merge(store: Store, trials: list[ClinicalTrial], source: str) -> TrialMergeResult:
    try:
        return store.merge_trials(trials, source=source)
    except Exception as exc:  # the transaction rolled back: the store is as it was
        fail(f"merging failed, nothing was written: {exc}")


def _show_merge(result: TrialMergeResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"trials: {len(result.added)} added, {len(result.updated)} updated, {len(result.unchanged)} unchanged"
    )
    for nct_id, fields in result.updated.items():
        console.print(f"  {nct_id}: {', '.join(fields) or 'record normalised'}")


def import_trials(
    file: Annotated[
        Path, typer.Argument(help="JSON saved from the API: one study, or a page {'studies': [...]}.")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import ClinicalTrials.gov study records from a file; curated fields of stored trials are kept."""
    try:
        trials = read_study_file(file)
    except StudyParseError as exc:
        _report_parse_errors(exc, as_json)
    store = Store.open(db)
    try:
        _show_merge(_merge(store, trials, f"mscatlas trials import {file.name}"), as_json)
    finally:
        store.close()


def make_client(*, offline: bool, cache_dir: Path | None) -> CtgovClient:
    """The registry client of `trials sync` (tests replace it)."""
    return CtgovClient(offline=offline, cache_dir=cache_dir)


def sync(
    query: Annotated[str | None, typer.Option("--query", help="Free-text search (query.term).")] = None,
    cond: Annotated[str | None, typer.Option("--cond", help="Condition search (query.cond).")] = None,
    intr: Annotated[str | None, typer.Option("--intr", help="Intervention search (query.intr).")] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Overall status filter, repeatable (e.g. COMPLETED).")
    ] = None,
    advanced: Annotated[str | None, typer.Option("--advanced", help="filter.advanced expression.")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Studies per page.")] = 100,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="Start from this page token (resume a search).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Serve from the on-disk cache only; a missing page is an error.")
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Cache directory (default: the user cache dir).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refresh the trial registry from ClinicalTrials.gov (all or nothing; curated fields win).

    With neither --query nor --cond nor --intr, searches MSC products in cancer. Pages already
    fetched are cached, so a sync cut off midway repeats quickly; --page-token resumes a search
    from a page the API handed out.
    """
    if not (query or cond or intr):
        query, cond = DEFAULT_SYNC_QUERY, DEFAULT_SYNC_COND
    params = search_params(
        term=query, cond=cond, intr=intr, overall_status=status, advanced=advanced, page_size=page_size
    )
    studies: list[Any] = []
    last_token: str | None = page_token
    try:
        with (
            make_client(offline=offline, cache_dir=cache_dir) as client,
            Progress(
                TextColumn("[bold]ClinicalTrials.gov"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=as_json,
            ) as progress,
        ):
            task = progress.add_task("studies", total=None)
            for page in client.iter_pages(params, page_token=page_token):
                if page.total_count is not None:
                    progress.update(task, total=page.total_count)
                studies.extend(page.studies)
                progress.update(task, advance=len(page.studies))
                last_token = page.next_page_token
    except CtgovError as exc:
        hint = f" (resume with --page-token {last_token})" if last_token else ""
        fail(f"{exc}; nothing was written{hint}")
    try:
        trials = parse_studies(studies)
    except StudyParseError as exc:
        _report_parse_errors(exc, as_json)
    store = Store.open(db)
    try:
        where = "offline cache" if offline else "ClinicalTrials.gov API"
        _show_merge(_merge(store, trials, f"mscatlas trials sync ({where})"), as_json)
    finally:
        store.close()


def landscape(
    db: DbOption = None,
    today: Annotated[
        str | None, typer.Option("--today", help="Reference date yyyy-mm-dd for years since completion.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Trials by purpose, phase, status, start year, MSC source and engineering; the results gap."""
    try:
        ref = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError:
        fail(f"--today must be a date yyyy-mm-dd, not {today!r}", code=2)
    store = Store.open(db)
    try:
        result = compute_landscape(store.dataset().trials, today=ref)
    finally:
        store.close()
    if as_json:
        print_json(result.to_dict())
        return
    _show_landscape(result)


def _show_landscape(result: Landscape) -> None:
    console.print(f"{result.total} trials (as of {result.today.isoformat()})")
    for title, counts in (
        ("purpose", result.by_purpose),
        ("phase", result.by_phase),
        ("status", result.by_status),
        ("start year", result.by_start_year),
        ("MSC source", result.by_msc_source),
        ("engineering", result.by_engineering),
        ("product", result.by_product),
        ("registry", result.by_registry),
        ("route", result.by_route),
    ):
        table = Table(title=f"by {title}")
        table.add_column(title)
        table.add_column("trials", justify="right")
        for key, n in counts.items():
            table.add_row(label(key), str(n))
        console.print(table)
    console.print(
        f"{result.ended} ended trials (completed or terminated): {result.with_results} with results posted "
        f"or a linked results publication; {len(result.results_gap)} with neither (the results gap); "
        f"{len(result.unchecked)} that cannot be judged, because the registry's results field was never "
        "read and no publication is linked (listed below as 'no', not counted in the gap)"
    )
    if result.results_gap or result.unchecked:
        table = Table(title="ended trials without known results")
        for col in ("NCT id", "status", "completion", "years since", "registry checked"):
            table.add_column(col)
        for entry, checked in [(g, "yes") for g in result.results_gap] + [
            (g, "no") for g in result.unchecked
        ]:
            years = "" if entry.years_since_completion is None else f"{entry.years_since_completion:.1f}"
            completion = (entry.completion or "—") + (
                f" ({entry.completion_type})" if entry.completion_type else ""
            )
            table.add_row(entry.nct_id, entry.status, completion, years, checked)
        console.print(table)
