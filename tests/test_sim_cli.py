"""`mscatlas sim` commands, exercised through ``sim_app`` with typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mscatlas.cli.sim import sim_app
from mscatlas.kb.enums import CancerClass
from mscatlas.sim import Protocol, run
from mscatlas.sim.calibration import load_calibration

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


def test_xenograft_output_says_whether_the_in_vivo_data_calibrate_it() -> None:
    """Issue 12 part 3: the in vivo evidence's tumour-growth numbers, counted on every output."""
    from mscatlas.sim.calibrate import shipped_evidence
    from mscatlas.sim.invivo import tumour_growth_data

    expected = tumour_growth_data(shipped_evidence())
    data = _json(["xenograft", "--days", "7"])
    assert data["parameters"] == "assumed"
    assert data["validation"]["counts"] == expected["counts"]
    assert data["validation"]["line"] == expected["line"]
    assert data["validation"]["calibrated"] is False
    table = runner.invoke(sim_app, ["xenograft", "--days", "7"], terminal_width=400)
    assert expected["line"] in " ".join(table.stdout.split())


def test_people_get_tables() -> None:
    result = runner.invoke(sim_app, ["coculture", "--ratio", "1:5", "--payload", "trail"])
    assert result.exit_code == 0, result.output
    assert "inhibition %" in result.output and "predicted direction" in result.output
    result = runner.invoke(sim_app, ["xenograft", "--route", "co_injection"])
    assert result.exit_code == 0 and "TGI" in result.output


def test_replay_json(tmp_path: Path) -> None:
    """Without --refit: the default parameters, in sample, with their stored validation."""
    from mscatlas.sim.calibration import default_calibration, out_of_sample

    data = _json(["replay", "--db", f"sqlite:///{tmp_path / 'kb.sqlite'}"])
    assert {"items", "accuracy", "baseline_accuracy", "validation", "parameters"} <= set(data)
    assert data["items"] and {"id", "observed", "predicted", "inputs"} <= set(data["items"][0])
    assert 0.0 <= data["accuracy"] <= 1.0 and 0.0 <= data["baseline_accuracy"] <= 1.0
    chosen, _ = default_calibration()
    assert data["parameters"] == ("assumed" if chosen is None else "calibrated")
    assert data["validation"] == out_of_sample(data["parameters"])


# ---- calibrated shared factors by default, --assumed to opt out ----------------------------


