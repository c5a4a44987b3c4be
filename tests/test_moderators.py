"""The moderator model: its Laplace mode and evidence against independent numerics, its
reproducibility, and its behaviour on data with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, optimize
from typer.testing import CliRunner

from mscatlas.cli import app
from mscatlas.stats import moderators
from mscatlas.stats.harmonize import HarmonizedItem
from mscatlas.stats.moderators import fit_moderator_model, leave_one_study_out


def hitem(
    i: int, study: str, source: str, direction: str, delivery: str = "direct_coculture"
) -> HarmonizedItem:
    return HarmonizedItem(
        id=f"ev-{i:03d}-a", study=study, msc_source=(source,), msc_species="human", engineered=False,
        cancer_type="breast carcinoma", cancer_class="solid", delivery=delivery, setting="in_vitro",
        endpoint="proliferation", direction=direction, inhibition=None, dose_scale="", dose_value=None,
        dose_unit=None, dose_dependent=None,
    )  # fmt: skip


def separated_items(n_studies: int = 12) -> list[HarmonizedItem]:
    """Bone-marrow studies mostly inhibit, adipose studies mostly promote."""
    rng = np.random.default_rng(7)
    items, k = [], 0
    for s in range(n_studies):
        source = "bone_marrow" if s % 2 == 0 else "adipose_tissue"
        for _ in range(3):
            p = 0.9 if source == "bone_marrow" else 0.1
            direction = "inhibits" if rng.random() < p else "promotes"
            delivery = ("direct_coculture", "conditioned_medium")[k % 2]
            items.append(hitem(k, f"ref{24 + s}", source, direction, delivery))
            k += 1
    return items


def test_mode_matches_an_independent_optimiser() -> None:
    d = moderators.design(separated_items())
    sigma = 0.8
    mode = moderators.laplace_mode(d.X, d.y, d.study, len(d.studies), sigma)
    p = d.X.shape[1]
    Z = np.eye(len(d.studies))[d.study]
    sd = np.concatenate(
        [[moderators.INTERCEPT_SD], np.full(p - 1, moderators.COEF_SD), np.full(Z.shape[1], sigma)]
    )

    def neg_log_post(theta: np.ndarray) -> float:
        eta = d.X @ theta[:p] + Z @ theta[p:]
        return -(np.sum(d.y * eta - np.logaddexp(0, eta)) - 0.5 * np.sum((theta / sd) ** 2))

    best = optimize.minimize(neg_log_post, np.zeros(p + Z.shape[1]), method="BFGS", options={"gtol": 1e-9})
    np.testing.assert_allclose(mode.theta, best.x, atol=1e-4)


def test_laplace_evidence_is_close_to_numerical_integration() -> None:
    # Intercept-only model with one study: two parameters, integrable by quadrature.
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.7).astype(float)
    X = np.ones((300, 1))
    study = np.zeros(300, dtype=int)
    sigma = 0.5
    mode = moderators.laplace_mode(X, y, study, 1, sigma)
    k, n = y.sum(), len(y)

    def log_joint(b: float, u: float) -> float:
        eta = b + u
        loglik = k * eta - n * np.logaddexp(0, eta)
        return (
            loglik
            - 0.5 * (b / moderators.INTERCEPT_SD) ** 2 - np.log(np.sqrt(2 * np.pi) * moderators.INTERCEPT_SD)
            - 0.5 * (u / sigma) ** 2 - np.log(np.sqrt(2 * np.pi) * sigma)
        )  # fmt: skip

    peak = log_joint(*mode.theta)
    b0, u0 = mode.theta
    value, _ = integrate.dblquad(
        lambda u, b: np.exp(log_joint(b, u) - peak), b0 - 3, b0 + 3, u0 - 3, u0 + 3, epsabs=1e-12
    )
    exact = peak + np.log(value)
    assert mode.log_evidence == pytest.approx(exact, abs=0.02)


def test_same_seed_same_result_and_seed_matters() -> None:
    items = separated_items()
    a = fit_moderator_model(items, seed=11).effects()
    b = fit_moderator_model(items, seed=11).effects()
    c = fit_moderator_model(items, seed=12).effects()
    assert a == b
    assert a != c


def test_known_effect_is_found_and_validated() -> None:
    items = separated_items(16)
    fit = fit_moderator_model(items, seed=1)
    effect = {e["name"]: e for e in fit.effects()}["msc_source=adipose_tissue"]
    assert effect["supported"] and effect["ci_ub"] < 0
    bm = fit.predict(msc_source="bone_marrow", delivery="direct_coculture", cancer_class="solid")
    at = fit.predict(msc_source="adipose_tissue", delivery="direct_coculture", cancer_class="solid")
    assert bm["p_inhibits"] > 0.7 > 0.3 > at["p_inhibits"]
    validation = leave_one_study_out(items, seed=1)
    assert validation.n_studies == 16
    assert validation.log_loss < validation.baseline_log_loss
    assert validation.accuracy > validation.baseline_accuracy
    # calibration bins partition the held-out predictions
    assert sum(b["n"] for b in validation.calibration()) == validation.n_items


def test_baseline_is_the_training_majority() -> None:
    items = separated_items()
    validation = leave_one_study_out(items, seed=2)
    y = np.array([o for _, o, _ in validation.predictions])
    # each held-out study is predicted with the other studies' share of inhibiting items
    shares = []
    for item_id, _, _ in validation.predictions:
        study = next(h.study for h in items if h.id == item_id)
        others = [h for h in items if h.study != study]
        shares.append(np.mean([h.direction == "inhibits" for h in others]))
    shares = np.clip(np.array(shares), 1e-12, 1 - 1e-12)
    expected = -np.mean(y * np.log(shares) + (1 - y) * np.log(1 - shares))
    assert validation.baseline_log_loss == pytest.approx(expected)


def test_unknown_level_is_refused() -> None:
    fit = fit_moderator_model(separated_items(), seed=1)
    with pytest.raises(ValueError, match="unknown msc_source 'placenta'"):
        fit.predict(msc_source="placenta")


def test_predict_and_synthesize_cli() -> None:
    runner = CliRunner()
    out = runner.invoke(
        app, ["predict", "--msc-source", "umbilical_cord", "--cancer-class", "solid",
              "--delivery", "conditioned_medium", "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert 0 <= result["ci_lb"] <= result["p_inhibits"] <= result["ci_ub"] <= 1
    assert result["closest_items"]
    data = json.loads(runner.invoke(app, ["synthesize", "--json"]).stdout)
    assert data["moderators"]["effects"][0]["name"] == "intercept"
    assert set(data["validation"]["majority_baseline"]) == {"log_loss", "brier", "accuracy"}
    assert data["verdict"]
