"""Every released export schema still loads (anndata's archive pattern)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mscatlas.kb.models import SCHEMA_VERSION
from mscatlas.kb.records import validate_paths

ARCHIVES = Path(__file__).parent / "data" / "archives"
DUMPS = sorted(p for p in ARCHIVES.glob("v*/*") if p.suffix in (".json", ".yaml", ".csv"))


def test_there_is_a_dump_of_the_current_schema() -> None:
    assert any(p.parent.name == f"v{SCHEMA_VERSION}" for p in DUMPS)


@pytest.mark.parametrize("dump", DUMPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_archived_dump_loads(dump: Path) -> None:
    dataset, errors = validate_paths([dump])
    assert not errors, [str(e) for e in errors[:5]]
    if dump.suffix == ".json":
        raw = json.loads(dump.read_text(encoding="utf-8"))
        assert len(dataset.evidence) == len(raw["evidence"])
        assert len(dataset.trials) == len(raw["trials"])


def test_unknown_future_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "studies": []}), encoding="utf-8")
    _, errors = validate_paths([path])
    assert errors and errors[0].field == "schema_version"