@pytest.mark.parametrize(
    ("args", "proto"),
    [
        (["coculture", "--ratio", "1:10"], Protocol("direct_coculture", 72.0, msc_per_cancer=0.1)),
        (["cm", "--percent", "50"], Protocol("conditioned_medium", 72.0, cm_percent=50.0)),
        (["ev", "--amount", "50"], Protocol("extracellular_vesicles", 72.0, ev_ug_per_ml=50.0)),
    ],
    ids=["coculture", "cm", "ev"],
)
def test_protocol_commands_use_the_calibration_by_default(
    args: list[str], proto: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the shipped calibration beats the baseline out of sample it is the default."""
    import mscatlas.sim.calibration as cal

    calibration = load_calibration()
    assert calibration is not None  # the package ships data/calibrated.yaml
    monkeypatch.setattr(
        cal,
        "shipped_validation",
        lambda: {"loo_accuracy": 0.8, "baseline_accuracy": 0.7, "n_scored": 10, "n_studies": 5},
    )
    default = _json(args)
    assert default["parameters"] == "calibrated"
    assert default["calibration"] == calibration.provenance["stamp"]
    expected = run(proto, "bone_marrow", CancerClass.solid, calibration=calibration).final()
    assert default["final"]["inhibition_percent"] == pytest.approx(expected["inhibition_percent"])
    assumed = _json([*args, "--assumed"])
    assert assumed["parameters"] == "assumed" and assumed["calibration"] is None
    plain = run(proto, "bone_marrow", CancerClass.solid).final()
    assert assumed["final"]["inhibition_percent"] == pytest.approx(plain["inhibition_percent"])
    assert default["final"]["inhibition_percent"] != pytest.approx(plain["inhibition_percent"])


@pytest.mark.parametrize("args", [["coculture", "--ratio", "1:10"], ["cm", "--percent", "50"], ["ev"]])
def test_a_losing_calibration_is_not_the_default(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 part 3: the default is whichever is better out of sample, and the output says why."""
    import mscatlas.sim.calibration as cal

    monkeypatch.setattr(
        cal,
        "shipped_validation",
        lambda: {"loo_accuracy": 0.3, "baseline_accuracy": 0.7, "n_scored": 10, "n_studies": 5},
    )
    default = _json(args)
    assert default["parameters"] == "assumed" and default["calibration"] is None
    assert "loses to the majority baseline" in default["note"] and "0.30 vs 0.70" in default["note"]
    assert default == _json([*args, "--assumed"]) | {"note": default["note"]}
    table = runner.invoke(sim_app, args)
    assert table.exit_code == 0 and "loses to the majority baseline" in table.output.replace("\n", " ")


def test_tables_say_which_parameters_were_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import mscatlas.sim.calibration as cal

    monkeypatch.setattr(cal, "shipped_validation", lambda: {"loo_accuracy": 0.8, "baseline_accuracy": 0.7})
    calibrated = runner.invoke(sim_app, ["coculture", "--ratio", "1:10"])
    assert calibrated.exit_code == 0, calibrated.output
    assert "parameters: calibrated shared factors" in calibrated.output
    assumed = runner.invoke(sim_app, ["ev", "--assumed"])
    assert assumed.exit_code == 0, assumed.output
    assert "parameters: assumed (parameters.yaml as is)" in assumed.output


def test_calibration_file_option(tmp_path: Path) -> None:
    calibration = load_calibration()
    assert calibration is not None
    data = calibration.to_yaml_dict()
    data["provenance"]["stamp"] = "a file of my own"
    data["msc_sources"].setdefault("bone_marrow", {})["inhibitory"] = {"log_factor": -3.0}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    mine = _json(["coculture", "--ratio", "1:10", "--calibration", str(path)])
    assert mine["parameters"] == "calibrated" and mine["calibration"] == "a file of my own"
    assert mine["final"] != _json(["coculture", "--ratio", "1:10"])["final"]
    both = runner.invoke(sim_app, ["cm", "--assumed", "--calibration", str(path)])
    assert both.exit_code == 2
    (tmp_path / "bad.yaml").write_text("schema_version: 99\n", encoding="utf-8")
    bad = runner.invoke(sim_app, ["ev", "--calibration", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 2


# ---- sim calibrate and --scheduler ---------------------------------------------------------


def test_calibrate_command_writes_a_loadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command wraps ``write_calibration``; the fit itself is stubbed (tested in test_sim_calibrate)."""
    import mscatlas.sim.calibrate as cal

    shipped = load_calibration()
    assert shipped is not None
    seen: dict = {}

    def fake(items: list, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        seen.update(kwargs, n_items=len(items))
        data = shipped.to_yaml_dict()
        data["provenance"] |= {"stamp": f"stub, seed {kwargs['seed']}", "command": kwargs["command"]}
        return shipped, data

    monkeypatch.setattr(cal, "calibrate_knowledge_base", fake)
    out = tmp_path / "sub" / "cal.yaml"
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    args = ["calibrate", "--out", str(out), "--db", db, "--seed", "3", "--scheduler", "tcp://10.0.0.1:8786"]
    result = runner.invoke(sim_app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output.replace("\n", "")
    assert seen["seed"] == 3 and seen["scheduler"] == "tcp://10.0.0.1:8786" and seen["n_items"] > 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Calibrated factors") and "mscatlas sim calibrate --out" in text
    loaded = load_calibration(out)
    assert loaded is not None and loaded.source == shipped.source
    assert loaded.provenance["stamp"] == "stub, seed 3"
    data = _json(["coculture", "--calibration", str(out)])
    assert data["calibration"] == "stub, seed 3"
    as_json = _json(["calibrate", "--out", str(out), "--db", db])
    assert as_json["out"] == str(out) and "msc_sources" in as_json


def test_replay_passes_scheduler_and_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mscatlas.cli.sim_replay as cli  # the module of `sim replay`
    from mscatlas.sim.replay import ReplayReport

    seen: dict = {}

    def fake(items: list, **kwargs: Any) -> ReplayReport:
        seen.update(kwargs)
        return ReplayReport((), ())

    monkeypatch.setattr(cli, "replay", fake)
    args = ["replay", "--refit", "--db", f"sqlite:///{tmp_path / 'kb.sqlite'}", "--scheduler", "tcp://h:8786"]
    result = runner.invoke(sim_app, [*args, "--seed", "5", "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert seen == {
        "calibrate": True,
        "seed": 5,
        "scheduler": "tcp://h:8786",
        "workers": 2,
        "progress": False,
    }


def test_run_tasks_on_a_scheduler_address() -> None:
    """What --scheduler ADDRESS does: the tasks go to an existing cluster, results in task order."""
    from dask.distributed import LocalCluster

    from mscatlas.sim.tasks import run_tasks

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        out = run_tasks(pow, [(2, k) for k in range(6)], scheduler=cluster.scheduler_address)
    assert out == [1, 2, 4, 8, 16, 32]


def test_every_simulation_output_carries_its_validation() -> None:
    """Issue 12 part 3: the calibrated parameters never lose to the baseline silently, and the
    default is whichever of calibrated and assumed does better out of sample."""
    from mscatlas.sim.calibration import default_calibration, out_of_sample, shipped_validation

    runner = CliRunner()
    data = json.loads(runner.invoke(sim_app, ["cm", "--json"]).stdout)
    v = data["validation"]
    stored = shipped_validation()
    calibrated = out_of_sample("calibrated")
    assumed = out_of_sample("assumed")
    assert calibrated["accuracy"] == stored["loo_accuracy"]
    assert calibrated["baseline_accuracy"] == stored["baseline_accuracy"]
    if "loo_log_loss" in stored:
        assert calibrated["log_loss"] == stored["loo_log_loss"]
        assert assumed["log_loss"] == stored["log_loss_assumed"]
        loses = stored["loo_log_loss"] >= stored["baseline_log_loss"]
        better = stored["loo_log_loss"] < stored["log_loss_assumed"]
        assert calibrated["log_loss_difference"] == stored["vs_baseline"]["calibrated"]["log_loss"]
    else:
        loses = stored["loo_accuracy"] < stored["baseline_accuracy"]
        better = not loses
    assert calibrated["loses_to_baseline"] is loses
    chosen, why = default_calibration()
    text = " ".join(runner.invoke(sim_app, ["cm"], terminal_width=400).stdout.split())
    assert "validation:" in text and v["line"] in text
    if better:
        assert chosen is not None and data["parameters"] == "calibrated" and v == calibrated
    else:
        assert chosen is None and data["parameters"] == "assumed"
        assert why in data["note"] and v == assumed
    assert ("LOSES TO" in v["line"]) is bool(v["loses_to_baseline"])
    assert assumed["parameters"] == "assumed"


@pytest.mark.parametrize(("calibrated_ll", "default"), [(0.80, "calibrated"), (0.95, "assumed")])
def test_the_default_is_the_better_set_by_held_out_log_loss(
    calibrated_ll: float, default: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mscatlas.sim.calibration as cal

    stored = {
        "loo_accuracy": 0.6,
        "baseline_accuracy": 0.58,
        "accuracy_assumed": 0.55,
        "loo_log_loss": calibrated_ll,
        "log_loss_assumed": 0.9,
        "baseline_log_loss": 0.85,
        "n_scored": 10,
        "n_studies": 5,
    }
    monkeypatch.setattr(cal, "shipped_validation", lambda: stored)
    data = _json(["cm"])
    assert data["parameters"] == default
    if default == "assumed":
        assert "does no better out of sample than the assumed parameters" in data["note"]
        assert "log loss 0.950 vs 0.900" in data["note"]
        assert data["validation"]["loses_to_baseline"] is True  # 0.90 >= 0.85
    else:
        assert data["validation"]["loses_to_baseline"] is False and "beats" in data["validation"]["line"]


def test_calibrated_outputs_carry_the_validated_probabilities() -> None:
    """A calibrated run also gives the calibration's own call for a new study (what was validated)."""
    from mscatlas.sim.calibration import default_calibration
    from mscatlas.sim.hierarchical import readout_probabilities
    from mscatlas.sim.parameters import load_parameters

    chosen, _ = default_calibration()
    data = _json(["coculture", "--ratio", "1:10"])
    assumed = _json(["coculture", "--ratio", "1:10", "--assumed"])
    assert assumed["calibrated_direction"] is None
    if chosen is None:
        assert data["calibrated_direction"] is None
        return
    z = data["final"]["inhibition_percent"] / load_parameters().value("protocol", "inhibition_threshold")
    probs = data["calibrated_direction"]["probabilities"]
    assert probs == pytest.approx(readout_probabilities(z, chosen))
    assert sum(probs.values()) == pytest.approx(1.0)
    assert data["calibrated_direction"]["direction"] == max(probs, key=probs.get)
