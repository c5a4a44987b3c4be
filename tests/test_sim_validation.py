"""Held-out scores against the majority baseline, the paired bootstrap, and the in vivo counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss

from mscatlas.kb.models import QuantitativeOutcome
from mscatlas.sim.invivo import MIN_ITEMS, size_ratio, tumour_growth_data
from mscatlas.sim.validation import DIRECTIONS, baseline_probabilities, compare, scores, study_folds, verdict


def _data(seed: int = 1, n_studies: int = 30) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    studies = [f"s{k}" for k in range(n_studies) for _ in range(int(rng.integers(1, 5)))]
    observed = [str(rng.choice(DIRECTIONS, p=[0.6, 0.3, 0.1])) for _ in studies]
    probs = rng.dirichlet([2.0, 1.0, 0.5], size=len(studies))
    return probs, observed, studies


def test_scores_match_sklearn_and_a_hand_count() -> None:
    probs, observed, _ = _data()
    got = scores(probs, observed)
    # sklearn orders the labels lexicographically: inhibits, no_effect, promotes.
    reference = log_loss(observed, probs[:, [0, 2, 1]], labels=sorted(DIRECTIONS))
    assert got["log_loss"] == pytest.approx(reference, rel=1e-12)
    hits = sum(DIRECTIONS[int(np.argmax(p))] == o for p, o in zip(probs, observed, strict=True))
    assert got["accuracy"] == pytest.approx(hits / len(observed))
    brier = np.mean(
        [
            sum((p[k] - (DIRECTIONS[k] == o)) ** 2 for k in range(3))
            for p, o in zip(probs, observed, strict=True)
        ]
    )
    assert got["brier"] == pytest.approx(brier)


def test_baseline_is_the_other_studies_frequencies() -> None:
    _, observed, studies = _data()
    base = baseline_probabilities(observed, studies)
    for i, s in enumerate(studies):
        others = [o for o, t in zip(observed, studies, strict=True) if t != s]
        assert base[i] == pytest.approx([others.count(d) / len(others) for d in DIRECTIONS])


def test_paired_bootstrap_over_studies() -> None:
    probs, observed, studies = _data()
    base = baseline_probabilities(observed, studies)
    out = compare(probs, base, observed, studies, n_boot=500, seed=7)
    assert out == compare(probs, base, observed, studies, n_boot=500, seed=7)  # seeded
    mine, theirs = scores(probs, observed), scores(base, observed)
    for key in ("accuracy", "log_loss", "brier"):
        d = out["difference"][key]
        assert d["estimate"] == pytest.approx(mine[key] - theirs[key])
        assert d["ci_lb"] <= d["estimate"] <= d["ci_ub"]
    # Independent reference: resample studies by hand with the same draws.
    names = sorted(set(studies))
    rng = np.random.default_rng(7)
    draws = rng.multinomial(len(names), np.full(len(names), 1 / len(names)), size=500)
    y = np.array([DIRECTIONS.index(o) for o in observed])
    loss = -np.log(probs[np.arange(len(y)), y]) + np.log(base[np.arange(len(y)), y])
    boot = []
    for w in draws:
        picked = np.concatenate(
            [
                np.repeat(loss[[i for i, s in enumerate(studies) if s == n]], c)
                for n, c in zip(names, w, strict=True)
            ]
        )
        boot.append(picked.mean())
    assert out["difference"]["log_loss"]["ci_lb"] == pytest.approx(np.percentile(boot, 2.5))
    assert out["difference"]["log_loss"]["ci_ub"] == pytest.approx(np.percentile(boot, 97.5))
    # The baseline scored against itself ties.
    same = compare(base, base, observed, studies, n_boot=200)
    assert same["difference"]["log_loss"]["estimate"] == 0.0
    assert verdict(same) in (
        "beats (interval includes no difference)",
        "loses to (interval includes no difference)",
    )


def test_study_folds_keep_studies_whole_and_are_seeded() -> None:
    _, _, studies = _data(n_studies=25)
    folds = study_folds(studies, 10)
    assert set(folds) == set(studies) and set(folds.values()) == set(range(10))
    sizes = np.bincount(list(folds.values()))
    assert sizes.max() - sizes.min() <= 1
    assert folds == study_folds(studies, 10)
    assert study_folds(studies, None) == {s: k for k, s in enumerate(sorted(set(studies)))}


def _outcome(**kw: object) -> QuantitativeOutcome:
    base = {"kind": "reported_effect", "measure": "tumour volume", "source": "test"}
    return QuantitativeOutcome.model_validate({**base, **kw})


def test_size_ratio_rules() -> None:
    assert size_ratio(_outcome(effect=40, effect_measure="percent reduction vs control")) == pytest.approx(
        0.6
    )
    assert size_ratio(_outcome(effect=1.5, effect_measure="ratio of means (treated / control)")) == 1.5
    assert size_ratio(_outcome(effect=4, effect_measure="fold_reduction")) == 0.25
    means = _outcome(
        kind="group_summary",
        treated_mean=50,
        control_mean=200,
        treated_sd=5,
        control_sd=9,
        treated_n=6,
        control_n=6,
    )
    assert size_ratio(means) == 0.25
    # A difference without the control mean, a p value, or survival gives no ratio.
    assert size_ratio(_outcome(effect=-47, effect_measure="difference in means")) is None
    assert size_ratio(_outcome(effect=0.016, effect_measure="Mann-Whitney U test p value only")) is None
    assert (
        size_ratio(_outcome(measure="median survival", effect=39.5, effect_measure="percent reduction"))
        is None
    )


def test_in_vivo_counts_on_the_shipped_evidence() -> None:
    from mscatlas.sim.calibrate import shipped_evidence

    items = shipped_evidence()
    data = tumour_growth_data(items)
    growth = [e for e in items if e.setting.value == "in_vivo" and e.curation_status.value == "accepted"
              and e.endpoint.value == "tumor_growth"]  # fmt: skip
    assert data["counts"]["tumour_growth_items"] == len(growth)
    ratios = [(e.id, size_ratio(o)) for e in growth for o in e.outcomes if size_ratio(o) is not None]
    assert data["counts"]["size_ratios"] == len(ratios)
    assert data["counts"]["items_with_size_ratio"] == len({i for i, _ in ratios})
    assert all(math.isclose(r["log_ratio"], math.log(r["ratio"])) for r in data["ratios"])
    assert data["enough"] is (
        len({i for i, _ in ratios}) >= MIN_ITEMS and data["counts"]["studies_with_size_ratio"] >= 10
    )
    if not data["enough"]:
        assert "too thin to calibrate" in data["line"] and data["calibrated"] is False
    assert str(data["counts"]["tumour_growth_items"]) in data["line"]
