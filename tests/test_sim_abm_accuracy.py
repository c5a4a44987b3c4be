"""The diffusion step checked against analytic fields (``mscatlas.sim.abm.accuracy``).

The model's own numbers are used throughout: 20 µm voxels, CXCL12 diffusivity 36,000 µm²/h
(10 µm²/s) and decay 0.1/h, so lambda = 600 µm and one 0.1 h agent step is D dt / h^2 = 9 voxel
diffusion times.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import exp1, k0

from mscatlas.sim.abm import AbmConfig, AbmModel, FieldSolver, Grid
from mscatlas.sim.abm.accuracy import choose_time_step, point_source_error, point_source_field

H, D, K = 20.0, 36_000.0, 0.1


def test_point_source_field_limits() -> None:
    r = np.array([30.0, 200.0, 900.0])
    # no decay: W(u, 0) = E1(u), the exponential integral
    got = point_source_field(r, 2.0, rate=5.0, diffusivity=D, decay=0.0)
    assert got == pytest.approx(5.0 / (4 * math.pi * D) * exp1(r * r / (4 * D * 2.0)), rel=1e-8)
    # long times: W(0, b) = 2 K0(b), the steady state
    late = point_source_field(r, 1e6, rate=5.0, diffusivity=D, decay=K)
    steady = point_source_field(r, math.inf, rate=5.0, diffusivity=D, decay=K)
    assert steady == pytest.approx(5.0 / (2 * math.pi * D) * k0(r / math.sqrt(D / K)), rel=1e-12)
    assert late == pytest.approx(steady, rel=1e-8)


def test_douglas_fixed_point_is_the_steady_state_for_any_step_and_split_is_not() -> None:
    # Douglas-Gunn's fixed point solves the discrete steady state whatever dt: within the
    # space error (< 1% at r >= 3 h) of the K0 profile at dt = 0.1 h and at dt = 1 h alike.
    # Lie splitting at the model's 0.1 h step is off by more than 3%.
    times = (math.inf,)
    fine = point_source_error("douglas", 0.1, h=H, diffusivity=D, decay=K, times=times)[math.inf]
    coarse = point_source_error("douglas", 1.0, h=H, diffusivity=D, decay=K, times=times)[math.inf]
    split = point_source_error("split", 0.1, h=H, diffusivity=D, decay=K, times=times)[math.inf]
    assert fine < 0.01 and coarse < 0.01
    assert abs(fine - coarse) < 1e-6
    assert split > 0.03


def test_time_step_is_chosen_from_the_error_tolerance() -> None:
    tol = 0.02
    choice = choose_time_step("douglas", h=H, diffusivity=D, decay=K, tolerance=tol, dt_max=0.1)
    assert choice.error <= tol
    assert len(choice.tried) >= 2 and choice.tried[-2][1] > tol  # the largest step that meets it
    assert choice.tried[0][0] == 0.1 and choice.dt == pytest.approx(0.1 / 2 ** (len(choice.tried) - 1))
    again = point_source_error("douglas", choice.dt, h=H, diffusivity=D, decay=K)
    assert max(again.values()) == pytest.approx(choice.error, rel=1e-12)
    # the error falls as the step does, and the split scheme misses the bound at that step
    errors = [e for _, e in choice.tried]
    assert all(a > b for a, b in itertools.pairwise(errors))
    split = point_source_error("split", choice.dt, h=H, diffusivity=D, decay=K)
    assert max(split.values()) > tol
    with pytest.raises(ValueError, match="tolerance"):
        choose_time_step("douglas", h=H, diffusivity=D, decay=K, tolerance=1e-4, dt_max=0.1, max_halvings=1)


def test_douglas_matches_the_heat_kernel_and_keeps_the_total() -> None:
    grid = Grid(161, 161, 1.0)
    X, Y = grid.centres()

    def gaussian(var: float) -> np.ndarray:
        return np.exp(-((X - 80.5) ** 2 + (Y - 80.5) ** 2) / (2.0 * var)) / (2.0 * math.pi * var)

    c0 = gaussian(16.0)
    c = FieldSolver(grid, 1.0, 0.0, 0.1, "douglas").run(c0, 160)
    exact = gaussian(16.0 + 2.0 * 16.0)
    assert np.max(np.abs(c - exact)) < 0.01 * exact.max()
    assert c.sum() == pytest.approx(c0.sum(), rel=1e-12)
    # with decay the total follows the scheme's own factor per step
    k, dt, n = 0.2, 0.05, 200
    c = FieldSolver(Grid(30, 40, 1.0), 3.0, k, dt, "douglas").run(np.ones((40, 30)), n)
    a = 0.5 * k * dt
    assert c.sum() == pytest.approx(1200.0 * ((1 + a * a) / (1 + a) ** 2) ** n, rel=1e-10)
    # ln of the factor is -2a + 2a^2 + O(a^3): within 2 a^2 n (1%) of exp(-k t); bound 3 a^2 n
    assert c.sum() == pytest.approx(1200.0 * math.exp(-k * dt * n), rel=3 * a * a * n)


def test_model_field_substeps_run_the_solver_at_the_smaller_step() -> None:
    cfg = AbmConfig.from_parameters(n_cancer=200, n_msc=0, domain_size=600.0, field_substeps=4)
    model = AbmModel(cfg, seed=2, prime_fields=False)
    a, grid = model.agents, model.grid
    rows = a.rows_of(0)
    counts = np.bincount(grid.voxel_of(a.x[rows], a.y[rows]), minlength=grid.size).reshape(grid.shape)
    src = counts * (cfg.cxcl12_secretion / (grid.h**2 * cfg.thickness * 1e-12))  # per mL of voxel
    model.step()
    expect = FieldSolver(model.grid, cfg.cxcl12_diffusivity, cfg.cxcl12_decay, cfg.dt / 4, "douglas").run(
        np.zeros(model.grid.shape), 4, src
    )
    assert np.array_equal(model.cxcl12, expect)
    with pytest.raises(ValueError, match="field_substeps"):
        AbmModel(cfg.with_(field_substeps=0))
