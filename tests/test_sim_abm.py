"""The spatial agent-based model (``mscatlas.sim.abm``) against analytic results.

Monte Carlo checks use fixed seeds, so each is deterministic; the stated bounds (4 standard
errors unless said otherwise) are what a correct implementation meets with probability above
0.9999 for an arbitrary seed, and what a wrong drift, rate or sign would break.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mscatlas.cli.sim import sim_app
from mscatlas.sim.abm import (
    CANCER,
    MSC,
    AbmConfig,
    AbmModel,
    Agents,
    FieldSolver,
    Grid,
    drift_velocity,
    reflect,
    walk_step,
)
from mscatlas.sim.model import balanced_fractions

METHODS = ["split", "direct"]


# ------------------------------------------------------------------------------- diffusion
def _gaussian(grid: Grid, x0: float, y0: float, var: float) -> np.ndarray:
    X, Y = grid.centres()
    return np.exp(-((X - x0) ** 2 + (Y - y0) ** 2) / (2.0 * var)) / (2.0 * math.pi * var)


@pytest.mark.parametrize("method", METHODS)
def test_diffusion_matches_the_gaussian_heat_kernel(method: str) -> None:
    # A Gaussian of variance s0^2 spreads to variance s0^2 + 2 D t. Domain half-width 80 h against
    # a final sd of ~7 h: the walls are invisible. Backward Euler (first order in dt) and the
    # 5-point Laplacian (second order in h) give ~0.5% of the peak here; tolerance 1% of the peak.
    grid = Grid(161, 161, 1.0)
    D, t, dt, s0 = 1.0, 16.0, 0.1, 4.0
    c0 = _gaussian(grid, 80.5, 80.5, s0**2)
    c = FieldSolver(grid, D, 0.0, dt, method).run(c0, round(t / dt))
    exact = _gaussian(grid, 80.5, 80.5, s0**2 + 2.0 * D * t)
    assert np.max(np.abs(c - exact)) < 0.01 * exact.max()
    # the discrete scheme adds exactly 2 D dt of variance per axis per step (far from walls)
    X, _ = grid.centres()
    var_x = float(np.sum(c * (X - 80.5) ** 2) / c.sum())
    var_x0 = float(np.sum(c0 * (X - 80.5) ** 2) / c0.sum())
    assert var_x - var_x0 == pytest.approx(2.0 * D * t, rel=1e-6)
    # and the error shrinks with the step (first order in time)
    coarse = FieldSolver(grid, D, 0.0, 4 * dt, method).run(c0, round(t / (4 * dt)))
    assert np.max(np.abs(coarse - exact)) > np.max(np.abs(c - exact))


@pytest.mark.parametrize("method", METHODS)
def test_zero_flux_walls_conserve_mass_and_flatten_the_field(method: str) -> None:
    grid = Grid(37, 23, 2.0)  # not square: an axis mix-up would break the shape or the solve
    rng = np.random.default_rng(5)
    c0 = rng.random(grid.shape)
    solver = FieldSolver(grid, 5.0, 0.0, 0.5, method)
    c = solver.run(c0, 50)
    assert c.sum() == pytest.approx(c0.sum(), rel=1e-12)
    c_long = solver.run(c, 5000)
    assert c_long.sum() == pytest.approx(c0.sum(), rel=1e-12)
    assert np.ptp(c_long) < 1e-6 * c0.mean()  # reflecting walls: it ends uniform at the mean


@pytest.mark.parametrize("method", METHODS)
def test_total_decays_as_exp_minus_kt_and_reaches_the_source_balance(method: str) -> None:
    grid = Grid(30, 40, 1.0)
    k, dt, steps = 0.2, 0.05, 200
    c0 = _gaussian(grid, 10.0, 25.0, 9.0) * 100.0
    c = FieldSolver(grid, 3.0, k, dt, method).run(c0, steps)
    assert c.sum() == pytest.approx(c0.sum() * math.exp(-k * dt * steps), rel=1e-12)
    # constant source: the total tends to S/k (continuous), the scheme's fixed point is
    # S dt e^{-k dt} / (1 - e^{-k dt}) = S/k * (1 + O(k dt))
    source = np.zeros(grid.shape)
    source[5, 7] = 2.0
    c = FieldSolver(grid, 3.0, k, dt, method).run(np.zeros(grid.shape), 4000)
    c = FieldSolver(grid, 3.0, k, dt, method).run(c, 4000, source)
    total = float(c.sum())
    fixed_point = 2.0 * dt * math.exp(-k * dt) / (-math.expm1(-k * dt))
    assert total == pytest.approx(fixed_point, rel=1e-9)
    assert abs(total / (2.0 / k) - 1.0) < k * dt


def test_grid_maps_points_to_voxels() -> None:
    grid = Grid(4, 3, 10.0)
    idx = grid.voxel_of(np.array([0.0, 39.99, 15.0, 40.0]), np.array([0.0, 29.99, 25.0, 30.0]))
    assert idx.tolist() == [0, 11, 9, 11]


# ------------------------------------------------------------------------------ chemotaxis
def test_drift_is_proportional_then_saturates() -> None:
    vx, vy = drift_velocity(np.array([1e-4, 1.0, 100.0]), 0.0, speed_max=20.0, g_half=1.0)
    assert vx / np.array([1e-4, 1.0, 100.0]) == pytest.approx([20.0 / (1.0 + 1e-4), 10.0, 20.0 / 101.0])
    assert vx[1] == pytest.approx(10.0) and vx[2] == pytest.approx(20.0 * 100 / 101)
    assert np.all(vy == 0.0)
    zero = drift_velocity(0.0, 0.0, speed_max=20.0, g_half=1.0)
    assert zero[0] == 0.0 and zero[1] == 0.0


@pytest.mark.parametrize("g_over_half", [0.2, 1.0, 20.0])
def test_walkers_in_a_uniform_gradient_drift_at_the_imposed_velocity(g_over_half: float) -> None:
    # n walkers, t = steps * dt: mean displacement v t per axis, with standard error
    # sqrt(2 D t / n); bound 4 SE. The per-axis variance must be 2 D t within 5 relative SE of
    # a sample variance (sqrt(2/(n-1)) ~ 1% each).
    n, steps, dt, D, vmax, g_half = 20_000, 40, 0.1, 100.0, 20.0, 0.01
    g = g_over_half * g_half
    gx, gy = g * math.cos(math.radians(30)), g * math.sin(math.radians(30))
    rng = np.random.default_rng(11)
    x = np.zeros(n)
    y = np.zeros(n)
    for _ in range(steps):
        x, y = walk_step(x, y, gx, gy, dt=dt, motility=D, speed_max=vmax, g_half=g_half, rng=rng)
    t = steps * dt
    v = vmax * g / (g_half + g)
    se = math.sqrt(2.0 * D * t / n)
    assert abs(x.mean() - v * math.cos(math.radians(30)) * t) < 4 * se
    assert abs(y.mean() - v * math.sin(math.radians(30)) * t) < 4 * se
    rel_se = math.sqrt(2.0 / (n - 1))
    assert abs(x.var(ddof=1) / (2 * D * t) - 1.0) < 5 * rel_se
    assert abs(y.var(ddof=1) / (2 * D * t) - 1.0) < 5 * rel_se


def test_model_mscs_climb_an_imposed_linear_cxcl12_ramp() -> None:
    # The whole model path (gradient on the grid, lookup in the MSC's voxel, sign and axis
    # order): a frozen field c = G (x cos a + y sin a) with G = g_half, no decay, no diffusion.
    cfg = AbmConfig.from_parameters(
        n_cancer=0,
        n_msc=5000,
        cxcl12_secretion=0.0,
        cxcl12_decay=0.0,
        cxcl12_diffusivity=0.0,
        msc_death=0.0,
    )
    model = AbmModel(cfg, seed=3, prime_fields=False)
    X, Y = model.grid.centres()
    a = math.radians(-120)
    G = cfg.gradient_half
    model.cxcl12 = G * (X * math.cos(a) + Y * math.sin(a))
    agents = model.agents
    rows = agents.rows_of(MSC)
    agents.x[rows] = 1000.0
    agents.y[rows] = 1000.0
    steps = 30
    for _ in range(steps):
        model.step()
    t = steps * cfg.dt
    v = cfg.msc_speed_max * G / (cfg.gradient_half + G)
    se = math.sqrt(2.0 * cfg.msc_motility * t / rows.size)
    assert abs(agents.x[rows].mean() - 1000.0 - v * math.cos(a) * t) < 4 * se
    assert abs(agents.y[rows].mean() - 1000.0 - v * math.sin(a) * t) < 4 * se


def test_reflect_keeps_points_inside() -> None:
    u = reflect(np.array([-5.0, 105.0, 50.0, 250.0, 100.0]), 100.0)
    assert u[:4] == pytest.approx([5.0, 95.0, 50.0, 50.0])
    assert np.all((u >= 0) & (u < 100.0))


# -------------------------------------------------------------------------------- growth
def _discrete_mean(cfg: AbmConfig, steps: int) -> float:
    """Expected cells per founder after ``steps`` steps of the model's event rule (no crowding)."""
    k = np.asarray(cfg.cycle_rates)
    d, dt = cfg.death, cfg.dt
    p = -np.expm1(-(k + d) * dt)
    adv = p * k / (k + d)
    M = np.diag(1.0 - p)
    M[1, 0], M[2, 1], M[0, 2] = adv[0], adv[1], 2.0 * adv[2]
    f0 = np.array(balanced_fractions(*k, d, cfg.growth_rate))
    return float(np.ones(3) @ np.linalg.matrix_power(M, steps) @ f0)


