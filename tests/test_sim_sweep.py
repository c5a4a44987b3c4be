"""Parameter sweeps on Dask: determinism across workers, agreement with the exact solver, CLI JSON."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from mscatlas.cli.sim_sweep import sweep as sweep_cmd
from mscatlas.sim.protocol import Protocol, run
from mscatlas.sim.sweep import CHUNK, sweep


def test_same_seed_same_numbers_for_one_and_two_workers() -> None:
    grid = {"ratio": [0.01, 0.1, 0.5, 1.0, 2.0], "signals.inhibitory.ec50": [1.0, 4.0, 8.0, 16.0]}
    assert len(grid["ratio"]) * len(grid["signals.inhibitory.ec50"]) > CHUNK  # several tasks
    one = sweep(grid, seed=7, n_ensemble=5, scheduler="threads", workers=1).to_dict()
    two = sweep(grid, seed=7, n_ensemble=5, scheduler="threads", workers=2).to_dict()
    assert one == two
    other_seed = sweep(grid, seed=8, n_ensemble=5, scheduler="synchronous").to_dict()
    assert other_seed["points"] != one["points"]
    assert [p["index"] for p in one["points"]] == list(range(20))


def test_sweep_matches_the_exact_solver() -> None:
    result = sweep({"ratio": [0.05, 0.5]}, calibration=None, scheduler="synchronous").to_dict()
    for row in result["points"]:
        exact = run(Protocol("direct_coculture", 72.0, msc_per_cancer=row["ratio"]), "bone_marrow", "solid")
        assert row["inhibition_percent"] == pytest.approx(exact.inhibition_percent()[-1], rel=1e-5, abs=1e-6)
    # A parameter-file path really changes the model: a 100x weaker inhibitory signal inhibits less.
    cm = sweep(
        {"signals.inhibitory.ec50": [2.0, 200.0]},
        protocol="cm",
        cm_percent=100.0,
        calibration=None,
        scheduler="synchronous",
    ).to_dict()["points"]
    assert cm[0]["inhibition_percent"] > cm[1]["inhibition_percent"] + 1.0


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot sweep"):
        sweep({"signals.inhibitory.nonsense": [1.0]}, scheduler="synchronous")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("sweep")(sweep_cmd)
    app.command("noop")(lambda: None)  # two commands keep "sweep" as a subcommand name
    return app


def test_sweep_cli_json() -> None:
    args = ["sweep", "--param", "cm_percent", "--values", "0,50,100", "--protocol", "cm"]
    result = CliRunner().invoke(_app(), [*args, "--scheduler", "threads", "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["params"] == {"cm_percent": [0.0, 50.0, 100.0]}
    assert data["protocol"]["delivery"] == "conditioned_medium"
    assert data["calibrated"] is True and data["n_points"] == 3
    points = data["points"]
    assert [p["cm_percent"] for p in points] == [0.0, 50.0, 100.0]
    assert points[0]["inhibition_percent"] == pytest.approx(0.0, abs=1e-9)  # 0 % CM is the control
    assert points[1]["inhibition_percent"] != points[2]["inhibition_percent"]


def test_sweep_cli_rejects_unpaired_values() -> None:
    result = CliRunner().invoke(
        _app(), ["sweep", "--param", "ratio", "--param", "cm_percent", "--values", "1", "--json"]
    )
    assert result.exit_code == 2
