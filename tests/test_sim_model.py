"""The in vitro population model against analytic solutions and designed behaviour."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from mscatlas.sim import Conditioning, Protocol, lognormal_ensemble, rk4, run
from mscatlas.sim.build import cell_params, product
from mscatlas.sim.model import broadcast_params, initial_state
from mscatlas.sim.parameters import load_parameters
from mscatlas.sim.protocol import simulate


def _base(cancer_class: str = "solid", contact: bool = True):
    return cell_params(product("bone_marrow"), cancer_class, contact=contact)


def _net_growth_rate(k1: float, k2: float, k3: float, d: float) -> float:
    # Largest real root of (x + k1 + d)(x + k2 + d)(x + k3 + d) = 2 k1 k2 k3, solved here with
    # numpy's polynomial roots, independently of the package's own construction.
    a, b, c = k1 + d, k2 + d, k3 + d
    coeffs = [1.0, a + b + c, a * b + b * c + a * c, a * b * c - 2.0 * k1 * k2 * k3]
    roots = np.roots(coeffs)
    return float(max(r.real for r in roots if abs(r.imag) < 1e-12))


def test_parameter_file_every_entry_has_value_unit_source_note() -> None:
    rows = load_parameters().rows()
    assert len(rows) > 50
    for row in rows:
        assert row["unit"] and row["note"] and row["source"], row["path"]
        assert math.isfinite(row["value"])
    # At least some numbers come from a named reference, the rest say "assumed" openly.
    assert any(row["source"] != "assumed" for row in rows)


def test_parameter_file_rejects_a_missing_entry(tmp_path: Path) -> None:
    data = yaml.safe_load(
        (Path(__file__).parents[1] / "src/mscatlas/sim/data/parameters.yaml").read_text(encoding="utf-8")
    )
    del data["cancer"]["solid"]["doubling_time"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValidationError, match="doubling_time"):
        load_parameters(bad)


@pytest.mark.parametrize("cancer_class", ["solid", "hematological"])
def test_untreated_culture_follows_the_analytic_logistic(cancer_class: str) -> None:
    p = _base(cancer_class)
    lam = _net_growth_rate(p.k_g1, p.k_s, p.k_g2m, p.death)
    assert lam == pytest.approx(
        math.log(2) / load_parameters().value("cancer", cancer_class, "doubling_time"), 1e-9
    )
    n0 = 2e4
    times = np.linspace(0.0, 400.0, 81)  # long enough to approach the plateau
    y = simulate(p, initial_state(p, n0), times)
    viable = y[0] + y[1] + y[2]
    k = p.capacity
    exact = k * n0 / (n0 + (k - n0) * np.exp(-lam * times))
    # LSODA at rtol 1e-8: agreement to 1e-6 relative leaves room for error accumulation.
    np.testing.assert_allclose(viable, exact, rtol=1e-6)
    assert viable[-1] > 0.9 * k


def test_phase_fractions_converge_to_balanced_growth() -> None:
    p = _base().with_(capacity=1e30)  # no crowding: pure exponential growth
    lam = _net_growth_rate(p.k_g1, p.k_s, p.k_g2m, p.death)
    # Eigenvector of the cycle matrix for lam, built here from the matrix itself.
    a = np.array(
        [
            [-p.k_g1 - p.death, 0.0, 2.0 * p.k_g2m],
            [p.k_g1, -p.k_s - p.death, 0.0],
            [0.0, p.k_s, -p.k_g2m - p.death],
        ]
    )
    values, vectors = np.linalg.eig(a)
    v = np.real(vectors[:, np.argmax(values.real)])
    expected = v / v.sum()
    assert np.max(values.real) == pytest.approx(lam, rel=1e-9)
    y0 = np.zeros(12)
    y0[0] = 1e3  # every cell in G0/G1: far from balanced
    y = simulate(p, y0, np.array([0.0, 300.0, 600.0]))
    fractions = y[:3, -1] / y[:3, -1].sum()
    np.testing.assert_allclose(fractions, expected, rtol=1e-6)
    # and the total grows at the balanced rate
    growth = math.log(y[:3, -1].sum() / y[:3, -2].sum()) / 300.0
    assert growth == pytest.approx(lam, rel=1e-6)


def test_transwell_removes_contact_effects_exactly() -> None:
    proto = Protocol("transwell", 72.0, msc_per_cancer=1.0)
    base = run(proto, "bone_marrow", "solid")
    p = cell_params(product("bone_marrow"), "solid", contact=False)
    y0 = initial_state(p, 5e4, 5e4)
    times = base.times
    strong = p.with_(contact_arrest=1.0, contact_death=5.0, contact_ec50=1e-3, space_share=50.0)
    np.testing.assert_array_equal(simulate(p, y0, times), simulate(strong, y0, times))
    # A direct co-culture whose contact terms are zero is the transwell, to rounding.
    direct_no_contact = cell_params(product("bone_marrow"), "solid", contact=True).with_(
        contact_arrest=0.0, contact_death=0.0, space_share=0.0
    )
    np.testing.assert_allclose(simulate(direct_no_contact, y0, times), base.treated, rtol=1e-12, atol=1e-12)
    # ... whereas real contact changes the outcome.
    direct = run(Protocol("direct_coculture", 72.0, msc_per_cancer=1.0), "bone_marrow", "solid")
    assert direct.inhibition_percent()[-1] > base.inhibition_percent()[-1] + 5.0


def test_conditioned_medium_at_zero_percent_is_the_control() -> None:
    cond = Conditioning(2e6, 10.0, 48.0)
    zero = run(
        Protocol("conditioned_medium", 72.0, cm_percent=0.0, conditioning=cond), "adipose_tissue", "solid"
    )
    np.testing.assert_array_equal(zero.treated, zero.control)
    np.testing.assert_array_equal(zero.inhibition_percent(), np.zeros_like(zero.times))
    some = run(
        Protocol("conditioned_medium", 72.0, cm_percent=50.0, conditioning=cond), "adipose_tissue", "solid"
    )
    assert np.max(np.abs(some.treated - some.control)) > 0


def test_conditioned_medium_dose_scales_with_conditioning() -> None:
    def inhibitory_start(cells: float, volume: float) -> float:
        out = run(
            Protocol(
                "conditioned_medium", 1.0, cm_percent=40.0, conditioning=Conditioning(cells, volume, 24.0)
            ),
            "bone_marrow",
            "solid",
        )
        return float(out.treated[5, 0])

    p = _base()
    expected = 1.0 * (1e6 / 1e6) / 10.0 * (1 - math.exp(-p.sig_decay[0] * 24.0)) / p.sig_decay[0] * 0.4
    assert inhibitory_start(1e6, 10.0) == pytest.approx(expected, rel=1e-12)
    assert inhibitory_start(2e6, 10.0) == pytest.approx(2 * expected, rel=1e-12)
    assert inhibitory_start(1e6, 5.0) == pytest.approx(2 * expected, rel=1e-12)


def _dose_response(boost: float, doses: np.ndarray) -> np.ndarray:
    """% inhibition at 72 h for constant medium doses of the two native channels."""
    p = _base().with_(
        sig_decay=np.array([0.0, 0.0, 0.03, 0.03, 0.02]),
        sig_ec50=np.array([2.0, 0.1, 0.5, 0.1, 1e3]),
        sig_hill=np.array([2.0, 1.0, 1.0, 1.0, 1.0]),
        sig_arrest=np.array([0.9, 0.0, 0.0, 0.6, 0.0]),
        sig_boost=np.array([0.0, boost, 0.0, 0.0, 0.0]),
        sig_death=np.zeros(5),
    )
    times = np.array([0.0, 72.0])
    control = simulate(p, initial_state(p, 5e4), times)
    out = []
    for dose in doses:
        y = simulate(p, initial_state(p, 5e4, signals=np.array([dose, dose, 0, 0, 0])), times)
        out.append(100 * (1 - y[:3, -1].sum() / control[:3, -1].sum()))
    return np.array(out)


def test_hill_parameters_give_monotone_or_biphasic_dose_responses() -> None:
    doses = np.logspace(-3, 2, 21)
    monotone = _dose_response(0.0, doses)
    assert np.all(np.diff(monotone) >= -1e-9)
    assert monotone[-1] > 30.0
    biphasic = _dose_response(0.5, doses)
    assert biphasic.min() < -5.0  # promotes at low dose (stimulatory channel saturates first)
    assert biphasic[-1] > 30.0  # inhibits at high dose
    sign_changes = np.count_nonzero(np.diff(np.sign(np.diff(biphasic))))
    assert sign_changes == 1  # one turning point: a U shape, not noise


def test_payload_adds_killing_and_is_recognised_in_wording() -> None:
    proto = Protocol("direct_coculture", 72.0, msc_per_cancer=0.1)
    native = run(proto, "bone_marrow", "solid")
    trail = run(proto, "bone_marrow", "solid", engineering=[("gene_modified", "TRAIL-expressing MSCs")])
    assert trail.product.payloads == ("trail",)
    assert trail.apoptotic_fraction()[-1] > native.apoptotic_fraction()[-1] + 0.02
    assert trail.inhibition_percent()[-1] > native.inhibition_percent()[-1] + 5.0


def test_ev_dose_is_taken_up_and_decays() -> None:
    out = run(Protocol("extracellular_vesicles", 96.0, ev_ug_per_ml=80.0), "bone_marrow", "solid")
    ev_out, ev_in = out.treated[10], out.treated[11]
    assert ev_out[0] == 80.0 and np.all(np.diff(ev_out) < 0)
    assert ev_in[0] == 0.0 and ev_in.max() > 0 and ev_in[-1] < ev_in.max()


def test_ensemble_rk4_matches_solve_ivp() -> None:
    p = _base()
    ens = lognormal_ensemble(p, 12, seed=3, cv=0.5)
    ratios = np.geomspace(0.01, 2.0, 12)
    y0 = initial_state(ens, 5e4, 5e4 * ratios)
    times = np.array([0.0, 24.0, 48.0, 72.0])
    result = rk4(ens, y0, times, dt=0.1)
    for i in range(12):
        member = ens.with_(
            **{name: np.asarray(getattr(ens, name))[..., i] for name in ens.__dataclass_fields__}
        )
        exact = simulate(member, y0[:, i], times)
        # Stated tolerance: 1e-6 relative on cell numbers (RK4 at dt = 0.1 h is ~1e-8 here).
        np.testing.assert_allclose(result.states[:, :5, i], exact[:5].T, rtol=1e-6, atol=1e-6)


def test_ensemble_is_reproducible_by_seed() -> None:
    p = _base()
    a = lognormal_ensemble(p, 50, seed=7)
    b = lognormal_ensemble(p, 50, seed=7)
    c = lognormal_ensemble(p, 50, seed=8)
    np.testing.assert_array_equal(a.sig_ec50, b.sig_ec50)
    assert not np.array_equal(a.sig_ec50, c.sig_ec50)
    assert broadcast_params(p, 50).sig_ec50.shape == (5, 50)
