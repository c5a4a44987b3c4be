"""Active-learning priority, the stopping rule and simulation mode (issue 10, points 4 and 5)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import hypergeom

from mscatlas.intake.ranking import Ranker
from mscatlas.intake.simulate import metrics, read_labelled, screening_log, simulate
from mscatlas.intake.stopping import h0_pvalue, stopping_estimate

DATA = Path(__file__).parent / "data" / "intake"


def _cdf_by_enumeration(x: int, urn: int, relevant: int, draws: int) -> float:
    """P(X <= x) for X hypergeometric, summing C(K, i) C(M-K, n-i) / C(M, n) exactly."""
    total = math.comb(urn, draws)
    return sum(math.comb(relevant, i) * math.comb(urn - relevant, draws - i) for i in range(x + 1)) / total


def _h0_by_enumeration(labels: list[int], n_total: int, tau: float) -> float:
    """The rule written out window by window, with exact binomial coefficients (no scipy)."""
    n_seen, r_seen = len(labels), sum(labels)
    best = 1.0
    for k in range(1, n_seen + 1):
        r_k = sum(labels[n_seen - k :])
        urn = n_total - n_seen + k
        k_tar = math.floor(r_seen / tau - (r_seen - r_k)) + 1
        if k_tar > urn:
            return 0.0
        best = min(best, _cdf_by_enumeration(r_k, urn, k_tar, k))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_stopping_rule_pvalue_matches_exact_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_total = int(rng.integers(60, 160))
    n_seen = int(rng.integers(10, n_total))
    # A prioritised screen: relevant records early, then a long run of irrelevant ones.
    labels = (rng.random(n_seen) < np.linspace(0.6, 0.0, n_seen)).astype(int).tolist()
    for tau in (0.8, 0.9, 0.95):
        assert h0_pvalue(labels, n_total, tau) == pytest.approx(
            _h0_by_enumeration(labels, n_total, tau), rel=1e-9
        )


def test_one_window_against_scipy_hypergeom() -> None:
    """A hand-checked window: 10 relevant in the first 20 of 100, then 30 irrelevant."""
    labels = [1] * 10 + [0] * 10 + [0] * 30
    # Window of the last 30: urn 100 - 50 + 30 = 80; K_tar = floor(10 / 0.95 - 10) + 1 = 1.
    assert (
        _cdf_by_enumeration(0, 80, 1, 30)
        == pytest.approx(hypergeom.cdf(0, 80, 1, 30))
        == pytest.approx(50 / 80)
    )
    assert h0_pvalue(labels, 100, 0.95) <= 50 / 80


def test_stopping_reports_and_never_stops_by_itself() -> None:
    early = stopping_estimate([1, 1, 0, 1, 0], 1000)
    assert not early.can_stop and early.p_value > 0.05
    labels = [1] * 20 + [0] * 600
    late = stopping_estimate(labels, 700, target_recall=0.9, confidence=0.95)
    assert late.can_stop and late.p_value < 0.05
    assert 0.9 <= late.estimated_recall < 1.0
    assert stopping_estimate(labels, 700, target_recall=0.8).estimated_recall == late.estimated_recall
    # The estimate is the largest recall the rule can claim: just above it, it cannot.
    assert h0_pvalue(labels, 700, late.estimated_recall) < 0.05
    assert h0_pvalue(labels, 700, min(0.999, late.estimated_recall + 0.001)) >= 0.05
    # Everything screened: recall is certain.
    assert stopping_estimate([1, 0, 1], 3).can_stop


def test_ranker_prior_then_learning_is_seeded() -> None:
    texts = [
        "mesenchymal stem cells inhibit breast cancer growth",
        "knee cartilage repair with stromal cells",
        "MSC exosomes promote glioma",
        "hip fracture surgery outcomes",
        "umbilical cord MSCs and lung cancer xenograft",
    ]
    order, scores = Ranker(seed=3).order(texts, {})
    assert scores is None and order[-1] == 3  # no learning yet: inclusion terms first
    order, scores = Ranker(seed=3).order(texts, {0: 1, 1: 0})
    assert scores is not None and order[0] in (2, 4) and order[-1] == 3
    assert Ranker(seed=3).order(texts, {0: 1, 1: 0})[0] == order


def test_simulation_active_beats_random_and_is_seeded() -> None:
    data = read_labelled(DATA / "labelled.csv")
    result = simulate(data, seed=1)
    assert result["n"] == 400 and result["n_included"] == 37
    assert result["wss95"] > 0.5 > result["random"]["wss95"]
    assert result["rrf10"] > result["random"]["rrf10"]
    assert result["recall_at_stop"] >= 0.95 and result["stopped_at"] <= result["n"]
    assert result == simulate(data, seed=1)
    order = screening_log(data, seed=1)
    assert sorted(order.tolist()) == list(range(400))


def test_metrics_against_hand_counts() -> None:
    labels = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]  # 3 relevant in 10
    m = metrics(labels)
    # 95% recall needs all three: reached at record 10, so WSS@95 = 0/10 - 0.05.
    assert m["screened_at_95"] == 10 and m["wss95"] == pytest.approx(-0.05)
    assert m["rrf10"] == pytest.approx(1 / 3, abs=1e-4)  # after 1 record (10%), one of three
    assert m["recall_curve"][0] == [1, pytest.approx(1 / 3, abs=1e-4)]


# ---------------------------------------------------------------- extraction assistant


def test_suggestions_from_vocabularies_and_dose_parser() -> None:
    from mscatlas.intake.suggest import suggest

    found = suggest(
        "Umbilical cord mesenchymal stem cells inhibit MDA-MB-231 breast cancer growth",
        "Human umbilical cord MSCs (hUC-MSCs) were co-cultured with MDA-MB-231 cells at a 1:10 ratio "
        "(MSC:cancer). hUC-MSCs inhibited proliferation and induced apoptosis.",
    )
    assert found["msc_source"].value == ["umbilical_cord"]
    assert found["msc_species"].value == "human" and found["cancer_type"].value == "breast carcinoma"
    assert found["cancer_class"].value == "solid" and found["cell_lines"].value == ["MDA-MB-231"]
    assert found["delivery"].value == "direct_coculture" and found["direction"].value == "inhibits"
    assert found["dose"].value == "MSC:cancer 1:10" and found["engineering"].value == []
    assert all(0 <= s.confidence <= 1 for s in found.values())
    engineered = suggest("TRAIL-expressing MSCs transduced with a lentiviral vector kill glioma", None)
    assert engineered["engineering"].value == ["gene_modified"]


def test_evaluation_counts_by_hand() -> None:
    from mscatlas.intake.suggest import evaluate
    from mscatlas.kb.shipped import shipped_dataset

    item = next(
        e for e in shipped_dataset().evidence if e.cancer_type == "breast carcinoma" and not e.engineering
    )
    text = "Bone marrow mesenchymal stem cells promote breast cancer metastasis in vivo in mice"
    result = evaluate([(item, text)])
    # One item: a field is right (1/1, 1/1), wrong (0/1, 0/1) or not suggested (0/0, 0/1).
    truth = {s.value for s in item.msc_source} - {"unspecified"}
    assert result["msc_source"]["precision"] == (1.0 if "bone_marrow" in truth else 0.0)
    assert result["cancer_type"] == {"precision": 1.0, "recall": 1.0, "suggested": 1, "curated": 1}
    assert result["direction"]["precision"] == (1.0 if item.direction.value == "promotes" else 0.0)
    assert result["dose"]["suggested"] == 0
