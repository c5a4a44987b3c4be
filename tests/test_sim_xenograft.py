"""Xenograft model: analytic growth without MSCs, TGI, injections and curve fitting."""

from __future__ import annotations

import numpy as np
import pytest

from mscatlas.sim import Injection, fit_growth, simulate_xenograft
from mscatlas.sim.parameters import load_parameters
from mscatlas.sim.xenograft import gompertz, logistic


def _closed_form(model: str, t: np.ndarray, v0: float, rate: float, k: float) -> np.ndarray:
    # Written out here rather than imported, so the test checks the integrator, not a helper.
    if model == "gompertz":
        return k * np.exp(np.log(v0 / k) * np.exp(-rate * t))
    return k * v0 / (v0 + (k - v0) * np.exp(-rate * t))


@pytest.mark.parametrize("model", ["gompertz", "logistic"])
def test_no_msc_tumour_follows_the_closed_form_curve(model: str) -> None:
    table = load_parameters()
    rate = table.value("xenograft", "gompertz_rate" if model == "gompertz" else "logistic_rate")
    v0, k = table.value("xenograft", "initial_volume"), table.value("xenograft", "capacity")
    result = simulate_xenograft(model=model, injections=[], days=40, n_animals=1)
    exact = _closed_form(model, result.days, v0, rate, k)
    np.testing.assert_allclose(result.control[0], exact, rtol=1e-6)
    np.testing.assert_allclose(result.treated[0], exact, rtol=1e-6)


@pytest.mark.parametrize("route", ["intravenous", "intratumoral", "co_injection"])
def test_tgi_is_zero_without_msc(route: str) -> None:
    none = simulate_xenograft(injections=[], days=21, n_animals=6, seed=2)
    assert none.tgi_percent() == 0.0
    zero_cells = simulate_xenograft(injections=[Injection(0.0, 0.0, route)], days=21, n_animals=6, seed=2)
    assert zero_cells.tgi_percent() == 0.0


def test_route_sets_how_many_cells_reach_the_tumour() -> None:
    table = load_parameters()
    dose = 1e6
    iv = simulate_xenograft(injections=[Injection(0.0, dose, "intravenous")], days=10, n_animals=1)
    it = simulate_xenograft(injections=[Injection(0.0, dose, "intratumoral")], days=10, n_animals=1)
    assert iv.msc_in_tumour[0, 0] == pytest.approx(dose * table.value("xenograft", "homing_fraction_iv"))
    assert it.msc_in_tumour[0, 0] == pytest.approx(dose * table.value("xenograft", "retention_intratumoral"))
    half_life = table.value("xenograft", "msc_half_life")
    day = int(half_life)
    assert it.msc_in_tumour[0, day] == pytest.approx(
        it.msc_in_tumour[0, 0] * 0.5 ** (day / half_life), rel=1e-6
    )
    # with the default (inhibitory at high local density) action terms, more cells in the tumour
    # means more inhibition
    assert it.tgi_percent() > iv.tgi_percent()


def test_repeated_injections_add_cells_on_schedule() -> None:
    result = simulate_xenograft(
        injections=[Injection(d, 1e6, "intratumoral") for d in (0.0, 7.0)], days=14, n_animals=1
    )
    msc = result.msc_in_tumour[0]
    assert msc[7] > msc[6]  # the day-7 dose arrived
    assert msc[6] < msc[0]  # persistence is finite


def test_groups_are_reproducible_by_seed() -> None:
    a = simulate_xenograft(injections=[], days=14, n_animals=5, seed=11)
    b = simulate_xenograft(injections=[], days=14, n_animals=5, seed=11)
    c = simulate_xenograft(injections=[], days=14, n_animals=5, seed=12)
    np.testing.assert_array_equal(a.control, b.control)
    assert not np.array_equal(a.control, c.control)
    assert np.all(a.group_sd("control")[1:] > 0)


@pytest.mark.parametrize(
    ("model", "truth"), [("gompertz", (80.0, 0.12, 2500.0)), ("logistic", (60.0, 0.25, 1800.0))]
)
def test_fit_growth_recovers_parameters(model: str, truth: tuple[float, float, float]) -> None:
    days = np.arange(0.0, 36.0, 3.0)
    curve = gompertz if model == "gompertz" else logistic
    exact = curve(days, *truth)
    fit = fit_growth(days, exact, model)
    np.testing.assert_allclose([fit.v0, fit.rate, fit.capacity], truth, rtol=1e-5)
    noisy = exact * np.exp(np.random.default_rng(5).normal(0.0, 0.03, len(days)))
    fit = fit_growth(days, noisy, model)
    np.testing.assert_allclose([fit.v0, fit.rate, fit.capacity], truth, rtol=0.15)
    assert fit.rmse_log < 0.05


def test_fit_growth_rejects_too_few_points() -> None:
    with pytest.raises(ValueError, match="three"):
        fit_growth([0, 1], [10, 20])
