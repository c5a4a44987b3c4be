"""PhysiCell-style cell mechanics (``mscatlas.sim.abm.mechanics``) against analytic results.

Every check has an independent reference: the closed-form rest distance of two cells, the
potential's cut-off, Newton's third law, an all-pairs search, and SciPy's adaptive ODE solver
for the Adams-Bashforth integrator's order.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from mscatlas.sim.abm import CANCER, MSC, AbmConfig, AbmModel
from mscatlas.sim.abm.mechanics import (
    PHYSICELL_RADIUS,
    Mechanics,
    brute_force_pairs,
    cell_list_pairs,
    contact_counts,
    pair_velocities,
    relax,
)

MIXED = Mechanics(
    radius=(8.0, 11.0),
    repulsion=(600.0, 300.0),
    adhesion=(24.0, 60.0),
    adhesion_distance=(1.25, 1.6),
    affinity=((1.0, 0.5), (2.0, 1.0)),
)


def _pair_set(i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(i.tolist(), j.tolist(), strict=True))


def test_physicell_default_radius_and_rest_distance() -> None:
    m = Mechanics()
    assert pytest.approx(8.412710547954228, rel=1e-12) == PHYSICELL_RADIUS  # PhysiCell's value
    R, S = 2 * PHYSICELL_RADIUS, 2 * 1.25 * PHYSICELL_RADIUS
    # sqrt(600)(1 - d/R) = sqrt(24)(1 - d/S)  <=>  d = (sqrt(600) - sqrt(24)) / (sqrt(600)/R - sqrt(24)/S)
    d = m.equilibrium_distance()
    assert 600 * (1 - d / R) ** 2 == pytest.approx(24 * (1 - d / S) ** 2, rel=1e-12)
    assert 0 < d < R


@pytest.mark.parametrize(
    ("kinds", "d0"), [((CANCER, CANCER), 4.0), ((CANCER, MSC), 10.0), ((MSC, MSC), 30.0)]
)
def test_two_cells_come_to_rest_at_the_equilibrium_distance(kinds: tuple[int, int], d0: float) -> None:
    # overlapping pairs separate, a pair within adhesion reach but apart pulls together; the
    # midpoint never moves (equal and opposite velocities)
    kind = np.array(kinds)
    angle = 0.7
    x = 100.0 + np.array([0.0, d0 * math.cos(angle)])
    y = 100.0 + np.array([0.0, d0 * math.sin(angle)])
    mid = (x.mean(), y.mean())
    x, y, vx, vy, _ = relax(x, y, kind, np.zeros(2), np.zeros(2), 4.0, MIXED)
    d = math.hypot(x[1] - x[0], y[1] - y[0])
    assert d == pytest.approx(MIXED.equilibrium_distance(*kinds), abs=1e-6)
    assert (x.mean(), y.mean()) == pytest.approx(mid, abs=1e-9)
    assert math.atan2(y[1] - y[0], x[1] - x[0]) == pytest.approx(angle, abs=1e-12)
    assert np.max(np.abs(vx)) < 1e-5 and np.max(np.abs(vy)) < 1e-5


def test_no_force_beyond_the_interaction_distance() -> None:
    R, S, rep, adh = (t[CANCER, MSC] for t in MIXED.tables())
    assert pytest.approx(1.25 * 8.0 + 1.6 * 11.0) == S and pytest.approx(19.0) == R
    assert adh == pytest.approx(math.sqrt(24.0 * 0.5 * 60.0 * 2.0))
    kind = np.array([CANCER, MSC])
    for d, expect in [
        (S * (1 + 1e-12), 0.0),
        (S + 5.0, 0.0),
        (S * (1 - 1e-3), -adh * 1e-6),  # adhesion only: pulls together
        (0.5 * R, rep * 0.25 - adh * (1 - 0.5 * R / S) ** 2),
    ]:
        x, y = np.array([0.0, d]), np.array([0.0, 0.0])
        vx, vy = pair_velocities(x, y, kind, np.array([0]), np.array([1]), MIXED)
        # cell 0 sits at the left: a push moves it left (negative), a pull right
        assert -vx[0] == pytest.approx(expect, rel=1e-9, abs=1e-300)
        assert vx[1] == -vx[0] and vy.tolist() == [0.0, 0.0]


def test_pairwise_velocities_sum_to_zero() -> None:
    rng = np.random.default_rng(3)
    n = 600
    x, y = rng.random(n) * 200.0, rng.random(n) * 150.0
    kind = rng.integers(0, 2, n)
    i, j = cell_list_pairs(x, y, MIXED.cutoff)
    assert i.size > 1000  # a crowded cluster: many interacting pairs
    vx, vy = pair_velocities(x, y, kind, i, j, MIXED)
    scale = np.abs(vx).sum() + np.abs(vy).sum()
    assert abs(vx.sum()) < 1e-12 * scale and abs(vy.sum()) < 1e-12 * scale
    # and relaxation without walls keeps the centre of mass
    x2, y2, *_ = relax(x, y, kind, np.zeros(n), np.zeros(n), 0.2, MIXED)
    assert (x2.mean(), y2.mean()) == pytest.approx((x.mean(), y.mean()), abs=1e-9)
    assert np.max(np.hypot(x2 - x, y2 - y)) > 1.0  # it did move


@pytest.mark.parametrize("cutoff", [0.5, 7.0, 21.03, 80.0])
def test_cell_list_pairs_equal_brute_force(cutoff: float) -> None:
    rng = np.random.default_rng(int(cutoff * 100))
    x, y = rng.random(1500) * 400.0, rng.random(1500) * 250.0
    # points on bin edges, a duplicate and a pair exactly at the cut-off (excluded: strict <)
    lattice = np.arange(0.0, 200.0, cutoff)[:20]
    x = np.concatenate([x, lattice, lattice, [3.0, 3.0, 50.0, 50.0 + cutoff]])
    y = np.concatenate([y, lattice, np.zeros(lattice.size), [4.0, 4.0, 9.0, 9.0]])
    grid = _pair_set(*cell_list_pairs(x, y, cutoff))
    brute = _pair_set(*brute_force_pairs(x, y, cutoff))
    assert grid == brute
    assert len(brute) > 0
    n = x.size
    assert (n - 4, n - 3) in grid  # the duplicate
    assert (n - 2, n - 1) not in grid


def test_adams_bashforth_order_from_physicell_start_and_from_a_consistent_start() -> None:
    # Two cells pushed apart: the distance obeys d' = 2 f(d), solved to 1e-12 by SciPy. Started
    # as PhysiCell starts a cell (previous velocity 0, so the first step moves 1.5 v dt) the
    # error is first order: halving dt halves it. Started with the previous velocity equal to the
    # current one, Adams-Bashforth is second order: halving dt quarters it.
    m = Mechanics()
    R, S, rep, adh = (float(t[0, 0]) for t in m.tables())

    def f(d: float) -> float:
        fr, fa = max(1 - d / R, 0.0), max(1 - d / S, 0.0)
        return rep * fr * fr - adh * fa * fa

    t_end, d0 = 0.05, 6.0
    exact = solve_ivp(
        lambda _t, d: [2.0 * f(d[0])], (0.0, t_end), [d0], method="DOP853", rtol=1e-12, atol=1e-12
    )
    d_end = exact.y[0, -1]
    v0 = f(d0) * d0 / d0  # speed of each cell at the start
    for prev, lo, hi in ((0.0, 1.8, 2.2), (v0, 3.5, 4.5)):
        errors = []
        for dt in (t_end / 40, t_end / 80, t_end / 160):
            x, *_ = relax(
                np.array([0.0, d0]),
                np.zeros(2),
                np.zeros(2, int),
                np.array([-prev, prev]),
                np.zeros(2),
                t_end,
                Mechanics(dt=dt),
            )
            errors.append(abs((x[1] - x[0]) - d_end))
        for big, small in itertools.pairwise(errors):
            assert lo < big / small < hi, (prev, errors)


def test_contact_counts_match_an_all_pairs_count() -> None:
    rng = np.random.default_rng(8)
    n = 700
    x, y = rng.random(n) * 300.0, rng.random(n) * 300.0
    kind = (rng.random(n) < 0.3).astype(np.int8)
    got = contact_counts(x, y, kind, MIXED, of=CANCER, touching=MSC)
    _, S, _, _ = MIXED.tables()
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    near = d < S[kind[:, None], kind[None, :]]
    np.fill_diagonal(near, False)
    expect = np.where(kind == CANCER, (near & (kind[None, :] == MSC)).sum(axis=1), 0)
    assert got.tolist() == expect.tolist()
    assert expect.max() > 0


def test_mechanics_invalid_tables_name_the_field() -> None:
    with pytest.raises(ValueError, match="adhesion_distance"):
        Mechanics(adhesion_distance=(1.25,))
    with pytest.raises(ValueError, match="affinity"):
        Mechanics(affinity=((1.0,), (1.0,)))


# ------------------------------------------------------------------------------ in the model
def _packed(mechanics: Mechanics | None) -> AbmModel:
    cfg = AbmConfig.from_parameters(
        n_cancer=400, n_msc=0, domain_size=400.0, initial_fill=4.0, crowding=False, mechanics=mechanics
    )
    return AbmModel(cfg, seed=5, prime_fields=False)


def test_model_with_mechanics_pushes_overlapping_cells_apart() -> None:
    # 400 cells seeded at 4x the maximum density (a 184 µm disc): without mechanics many pairs
    # overlap deeply; with it, after 1 h hardly any pair is closer than half the touching distance
    R = 2 * PHYSICELL_RADIUS
    fractions = []
    for mech in (None, Mechanics()):
        model = _packed(mech)
        model.run(1.0, record_every=1.0)
        a = model.agents
        rows = a.rows_of(CANCER)
        d = np.hypot(a.x[rows, None] - a.x[None, rows], a.y[rows, None] - a.y[None, rows])
        iu = np.triu_indices(rows.size, 1)
        fractions.append(int(np.count_nonzero(d[iu] < 0.5 * R)))
    without, with_ = fractions
    assert without > 100  # pairs overlapping deeply
    assert with_ < 0.05 * without


def test_model_contact_is_contact_when_mechanics_is_on() -> None:
    # ten still cancer cells 100 µm apart; five MSCs, each touching one of the first five.
    # Contact death of 100/h kills a touched cell within a 0.1 h step (p = 1 - e^-10); an
    # untouched one dies at the basal rate only (p ~ 1e-3)
    cfg = AbmConfig.from_parameters(
        n_cancer=10,
        n_msc=5,
        domain_size=1200.0,
        crowding=False,
        cancer_motility=0.0,
        msc_motility=0.0,
        msc_speed_max=0.0,
        msc_death=0.0,
        contact_death=100.0,
        contact_arrest=0.0,
        contact_ec50=0.5,
        contact_hill=4.0,
        mechanics=Mechanics(),
    )
    model = AbmModel(cfg, seed=1, prime_fields=False)
    a = model.agents
    cancer, msc = a.rows_of(CANCER), a.rows_of(MSC)
    a.x[cancer] = 100.0 + 100.0 * np.arange(10)
    a.y[cancer] = 600.0
    a.x[msc] = a.x[cancer[:5]]
    a.y[msc] = 600.0 + 15.0
    model.step()  # (the dead rows are compacted away)
    left = a.rows_of(CANCER)
    assert np.round(a.x[left]).tolist() == [600.0, 700.0, 800.0, 900.0, 1000.0]


def test_mechanics_off_by_default() -> None:
    assert AbmConfig.from_parameters().mechanics is None
