"""Validating record files with precise error locations (reading them is
:mod:`mscatlas.kb.record_readers`; its names are re-exported here).

Every error names the file, the record (its position and id), the line of the offending field
where the format has lines (YAML and JSON node marks; a CSV row is one line), the field, the
problem, and the bad value it read. Validation never stops at the first bad record: a curator
sees every problem of a file at once.

A value typed as a label or synonym ("bone marrow", BM-MSC, "phase II") is read as its
vocabulary value with a note (``notes``), not an error (mscatlas.kb.terms).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mscatlas.kb.errors import RecordError, RecordFileError
from mscatlas.kb.models import ClinicalTrial, Dataset, EvidenceItem, Study
from mscatlas.kb.record_readers import (
    CSV_KIND_COLUMN,
    RawRecord,
    RecordKind,
    read_records,
    records_from_yaml,
)
from mscatlas.kb.terms import UnknownTermError, resolve_value
from mscatlas.kb.vocab import load_vocabulary

__all__ = [
    "CSV_KIND_COLUMN",
    "MODELS",
    "RawRecord",
    "RecordError",
    "RecordFileError",
    "RecordKind",
    "dataset_from_records",
    "read_record_files",
    "read_records",
    "records_from_yaml",
    "validate_paths",
]

MODELS: dict[RecordKind, type[BaseModel]] = {
    "study": Study,
    "evidence": EvidenceItem,
    "trial": ClinicalTrial,
}


# ---------------------------------------------------------------- validation


def _field_name(loc: Sequence[int | str]) -> str | None:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith(("function-", "model-")))]
    return ".".join(parts) or None


def _enum_of(annotation: Any) -> tuple[type[StrEnum], bool] | None:
    """The StrEnum a field holds, and whether it holds a list of them (None: not an enum field)."""
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is list and len(args) == 1:
        inner = _enum_of(args[0])
        return (inner[0], True) if inner and not inner[1] else None
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _enum_of(args[0])
    return None


@cache
def _enum_fields(kind: RecordKind) -> dict[str, tuple[type[StrEnum], bool]]:
    out = {}
    for name, info in MODELS[kind].model_fields.items():
        found = _enum_of(info.annotation)
        if found is not None:
            out[name] = found
    return out


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 80 else text[:77] + "..."


def normalise_terms(raw: RawRecord) -> tuple[dict[str, Any], list[RecordError]]:
    """The record's data with labels and synonyms read as vocabulary values, and a note for each.

    A value that names nothing is left as it is: validation then reports it (with suggestions).
    """
    if raw.kind is None:
        return raw.data, []
    data = dict(raw.data)
    notes: list[RecordError] = []

    def read(cls: type[StrEnum], value: Any, path: str) -> Any:
        if not isinstance(value, str) or value in cls._value2member_map_:
            return value
        try:
            found = resolve_value(cls, value)
        except UnknownTermError:
            return value
        notes.append(
            RecordError(raw.file, raw.label, raw.line_of(path), path, f"'{value}' read as '{found}'")
        )
        return found

    for name, (cls, is_list) in _enum_fields(raw.kind).items():
        if name not in data:
            continue
        if is_list and isinstance(data[name], list):
            data[name] = [read(cls, v, f"{name}.{i}") for i, v in enumerate(data[name])]
        elif not is_list:
            data[name] = read(cls, data[name], name)
    if raw.kind == "evidence":
        vocab = load_vocabulary()
        for name, terms in (("cancer_type", vocab.cancer_types), ("cell_lines", vocab.cell_lines)):
            values = data.get(name)
            for i, value in enumerate(values if isinstance(values, list) else [values]):
                path = f"{name}.{i}" if isinstance(values, list) else name
                try:
                    found = terms.resolve(value) if isinstance(value, str) else value
                except UnknownTermError:
                    continue
                if found != value:
                    note = f"'{value}' read as '{found}'"
                    notes.append(RecordError(raw.file, raw.label, raw.line_of(path), path, note))
    return data, notes


def validate_record(
    raw: RawRecord, notes: list[RecordError] | None = None
) -> tuple[BaseModel | None, list[RecordError]]:
    """The record's model, or every error found (each at its field's line, with the bad value).

    Labels and synonyms are read as vocabulary values; a note for each goes to ``notes``.
    """
    if raw.kind is None:
        return None, [
            RecordError(
                raw.file,
                raw.label,
                raw.line,
                None,
                "cannot tell whether this is a study, evidence item or trial",
            )
        ]
    data, found_notes = normalise_terms(raw)
    if notes is not None:
        notes.extend(found_notes)
    try:
        return MODELS[raw.kind].model_validate(data), []
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            name = _field_name(err["loc"])
            named = re.match(r"field '([^']+)': (.*)", msg, re.DOTALL)
            if name is None and named:  # a model-level check that names its field
                name, msg = named.groups()
            value = err.get("input")
            scalar = value is None or isinstance(value, str | int | float)
            echo = err["type"] not in ("missing", "extra_forbidden")
            if name and echo and scalar and _shown(value) not in msg:
                msg += f" (got {_shown(value)})"
            errors.append(RecordError(raw.file, raw.label, raw.line_of(name), name, msg))
        return None, errors


def read_record_files(paths: Iterable[str | Path]) -> tuple[list[RawRecord], list[RecordError]]:
    records: list[RawRecord] = []
    errors: list[RecordError] = []
    for path in paths:
        try:
            records.extend(read_records(path))
        except RecordFileError as exc:
            errors.extend(exc.errors)
    return records, errors


def dataset_from_records(
    records: Sequence[RawRecord],
    known_study_ids: Iterable[str] = (),
    notes: list[RecordError] | None = None,
) -> tuple[Dataset | None, list[RecordError]]:
    """Validate records into a Dataset; cross-record checks (duplicates, study links) included.

    ``known_study_ids`` are studies already available (in the store or the shipped data), so an
    evidence file can be checked on its own. Labels and synonyms read as vocabulary values get
    a note each in ``notes``.
    """
    errors: list[RecordError] = []
    known_study_ids = set(known_study_ids)
    # An invalid study record still names its id: counting it avoids a cascade of "unknown
    # study" errors that would hide the real one.
    study_ids = {str(r.data.get("id")) for r in records if r.kind == "study"} | known_study_ids
    by_kind: dict[RecordKind, list[tuple[RawRecord, BaseModel]]] = {"study": [], "evidence": [], "trial": []}
    for raw in records:
        model, errs = validate_record(raw, notes)
        study = raw.data.get("study") if raw.kind == "evidence" else None
        if model is None and isinstance(study, str) and study not in study_ids:
            # The unknown study is the problem; a refs check against it would only mislead.
            errs = [e for e in errs if e.field != "refs" and "study's reference" not in e.message]
            errs.append(
                RecordError(raw.file, raw.label, raw.line_of("study"), "study", f"unknown study '{study}'")
            )
        errors.extend(errs)
        if model is not None and raw.kind is not None:
            by_kind[raw.kind].append((raw, model))

    # Ids are one namespace: an evidence item may not take a study's or a trial's id.
    known = {i.upper(): "study" for i in known_study_ids}
    seen: dict[str, tuple[RecordKind, RawRecord]] = {}
    for kind, pairs in by_kind.items():
        id_field = "nct_id" if kind == "trial" else "id"
        for raw, model in pairs:
            rid = getattr(model, id_field)
            first = seen.get(rid.upper())
            if first is not None:
                first_kind, first_raw = first
                what = f"duplicate {kind} id" if first_kind == kind else f"{first_kind} id"
                errors.append(
                    RecordError(
                        raw.file,
                        raw.label,
                        raw.line_of(id_field),
                        id_field,
                        f"{what} '{rid}' (first at {first_raw.file}:{first_raw.line_of(id_field)})"
                        + ("" if first_kind == kind else ": ids are shared by studies, evidence and trials"),
                    )
                )
            elif kind != "study" and known.get(rid.upper()):
                errors.append(
                    RecordError(
                        raw.file, raw.label, raw.line_of(id_field), id_field,
                        f"'{rid}' is already the id of a {known[rid.upper()]}: ids are shared by studies, "
                        "evidence and trials",
                    )
                )  # fmt: skip
            seen.setdefault(rid.upper(), (kind, raw))

    for raw, model in by_kind["evidence"]:
        if model.study not in study_ids:  # type: ignore[attr-defined]
            unknown = f"unknown study '{model.study}'"  # type: ignore[attr-defined]
            errors.append(RecordError(raw.file, raw.label, raw.line_of("study"), "study", unknown))
    if errors:
        return None, errors
    dataset = Dataset(
        studies=[m for _, m in by_kind["study"]],  # type: ignore[misc]
        evidence=[m for _, m in by_kind["evidence"]],  # type: ignore[misc]
        trials=[m for _, m in by_kind["trial"]],  # type: ignore[misc]
    )
    return dataset, []


def validate_paths(
    paths: Iterable[str | Path],
    known_study_ids: Iterable[str] = (),
    notes: list[RecordError] | None = None,
) -> tuple[Dataset | None, list[RecordError]]:
    """Read and validate files together; returns the Dataset or every error found (and, in
    ``notes``, each label or synonym read as a vocabulary value)."""
    records, errors = read_record_files(paths)
    if errors:
        return None, errors
    return dataset_from_records(records, known_study_ids, notes)
