"""Tables in and out of `mscatlas meta`: reading a CSV of studies (numeric columns and
moderators, with errors that name the row and column) and the JSON rows of coefficients."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mscatlas.stats.meta_model import Coefficient

__all__ = ["MetaInputError", "coefficient_rows", "moderator_matrix", "numeric_column", "read_table"]


class MetaInputError(Exception):
    """A problem with the user's file, phrased for the user."""


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
            header = [h.strip() for h in reader.fieldnames or []]
    except OSError as exc:
        raise MetaInputError(f"cannot read {path}: {exc.strerror}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise MetaInputError(f"{path} is not a readable CSV file: {exc}") from exc
    return header, rows


def numeric_column(rows: list[dict[str, str]], column: str) -> np.ndarray:
    values = []
    for i, row in enumerate(rows, start=1):
        text = row.get(column, "")
        if text == "":
            raise MetaInputError(f"row {i}, column {column!r}: value is empty")
        try:
            value = float(text)
        except ValueError:
            raise MetaInputError(f"row {i}, column {column!r}: {text!r} is not a number") from None
        if not np.isfinite(value):
            raise MetaInputError(f"row {i}, column {column!r}: {text!r} is not a finite number")
        values.append(value)
    return np.array(values)


def moderator_matrix(
    rows: list[dict[str, str]], header: list[str], spec: str
) -> tuple[np.ndarray, list[str]]:
    columns, names = [], []
    for name in (c.strip() for c in spec.split(",")):
        if not name:
            continue
        if name not in header:
            raise MetaInputError(
                f"moderator column {name!r} is not in the file (columns: {', '.join(header)})"
            )
        texts = [row.get(name, "") for row in rows]
        for i, text in enumerate(texts, start=1):
            if text == "":
                raise MetaInputError(f"row {i}, column {name!r}: moderator value is empty")
        try:
            columns.append(np.array([float(t) for t in texts]))
            names.append(name)
        except ValueError:
            levels = sorted(set(texts))
            for level in levels[1:]:
                columns.append(np.array([1.0 if t == level else 0.0 for t in texts]))
                names.append(f"{name}[{level}]")
    if not columns:
        raise MetaInputError("--mods names no column")
    return np.column_stack(columns), names


def coefficient_rows(coefficients: Iterable[Coefficient]) -> list[dict[str, Any]]:
    """One JSON object per coefficient, intercept first."""
    return [
        {"name": c.name, "estimate": c.estimate, "se": c.se, "ci_lb": c.ci_lb, "ci_ub": c.ci_ub, "p": c.p}
        for c in coefficients
    ]
