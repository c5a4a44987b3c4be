"""The CLI commands people use, and the offline report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from mscatlas.cli import app

runner = CliRunner()


def _db(tmp_path: Path, mini_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    from mscatlas.kb.records import validate_paths
    from mscatlas.kb.store import Store

    dataset, _ = validate_paths([mini_path])
    Store.open(db, seed=False).load(dataset)
    return db


def test_query_json_and_filters(tmp_path: Path, mini_path: Path) -> None:
    db = _db(tmp_path, mini_path)
    result = runner.invoke(app, ["query", "--db", db, "--direction", "promotes", "--json"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    assert item["id"] == "ev-047-a"
    assert item["dose"]["cells_per_injection"] == [5e6]
    bad = runner.invoke(app, ["query", "--db", db, "--direction", "sideways"])
    assert bad.exit_code == 2  # an unknown choice is refused by the parser


def test_show_includes_provenance_and_revisions(tmp_path: Path, mini_path: Path) -> None:
    db = _db(tmp_path, mini_path)
    result = runner.invoke(app, ["show", "ev-029-a", "--db", db, "--json"])
    data = json.loads(result.stdout)
    assert data["provenance"]["review_location"] == "Table 1, row 1"
    assert data["revisions"][0]["version"] == 1
    table = runner.invoke(app, ["show", "ev-029-a", "--db", db])
    assert "provenance" in table.stdout
    assert runner.invoke(app, ["show", "ev-999-x", "--db", db]).exit_code == 1


def test_export_contract_keys(tmp_path: Path, mini_path: Path) -> None:
    db = _db(tmp_path, mini_path)
    data = json.loads(runner.invoke(app, ["export", "--db", db, "--format", "json"]).stdout)
    assert set(data) >= {"schema_version", "studies", "evidence", "trials"}
    item = data["evidence"][0]
    for key in (
        "id",
        "study",
        "refs",
        "msc_species",
        "msc_source",
        "delivery",
        "setting",
        "cancer_type",
        "cancer_class",
        "cell_lines",
        "endpoint",
        "direction",
        "dose",
        "mechanisms",
        "provenance",
        "flags",
        "notes",
    ):
        assert key in item, key
    trial = data["trials"][0]
    for key in ("nct_id", "phases", "purpose", "engineered", "msc_source", "cancer_type"):
        assert key in trial, key


def test_dose_command() -> None:
    result = runner.invoke(app, ["dose", "K562 and MSCs at 10:1", "--json"])
    assert json.loads(result.stdout)["ratios"] == [{"msc": 1.0, "cancer": 10.0}]
    unordered = runner.invoke(app, ["dose", "2:3"])
    assert unordered.exit_code == 2 and "which side of the ratio is MSC" in unordered.stderr  # bad input


def assert_nothing_loaded_from_elsewhere(html: str) -> None:
    """Links out (``<a href>`` to an identifier's page) are fine; anything a browser would fetch
    (``src``, ``<link>``, CSS ``url()`` or ``@import``) is not: the report opens offline."""
    assert not re.search(r"\bsrc\s*=\s*[\"']?(?:https?:)?//", html), "external resource"
    assert not re.search(r"<link\b|@import|url\(\s*[\"']?(?:https?:)?//", html), "external style"
    assert set(re.findall(r"<(\w+)\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//", html)) <= {"a"}


def test_report_is_self_contained_and_escaped(tmp_path: Path, mini_path: Path) -> None:
    db = _db(tmp_path, mini_path)
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", "--db", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text(encoding="utf-8")
    assert_nothing_loaded_from_elsewhere(html)
    assert "<script" not in html  # the fixture's flag note holds a script tag: it shows as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") >= 2  # evidence map and count charts, inline
    assert "Evidence map" in html
    assert "Table 1 (regenerated)" in html and "Table 2 (regenerated)" in html
    assert "NCT02530047" in html
    assert "ev-047-a" in html
    # the top navigation reaches every top-level section, and every link lands on one
    nav = re.search(r"<nav>(.*?)</nav>", html, re.S)
    assert nav
    targets = re.findall(r'href="#([^"]+)"', nav.group(1))
    sections = set(re.findall(r'<h2 id="([^"]+)"', html))
    assert set(targets) <= sections
    assert sections - set(targets) <= {"summary"}, sections - set(targets)
    # every flag code in the flagged-records table is explained in its legend
    from mscatlas.kb.models import FLAG_CODES

    flags_part = html[html.index('<h2 id="flags">') :]
    shown = set(re.findall(r'<td><span class="flag">([a-z_]+)</span></td>', flags_part))
    assert shown
    legend = re.search(r'<dl class="legend">(.*?)</dl>', flags_part, re.S)
    assert legend
    for code in shown:
        assert f'<span class="flag">{code}</span></dt><dd>{FLAG_CODES[code]}</dd>' in legend.group(1), code


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    from mscatlas.cli import COMMANDS  # every top-level command and group (loaded lazily)

    assert len(COMMANDS) >= 20
    for name in COMMANDS:
        assert f"mscatlas {name}" in readme, name


def test_evidence_map_stays_legible_at_field_scale() -> None:
    """Many cancer types make the map taller, not wider: a page scales a wide SVG down, and
    its labels with it (the field's map had ~6 pt labels)."""
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.report.figures import MAP_CANCERS, MAP_SOURCES, evidence_map_svg

    items = shipped_dataset().evidence
    svg = evidence_map_svg(items)
    width_pt = float(re.search(r'width="([\d.]+)pt"', svg).group(1))
    assert width_pt <= 12 * 72  # about a page wide at its natural size
    sizes = [float(s) for s in re.findall(r"font-size: ?([\d.]+)px", svg)]
    assert sizes and min(sizes) >= 9
    n_sources = len({s.value for i in items for s in i.msc_source})
    assert n_sources > MAP_SOURCES  # the fold is exercised on the shipped data
    assert f"other sources ({n_sources - MAP_SOURCES})" in svg
    n_cancers = len({i.cancer_type for i in items})
    assert ("other cancer types (" in svg) == (n_cancers > MAP_CANCERS)
