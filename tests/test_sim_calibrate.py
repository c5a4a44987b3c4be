"""Calibration of the shared factors, and the honesty of the leave-one-study-out replay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from mscatlas.kb.enums import Direction
from mscatlas.kb.store import Store
from mscatlas.sim import calibration as calmod
from mscatlas.sim import fit as cal
from mscatlas.sim.build import product
from mscatlas.sim.protocol import Protocol, call_direction, run
from mscatlas.sim.replay import replay


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> list:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('kb') / 'kb.sqlite'}")
    try:
        return store.dataset().evidence
    finally:
        store.close()


def _synthetic_targets(n_per_dose: int = 6) -> list[cal.Target]:
    """Co-culture and CM protocols at many doses for two sources (no direction yet)."""
    out = []
    for src in ("bone_marrow", "adipose_tissue"):
        prod = replace(product(src), msc_source="", ignored=())
        for r in np.geomspace(0.02, 2.0, 5):
            proto = Protocol("direct_coculture", 72.0, msc_per_cancer=float(r))
            for k in range(n_per_dose):
                out.append(
                    cal.Target(f"{src}-co-{r:.3f}-{k}", f"s-{src}-{k % 3}", src, "solid",
                               "direct_coculture", "viable", "no_effect", (proto, "solid", prod))
                )  # fmt: skip
        for pct in (10.0, 25.0, 50.0, 75.0, 100.0):
            proto = Protocol("conditioned_medium", 72.0, cm_percent=pct)
            for k in range(n_per_dose):
                out.append(
                    cal.Target(f"{src}-cm-{pct:g}-{k}", f"s-{src}-{k % 3}", src, "solid",
                               "conditioned_medium", "viable", "no_effect", (proto, "solid", prod))
                )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[cal.Target], cal.Surfaces]:
    targets = _synthetic_targets()
    return targets, cal.compute_surfaces(targets, scheduler="synchronous")


def test_spline_reader_matches_scipy(synthetic: tuple[list[cal.Target], cal.Surfaces]) -> None:
    _, surfaces = synthetic
    rng = np.random.default_rng(5)
    coords = np.column_stack(
        [rng.uniform(-4.4, 4.4, 30), rng.uniform(-4.4, 4.4, 30), rng.uniform(-2.9, 2.9, 30)]
    )
    which = np.zeros(30, dtype=int)  # first protocol, viable read-out
    z, grad = surfaces.evaluate(which, coords)
    grids = (cal.SIGNAL_GRID, cal.SIGNAL_GRID, cal.CONTACT_GRID)
    index = np.stack([(coords[:, d] - g[0]) / (g[1] - g[0]) for d, g in enumerate(grids)])
    expected = map_coordinates(surfaces.values[0, 0], index, order=3, mode="mirror")
    np.testing.assert_allclose(z, expected, rtol=1e-8, atol=1e-8)
    # The gradient is the derivative of the same spline.
    h = 1e-5
    for d in range(3):
        step = np.zeros(3)
        step[d] = h
        up, _ = surfaces.evaluate(which, coords + step)
        down, _ = surfaces.evaluate(which, coords - step)
        np.testing.assert_allclose(grad[:, d], (up - down) / (2 * h), rtol=1e-4, atol=1e-6)


def test_grid_agrees_with_the_exact_solver_at_grid_points() -> None:
    """A grid node equals an LSODA run with the same factors: the surrogate is the model."""
    proto = Protocol("direct_coculture", 48.0, msc_per_cancer=0.3)
    prod = replace(product("umbilical_cord"), msc_source="", ignored=())
    target = cal.Target("x", "s", "umbilical_cord", "solid", "direct_coculture", "viable", "inhibits",
                        (proto, "solid", prod))  # fmt: skip
    surfaces = cal.compute_surfaces([target], scheduler="synchronous")
    i, j, k = 11, 6, 9  # log-strengths 1.0 (inhibitory), -1.5 (stimulatory), 1.5 (contact)
    u, v, c = cal.SIGNAL_GRID[i], cal.SIGNAL_GRID[j], cal.CONTACT_GRID[k]
    factors = calmod.Calibration({"umbilical_cord": {"inhibitory": u, "stimulatory": v, "contact": c}}, {})
    exact = run(proto, "umbilical_cord", "solid", calibration=factors)
    z_exact = exact.inhibition_percent()[-1] / 10.0
    assert surfaces.values[0, 0, i, j, k] == pytest.approx(z_exact, rel=1e-5)
    # ... and the class sensitivity is the same lever as the source's secretion.
    split = calmod.Calibration(
        {"umbilical_cord": {"inhibitory": u - 0.4, "stimulatory": v, "contact": c}},
        {"solid": {"inhibitory": 0.4}},
    )
    other = run(proto, "umbilical_cord", "solid", calibration=split)
    assert other.inhibition_percent()[-1] == pytest.approx(exact.inhibition_percent()[-1], rel=1e-6)


def test_calibration_recovers_the_factors_that_generated_the_directions(
    synthetic: tuple[list[cal.Target], cal.Surfaces],
) -> None:
    targets, surfaces = synthetic
    truth = calmod.Calibration(
        {
            "bone_marrow": {"inhibitory": 1.0, "contact": -1.0},
            "adipose_tissue": {"inhibitory": -0.7, "contact": 0.8},
        },
        {},
    )
    z = cal.predict_z(targets, surfaces, truth)
    # Directions drawn from the model's own ordered-logistic likelihood, with a seed.
    rng = np.random.default_rng(11)
    p_inh = 1 / (1 + np.exp(-(z - 1) / cal.TEMPERATURE))
    p_pro = 1 / (1 + np.exp(-(-z - 1) / cal.TEMPERATURE))
    draw = rng.uniform(size=len(z))
    observed = np.where(draw < p_inh, "inhibits", np.where(draw < p_inh + p_pro, "promotes", "no_effect"))
    labelled = [replace(t, observed=str(o)) for t, o in zip(targets, observed, strict=True)]
    fitted = cal.fit(labelled, surfaces, seed=0, n_starts=3, prior_scale=3.0)
    theta = fitted.theta
    # The inhibitory strength an item sees is source + class; both sources' are recovered.
    for src in ("bone_marrow", "adipose_tissue"):
        est = theta[f"source.{src}.inhibitory"] + theta["class.solid.inhibitory"]
        assert est == pytest.approx(truth.source[src]["inhibitory"], abs=0.35), (src, est)
    # A strong contact effect is recovered; a weak one (a fifth of the default) at least in sign.
    assert theta["source.adipose_tissue.contact"] == pytest.approx(0.8, abs=0.35)
    assert theta["source.bone_marrow.contact"] < -0.2
    # (The stimulatory channel, whose largest effect is a 30 % faster G0/G1 exit, is barely
    # identified by directions; its factors are not checked.) The fitted model calls the same
    # directions as the generating one.
    agree = cal.direction_of(cal.predict_z(targets, surfaces, fitted.calibration)) == cal.direction_of(z)
    assert agree.mean() >= 0.9
    # The fit is deterministic for a seed.
    again = cal.fit(labelled, surfaces, seed=0, n_starts=3, prior_scale=3.0)
    assert again.theta == fitted.theta


def test_a_held_out_study_cannot_influence_its_own_prediction(
    synthetic: tuple[list[cal.Target], cal.Surfaces],
) -> None:
    targets, surfaces = synthetic
    truth = calmod.Calibration({"bone_marrow": {"inhibitory": 0.5}, "adipose_tissue": {"contact": 0.5}}, {})
    directions = cal.direction_of(cal.predict_z(targets, surfaces, truth))
    # Three studies, each holding a third of both sources' items.
    base = [
        replace(t, observed=str(d), study=f"study-{k % 3}")
        for k, (t, d) in enumerate(zip(targets, directions, strict=True))
    ]
    held = "study-0"
    flipped = [replace(t, observed="promotes") if t.study == held else t for t in base]
    folds_a = cal.leave_one_study_out(base, surfaces, n_starts=1, scheduler="synchronous")
    folds_b = cal.leave_one_study_out(flipped, surfaces, n_starts=1, scheduler="synchronous")
    assert set(folds_a) == {"study-0", "study-1", "study-2"}
    # The fold that holds the study out sees neither version of its labels ...
    assert folds_a[held] == folds_b[held]
    # ... whereas every fold that trains on it, and the full fit, do change.
    for other in ("study-1", "study-2"):
        assert folds_a[other] != folds_b[other]
    assert cal.fit(base, surfaces, n_starts=1).theta != cal.fit(flipped, surfaces, n_starts=1).theta


def test_shipped_calibration_loads_with_provenance(evidence: list) -> None:
    shipped = calmod.load_calibration()
    assert shipped is not None
    prov = shipped.provenance
    assert prov["knowledge_base"]["items_sha256"] == calmod.items_digest(evidence)
    assert "seed" in prov and "calibrated on knowledge base" in prov["stamp"]
    text = (Path(calmod.__file__).parent / "data" / "calibrated.yaml").read_text(encoding="utf-8")
    assert "mscatlas sim calibrate --shipped --out" in text  # made from the shipped files
    validation = prov["validation"]
    # Whichever of the flat and the hierarchical fit did better out of sample is shipped, and
    # the file says how every parameter set fared against the baseline.
    models = validation["models"]
    assert validation["model"] == min(("flat", "hierarchical"), key=lambda k: models[k]["log_loss"])
    assert validation["loo_log_loss"] == models[validation["model"]]["log_loss"]
    assert validation["log_loss_assumed"] == models["assumed"]["log_loss"]
    for model in models.values():
        d = model["vs_baseline"]["log_loss"]
        assert d["estimate"] == pytest.approx(model["log_loss"] - validation["baseline_log_loss"])
        assert d["ci_lb"] <= d["estimate"] <= d["ci_ub"]
    # A factor moves the model: the shipped calibration is applied by run(..., calibration=).
    proto = Protocol("conditioned_medium", 72.0, cm_percent=50.0)
    raw = run(proto, "bone_marrow", "solid").inhibition_percent()[-1]
    fitted = run(proto, "bone_marrow", "solid", calibration=shipped).inhibition_percent()[-1]
    assert fitted != pytest.approx(raw, abs=1e-6)


def test_digest_sees_a_changed_direction(evidence: list) -> None:
    in_vitro = [e for e in evidence if e.setting.value == "in_vitro"]
    new = Direction.promotes if in_vitro[0].direction is Direction.no_effect else Direction.no_effect
    changed = [in_vitro[0].model_copy(update={"direction": new}), *in_vitro[1:]]
    assert calmod.items_digest(changed) != calmod.items_digest(in_vitro)


def test_calibrated_replay_refits_without_each_study(evidence: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """loo_accuracy comes from refits: one per study, none of which saw its study's items."""
    calls: list[set[str]] = []
    original = cal.fit

    def spy(targets, surfaces, **kwargs):  # type: ignore[no-untyped-def]
        calls.append({t.study for t in targets})
        return original(targets, surfaces, **kwargs)

    monkeypatch.setattr(cal, "fit", spy)
    # A handful of studies keeps this quick; the procedure is the one `sim replay` runs.
    studies = sorted({e.study for e in evidence if e.setting.value == "in_vitro"})[:5]
    subset = [e for e in evidence if e.study in studies]
    report = replay(subset, calibrate=True, n_starts=2, scheduler="synchronous").to_dict()
    all_studies = {r["study"] for r in report["items"]}
    assert calls[0] == all_studies  # the full fit
    refits = calls[1:]
    assert len(refits) == len(all_studies) == report["n_folds"]
    assert sorted(tuple(all_studies - s) for s in refits) == sorted((s,) for s in all_studies)
    assert report["parameters_fitted"] is True
    for key in (
        "items",
        "loo_accuracy",
        "baseline_accuracy",
        "moderator_loo_accuracy",
        "loo_accuracy_binary",
    ):
        assert key in report
    rows = report["items"]
    assert all({"id", "observed", "predicted", "loo_predicted"} <= set(r) for r in rows)
    scored = [r for r in rows if r["observed"] != "mixed"]
    assert report["loo_accuracy"] == pytest.approx(
        sum(r["loo_predicted"] == r["observed"] for r in scored) / len(scored)
    )
    # The baseline is the majority of the training folds, item by item.
    hits = 0
    for r in scored:
        others = [o["observed"] for o in scored if o["study"] != r["study"]]
        hits += max(set(others), key=others.count) == r["observed"] if others else 0
    assert report["baseline_accuracy"] == pytest.approx(hits / len(scored))


def test_exact_prediction_of_the_replay_uses_the_fitted_factors(evidence: list) -> None:
    item = next(
        e for e in evidence if e.setting.value == "in_vitro" and e.delivery.value == "conditioned_medium"
    )
    strong = calmod.Calibration({item.msc_source[0].value: {"inhibitory": 3.0, "stimulatory": -3.0}}, {})
    weak = calmod.Calibration({item.msc_source[0].value: {"inhibitory": -3.0, "stimulatory": 3.0}}, {})
    proto = Protocol("conditioned_medium", 72.0, cm_percent=100.0)
    assert call_direction(run(proto, item.msc_source[0].value, "solid", calibration=strong)) == "inhibits"
    assert call_direction(run(proto, item.msc_source[0].value, "solid", calibration=weak)) != "inhibits"