def test_no_mscs_cancer_cells_grow_exponentially_at_the_ode_rate() -> None:
    # Without crowding and MSCs the founders' lineages are independent: cells per founder
    # (tracked by the clone column) are iid, so their mean has standard error sd / sqrt(n).
    cfg = AbmConfig.from_parameters(n_cancer=6000, n_msc=0, crowding=False)
    hours = 48.0
    model = AbmModel(cfg, seed=21, prime_fields=False)
    result = model.run(hours, record_every=hours)
    a = model.agents
    alive = a.alive[: a.n] & (a.kind[: a.n] == CANCER)
    per_founder = np.bincount(a.clone[: a.n][alive], minlength=cfg.n_cancer)
    assert per_founder.size == cfg.n_cancer and per_founder.sum() == result.cancer[-1]
    mean, se = per_founder.mean(), per_founder.std(ddof=1) / math.sqrt(cfg.n_cancer)
    expected = _discrete_mean(cfg, round(hours / cfg.dt))
    assert abs(mean - expected) < 4 * se
    # the one-event-per-step rule is within 1% of the continuous-time exponential
    assert cfg.growth_rate == pytest.approx(math.log(2.0) / 34.0, rel=1e-9)
    assert abs(expected / math.exp(cfg.growth_rate * hours) - 1.0) < 0.01
    assert abs(mean / math.exp(cfg.growth_rate * hours) - 1.0) < 0.01 + 4 * se / mean


