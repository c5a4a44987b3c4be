"""Writing the knowledge base as JSON, YAML or CSV; `mscatlas load` reads each format back.

JSON and YAML hold one object: ``schema_version``, ``studies``, ``evidence``, ``trials``.
CSV holds one row per record with a ``record_type`` column; list and object fields are JSON
in their cells, so a spreadsheet shows every record and the file still round-trips.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import yaml

from mscatlas.kb.models import SCHEMA_VERSION, Dataset
from mscatlas.kb.records import CSV_KIND_COLUMN

if TYPE_CHECKING:
    from mscatlas.kb.store import Store

__all__ = ["ExportFormat", "dataset_to_dict", "export_chunks", "export_text", "json_list_chunks"]

ExportFormat = Literal["json", "yaml", "csv"]


def dataset_to_dict(dataset: Dataset) -> dict[str, Any]:
    """The export contract: every field of every record, enums as their string values."""
    return dataset.model_dump(mode="json")


def export_text(dataset: Dataset, fmt: ExportFormat = "json") -> str:
    data = dataset_to_dict(dataset)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    if fmt == "csv":
        return _csv(data)
    raise ValueError(f"unknown export format '{fmt}' (json, yaml or csv)")


SECTIONS = (("studies", "study"), ("evidence", "evidence"), ("trials", "trial"))


def _csv_row(kind: str, record: dict[str, Any]) -> dict[str, str]:
    if kind == "evidence":
        record = {k: v for k, v in record.items() if k not in ("engineered", "ontology")}
    row = {CSV_KIND_COLUMN: kind}
    for key, value in record.items():
        if value is None:
            row[key] = ""
        elif isinstance(value, (list, dict, bool)):
            row[key] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, str) and (value[:1] in '[{"' or value in ("true", "false", "null")):
            row[key] = json.dumps(value, ensure_ascii=False)  # keep it a string on reading
        else:
            row[key] = str(value)
    return row


def _csv(data: dict[str, Any]) -> str:
    rows = [_csv_row(kind, record) for section, kind in SECTIONS for record in data[section]]
    columns: dict[str, None] = {CSV_KIND_COLUMN: None}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# ---------------------------------------------------------------- streaming (issue 14 goal 2)
#
# A store of 10^5 items does not fit the whole-dataset path above (3.1 GB for JSON at 10^5):
# export_chunks writes the same bytes record by record, reading the store a chunk at a time.
# JSON: the layout of json.dumps(indent=2) rebuilt around each record's own dump. CSV: every
# record of a kind dumps the same keys (model_dump keeps None fields), so the header is known
# from the kinds present before the first row is written.


def json_list_chunks(name: str, records: Iterable[dict[str, Any]], last: bool) -> Iterator[str]:
    """One list of the export object, ``"name": [...]``, as json.dumps(indent=2) lays it out."""
    first = True
    for record in records:
        text = json.dumps(record, indent=2, ensure_ascii=False).replace("\n", "\n    ")
        yield (f'  "{name}": [\n    ' if first else ",\n    ") + text
        first = False
    end = "" if last else ","
    yield f'  "{name}": []{end}\n' if first else f"\n  ]{end}\n"


def _dumps(store: Store, kind: str, only_accepted: bool) -> Iterator[dict[str, Any]]:
    for model in store.iter_records(kind, only_accepted=only_accepted):
        yield model.model_dump(mode="json")


def export_chunks(store: Store, fmt: ExportFormat = "json", *, only_accepted: bool = False) -> Iterator[str]:
    """The export of a store as text chunks: the bytes of :func:`export_text` of its dataset,
    with memory flat in the number of records for json and csv (yaml is built whole)."""
    if fmt == "yaml":
        yield export_text(store.dataset(only_accepted=only_accepted), "yaml")
        return
    if fmt == "json":
        yield "{\n" + f'  "schema_version": {json.dumps(SCHEMA_VERSION)},\n'
        for i, (section, kind) in enumerate(SECTIONS):
            yield from json_list_chunks(
                section, _dumps(store, kind, only_accepted), last=i == len(SECTIONS) - 1
            )
        yield "}\n"
        return
    if fmt != "csv":
        raise ValueError(f"unknown export format '{fmt}' (json, yaml or csv)")
    columns: dict[str, None] = {CSV_KIND_COLUMN: None}
    for _, kind in SECTIONS:
        first = next(iter(store.iter_records(kind, only_accepted=only_accepted, chunk=1)), None)
        if first is not None:
            columns.update(dict.fromkeys(_csv_row(kind, first.model_dump(mode="json"))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for _, kind in SECTIONS:
        for record in _dumps(store, kind, only_accepted):
            writer.writerow(_csv_row(kind, record))
            if out.tell() > 1 << 16:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    yield out.getvalue()
