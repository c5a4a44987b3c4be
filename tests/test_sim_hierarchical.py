"""Hierarchical calibration (issue 12 part 3): pooling, study effects, promotes, honest hold-outs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mscatlas.sim import fit as flat
from mscatlas.sim.build import product
from mscatlas.sim.calibrate import compare_out_of_sample
from mscatlas.sim.calibration import Calibration
from mscatlas.sim.hierarchical import fit_hierarchical, predictive_probabilities
from mscatlas.sim.protocol import Protocol

N_STUDIES = 14
TRUTH = Calibration(
    {"bone_marrow": {"inhibitory": 1.2}, "adipose_tissue": {"inhibitory": -0.5}},
    {},
    endpoint_offset={"proliferation": 0.5, "migration": -3.0},
    pooling_sd={"study": 0.7},
)


def _targets() -> list[flat.Target]:
    """Co-culture and CM protocols of two sources in 14 studies, two endpoints each (no labels)."""
    out = []
    for src in ("bone_marrow", "adipose_tissue"):
        prod = replace(product(src), msc_source="", ignored=())
        protocols = [Protocol("direct_coculture", 72.0, msc_per_cancer=float(r)) for r in (0.05, 0.3, 1.0)]
        protocols += [Protocol("conditioned_medium", 72.0, cm_percent=p) for p in (25.0, 75.0)]
        for s in range(N_STUDIES):
            for j, proto in enumerate(protocols):
                endpoint = "migration" if (s + j) % 3 == 0 else "proliferation"
                delivery = proto.delivery
                out.append(
                    flat.Target(f"{src}-{s}-{j}", f"study-{s}", src, "solid", delivery, "viable", "no_effect",
                                (proto, "solid", prod), endpoint)
                )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[flat.Target], flat.Surfaces, dict[str, float]]:
    """Directions drawn (seeded) from the hierarchical model itself with known parameters."""
    targets = _targets()
    surfaces = flat.compute_surfaces(targets, scheduler="synchronous")
    truth = TRUTH
    rng = np.random.default_rng(3)
    effects = {f"study-{s}": float(rng.normal(0.0, 0.7)) for s in range(N_STUDIES)}
    p = predictive_probabilities(targets, surfaces, truth, study_effects=effects)
    draw = rng.uniform(size=len(targets))
    cum = np.cumsum(p, axis=1)
    labels = [flat.DIRECTIONS[int(np.searchsorted(c, u))] for c, u in zip(cum, draw, strict=True)]
    labelled = [replace(t, observed=o) for t, o in zip(targets, labels, strict=True)]
    return labelled, surfaces, effects


def test_predictive_probabilities_integrate_the_study_effect() -> None:
    """Gauss-Hermite predictive == Monte Carlo average over study effects (independent reference)."""
    targets = _targets()[:5]
    surfaces = flat.compute_surfaces(targets, scheduler="synchronous")
    cal = Calibration({"bone_marrow": {"inhibitory": 0.4}}, {}, endpoint_offset={"migration": -2.0},
                      pooling_sd={"study": 1.5})  # fmt: skip
    quad = predictive_probabilities(targets, surfaces, cal)
    z = flat.predict_z(targets, surfaces, cal) + np.array(
        [-2.0 if t.endpoint == "migration" else 0.0 for t in targets]
    )
    b = np.random.default_rng(0).normal(0.0, 1.5, 400_000)
    mc = np.stack([flat.direction_probabilities(zi + b).mean(axis=0) for zi in z])
    np.testing.assert_allclose(quad, mc, atol=3e-3)  # MC standard error ~ 8e-4
    np.testing.assert_allclose(quad.sum(axis=1), 1.0, atol=1e-12)
    # Without a study sd (a flat calibration) it is the ordered logistic at z.
    np.testing.assert_allclose(
        predictive_probabilities(targets, surfaces, replace(cal, pooling_sd={})),
        flat.direction_probabilities(z),
    )


def test_fit_recovers_offsets_and_predicts_promotes_where_the_data_show_it(
    synthetic: tuple[list[flat.Target], flat.Surfaces, dict[str, float]],
) -> None:
    targets, surfaces, _ = synthetic
    result = fit_hierarchical(targets, surfaces, seed=0, n_starts=2)
    assert result.converged
    offsets = result.calibration.endpoint_offset
    assert offsets["migration"] - offsets["proliferation"] == pytest.approx(-3.5, abs=1.0)
    assert 0.2 < result.sd["study"] < 1.6  # truth 0.7, 14 studies
    assert set(result.sd) == {"source", "class", "endpoint", "study"}
    # For a study not in the fit, migration items are called "promotes", as the data show.
    probs = predictive_probabilities(targets, surfaces, result.calibration)
    calls = np.array(flat.DIRECTIONS)[probs.argmax(axis=1)]
    migration = np.array([t.endpoint == "migration" for t in targets])
    observed = np.array([t.observed for t in targets])
    truth_calls = np.array(flat.DIRECTIONS)[predictive_probabilities(targets, surfaces, TRUTH).argmax(axis=1)]
    assert np.any(observed == "promotes") and np.any(truth_calls == "promotes")
    assert (calls == truth_calls).mean() >= 0.85
    promotes = truth_calls == "promotes"
    assert (calls[promotes] == "promotes").mean() >= 0.8
    assert (observed[migration] == "promotes").mean() > (observed[~migration] == "promotes").mean()
    # The flat fit (no endpoint offset) cannot call promotes on these protocols at all.
    flat_calls = flat.direction_of(
        flat.predict_z(targets, surfaces, flat.fit(targets, surfaces, n_starts=2).calibration)
    )
    assert not np.any(flat_calls == "promotes")
    # Deterministic for a seed.
    again = fit_hierarchical(targets, surfaces, seed=0, n_starts=2)
    assert again.params == result.params and again.sd == result.sd


def test_a_held_out_study_never_informs_its_own_prediction(
    synthetic: tuple[list[flat.Target], flat.Surfaces, dict[str, float]],
) -> None:
    targets, surfaces, _ = synthetic
    flipped = [replace(t, observed="inhibits") if t.study == "study-0" else t for t in targets]
    a = compare_out_of_sample(targets, surfaces, n_starts=1, n_folds=4)
    b = compare_out_of_sample(flipped, surfaces, n_starts=1, n_folds=4)
    assert a["scheme"] == "4-fold cross-validation by study (seed 2024)"
    held = [t.item_id for t in targets if t.study == "study-0"]
    for model in ("flat", "hierarchical"):
        for i in held:  # the fold that holds study-0 out saw neither version of its labels
            assert a["probabilities"][model][i] == b["probabilities"][model][i]
        changed = [
            i
            for i in a["probabilities"][model]
            if a["probabilities"][model][i] != b["probabilities"][model][i]
        ]
        assert changed  # ... while folds that train on it do change
    assert a["models"]["hierarchical"]["log_loss"] < a["models"]["assumed"]["log_loss"]
    for model in a["models"].values():
        diff = model["vs_baseline"]["log_loss"]
        assert diff["ci_lb"] <= diff["estimate"] <= diff["ci_ub"]
