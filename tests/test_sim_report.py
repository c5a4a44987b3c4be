"""The in silico section of the report: the homing snapshot (a small seeded spatial run)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from mscatlas.kb.records import validate_paths
from mscatlas.report.build import build_report
from mscatlas.report.sim_section import HOMING_DAYS, homing_snapshot, sim_section_context


def test_homing_snapshot_is_fast_inline_and_deterministic() -> None:
    first = homing_snapshot(seed=0)  # its run time is measured in benchmarks/bench_sim_report.py
    svg = first["svg"]
    assert svg.startswith("<svg") and "</svg>" in svg
    assert "http" not in svg  # inline, nothing to fetch; the tissue image is a data: URI
    assert re.search(r'href="data:image/png;base64,', svg)
    series = first["homing_fraction"]
    assert len(series) == len(first["time_h"]) == round(24 * HOMING_DAYS) + 1
    assert all(f is None or 0.0 <= f <= 1.0 for f in series)
    assert series[-1] is not None and series[-1] > series[0]  # MSCs gather in the tumour
    assert first["final"]["cancer"] > 0 and first["final"]["msc"] > 0
    again = homing_snapshot(seed=0)
    assert again == first  # same seed, same numbers and the same SVG text
    other = homing_snapshot(seed=1)
    assert other["homing_fraction"] != series


def test_report_shows_the_homing_snapshot(tmp_path: Path, mini_path: Path) -> None:
    dataset, _ = validate_paths([mini_path])
    context = sim_section_context(dataset)
    homing = context["homing"]
    assert homing["seed"] == 0 and not math.isnan(homing["final_homing_percent"])
    html = build_report(dataset, tmp_path / "rep").read_text(encoding="utf-8")
    section = html[html.index('id="in-silico"') : html.index('id="flags"')]
    assert "Homing snapshot" in section
    assert homing["svg"] in section
    assert f"{homing['final_homing_percent']}% at the end" in section
    # nothing is fetched from elsewhere (identifiers may link out)
    assert not re.search(r"\bsrc\s*=\s*[\"']?https?:|url\(\s*[\"']?https?:", html)
