"""Morris screening of the in silico lab: the sampler against analytic models, the wiring to the
parameter file, and the shipped result."""

from __future__ import annotations

import numpy as np
import pytest

from mscatlas.sim.parameters import load_parameters
from mscatlas.sim.sensitivity import (
    LEVELS,
    SCENARIOS,
    analyse,
    factors,
    load_shipped,
    morris,
    morris_trajectories,
    table_at,
)

DELTA = LEVELS / (2 * (LEVELS - 1))


def test_trajectories_move_one_factor_at_a_time_by_delta_within_the_unit_cube() -> None:
    points, moved = morris_trajectories(5, 7, seed=3)
    assert points.shape == (7, 6, 5) and moved.shape == (7, 5)
    assert points.min() >= 0 and points.max() <= 1 + 1e-12
    for t in range(7):
        assert sorted(moved[t]) == list(range(5))  # every factor moves once per trajectory
        steps = np.diff(points[t], axis=0)
        for j, i in enumerate(moved[t]):
            changed = np.flatnonzero(np.abs(steps[j]) > 1e-12)
            assert changed.tolist() == [i]
            assert abs(steps[j, i]) == pytest.approx(DELTA)
    again, _ = morris_trajectories(5, 7, seed=3)
    other, _ = morris_trajectories(5, 7, seed=4)
    np.testing.assert_array_equal(points, again)
    assert not np.array_equal(points, other)


def test_linear_model_elementary_effects_are_its_coefficients_exactly() -> None:
    """For y = c + a.x every elementary effect equals a_i: mu = a, mu* = |a|, sigma = 0."""
    a = np.array([3.0, -2.0, 0.0, 0.5])
    result = morris(
        lambda x: np.array([1.0 + a @ x, 2.0 * (a @ x)]), ["a", "b", "c", "d"], outputs=("y", "2y"), r=6
    )
    np.testing.assert_allclose(result.mu[:, 0], a, atol=1e-12)
    np.testing.assert_allclose(result.mu_star[:, 0], np.abs(a), atol=1e-12)
    np.testing.assert_allclose(result.mu[:, 1], 2 * a, atol=1e-12)
    np.testing.assert_allclose(result.sigma, 0.0, atol=1e-12)
    assert result.ranking() == ["a", "b", "d", "c"]


def test_interaction_shows_as_sigma_and_a_dummy_factor_as_zero() -> None:
    result = morris(lambda x: np.array([x[0] * x[1] + 5.0 * x[2]]), ["x0", "x1", "x2", "dummy"], r=12, seed=1)
    assert result.sigma[0, 0] > 0.1 and result.sigma[1, 0] > 0.1
    assert result.sigma[2, 0] == pytest.approx(0.0, abs=1e-12)
    assert result.mu_star[2, 0] == pytest.approx(5.0)
    assert result.mu_star[3, 0] == 0.0
    # x0 * x1: each effect is the other factor's value, a grid level in {0, 1/3, 2/3, 1}
    assert 0 < result.mu_star[0, 0] < 1


def test_dask_threads_give_the_synchronous_answer() -> None:
    fn = lambda x: np.array([np.sin(3 * x[0]) + x[1] ** 2])  # noqa: E731
    sync = morris(fn, ["p", "q"], r=5, seed=9, scheduler="synchronous")
    threads = morris(fn, ["p", "q"], r=5, seed=9, scheduler="threads", workers=2)
    np.testing.assert_array_equal(sync.mu_star, threads.mu_star)
    np.testing.assert_array_equal(sync.sigma, threads.sigma)


def test_factors_use_published_ranges_group_the_sources_and_leave_out_structural_entries() -> None:
    fs, left_out = factors()
    by_name = {f.name: f for f in fs}
    density = by_name["xenograft.cells_per_mm3"]
    assert density.sourced and (density.low, density.high) == (1e5, 1e6)
    assert density.at(0.0) == pytest.approx(1e5) and density.at(1.0) == pytest.approx(1e6)
    ec50 = by_name["signals.inhibitory.ec50"]
    assert not ec50.sourced and (ec50.low, ec50.high) == pytest.approx((ec50.value / 2, ec50.value * 2))
    assert by_name["signals.inhibitory.arrest_max"].high <= 1.0
    scale = by_name["msc_sources.*.contact_scale"]
    assert len(scale.paths) == 25 and "msc_sources.bone_marrow.contact_scale" in scale.paths
    why = {x["path"]: x["why"] for x in left_out}
    assert "phase shares" in why["cancer.solid.g1_fraction"]
    assert "switched off" in why["signals.trail.secretion"]
    assert not any(f.name.endswith("g1_fraction") for f in fs)


