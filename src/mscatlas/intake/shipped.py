"""The shipped search and screening records (``kb/data/intake/``), read tolerantly.

Curators write, per batch, ``searches-<batch>.yaml`` (each query with every record it
returned) and ``screening-<batch>.csv`` (one decision per record); docs/curation.md, section
"Search and screening records", gives the format. These readers never stop at a bad row:
they keep every good one and report each malformed row with its file, line and field.

:func:`seed_intake` imports them into a store's intake tables in one transaction, as the
shipped records seed the knowledge base: queries become searches (deduplicated across queries
and batches and against the knowledge base's studies) and rows become decisions, matched to
the records by PMID, DOI, PMCID, else by title + year + first author.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mscatlas.intake.citation import Citation, IntakeProblem
from mscatlas.intake.screening import DECISIONS, STAGES, reason_codes

__all__ = [
    "ShippedDecision",
    "ShippedIntake",
    "ShippedQuery",
    "intake_data_dir",
    "read_screening",
    "read_searches",
    "read_shipped_intake",
    "shipped_digest",
]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster

SCREENING_COLUMNS = (
    "pmid",
    "pmcid",
    "doi",
    "title",
    "year",
    "first_author",
    "journal",
    "search",
    "decision",
    "reason",
    "note",
    "by",
    "at",
    "stage",
)


@dataclass
class ShippedQuery:
    id: str
    source: str
    query: str | None
    run_at: dt.datetime
    yielded: int | None
    batch: str
    file: str
    line: int
    records: list[Citation] = field(default_factory=list)


@dataclass
class ShippedDecision:
    citation: Citation
    search: str | None
    decision: str
    reason: str | None
    note: str | None
    by: str
    at: dt.datetime
    stage: str
    file: str
    line: int


@dataclass
class ShippedIntake:
    queries: list[ShippedQuery]
    decisions: list[ShippedDecision]
    problems: list[IntakeProblem]
    digest: str


def intake_data_dir() -> Path:
    return Path(str(resources.files("mscatlas.kb").joinpath("data", "intake")))


def _batch(path: Path, prefix: str) -> str:
    return path.stem.removeprefix(prefix)


def _date(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def read_searches(path: Path) -> tuple[list[ShippedQuery], list[IntakeProblem]]:
    """The queries of one ``searches-<batch>.yaml`` and the problems of its malformed entries."""
    file = f"intake/{path.name}"
    problems: list[IntakeProblem] = []
    try:
        loader = _Loader(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else []
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [IntakeProblem(file, None, None, None, f"cannot read the file: {exc}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [IntakeProblem(file, None, mark.line + 1 if mark else None, None, f"invalid YAML: {exc}")]
    if not isinstance(data, list) or node is None:
        return [], [IntakeProblem(file, None, 1, None, "expected a list of queries")]
    queries: list[ShippedQuery] = []
    batch = _batch(path, "searches-")
    for index, (entry, entry_node) in enumerate(zip(data, node.value, strict=True), start=1):
        line = entry_node.start_mark.line + 1
        label = f"query {index}" + (
            f" ({entry.get('id')})" if isinstance(entry, dict) and entry.get("id") else ""
        )
        if not isinstance(entry, dict):
            problems.append(IntakeProblem(file, label, line, None, "a query must be a mapping"))
            continue
        missing = [k for k in ("id", "source", "run_at") if not entry.get(k)]
        if missing:
            problems.append(IntakeProblem(file, label, line, missing[0], "missing"))
            continue
        run_at = _date(entry["run_at"])
        if run_at is None:
            problems.append(IntakeProblem(file, label, line, "run_at", f"not a date: {entry['run_at']!r}"))
            continue
        records = entry.get("records") or []
        records_node = next((v for k, v in entry_node.value if getattr(k, "value", None) == "records"), None)
        if not isinstance(records, list):
            problems.append(IntakeProblem(file, label, line, "records", "must be a list"))
            continue
        query = ShippedQuery(
            id=str(entry["id"]),
            source=str(entry["source"]),
            query=str(entry["query"]) if entry.get("query") else None,
            run_at=run_at,
            yielded=_int(entry.get("yielded")),
            batch=batch,
            file=file,
            line=line,
        )
        for r_index, record in enumerate(records, start=1):
            r_line = records_node.value[r_index - 1].start_mark.line + 1 if records_node is not None else line
            r_label = f"{label} record {r_index}"
            citation, problem = _citation(record, file, r_label, r_line)
            if problem is not None:
                problems.append(problem)
            if citation is not None:
                query.records.append(citation)
        if query.yielded is not None and query.yielded != len(records):
            problems.append(
                IntakeProblem(
                    file, label, line, "yielded", f"says {query.yielded} but lists {len(records)} records"
                )
            )
        queries.append(query)
    return queries, problems


def _citation(record: Any, file: str, label: str, line: int) -> tuple[Citation | None, IntakeProblem | None]:
    if not isinstance(record, dict):
        return None, IntakeProblem(file, label, line, None, "a record must be a mapping")
    title = str(record.get("title") or "").strip()
    if not title:
        return None, IntakeProblem(file, label, line, "title", "missing")
    year = _int(record.get("year"))
    problem = None
    if record.get("year") not in (None, "") and year is None:
        problem = IntakeProblem(file, label, line, "year", f"not a year: {record.get('year')!r}")
    citation = Citation(
        title=title,
        authors=[str(record["first_author"])] if record.get("first_author") else [],
        year=year,
        journal=str(record["journal"]) if record.get("journal") else None,
        pmid=str(record["pmid"]) if record.get("pmid") not in (None, "") else None,
        pmcid=str(record["pmcid"]) if record.get("pmcid") else None,
        doi=str(record["doi"]) if record.get("doi") else None,
        origin=f"{file} {label}",
        line=line,
    )
    for key in ("pmid", "pmcid", "doi"):
        if record.get(key) not in (None, "") and getattr(citation, key) is None and problem is None:
            problem = IntakeProblem(file, label, line, key, f"not a valid {key}: {record.get(key)!r}")
    return citation, problem


def read_screening(path: Path) -> tuple[list[ShippedDecision], list[IntakeProblem]]:
    """The decisions of one ``screening-<batch>.csv`` and the problems of its malformed rows."""
    file = f"intake/{path.name}"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [IntakeProblem(file, None, None, None, f"cannot read the file: {exc}")]
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("title", "decision", "by") if c not in header]
    if missing:
        return [], [IntakeProblem(file, None, 1, missing[0], "column missing from the header")]
    codes = reason_codes()
    decisions: list[ShippedDecision] = []
    problems: list[IntakeProblem] = []
    for index, raw in enumerate(reader, start=1):
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            problems.append(IntakeProblem(file, f"row {index}", line, None, "more cells than columns"))
            continue
        if not any(row.values()):
            continue
        label = f"row {index}" + (f" (PMID {row['pmid']})" if row.get("pmid") else "")

        def bad(column: str, message: str, label: str = label, line: int = line) -> None:
            problems.append(IntakeProblem(file, label, line, column, message))

        decision = row.get("decision", "").casefold()
        if decision not in DECISIONS:
            bad("decision", f"{row.get('decision')!r} is not one of {', '.join(DECISIONS)}")
            continue
        reason = row.get("reason") or None
        if reason is not None and reason not in codes:
            bad("reason", f"unknown code {reason!r}")
            reason = None
        if decision == "exclude" and reason is None:
            bad("reason", "an exclusion without a reason code (counted under 'no reason given')")
        stage = row.get("stage") or "title_abstract"
        if stage not in STAGES:
            bad("stage", f"{stage!r} is not one of {', '.join(STAGES)}")
            continue
        by = row.get("by", "")
        if not by:
            bad("by", "missing")
            continue
        at = _date(row.get("at"))
        if at is None:
            bad("at", f"not a date: {row.get('at')!r}")
            continue
        citation, problem = _citation(
            {k: row.get(k) for k in ("pmid", "pmcid", "doi", "title", "year", "first_author", "journal")},
            file,
            label,
            line,
        )
        if problem is not None:
            problems.append(problem)
        if citation is None:
            continue
        decisions.append(
            ShippedDecision(
                citation=citation,
                search=row.get("search") or None,
                decision=decision,
                reason=reason,
                note=row.get("note") or None,
                by=by,
                at=at,
                stage=stage,
                file=file,
                line=line,
            )
        )
    return decisions, problems


def _files(root: Path) -> tuple[list[Path], list[Path]]:
    return sorted(root.glob("searches-*.yaml")), sorted(root.glob("screening-*.csv"))


def shipped_digest(directory: Path | None = None) -> str:
    """A digest of the shipped search and screening files (cheap: no parsing)."""
    digest = hashlib.sha256()
    for path in [p for group in _files(directory or intake_data_dir()) for p in group]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def read_shipped_intake(directory: Path | None = None) -> ShippedIntake:
    """Every shipped search and screening file, in batch order, with a digest of their bytes."""
    root = directory or intake_data_dir()
    queries: list[ShippedQuery] = []
    decisions: list[ShippedDecision] = []
    problems: list[IntakeProblem] = []
    search_files, screening_files = _files(root)
    seen: dict[str, str] = {}
    for path in search_files:
        found, trouble = read_searches(path)
        problems += trouble
        for q in found:
            if q.id in seen:
                problems.append(
                    IntakeProblem(
                        q.file, f"query {q.id}", q.line, "id", f"the id is already used in {seen[q.id]}"
                    )
                )
                continue
            seen[q.id] = q.file
            queries.append(q)
    for path in screening_files:
        found_rows, trouble = read_screening(path)
        decisions += found_rows
        problems += trouble
    return ShippedIntake(queries, decisions, problems, shipped_digest(root))
