"""Reading record files (YAML, JSON, CSV) into raw records that remember where each field was.

Kept apart from validation (:mod:`mscatlas.kb.records`) because it is its own job: parsing three
formats safely (duplicate YAML keys refused, nesting depth bounded, an unclosed CSV quote named
by its line) and keeping, for every field, the line it came from, so that a validation error
can point at the offending line. Nothing here knows the data model beyond the record kinds.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mscatlas.kb import strict_json
from mscatlas.kb.errors import RecordError, RecordFileError
from mscatlas.kb.models import SCHEMA_VERSION
from mscatlas.kb.strict_json import MAX_DEPTH

__all__ = [
    "CSV_KIND_COLUMN",
    "SECTION_KINDS",
    "RawRecord",
    "RecordKind",
    "read_records",
    "records_from_yaml",
]

RecordKind = Literal["study", "evidence", "trial"]
SECTION_KINDS: dict[str, RecordKind] = {"studies": "study", "evidence": "evidence", "trials": "trial"}
# Columns of the CSV export whose cells hold JSON (lists and objects).
CSV_KIND_COLUMN = "record_type"


@dataclass(frozen=True)
class RawRecord:
    """One record as read from a file, before validation."""

    data: dict[str, Any]
    file: str
    index: int  # 1-based position in its file (or file section)
    line: int | None
    kind: RecordKind | None
    # Line of each field's value, by dotted path ("delivery", "provenance.summary", "msc_source.0").
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        rid = self.data.get("id") or self.data.get("nct_id")
        return f"record {self.index}" + (f" ({rid})" if rid else "")

    def line_of(self, path: str | None) -> int | None:
        """The line of a field (or of the nearest enclosing field that has one), else the record's."""
        parts = path.split(".") if path else []
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return self.line


def _field_lines(node: Any) -> dict[str, int]:
    """Dotted path -> 1-based line of every value under a YAML mapping node (no recursion)."""
    out: dict[str, int] = {}
    stack: list[tuple[str, Any]] = [("", node)]
    while stack:
        prefix, current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                path = f"{prefix}{key_node.value}"
                out[path] = value_node.start_mark.line + 1
                stack.append((path + ".", value_node))
        elif isinstance(current, yaml.SequenceNode):
            for i, child in enumerate(current.value):
                path = f"{prefix}{i}"
                out[path] = child.start_mark.line + 1
                stack.append((path + ".", child))
    return out


# ---------------------------------------------------------------- reading


def _guess_kind(data: dict[str, Any]) -> RecordKind | None:
    if "nct_id" in data:
        return "trial"
    if "endpoint" in data or "direction" in data or "delivery" in data:
        return "evidence"
    if "title" in data and ("ref" in data or "journal" in data or "authors" in data):
        return "study"
    return None


class _UniqueKeyConstructor(yaml.constructor.SafeConstructor):
    """Safe construction that refuses duplicate mapping keys (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                message = "a mapping key must be a plain value, not a list or a mapping"
                raise yaml.constructor.ConstructorError(None, None, message, key_node.start_mark)
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyConstructor.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyConstructor.construct_mapping
)
# libyaml's parser when PyYAML was built with it (several times faster); same nodes either way.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _too_deep_node(root: yaml.Node) -> yaml.Node | None:
    """The first node nested deeper than MAX_DEPTH (checked without recursion)."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((child, depth + 1) for pair in node.value for child in pair)
    return None


def _yaml_records(text: str, file: str) -> list[RawRecord]:
    try:
        # Parse once into nodes (which keep line numbers), then build Python objects from them.
        root = yaml.compose(text, Loader=_YAML_LOADER)
        deep = _too_deep_node(root) if root is not None else None
        if deep is not None:
            message = f"nested more than {MAX_DEPTH} levels deep"
            raise RecordFileError([RecordError(file, None, deep.start_mark.line + 1, None, message)])
        data = _UniqueKeyConstructor().construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise RecordFileError([RecordError(file, None, line, None, f"invalid YAML: {exc}")]) from exc
    if data is None:
        return []
    return _records_from_tree(data, root, file)


def records_from_yaml(text: str, file: str) -> list[RawRecord]:
    """Records of a YAML text (e.g. a web form), errors naming ``file`` as their source."""
    return _yaml_records(text, file)