def test_table_at_sets_every_grouped_path() -> None:
    table = load_parameters()
    fs, _ = factors(table)
    scale = next(f for f in fs if f.name == "msc_sources.*.inhibitory_secretion_scale")
    changed = table_at(table, [scale], np.array([1.0]))
    values = [changed.value("msc_sources", s, "inhibitory_secretion_scale") for s in changed.msc_sources]
    assert len(values) == 25
    np.testing.assert_allclose(values, scale.high)


def test_analysis_finds_which_output_each_parameter_moves() -> None:
    """IV homing moves only the intravenous xenograft; a spatial-model-only number moves nothing."""
    result = analyse(
        r=2,
        only=["xenograft.homing_fraction_iv", "abm.voxel_size", "signals.inhibitory.arrest_max"],
        scheduler="synchronous",
    )
    rows = {row["factor"]: row for row in result["factors"]}
    homing = rows["xenograft.homing_fraction_iv"]["mu_star"]
    assert homing["xenograft_iv_solid"] > 0
    assert all(homing[s] == 0 for s in SCENARIOS if s != "xenograft_iv_solid")
    assert rows["abm.voxel_size"]["score"] == 0 and not rows["abm.voxel_size"]["matters"]
    assert rows["signals.inhibitory.arrest_max"]["mu_star"]["coculture_solid"] > 0
    assert result["evaluations"] == 2 * 4
    with pytest.raises(ValueError, match="unknown factors: nope"):
        analyse(r=2, only=["nope"], scheduler="synchronous")


def test_shipped_result_matches_the_parameter_file() -> None:
    shipped = load_shipped()
    assert shipped is not None, "run: mscatlas sim sensitivity --out src/mscatlas/sim/data/sensitivity.json"
    fs, _ = factors()
    by_name = {f.name: f for f in fs}
    assert {row["factor"] for row in shipped["factors"]} == set(by_name)
    for row in shipped["factors"]:
        assert row["sourced"] == by_name[row["factor"]].sourced, f"{row['factor']}: rerun the analysis"
    matter = [row for row in shipped["factors"] if row["matters"]]
    assert shipped["n_matter"] == len(matter) > 0
    assert shipped["n_matter_sourced"] == sum(row["sourced"] for row in matter)


def test_report_in_silico_section_carries_the_shares() -> None:
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.report.sim_section import sim_section_context

    ctx = sim_section_context(shipped_dataset())["sensitivity"]
    assert 0 < ctx["share_sourced"] < 1 and ctx["share_sourced_among_matter"] is not None
    assert ctx["top"] and all(row["matters"] for row in ctx["top"])
    assert len(ctx["top"]) == ctx["n_matter"]


def test_fitted_protocol_defaults_are_the_medians_of_what_items_state() -> None:
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.sim.sensitivity import stated_defaults

    stated = stated_defaults(shipped_dataset().evidence)
    table = load_parameters()
    for name in ("default_hours", "default_ratio"):
        entry = table.protocol[name]
        assert entry.source.startswith("fitted: the shipped knowledge base")
        assert entry.value == pytest.approx(stated[name]["median"]), name
        assert entry.range == pytest.approx((stated[name]["q1"], stated[name]["q3"])), name
        assert f"of the {int(stated[name]['n'])} in vitro items" in entry.source


def test_stated_defaults_reads_longest_exposure_and_highest_ratio() -> None:
    from types import SimpleNamespace as NS

    from mscatlas.sim.sensitivity import stated_defaults

    def item(hours: list[float], ratios: list[tuple[float, float]], setting: str = "in_vitro") -> NS:
        dose = NS(ratios=[NS(msc=m, cancer=c) for m, c in ratios])
        return NS(setting=NS(value=setting), duration=NS(hours=hours), dose=dose)

    items = [
        item([24, 72], [(1, 10), (1, 1)]),
        item([48], [(0, 1)]),
        item([96], [(5, 1)], "in_vivo"),
        item([], []),
    ]
    out = stated_defaults(items)
    assert out["default_hours"] == {"n": 2.0, "median": 60.0, "q1": 54.0, "q3": 66.0}
    assert out["default_ratio"]["n"] == 1.0 and out["default_ratio"]["median"] == 1.0