def test_crowding_stops_growth_at_the_maximum_density() -> None:
    # a small domain packed at the maximum density: no cycling and no basal death
    cfg = AbmConfig.from_parameters(
        n_cancer=500, n_msc=0, domain_size=400.0, initial_fill=4.0, cancer_motility=0.0
    )
    model = AbmModel(cfg, seed=2, prime_fields=False)
    result = model.run(12.0, record_every=12.0)
    free = AbmConfig.from_parameters(n_cancer=500, n_msc=0, domain_size=400.0, crowding=False)
    grown = AbmModel(free, seed=2, prime_fields=False).run(12.0, record_every=12.0)
    assert result.cancer[-1] < grown.cancer[-1]
    assert abs(int(result.cancer[-1]) - 500) < 20


# ------------------------------------------------------------------ seeds and capacity
def _small(**kw: object) -> AbmConfig:
    return AbmConfig.from_parameters(n_cancer=300, n_msc=40, domain_size=1000.0, **kw)


def _state(model: AbmModel) -> dict[str, np.ndarray]:
    return {**model.agents.snapshot(), "cxcl12": model.cxcl12, "paracrine": model.paracrine}


def test_same_seed_same_run_and_different_seed_different_run() -> None:
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        model = AbmModel(_small(), seed=seed)
        result = model.run(12.0)
        runs[name] = (result, _state(model))
    (ra, sa), (rb, sb), (rc, sc) = runs["a"], runs["b"], runs["c"]
    for key in sa:
        assert np.array_equal(sa[key], sb[key]), key
    assert np.array_equal(ra.cancer, rb.cancer)
    assert np.array_equal(ra.homing_fraction, rb.homing_fraction)
    assert not np.array_equal(sa["x"][:100], sc["x"][:100])
    assert not np.array_equal(sa["cxcl12"], sc["cxcl12"])
    assert not (
        np.array_equal(ra.cancer, rc.cancer) and np.array_equal(ra.homing_fraction, rc.homing_fraction)
    )
    # a Generator is accepted in place of an integer seed and gives the same stream
    model = AbmModel(_small(), seed=np.random.default_rng(7))
    model.run(12.0)
    assert np.array_equal(_state(model)["x"], sa["x"])


