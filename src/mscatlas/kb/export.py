"""Writing the knowledge base as JSON, YAML or CSV; `mscatlas load` reads each format back.

JSON and YAML hold one object: ``schema_version``, ``studies``, ``evidence``, ``trials``.
CSV holds one row per record with a ``record_type`` column; list and object fields are JSON
in their cells, so a spreadsheet shows every record and the file still round-trips.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

import yaml

from mscatlas.kb.models import Dataset
from mscatlas.kb.records import CSV_KIND_COLUMN

__all__ = ["ExportFormat", "dataset_to_dict", "export_text"]

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


def _csv(data: dict[str, Any]) -> str:
    rows: list[dict[str, str]] = []
    columns: dict[str, None] = {CSV_KIND_COLUMN: None}
    for section, kind in (("studies", "study"), ("evidence", "evidence"), ("trials", "trial")):
        for record in data[section]:
            if kind == "evidence":
                record = {k: v for k, v in record.items() if k not in ("engineered", "ontology")}
            row = {CSV_KIND_COLUMN: kind}
            for key, value in record.items():
                columns.setdefault(key)
                if value is None:
                    row[key] = ""
                elif isinstance(value, (list, dict, bool)):
                    row[key] = json.dumps(value, ensure_ascii=False)
                elif isinstance(value, str) and (value[:1] in '[{"' or value in ("true", "false", "null")):
                    row[key] = json.dumps(value, ensure_ascii=False)  # keep it a string on reading
                else:
                    row[key] = str(value)
            rows.append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
