"""Errors of record files, shared by the readers (`kb.records`) and the schema upgraders
(`kb.schema`) without either importing the other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordError", "RecordFileError"]


@dataclass(frozen=True)
class RecordError:
    file: str
    record: str | None
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        parts = [where]
        if self.record:
            parts.append(self.record)
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join(parts) + f": {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "record": self.record,
            "line": self.line,
            "field": self.field,
            "message": self.message,
        }


class RecordFileError(Exception):
    """A record file cannot be read or its records are invalid; carries every error found."""

    def __init__(self, errors: Sequence[RecordError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))
