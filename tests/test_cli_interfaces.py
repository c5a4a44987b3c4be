"""The command line behaves like the tools users know (issue 15 points 1-5, 8, 17):
names people type, JSON errors with one set of exit codes, helpful messages, records shown as
people read them, and loads that are curation (author, review, retraction)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from mscatlas.cli import app, main
from mscatlas.kb.enums import MscSource
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.kb.store import Store

runner = CliRunner()
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def shipped_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store filled from the shipped dataset (read-only in these tests)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('shipped') / 'kb.sqlite'}"
    Store.open(url).close()
    return url


def _json(result) -> object:
    return json.loads(result.stdout)


# ---------------------------------------------------------------- 1. names users type


@pytest.mark.parametrize("typed", ["bone marrow", "bonemarrow", "BM-MSC", "Bone_Marrow"])
def test_query_takes_labels_and_synonyms(shipped_db: str, typed: str) -> None:
    result = runner.invoke(app, ["query", "--msc-source", typed, "--db", shipped_db, "--json"])
    assert result.exit_code == 0, result.output
    items = _json(result)
    assert items and all("bone_marrow" in e["msc_source"] for e in items)
    expected = sum(MscSource.bone_marrow in e.msc_source for e in shipped_dataset().evidence)
    assert len(items) == expected


def test_unknown_value_exits_2_with_the_nearest(shipped_db: str) -> None:
    result = runner.invoke(app, ["query", "--msc-source", "bonemarow", "--db", shipped_db])
    assert result.exit_code == 2
    assert "did you mean 'bone_marrow'" in result.stderr
    as_json = runner.invoke(app, ["query", "--delivery", "teleport", "--db", shipped_db, "--json"])
    assert as_json.exit_code == 2
    error = _json(as_json)
    assert "teleport" in error["error"] and "transwell" in error["detail"]["accepted"]


def test_cancer_tissue_finds_pancreatic_items(shipped_db: str) -> None:
    result = runner.invoke(app, ["query", "--cancer", "pancreas", "--db", shipped_db, "--json"])
    types = {e["cancer_type"] for e in _json(result)}
    assert types == {"pancreatic adenocarcinoma", "pancreatic ductal adenocarcinoma"}
    unknown = runner.invoke(app, ["query", "--cancer", "glioblastome", "--db", shipped_db])
    assert "did you mean 'glioblastoma'" in unknown.stderr


# ---------------------------------------------------------------- 2. --json everywhere


def test_show_missing_record_is_a_json_error(shipped_db: str) -> None:
    result = runner.invoke(app, ["show", "NCT99999999", "--db", shipped_db, "--json"])
    assert result.exit_code == 1
    assert _json(result) == {
        "error": "no record 'NCT99999999'",
        "detail": {"id": "NCT99999999", "looked_in": ["evidence", "studies", "trials"]},
    }


def _json_commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    command = typer.main.get_command(group)
    found = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        subcommands = getattr(cmd, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        elif any("--json" in getattr(p, "opts", []) for p in cmd.params):
            found.append(path)

    walk(command, prefix)
    return found


def test_every_json_command_reports_usage_errors_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _json_commands(app)
    assert len(commands) >= 30 and ("show",) in commands and ("export",) in commands
    assert ("report",) in commands and ("sim", "sweep") in commands
    for path in commands:
        with pytest.raises(SystemExit) as exited:
            main([*path, "--no-such-option", "--json"])
        assert exited.value.code == 2, path
        out = json.loads(capsys.readouterr().out)
        assert "--no-such-option" in out["error"] and "detail" in out, path


def test_export_and_report_summarise_what_they_wrote(tmp_path: Path, shipped_db: str) -> None:
    out = tmp_path / "kb.csv"
    args = ["export", "--format", "csv", "--out", str(out), "--db", shipped_db, "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = _json(result)
    assert summary["written"] == str(out) and summary["bytes"] == out.stat().st_size
    assert summary["evidence"] == len(shipped_dataset().evidence)
    refused = runner.invoke(app, ["export", "--db", shipped_db, "--json"])
    assert refused.exit_code == 2 and "--out" in _json(refused)["error"]


def test_report_json_summary(tmp_path: Path, mini_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mini.sqlite'}"
    Store.open(db, seed=False).close()
    assert runner.invoke(app, ["load", str(mini_path), "--db", db, "--by", "ed"]).exit_code == 0
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "rep"), "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    summary = _json(result)
    assert summary["written"].endswith("index.html") and summary["written"] in summary["files"]
    assert summary["bytes"] == sum(Path(f).stat().st_size for f in summary["files"])


# ---------------------------------------------------------------- 3. helpful errors


def test_dose_error_names_the_forms() -> None:
    result = runner.invoke(app, ["dose", "10 to 1"])
    assert result.exit_code == 2
    assert "1:6 (SC:CC)" in result.stderr and "K562 and MSCs at 10:1" in result.stderr
    as_json = runner.invoke(app, ["dose", "10 to 1", "--json"])
    assert as_json.exit_code == 2 and "accepted_forms" in _json(as_json)["detail"]


def test_show_a_reference_number_finds_the_study(shipped_db: str) -> None:
    for typed in ("44", "ref 44"):
        result = runner.invoke(app, ["show", typed, "--db", shipped_db, "--json"])
        assert result.exit_code == 0, result.output
        assert _json(result)["id"] == "ref44"


def test_help_lists_choices_whole() -> None:
    result = runner.invoke(app, ["query", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    text = " ".join(result.output.replace("│", " ").split())
    for value in ("adipose_tissue", "umbilical_cord_blood", "periodontal_ligament", "extracellular_vesicles"):
        assert value in text, value


def test_sweep_takes_ratios_like_coculture() -> None:
    from mscatlas.cli.sim_sweep import _grid_values

    assert _grid_values("ratio", "1:10,1:1,0.5") == pytest.approx([0.1, 1.0, 0.5])
    assert _grid_values("cm_percent", "10,50") == [10.0, 50.0]
    result = runner.invoke(app, ["sim", "sweep", "--param", "ratio", "--values", "1:10,10 to 1", "--json"])
    assert result.exit_code == 2 and "10 to 1" in _json(result)["error"]


# ---------------------------------------------------------------- 5. a people's view


def test_show_reads_as_people_read(shipped_db: str) -> None:
    result = runner.invoke(app, ["show", "ev-029-a", "--db", shipped_db])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "MSC:cancer 1:6" in text
    assert "primary source checked:" in text
    for leak in ('{"', '"review_location"', "True", "False", "None", "[\n"):
        assert leak not in text, leak
    lines = runner.invoke(app, ["query", "--cancer", "SKW6.4", "--db", shipped_db, "--json"])
    found = _json(lines)
    assert found and all("SKW 6.4" in e["cell_lines"] for e in found)
    item = next(e for e in shipped_dataset().evidence if {"BJAB", "SKW 6.4"} <= set(e.cell_lines))
    shown = runner.invoke(app, ["show", item.id, "--db", shipped_db]).stdout
    assert "BJAB, SKW 6.4" in shown and "skw" not in shown and "bjab" not in shown


def test_query_shows_engineering(shipped_db: str) -> None:
    items = shipped_dataset().evidence
    senescent = next(e for e in items if any(g.kind == "senescence" for g in e.engineering))
    result = runner.invoke(app, ["query", "--ref", str(senescent.refs[0]), "--db", shipped_db])
    assert "product" in result.stdout and "senescence" in result.stdout
    assert "native" in runner.invoke(app, ["query", "--ref", "44", "--db", shipped_db]).stdout


# ---------------------------------------------------------------- 8. load is curation


def _item_file(tmp_path: Path, mini_path: Path, new_id: str) -> Path:
    data = yaml.safe_load(mini_path.read_text(encoding="utf-8"))
    item = dict(data["evidence"][0], id=new_id)
    path = tmp_path / f"{new_id}.yaml"
    path.write_text(yaml.safe_dump({"evidence": [item]}, sort_keys=False), encoding="utf-8")
    return path


def test_load_authors_review_and_retraction(tmp_path: Path, mini_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    Store.open(db, seed=False).close()
    assert runner.invoke(app, ["load", str(mini_path), "--db", db, "--by", "ed"]).exit_code == 0
    store = Store.open(db)
    store.add_user("cara", "curator", PASSWORD)
    store.add_user("ed", "editor", PASSWORD)
    store.add_user("vic", "viewer", PASSWORD)

    by_curator = runner.invoke(app, ["load", str(_item_file(tmp_path, mini_path, "ev-029-y")), "--db", db,
                                     "--by", "cara", "--json"])  # fmt: skip
    assert by_curator.exit_code == 0, by_curator.output
    assert _json(by_curator)["pending_review"] == ["ev-029-y"]
    assert store.get("ev-029-y").curation_status.value == "submitted"
    assert store.revisions("ev-029-y")[0]["changed_by"] == "cara"

    by_editor = runner.invoke(app, ["load", str(_item_file(tmp_path, mini_path, "ev-029-z")), "--db", db,
                                    "--by", "ed", "--json"])  # fmt: skip
    assert _json(by_editor)["pending_review"] == []
    assert store.get("ev-029-z").curation_status.value == "accepted"
    viewer = runner.invoke(app, ["load", str(_item_file(tmp_path, mini_path, "ev-029-w")), "--db", db,
                                 "--by", "vic"])  # fmt: skip
    assert viewer.exit_code == 1 and "curator or editor role" in viewer.stderr

    refused = runner.invoke(app, ["retract", "ev-029-z", "--by", "cara", "--why", "dup", "--db", db])
    assert refused.exit_code == 1 and "only an editor or the item's author" in refused.stderr
    own = runner.invoke(app, ["retract", "ev-029-y", "--by", "cara", "--why", "loaded twice", "--db", db])
    assert own.exit_code == 0, own.output
    done = runner.invoke(
        app, ["retract", "ev-029-z", "--by", "ed", "--why", "duplicate of ev-029-a", "--db", db, "--json"]
    )
    assert _json(done) == {"retracted": "ev-029-z", "version": 2, "by": "ed", "why": "duplicate of ev-029-a"}
    item = store.get("ev-029-z")
    assert item is not None and item.curation_status.value == "rejected"  # kept, not deleted
    history = store.revisions("ev-029-z")
    assert [r["version"] for r in history] == [1, 2]
    assert history[-1]["changed_by"] == "ed" and history[-1]["reason"] == "retracted: duplicate of ev-029-a"
    again = runner.invoke(app, ["retract", "ev-029-z", "--by", "ed", "--why", "x", "--db", db, "--json"])
    assert again.exit_code == 1 and "already withdrawn" in _json(again)["error"]
    study = runner.invoke(app, ["retract", "ref29", "--by", "ed", "--why", "x", "--db", db])
    assert study.exit_code == 1 and "a study or trial" in study.stderr
