"""Issue 14 point 3: above TABLE_ROWS items the report's tables are paged and the full data is
linked as CSV beside index.html (the CSV reads back as every evidence item)."""

from __future__ import annotations

import csv
import re

from mscatlas.kb.shipped import shipped_dataset
from mscatlas.report import build


def test_large_tables_are_paged_and_linked_as_csv(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(build, "TABLE_ROWS", 60)
    dataset = shipped_dataset()
    index = build.build_report(dataset, tmp_path)
    html = index.read_text(encoding="utf-8")
    table1 = html.split('id="table1"', 1)[1].split("<h2", 1)[0]
    rows = re.findall(r"<tr>\s*<td>", table1)
    assert 0 < len(rows) <= 60
    assert f"{len(dataset.evidence)} evidence items: the table shows {len(rows)}" in table1
    assert 'href="evidence.csv"' in table1
    with (tmp_path / "evidence.csv").open(encoding="utf-8", newline="") as handle:
        ids = [r["id"] for r in csv.DictReader(handle) if r["record_type"] == "evidence"]
    assert ids == [e.id for e in dataset.evidence]
