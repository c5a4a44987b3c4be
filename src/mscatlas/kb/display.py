"""Records as people read them: one line of text per field, never a JSON blob or a Python value.

``record_fields(record)`` gives (field label, text) pairs for a study, evidence item or trial:
the dose reads "MSC:cancer 1:10", provenance "Table 1, row 3: <summary>; primary source
checked: no", flags one per line, ontology identifiers "OncoTree GB, NCIt C3058", booleans
yes/no. Cell line and cancer type names keep their own casing (BJAB, SKW6.4). The command line
uses it; any other front end can.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from pydantic import BaseModel

from mscatlas.kb.dose import Dose, Duration
from mscatlas.kb.models import ClinicalTrial, Engineering, EvidenceItem, Flag, Provenance, Study
from mscatlas.kb.terms import label

__all__ = ["engineering_text", "field_text", "record_fields"]

# Fields whose value is a list of words, read best joined on one line.
_ONE_LINE_LISTS = frozenset(
    {"refs", "msc_source", "cell_lines", "phases", "engineering", "conditions", "authors"}
)
_CODE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")  # a closed value such as cells_with_hsc
_SKIPPED = frozenset({"id", "nct_id", "engineered"})
_ONTOLOGY_NAMES = {"oncotree": "OncoTree", "ncit": "NCIt"}


def provenance_text(p: Provenance) -> str:
    where = p.review_location or "outside the review"
    if p.section and p.review_location and "section" not in p.review_location.casefold():
        where += f" (section {p.section})"
    parts = [f"{where}: {p.summary}", f"primary source checked: {label(p.primary_source_checked)}"]
    if p.primary_source:
        parts.append(f"read: {p.primary_source}")
    if p.primary_source_says:
        parts.append(f"it says: {p.primary_source_says}")
    return "\n".join(parts)


def engineering_text(engineering: list[Engineering] | list[Any]) -> str:
    """How an MSC product was changed ("native" when it was not)."""
    if not engineering:
        return "native"
    out = []
    for e in engineering:
        if isinstance(e, Engineering):
            text = label(e.kind) + (f" ({e.payload})" if e.payload else "")
            out.append(text)
        else:
            out.append(label(e))
    return ", ".join(out)


def _ontology_text(ontology: dict[str, dict[str, str]]) -> str:
    lines = []
    for group, ids in ontology.items():
        if not ids:
            continue
        if group == "cancer_type":
            shown = ", ".join(f"{_ONTOLOGY_NAMES.get(k, k)} {v}" for k, v in ids.items())
        else:
            shown = ", ".join(f"{k if group != 'msc_source' else label(k)} {v}" for k, v in ids.items())
        lines.append(f"{label(group)}: {shown}")
    return "\n".join(lines)


def field_text(value: Any, name: str = "") -> str:
    """One field's value as text for people."""
    if isinstance(value, Dose):
        return value.describe() + (f" (as written: {value.text})" if value.text else "")
    if isinstance(value, Duration):
        hours = ", ".join(f"{h:g}" for h in value.hours)
        written = f"as written: {value.text}" if value.text else ""
        return f"{hours} h" + (f" ({written})" if written else "") if hours else written
    if isinstance(value, Provenance):
        return provenance_text(value)
    if isinstance(value, Flag):
        return f"{label(value.code)}: {value.note}"
    if isinstance(value, Engineering):
        return engineering_text([value]) + f": {value.detail}"
    if isinstance(value, bool | Enum) or value is None:
        return label(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return label(value) if _CODE.fullmatch(value) else value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, BaseModel):
        return _pairs({k: getattr(value, k) for k in type(value).model_fields})
    if isinstance(value, dict):
        return _ontology_text(value) if name == "ontology" else _pairs(value)
    if isinstance(value, list | tuple):
        sep = ", " if name in _ONE_LINE_LISTS else "\n"
        return sep.join(field_text(v, name) for v in value)
    return str(value)


def _pairs(data: dict[str, Any]) -> str:
    return "; ".join(f"{label(k)}: {field_text(v, k)}" for k, v in data.items() if v not in (None, [], {}))


def record_fields(record: Study | EvidenceItem | ClinicalTrial) -> list[tuple[str, str]]:
    """(field label, text) for every field of a record that holds something, in model order."""
    out = []
    names = [*type(record).model_fields, *type(record).model_computed_fields]
    for name in names:
        if name in _SKIPPED:
            continue
        value = getattr(record, name)
        if value in (None, [], {}) or (isinstance(value, Dose) and value.is_empty and not value.text):
            continue
        if isinstance(value, dict) and not any(value.values()):
            continue
        out.append((label(name), field_text(value, name)))
    if isinstance(record, EvidenceItem) and not record.engineering:
        out.insert(_after(out, "source detail", "msc source"), ("engineering", "none (native cells)"))
    return out


def _after(rows: list[tuple[str, str]], *names: str) -> int:
    for name in names:
        for i, (key, _) in enumerate(rows):
            if key == name:
                return i + 1
    return len(rows)
