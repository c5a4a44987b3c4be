"""The command line's tables read as people read (issue 15 point 5): `intake suggest` shows its
suggestions as words (no JSON lists or quoted codes), field names without underscores, and a
product without engineering as "native"."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from mscatlas.cli import app


def test_intake_suggest_table_has_no_json(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    result = CliRunner().invoke(app, ["intake", "suggest", "c1807", "--db", db], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert rows, result.stdout
    table = "\n".join(rows)
    assert "engineering" in table and "native" in table
    assert re.search(r'\[\]|\["|"[a-z_]+"', table) is None, table
    assert re.search(r"│ [a-z]+_[a-z_]+ ", table) is None, table  # field names as words
