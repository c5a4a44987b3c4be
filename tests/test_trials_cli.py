"""The dose-finding commands, run through typer's CliRunner on the ``trials_app`` sub-app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mscatlas.cli.trials import trials_app
from mscatlas.trials import boin_boundaries, boin_simulate, three_plus_three_exact

runner = CliRunner()
TOX = "0.05,0.15,0.30,0.45,0.60"


def run_json(*args: str) -> dict:
    result = runner.invoke(trials_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_design_json_has_the_documented_fields() -> None:
    data = run_json("design", "--design", "boin", "--true-tox", TOX, "--sims", "2000", "--seed", "9")
    for key in ("selection_pct", "stop_pct", "mean_patients", "mean_toxicities", "expected_n"):
        assert key in data
    assert len(data["selection_pct"]) == len(data["mean_patients"]) == 5
    assert sum(data["selection_pct"]) + data["stop_pct"] == pytest.approx(100.0)
    assert data["seed"] == 9
    expected = boin_simulate([float(v) for v in TOX.split(",")], n_sims=2000, seed=9).to_dict()
    assert data == json.loads(json.dumps(expected))


def test_design_exact_three_plus_three_matches_the_library() -> None:
    data = run_json("design", "--design", "3+3", "--true-tox", TOX, "--exact")
    exact = three_plus_three_exact([float(v) for v in TOX.split(",")])
    assert data["method"] == "exact"
    assert data["selection_pct"] == pytest.approx(exact.selection_pct)
    assert data["expected_n"] == pytest.approx(exact.expected_n)


def test_design_is_reproducible_with_a_seed() -> None:
    args = ("design", "--design", "crm", "--true-tox", TOX, "--skeleton", "0.06,0.14,0.25,0.38,0.52")
    first = run_json(*args, "--sims", "500", "--seed", "4")
    assert first == run_json(*args, "--sims", "500", "--seed", "4")
    assert first["true_mtd"] == 3


def test_design_table_for_people() -> None:
    result = runner.invoke(trials_app, ["design", "--design", "3+3", "--true-tox", TOX, "--exact"])
    assert result.exit_code == 0
    assert "Selected %" in result.stdout and "stopped, none selected" in result.stdout


def test_boin_boundaries_json_and_table() -> None:
    data = run_json("boin-boundaries", "--target", "0.3", "--n-max", "12")
    table = boin_boundaries(0.3, 12)
    assert data["lambda_e"] == pytest.approx(table.lambda_e)
    assert [row["n"] for row in data["boundaries"]] == list(range(1, 13))
    assert data["boundaries"][2] == {"n": 3, "escalate_max": 0, "deescalate_min": 2, "eliminate_min": 3}
    assert data["boundaries"][0]["eliminate_min"] is None
    result = runner.invoke(trials_app, ["boin-boundaries", "--n-max", "6"])
    assert result.exit_code == 0 and "Eliminate if DLTs" in result.stdout


def test_next_dose_boin_gives_the_decision_and_reason() -> None:
    data = run_json("next-dose", "--design", "boin", "--target", "0.3", "--data", "1:0/3,2:1/3")
    assert (data["next_dose"], data["action"]) == (2, "stay")
    assert "λd" in data["reason"]
    data = run_json("next-dose", "--design", "boin", "--data", "1:3/3")
    assert data["next_dose"] is None and data["action"] == "stop"


def test_next_dose_crm() -> None:
    args = ["next-dose", "--design", "crm", "--target", "0.25", "--data", "1:0/3,2:1/3"]
    data = run_json(*args, "--skeleton", "0.05,0.1,0.25,0.4,0.6")
    assert data["next_dose"] == 2
    assert len(data["estimates"]) == 5
    result = runner.invoke(trials_app, [*args, "--skeleton", "0.05,0.1,0.25,0.4,0.6"])
    assert result.exit_code == 0 and "reason" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["design", "--design", "boin", "--true-tox", "0.05,1.2"], "1.2"),
        (["design", "--design", "boin", "--true-tox", "0.05,abc"], "'abc'"),
        (["design", "--design", "boin", "--true-tox", "0.05,0.2", "--target", "1.5"], "1.5"),
        (["design", "--design", "crm", "--true-tox", "0.05,0.2"], "--skeleton is required"),
        (
            ["design", "--design", "crm", "--true-tox", "0.05,0.2", "--skeleton", "0.3,0.2"],
            "increase strictly",
        ),
        (["design", "--design", "boin", "--true-tox", "0.05,0.2", "--exact"], "--exact"),
        (["next-dose", "--design", "boin", "--data", "1:0-3"], "1:0-3"),
        (["next-dose", "--design", "boin", "--data", "1:5/3"], "1:5/3"),
        (["next-dose", "--design", "crm", "--data", "1:0/3", "--skeleton", "0.1,0.1"], "increase strictly"),
        (["next-dose", "--design", "crm", "--data", "4:0/3", "--skeleton", "0.1,0.2"], "dose 4"),
        (["boin-boundaries", "--target", "0"], "target"),
    ],
)
def test_bad_input_fails_naming_the_value(args: list[str], fragment: str) -> None:
    result = runner.invoke(trials_app, args)
    assert result.exit_code in (1, 2)
    assert fragment in result.output


def test_unknown_design_is_a_usage_error() -> None:
    result = runner.invoke(trials_app, ["design", "--design", "mtpi", "--true-tox", TOX])
    assert result.exit_code == 2
