"""Reading JSON strictly: standard JSON only, no silent surprises.

Python's ``json`` accepts ``NaN`` and ``Infinity`` (not JSON), keeps the last of duplicate
keys silently, and raises RecursionError on deeply nested input. :func:`loads` refuses all
three with a :class:`StrictJSONError` that says where (the line), so that a record file, a
CSV cell or a web request gets a located error instead of a traceback or a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "StrictJSONError", "loads", "too_deep"]

MAX_DEPTH = 64  # records nest a few levels; anything this deep is an attack or an accident


class StrictJSONError(ValueError):
    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message + (f" (line {line})" if line else ""))


class _Refused(Exception):
    def __init__(self, message: str, pattern: str) -> None:
        self.message = message
        self.pattern = pattern


def too_deep(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The line where brackets outside strings first nest deeper than ``limit`` (None: never)."""
    depth = 0
    in_string = escaped = False
    line = 1
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return line
        elif char in "]}":
            depth -= 1
    return None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key '{key}'", r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:')
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number in JSON (NaN and Infinity are refused)", re.escape(name))


def _line_of(text: str, pattern: str, occurrence: int) -> int | None:
    matches = list(re.finditer(pattern, text))
    if len(matches) < occurrence:
        return None
    return text.count("\n", 0, matches[occurrence - 1].start()) + 1


def loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/±Infinity, duplicate keys and nesting deeper than MAX_DEPTH."""
    line = too_deep(text)
    if line is not None:
        raise StrictJSONError(f"nested more than {MAX_DEPTH} levels deep", line)
    try:
        return json.loads(text, parse_constant=_constant, object_pairs_hook=_unique)
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"invalid JSON: {exc.msg}", exc.lineno) from exc
    except _Refused as exc:
        occurrence = 2 if exc.message.startswith("duplicate") else 1
        raise StrictJSONError(exc.message, _line_of(text, exc.pattern, occurrence)) from exc
    except RecursionError as exc:  # pragma: no cover - too_deep catches it first
        raise StrictJSONError("nested too deeply") from exc
