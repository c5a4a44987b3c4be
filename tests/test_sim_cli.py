"""`mscatlas sim` commands, exercised through ``sim_app`` with typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mscatlas.cli.sim import sim_app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(sim_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("ratio", ["1:10", "1:10 (MSC:cancer)", "10:1 (cancer:MSC)", "K562 and MSCs at 10:1"])
def test_coculture_ratio_is_read_msc_first(ratio: str) -> None:
    data = _json(["coculture", "--ratio", ratio, "--cancer-class", "hematological", "--hours", "48"])
    assert data["protocol"]["msc_per_cancer"] == pytest.approx(0.1)
    series = data["series"]
    assert series["time_h"][0] == 0 and series["time_h"][-1] == 48
    n = len(series["time_h"])
    for arm in ("treated", "control"):
        for key in ("viable_cells", "apoptotic_fraction", "g0_g1", "s", "g2_m", "msc"):
            assert len(series[arm][key]) == n
    assert len(series["inhibition_percent"]) == n
    assert data["predicted_direction"] in {"inhibits", "promotes", "no_effect"}


def test_coculture_rejects_wording_without_a_ratio() -> None:
    result = runner.invoke(sim_app, ["coculture", "--ratio", "lots of MSCs"])
    assert result.exit_code == 2


def test_transwell_output_ignores_contact() -> None:
    direct = _json(["coculture", "--ratio", "1:1"])
    transwell = _json(["coculture", "--ratio", "1:1", "--transwell"])
    assert transwell["protocol"]["delivery"] == "transwell"
    assert direct["final"]["inhibition_percent"] != transwell["final"]["inhibition_percent"]


def test_cm_at_zero_percent_reports_no_inhibition() -> None:
    data = _json(["cm", "--percent", "0"])
    assert set(data["series"]["inhibition_percent"]) == {0.0}
    assert data["predicted_direction"] == "no_effect"
    assert _json(["cm", "--percent", "20"])["protocol"]["cm_percent"] == 20


def test_ev_units_are_converted() -> None:
    a = _json(["ev", "--amount", "50", "--unit", "ug/mL"])
    b = _json(["ev", "--amount", "50000", "--unit", "ng/mL"])
    assert a["protocol"]["ev_ug_per_ml"] == pytest.approx(b["protocol"]["ev_ug_per_ml"])
    assert runner.invoke(sim_app, ["ev", "--unit", "furlongs"]).exit_code == 2


def test_xenograft_json_has_curves_and_tgi() -> None:
    data = _json(
        [
            "xenograft",
            "--model",
            "logistic",
            "--msc-dose",
            "1e6",
            "--route",
            "intratumoral",
            "--schedule",
            "0,7",
        ]
    )
    series = data["series"]
    assert len(series["day"]) == len(series["treated_mean_mm3"]) == len(series["control_mean_mm3"]) == 29
    assert data["tgi_percent"] == series["tgi_percent"] != 0.0
    none = _json(["xenograft", "--msc-dose", "0"])
    assert none["tgi_percent"] == 0.0


def test_people_get_tables() -> None:
    result = runner.invoke(sim_app, ["coculture", "--ratio", "1:5", "--payload", "trail"])
    assert result.exit_code == 0, result.output
    assert "inhibition %" in result.output and "predicted direction" in result.output
    result = runner.invoke(sim_app, ["xenograft", "--route", "co_injection"])
    assert result.exit_code == 0 and "TGI" in result.output


def test_replay_json(tmp_path: Path) -> None:
    data = _json(["replay", "--db", f"sqlite:///{tmp_path / 'kb.sqlite'}"])
    assert {"items", "loo_accuracy", "baseline_accuracy"} <= set(data)
    assert data["items"] and {"id", "observed", "predicted"} <= set(data["items"][0])
    assert 0.0 <= data["loo_accuracy"] <= 1.0 and 0.0 <= data["baseline_accuracy"] <= 1.0
