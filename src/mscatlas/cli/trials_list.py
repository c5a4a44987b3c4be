"""`mscatlas trials list | flow`: the curated trial registry for people and programs.

Plain command functions; ``cli/__init__`` registers them on the ``trials`` sub-app. The
selection lives in ``mscatlas.trials.listing`` and the search flow in ``mscatlas.trials.flow``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import bad_input, console, print_json, term
from mscatlas.kb.enums import MscSource, Phase, TrialPurpose
from mscatlas.kb.store import Store
from mscatlas.kb.terms import label
from mscatlas.trials.flow import trial_flow
from mscatlas.trials.listing import TrialFilter, select_trials, trial_row

__all__ = ["TRIALS_HELP", "flow", "list_trials"]

TRIALS_HELP = (
    "Clinical trials of MSC products in people with cancer. The registry: list (filter the "
    "curated trials), landscape (counts and the results gap), roots (the preclinical evidence "
    "behind each trial), flow (the documented registry search), import and sync "
    "(ClinicalTrials.gov records). Dose-finding designs for a phase I trial: design, "
    "boundaries and next-dose (3+3, BOIN, CRM)."
)


def list_trials(
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="anti_tumor, transplant_support, side_effect_mitigation or other."),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="ClinicalTrials.gov status, e.g. COMPLETED, RECRUITING, UNKNOWN."),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option("--registry", help="ClinicalTrials.gov, EudraCT, ChiCTR, ISRCTN, ANZCTR, ..."),
    ] = None,
    phase: Annotated[
        str | None, typer.Option("--phase", help="PHASE1, PHASE2, ... (a PHASE1/PHASE2 trial matches both).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="MSC tissue source (labels and synonyms accepted: BM-MSC, UC-MSC, ...)."
        ),
    ] = None,
    results_gap: Annotated[
        bool,
        typer.Option("--results-gap", help="Only ended trials with neither posted nor published results."),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the curated trials, filtered by purpose, status, registry, phase and MSC source."""
    try:
        where = TrialFilter(
            purpose=term(TrialPurpose, purpose, "--purpose"),
            status=status.strip().upper().replace(" ", "_").replace(",", "") if status else None,
            registry=registry,
            phase=term(Phase, phase.upper() if phase else None, "--phase"),
            source=term(MscSource, source, "--source"),
            results_gap=results_gap,
        )
    except ValueError as exc:
        bad_input(f"--{str(exc).split(':', 1)[0]}: {str(exc).split(':', 1)[1].strip()}")
    store = Store.open(db)
    try:
        rows = [trial_row(t) for t in select_trials(store.dataset().trials, where)]
    finally:
        store.close()
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} trials")
    for col in ("id", "purpose", "phase", "status", "source", "product", "route", "dose", "results"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            label(r["purpose"], TrialPurpose),
            "/".join(label(p, Phase) for p in r["phases"]),
            r["status"] or "—",
            ", ".join(label(s, MscSource) for s in r["msc_source"]),
            label(r["product"]),
            r["route"] or "—",
            r["dose"] or "—",
            r["results"] + (" (gap)" if r["results_gap"] else ""),
        )
    console.print(table)


def flow(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The documented registry search: records found, trials screened, excluded with reasons, included."""
    store = Store.open(db)
    try:
        counts = trial_flow(store.dataset().trials)
    finally:
        store.close()
    if as_json:
        print_json(counts)
        return
    c = counts
    reasons = ", ".join(f"{k} {v}" for k, v in c["excluded"]["reasons"].items()) or "none"
    console.print(
        f"{c['queries']} queries returned {c['records_identified']} records; "
        f"{c['records_naming_a_trial']} named a registered trial "
        f"({c['distinct_trials_in_records']} distinct)."
    )
    console.print(
        f"{c['screened']} trials screened: {c['excluded']['total']} excluded ({reasons}), "
        f"{c['included']} included, of which {c['included_curated']} curated; eligible but not "
        f"yet curated (the screening notes say what could not be read): "
        f"{', '.join(c['included_not_curated']) or 'none'}; "
        f"undecided {c['maybe']}; not retrieved (only a page header could be read, not assessed): "
        f"{len(c['not_retrieved'])}."
    )
    console.print(
        f"Registry: {c['registry_total']} trials; {len(c['registry_not_from_search'])} come from the "
        "review's table and were not met in the search."
    )
    for problem in counts["problems"]:
        console.print(f"[yellow]problem[/yellow] {problem}", highlight=False)
