"""Number fields take numbers only.

Pydantic's lax mode turns ``true`` into 1 and accepts NaN and ±Infinity (JSON ``NaN``, YAML
``.nan``, a CSV cell ``inf``). A stored NaN makes every export non-standard JSON, and ``refs:
[true, 29]`` stored as ``[1, 29]`` is a silent corruption. :class:`NumbersOnly` is the base of
the record models: it refuses both, naming the field.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["NumbersOnly"]


@cache
def _is_number(annotation: Any) -> bool:
    """Whether a field's type is (or contains, as a list item or an option) int or float."""
    if annotation in (int, float):
        return True
    if annotation is bool or annotation is None:
        return False
    return any(_is_number(arg) for arg in typing.get_args(annotation))


def _has_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value)


class NumbersOnly(BaseModel):
    """A model whose number fields refuse booleans, NaN and ±Infinity."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                value = data.get(info.alias or name)
                if value is not None and _has_bool(value) and _is_number(info.annotation):
                    raise ValueError(f"field '{name}': true/false is not a number ({value!r})")
        return data
