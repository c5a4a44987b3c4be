"""Pooling curated outcomes with the multilevel model when studies give several outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mscatlas.kb.models import QuantitativeOutcome
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.stats import MetaResult, MultilevelResult, rma, rma_mv
from mscatlas.stats.outcomes import group_outcomes, meta_analyse


def _bases() -> list:
    """One accepted in vivo item from each of three studies (their refs stay consistent)."""
    seen: dict[str, object] = {}
    for e in shipped_dataset().evidence:
        if e.setting.value == "in_vivo" and e.study not in seen:
            seen[e.study] = e
    return list(seen.values())[:3]


BASES = _bases()

# (study, treated mean, sd, n, control mean, sd, n): three studies, two arms each
ARMS = [
    (0, 400.0, 80.0, 6, 800.0, 150.0, 6),
    (0, 350.0, 70.0, 6, 800.0, 150.0, 6),
    (1, 300.0, 90.0, 8, 500.0, 120.0, 8),
    (1, 420.0, 95.0, 8, 500.0, 120.0, 8),
    (2, 700.0, 200.0, 5, 650.0, 180.0, 5),
    (2, 520.0, 160.0, 5, 650.0, 180.0, 5),
]


def items(arms: list[tuple]) -> list:
    out = []
    for i, (study, m1, s1, n1, m2, s2, n2) in enumerate(arms):
        outcome = QuantitativeOutcome(
            source="test", kind="group_summary", measure="Tumour volume", treated_mean=m1, treated_sd=s1,
            treated_n=n1, control_mean=m2, control_sd=s2, control_n=n2,
        )  # fmt: skip
        out.append(BASES[study].model_copy(update={"id": f"ev-96{i}-a", "outcomes": [outcome]}))
    return out


def log_ratios(arms: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([math.log(m1 / m2) for _, m1, _, _, m2, _, _ in arms])
    v = np.array([s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2) for _, m1, s1, n1, m2, s2, n2 in arms])
    return y, v


def test_several_outcomes_per_study_are_pooled_as_outcome_within_study() -> None:
    (group,) = group_outcomes(items(ARMS))
    measure, fit = meta_analyse(group)
    assert measure == "ROM"
    assert isinstance(fit, MultilevelResult)
    assert fit.n_levels == (3, 6)
    y, v = log_ratios(ARMS)
    direct = rma_mv(y, v, [a[0] for a in ARMS], list(range(len(ARMS))))
    assert fit.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert fit.sigma2 == pytest.approx(direct.sigma2, rel=1e-12)


def test_one_outcome_per_study_keeps_the_random_effects_model() -> None:
    arms = [ARMS[0], ARMS[2], ARMS[4]]
    _, fit = meta_analyse(group_outcomes(items(arms))[0])
    assert isinstance(fit, MetaResult)
    y, v = log_ratios(arms)
    assert fit.estimate == pytest.approx(rma(y, v).estimate, rel=1e-12)


def test_report_renders_a_multilevel_group(tmp_path) -> None:
    from mscatlas.kb.models import Dataset
    from mscatlas.report import build_report

    shipped = shipped_dataset()
    html = build_report(Dataset(studies=shipped.studies, evidence=items(ARMS)), tmp_path).read_text(
        encoding="utf-8"
    )
    assert "<strong>tumour volume</strong>" in html
    assert "6 outcomes from 3 studies" in html
    assert "multilevel REML, outcome within study" in html
    assert "cluster-robust (CR2)" in html and "σ² between studies" in html
