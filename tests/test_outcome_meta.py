"""Pooling curated quantitative outcomes: grouping rules and the numbers of the pooled fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mscatlas.kb.enums import CurationStatus
from mscatlas.kb.models import QuantitativeOutcome
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.stats.outcomes import group_outcomes, meta_analyse
from test_cli_report import assert_nothing_loaded_from_elsewhere

BASE = next(e for e in shipped_dataset().evidence if e.setting.value == "in_vivo")


def with_outcome(i: int, **numbers) -> object:
    outcome = QuantitativeOutcome(source="test", **numbers)
    return BASE.model_copy(update={"id": f"ev-95{i}-a", "outcomes": [outcome]})


def volume(m1: float, sd1: float, n1: int, m2: float, sd2: float, n2: int) -> dict:
    return {"kind": "group_summary", "measure": "Tumour volume", "treated_mean": m1, "treated_sd": sd1,
            "treated_n": n1, "control_mean": m2, "control_sd": sd2, "control_n": n2}  # fmt: skip


def test_three_volumes_pool_on_the_log_ratio_of_means() -> None:
    arms = [
        (400.0, 80.0, 6, 800.0, 150.0, 6),
        (300.0, 90.0, 8, 500.0, 120.0, 8),
        (700.0, 200.0, 5, 650.0, 180.0, 5),
    ]
    items = [with_outcome(i, **volume(*a)) for i, a in enumerate(arms)]
    (group,) = group_outcomes(items)
    assert group.poolable and group.measure == "tumour volume"
    measure, fit = meta_analyse(group, method="DL")
    assert measure == "ROM"
    # independent DerSimonian-Laird on hand-computed log ratios of means
    y = np.array([math.log(m1 / m2) for m1, _, _, m2, _, _ in arms])
    v = np.array([s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2) for m1, s1, n1, m2, s2, n2 in arms])
    w = 1 / v
    q = np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2)
    tau2 = max(0.0, (q - 2) / (w.sum() - np.sum(w**2) / w.sum()))
    ws = 1 / (v + tau2)
    assert fit.tau2 == pytest.approx(tau2)
    assert fit.estimate == pytest.approx(np.sum(ws * y) / ws.sum())


def test_counts_pool_as_log_odds_ratios() -> None:
    tables = [(2, 8, 7, 8), (1, 10, 6, 10), (3, 9, 8, 9)]
    items = [
        with_outcome(i, kind="counts", measure="mice with tumours", treated_events=a, treated_total=n1,
                     control_events=c, control_total=n2)
        for i, (a, n1, c, n2) in enumerate(tables)
    ]  # fmt: skip
    measure, fit = meta_analyse(group_outcomes(items)[0], method="EE")
    assert measure == "OR"
    y = np.array([math.log(a * (n2 - c) / ((n1 - a) * c)) for a, n1, c, n2 in tables])
    v = np.array([1 / a + 1 / (n1 - a) + 1 / c + 1 / (n2 - c) for a, n1, c, n2 in tables])
    assert fit.estimate == pytest.approx(np.sum(y / v) / np.sum(1 / v))


def test_small_groups_reported_effects_and_pending_items_are_not_pooled() -> None:
    two = [with_outcome(i, **volume(1.0, 0.1, 5, 2.0, 0.2, 5)) for i in range(2)]
    effects = [
        with_outcome(5 + i, kind="reported_effect", measure="survival", effect_measure="ratio", effect=1.3)
        for i in range(3)
    ]
    pending = with_outcome(9, **volume(1.0, 0.1, 5, 2.0, 0.2, 5)).model_copy(
        update={"curation_status": CurationStatus.submitted}
    )
    groups = {g.measure: g for g in group_outcomes([*two, *effects, pending])}
    assert len(groups["tumour volume"].members) == 2
    assert not groups["tumour volume"].poolable
    assert not groups["survival"].poolable
    with pytest.raises(ValueError, match="cannot be pooled"):
        meta_analyse(groups["survival"])


def test_report_shows_a_pooled_group_inline_without_urls(tmp_path) -> None:
    from mscatlas.kb.models import Dataset
    from mscatlas.report import build_report

    arms = [
        (400.0, 80.0, 6, 800.0, 150.0, 6),
        (300.0, 90.0, 8, 500.0, 120.0, 8),
        (700.0, 200.0, 5, 650.0, 180.0, 5),
    ]
    items = [with_outcome(i, **volume(*a)) for i, a in enumerate(arms)]
    shipped = shipped_dataset()
    html = build_report(Dataset(studies=shipped.studies, evidence=items), tmp_path).read_text(
        encoding="utf-8"
    )
    assert "<strong>tumour volume</strong>" in html
    assert "ROM, REML" in html
    assert "<?xml" not in html
    assert_nothing_loaded_from_elsewhere(html)  # identifier links out are fine; nothing is fetched
