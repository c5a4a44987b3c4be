"""The trial search flow: what the documented registry search found, screened and kept.

The trial search is recorded like the literature search, in two shipped files under
``kb/data/intake/``: ``trial-searches.yaml`` (each query with every record it returned, a
record carrying its registry id when it names one) and ``trial-screening.csv`` (one decision
per distinct trial). The literature intake (``mscatlas.intake.shipped``) matches rows to
PubMed citations and so cannot read trial rows, which carry a registry id instead; this small
reader does, with the same rules: reason codes from ``exclusion_reasons.yaml``, an exclusion
needs a reason, and a bad row is reported with its file, line and field, never skipped silently.

:func:`trial_flow` adds the rows up for the report's translation section and ``mscatlas trials
flow``: records identified, trials screened, excluded by reason, included, and which included
trials are curated in the registry (or eligible but not curated because their record was not read).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mscatlas.intake.screening import DECISIONS, reason_codes
from mscatlas.kb.models import ClinicalTrial
from mscatlas.kb.trial_dose import registry_of

__all__ = [
    "TrialQuery",
    "TrialScreen",
    "read_trial_screening",
    "read_trial_searches",
    "trial_flow",
]

SEARCHES_FILE = "trial-searches.yaml"
SCREENING_FILE = "trial-screening.csv"


@dataclass(frozen=True)
class TrialQuery:
    id: str
    query: str
    yielded: int
    record_ids: tuple[str | None, ...]  # one per record shown; None where it names no trial


@dataclass(frozen=True)
class TrialScreen:
    trial_id: str
    search: str | None
    decision: str
    reason: str | None
    note: str
    line: int


def _intake_dir() -> Path:
    return Path(str(resources.files("mscatlas.kb").joinpath("data", "intake")))


def read_trial_searches(path: Path | None = None) -> tuple[list[TrialQuery], list[str]]:
    """The queries of ``trial-searches.yaml`` and a problem line per malformed entry."""
    path = path or _intake_dir() / SEARCHES_FILE
    file = f"intake/{path.name}"
    entries = yaml.safe_load(path.read_text("utf-8")) or []
    queries: list[TrialQuery] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        where = f"{file} query {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            problems.append(f"{where}, field id: missing")
            continue
        where = f"{file} query {entry['id']}"
        if entry["id"] in seen:
            problems.append(f"{where}, field id: used twice")
            continue
        seen.add(entry["id"])
        records = entry.get("records") or []
        yielded = entry.get("yielded")
        if not isinstance(yielded, int) or yielded < len(records):
            problems.append(
                f"{where}, field yielded: {yielded!r} is fewer than the {len(records)} records listed"
            )
            yielded = len(records)
        ids: list[str | None] = []
        for k, record in enumerate(records, start=1):
            rid = record.get("id") if isinstance(record, dict) else None
            if rid is not None:
                try:
                    registry_of(str(rid))
                except ValueError as exc:
                    problems.append(f"{where} record {k}, field id: {exc}")
                    rid = None
            ids.append(None if rid is None else str(rid))
        queries.append(TrialQuery(entry["id"], str(entry.get("query", "")), yielded, tuple(ids)))
    return queries, problems


def read_trial_screening(path: Path | None = None) -> tuple[list[TrialScreen], list[str]]:
    """The rows of ``trial-screening.csv`` and a problem line per malformed row."""
    path = path or _intake_dir() / SCREENING_FILE
    file = f"intake/{path.name}"
    reader = csv.DictReader(io.StringIO(path.read_text("utf-8-sig")))
    missing = [c for c in ("trial_id", "decision", "reason", "by") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"{file} line 1, field {missing[0]}: column missing from the header"]
    codes = reason_codes()
    rows: list[TrialScreen] = []
    problems: list[str] = []
    for raw in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{file} line {line} ({row.get('trial_id') or 'no id'})"
        try:
            registry_of(row["trial_id"])
        except ValueError as exc:
            problems.append(f"{where}, field trial_id: {exc}")
            continue
        decision, reason = row["decision"].casefold(), row["reason"] or None
        if decision not in DECISIONS:
            problems.append(
                f"{where}, field decision: {row['decision']!r} is not one of {', '.join(DECISIONS)}"
            )
            continue
        if reason is not None and reason not in codes:
            problems.append(f"{where}, field reason: unknown code {reason!r} (intake/exclusion_reasons.yaml)")
            continue
        if decision == "exclude" and reason in (None, "include"):
            problems.append(f"{where}, field reason: an exclusion needs a reason code")
            continue
        rows.append(
            TrialScreen(
                row["trial_id"], row.get("search") or None, decision, reason, row.get("note", ""), line
            )
        )
    return rows, problems


def trial_flow(
    trials: Iterable[ClinicalTrial],
    queries: list[TrialQuery] | None = None,
    screens: list[TrialScreen] | None = None,
) -> dict[str, Any]:
    """Counts of the trial search, from the shipped files unless queries and rows are given.

    A trial screened twice counts once, by its last row. ``included_curated`` are included
    trials found in the registry (by key or cross-registration); the others were eligible but
    not curated. ``registry_not_from_search`` are registry trials with no screening row (the
    review's own trials).
    """
    problems: list[str] = []
    if queries is None:
        queries, trouble = read_trial_searches()
        problems += trouble
    if screens is None:
        screens, trouble = read_trial_screening()
        problems += trouble
    known_queries = {q.id for q in queries}
    for s in screens:
        if s.search is not None and s.search not in known_queries:
            where = f"intake/{SCREENING_FILE} line {s.line} ({s.trial_id})"
            problems.append(f"{where}, field search: unknown query {s.search!r}")
    registry: dict[str, str] = {}
    for t in trials:
        registry[t.nct_id] = t.nct_id
        for x in t.cross_registrations:
            registry.setdefault(x.id, t.nct_id)
    last = {s.trial_id: s for s in screens}
    included = sorted(t for t, s in last.items() if s.decision == "include")
    excluded = Counter(s.reason or "no reason given" for s in last.values() if s.decision == "exclude")
    curated = [t for t in included if t in registry]
    screened_keys = {registry.get(t, t) for t in last}
    record_ids = [rid for q in queries for rid in q.record_ids if rid]
    return {
        "queries": len(queries),
        "records_identified": sum(q.yielded for q in queries),
        "records_naming_a_trial": len(record_ids),
        "distinct_trials_in_records": len(set(record_ids)),
        "screened": len(last),
        "excluded": {"total": sum(excluded.values()), "reasons": dict(excluded.most_common())},
        "maybe": sum(1 for s in last.values() if s.decision == "maybe" and s.reason != "not_retrieved"),
        "not_retrieved": sorted(
            t for t, s in last.items() if s.decision == "maybe" and s.reason == "not_retrieved"
        ),
        "included": len(included),
        "included_curated": len(curated),
        "included_not_curated": sorted(set(included) - set(curated)),
        "registry_total": len(set(registry.values())),
        "registry_not_from_search": sorted(set(registry.values()) - screened_keys),
        "problems": problems,
    }
