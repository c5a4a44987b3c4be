"""Every filtered list as CSV or JSON (issue 15 point 9, as datasette does): ``?_format=csv`` or a
``.csv``/``.json`` URL gives the whole filtered list, in the page's order, with no paging.

The body is streamed record by record, so a 10^5-item download holds one chunk of records in
memory, not the list. CSV cells hold lists and objects as JSON (the export's convention,
``mscatlas.kb.export``), so a spreadsheet shows every field and ``mscatlas load`` reads it back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query
from fastapi.responses import StreamingResponse

__all__ = ["Format", "FormatParam", "download", "format_links"]


class Format(StrEnum):
    csv = "csv"
    json = "json"


FormatParam = Annotated[
    Format | None,
    Query(alias="_format", description="Download the whole filtered list as csv or json (no paging)."),
]
MEDIA = {Format.csv: "text/csv; charset=utf-8", Format.json: "application/json"}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _csv_lines(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
        if buffer.tell() > 65_536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    first = True
    yield "["
    for row in rows:
        yield ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False)
        first = False
    yield "\n]\n"


def download(
    name: str, fmt: Format, rows: Iterable[dict[str, Any]], columns: Sequence[str]
) -> StreamingResponse:
    """The rows as a streamed CSV (``columns`` in order) or JSON array, saved as ``name.<fmt>``."""
    body = _csv_lines(rows, columns) if fmt is Format.csv else _json_lines(rows)
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"'}
    return StreamingResponse(body, media_type=MEDIA[fmt], headers=headers)


def format_links(path: str, params: dict[str, Any]) -> dict[str, str]:
    """The download URLs of a list page with its filters (``/evidence.csv?...``)."""
    pairs = [
        (k, str(v)) for k, v in params.items() if v is not None and v != "" and k not in ("limit", "offset")
    ]
    query = "?" + urlencode(pairs) if pairs else ""
    return {fmt.value: f"{path}.{fmt.value}{query}" for fmt in Format}