def _records_from_tree(data: Any, node: Any, file: str) -> list[RawRecord]:
    """Records from a parsed document; ``node`` is its YAML node (for lines) or None."""

    def line_of(n: Any) -> int | None:
        return n.start_mark.line + 1 if n is not None else None

    def items(seq: Any, seq_node: Any, kind: RecordKind | None) -> list[RawRecord]:
        if not isinstance(seq, list):
            raise RecordFileError(
                [RecordError(file, None, line_of(seq_node), None, "expected a list of records")]
            )
        out = []
        child_nodes = seq_node.value if seq_node is not None else [None] * len(seq)
        for i, (rec, rec_node) in enumerate(zip(seq, child_nodes, strict=True), start=1):
            if not isinstance(rec, dict):
                raise RecordFileError(
                    [RecordError(file, f"record {i}", line_of(rec_node), None, "a record must be a mapping")]
                )
            lines = _field_lines(rec_node) if rec_node is not None else {}
            out.append(RawRecord(rec, file, i, line_of(rec_node), kind or _guess_kind(rec), lines))
        return out

    if isinstance(data, list):
        return items(data, node, None)
    if isinstance(data, dict) and not set(data) & {"schema_version", *SECTION_KINDS}:
        # A file holding one record on its own.
        lines = _field_lines(node) if node is not None else {}
        return [RawRecord(data, file, 1, line_of(node), _guess_kind(data), lines)]
    if isinstance(data, dict):
        unknown = set(data) - {"schema_version", *SECTION_KINDS}
        if unknown:
            raise RecordFileError(
                [RecordError(file, None, line_of(node), None, f"unknown top-level keys: {sorted(unknown)}")]
            )
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            from mscatlas.kb.schema import upgrade  # local: upgrade readers are rarely needed

            upgraded = upgrade(data, file)
            if upgraded is not data:  # reshaped: the YAML nodes no longer match the records
                node = None
            data = upgraded
        out: list[RawRecord] = []
        node_map = {k.value: v for k, v in node.value} if node is not None else {}
        for section, kind in SECTION_KINDS.items():
            if section in data:
                out.extend(items(data[section], node_map.get(section), kind))
        return out
    raise RecordFileError(
        [RecordError(file, None, 1, None, "expected a list of records or a dataset object")]
    )


def _json_records(text: str, file: str) -> list[RawRecord]:
    try:
        data = strict_json.loads(text)
    except strict_json.StrictJSONError as exc:
        raise RecordFileError([RecordError(file, None, exc.line, None, exc.message)]) from exc
    # YAML is a superset of JSON: composing the text again gives line numbers for free.
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        node = None
    return _records_from_tree(data, node, file)


def _unclosed_quote(text: str) -> int | None:
    """The line where a quoted CSV field opens and never closes (None: every quote closes)."""
    opened = None
    inside = False
    line = 1
    for char in text:
        if char == '"':
            inside = not inside  # an escaped quote ("") toggles twice
            if inside:
                opened = line
        elif char == "\n":
            line += 1
    return opened if inside else None


def _csv_records(text: str, file: str) -> list[RawRecord]:
    opened = _unclosed_quote(text)
    if opened is not None:
        raise RecordFileError(
            [RecordError(file, None, opened, None, "a quoted cell opens on this line and is never closed")]
        )
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise RecordFileError(
            [RecordError(file, None, 1, repeated[0], f"duplicate column(s) {', '.join(map(repr, repeated))}")]
        )
    out: list[RawRecord] = []
    for i, row in enumerate(reader, start=1):
        line = reader.line_num
        data: dict[str, Any] = {}
        kind_cell = row.pop(CSV_KIND_COLUMN, None)
        for key, cell in row.items():
            if key is None:
                raise RecordFileError(
                    [RecordError(file, f"record {i}", line, None, "more cells than columns")]
                )
            if cell is None or cell == "":
                continue
            data[key] = _csv_cell(cell, file, i, line, key)
        kind: RecordKind | None = (
            kind_cell if kind_cell in ("study", "evidence", "trial") else _guess_kind(data)  # type: ignore[assignment]
        )
        out.append(RawRecord(data, file, i, line, kind))
    return out


def _csv_cell(cell: str, file: str, index: int, line: int, key: str) -> Any:
    stripped = cell.strip()
    if stripped[:1] in '[{"' or stripped in ("true", "false", "null"):
        try:
            return strict_json.loads(stripped)
        except strict_json.StrictJSONError as exc:
            raise RecordFileError(
                [RecordError(file, f"record {index}", line, key, f"cell is not valid JSON: {exc.message}")]
            ) from exc
    return cell


def read_records(path: str | Path) -> list[RawRecord]:
    """Read the records of one file; raises RecordFileError for unreadable files."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordFileError([RecordError(file, None, None, None, f"cannot read file: {exc}")]) from exc
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _yaml_records(text, file)
    if suffix == ".json":
        return _json_records(text, file)
    if suffix == ".csv":
        return _csv_records(text, file)
    raise RecordFileError(
        [RecordError(file, None, None, None, "unsupported format (use .yaml, .json or .csv)")]
    )