def test_capacity_grows_past_the_preallocated_rows_without_changing_the_run() -> None:
    small = AbmModel(_small(crowding=False), seed=4, capacity=8)
    big = AbmModel(_small(crowding=False), seed=4, capacity=100_000)
    r_small, r_big = small.run(24.0), big.run(24.0)
    assert small.agents.grown > 0 and big.agents.grown == 0
    assert small.agents.capacity >= small.agents.n > 340
    assert np.array_equal(r_small.cancer, r_big.cancer)
    s, b = _state(small), _state(big)
    for key in ("x", "y", "alive", "kind", "phase", "clone"):
        assert np.array_equal(s[key], b[key]), key


def test_agents_append_and_compact_keep_rows_in_order() -> None:
    agents = Agents.empty(2)
    agents.append(np.arange(5.0), np.zeros(5), CANCER, 1)
    agents.append(np.array([9.0]), np.array([1.0]), MSC)
    assert agents.n == 6 and agents.capacity >= 6 and agents.grown >= 1
    agents.alive[[1, 3]] = False
    agents.compact()
    assert agents.n == 4
    assert agents.x[:4].tolist() == [0.0, 2.0, 4.0, 9.0]
    assert agents.clone[:4].tolist() == [0, 2, 4, 5]
    assert agents.count(CANCER) == 3 and agents.count(MSC) == 1


# ----------------------------------------------------------------------------- behaviour
def test_chemotaxis_raises_homing_over_a_random_walk() -> None:
    chemo = AbmModel(_small(), seed=9).run(24.0)
    blind = AbmModel(_small(msc_speed_max=0.0), seed=9).run(24.0)
    assert chemo.homing_fraction[-1] > blind.homing_fraction[-1] + 0.2


# ----------------------------------------------------------------------------------- CLI
def test_cli_abm_writes_pngs_and_valid_json(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["abm", "--seed", "1", "--days", "0.25", "--out", str(out), "--cells", "200", "--mscs", "20"]
    result = CliRunner().invoke(sim_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    n = len(data["time_h"])
    assert data["time_h"][0] == 0.0 and data["time_h"][-1] == pytest.approx(6.0)
    assert len(data["homing_fraction"]) == len(data["cancer_cells"]) == len(data["mscs"]) == n
    assert all(0.0 <= f <= 1.0 for f in data["homing_fraction"])
    assert data["final"] == {"cancer": data["cancer_cells"][-1], "msc": data["mscs"][-1]}
    assert data["cancer_cells"][0] == 200 and data["mscs"][0] == 20
    for name in ("snapshot_start.png", "snapshot_end.png", "series.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "abm.json").read_text()) == data
    again = json.loads(CliRunner().invoke(sim_app, [*args, "--json"]).stdout)
    assert again["cancer_cells"] == data["cancer_cells"]


def test_animation_is_a_gif_and_skipped_without_frames(tmp_path: Path) -> None:
    from mscatlas.sim.abm import plot

    model = AbmModel(_small(), seed=1)
    result = model.run(2.0, snapshot_at=[0.0, 1.0, 2.0])
    assert [s.time_h for s in result.snapshots] == [0.0, 1.0, 2.0]
    extent = result.config.domain_size
    assert plot.save_animation(result.snapshots, extent, tmp_path / "a.gif")
    assert (tmp_path / "a.gif").read_bytes()[:4] == b"GIF8"
    assert not plot.save_animation([], extent, tmp_path / "b.gif")
    assert not (tmp_path / "b.gif").exists()


def test_gradient_at_equals_numpy_gradient_gathered() -> None:
    grid = Grid(37, 23, 3.0)  # not square: an axis mix-up shows
    c = np.random.default_rng(1).random(grid.shape)
    gy, gx = np.gradient(c, grid.h)
    flat = np.random.default_rng(2).integers(0, grid.size, 500)
    flat[:4] = [0, grid.nx - 1, grid.size - grid.nx, grid.size - 1]  # the corners: one-sided
    ax, ay = grid.gradient_at(c, flat)
    assert np.array_equal(ax, gx.ravel()[flat]) and np.array_equal(ay, gy.ravel()[flat])
    one = Grid(1, 1, 2.0)
    assert [v.tolist() for v in one.gradient_at(np.ones((1, 1)), np.array([0]))] == [[0.0], [0.0]]
