"""Readers for exports written under older schema versions.

Schema 1 is the first released schema. When a later version renames or reshapes a field, add
a function here that turns a version-N dump into version N+1, and keep a dump of every released
schema under tests/data/archives/ so a test proves old files still load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mscatlas.kb.errors import RecordError, RecordFileError
from mscatlas.kb.models import SCHEMA_VERSION

__all__ = ["UPGRADERS", "upgrade"]

# version N -> function turning a version-N dataset dict into version N+1.
UPGRADERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 only adds optional fields (risk of bias, reporting, host, payload, figure
    readings) and lets studies outside the review exist, so a version-1 dump is already valid."""
    return data


UPGRADERS[1] = _v1_to_v2


def upgrade(data: dict[str, Any], file: str) -> dict[str, Any]:
    """Bring an exported dataset dict up to the current schema version."""
    version = data.get("schema_version")
    if (
        not isinstance(version, int)
        or version > SCHEMA_VERSION
        or (version < SCHEMA_VERSION and version not in UPGRADERS)
    ):
        raise RecordFileError(
            [
                RecordError(
                    file,
                    None,
                    None,
                    "schema_version",
                    f"unsupported schema_version {version!r} (this mscatlas reads 1..{SCHEMA_VERSION})",
                )
            ]
        )
    while version < SCHEMA_VERSION:
        data = UPGRADERS[version](data)
        version += 1
        data["schema_version"] = version
    return data
