"""Subgroup pools of in vivo outcomes (issue 11 point 4): effect sizes checked against hand
formulas, subgroups split as documented, too-small subgroups said so, and the report section."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mscatlas.kb.enums import Delivery, Endpoint, MscSource
from mscatlas.kb.models import QuantitativeOutcome
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.report.pooled_section import pooled_section_context
from mscatlas.stats import MetaResult, MultilevelResult, rma, rma_mv
from mscatlas.stats.outcome_pools import comparisons, is_burden_measure, pool_subgroups


def _bases() -> list:
    """One accepted in vivo item from each of four studies."""
    seen: dict[str, object] = {}
    for e in shipped_dataset().evidence:
        if e.setting.value == "in_vivo" and e.curation_status.value == "accepted" and e.study not in seen:
            seen[e.study] = e
    return list(seen.values())[:4]


BASES = _bases()


def _g(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> tuple[float, float]:
    """Hedges' g and its variance written out (exact J via lgamma), independent of escalc."""
    df = n1 + n2 - 2
    j = math.exp(math.lgamma(df / 2) - 0.5 * math.log(df / 2) - math.lgamma((df - 1) / 2))
    sp = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
    g = j * (m1 - m2) / sp
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))


def _summary(m1, s1, n1, m2, s2, n2, measure="Tumour volume") -> QuantitativeOutcome:
    return QuantitativeOutcome(
        source="test", kind="group_summary", measure=measure, treated_mean=m1, treated_sd=s1,
        treated_n=n1, control_mean=m2, control_sd=s2, control_n=n2,
    )  # fmt: skip


ENGINEERING = next(e for e in shipped_dataset().evidence if e.engineering).engineering


def _item(i: int, study: int, outcomes: list, *, source="bone_marrow", delivery="cell_injection",
          endpoint="tumor_growth", engineered=False):  # fmt: skip
    return BASES[study].model_copy(
        update={
            "id": f"ev-97{i}-a",
            "outcomes": outcomes,
            "msc_source": [MscSource(source)],
            "delivery": Delivery(delivery),
            "endpoint": Endpoint(endpoint),
            "engineering": ENGINEERING if engineered else [],
        }
    )


ARMS = [  # (study, m1, s1, n1, m2, s2, n2)
    (0, 400.0, 80.0, 6, 800.0, 150.0, 6),
    (0, 350.0, 70.0, 6, 800.0, 150.0, 6),
    (1, 300.0, 90.0, 8, 500.0, 120.0, 8),
    (2, 700.0, 200.0, 5, 650.0, 180.0, 5),
]


def test_burden_measures_keep_their_sign_and_others_are_left_out() -> None:
    assert is_burden_measure("Tumour volume")
    assert is_burden_measure("number of lung metastatic nodules")
    assert not is_burden_measure("median survival")
    assert not is_burden_measure("mice whose ADMSC-mixed tumour grew less than the control tumour")
    assert not is_burden_measure("tumour-free mice")


def test_group_summaries_become_hedges_g_and_counts_converted_log_odds_ratios() -> None:
    counts = QuantitativeOutcome(
        source="test", kind="counts", measure="mice with lung metastases",
        treated_events=7, treated_total=8, control_events=2, control_total=8,
    )  # fmt: skip
    zero = QuantitativeOutcome(
        source="test", kind="counts", measure="mice with lung metastases",
        treated_events=5, treated_total=5, control_events=1, control_total=6,
    )  # fmt: skip
    rep = QuantitativeOutcome(
        source="test", kind="reported_effect", measure="tumour volume", effect_measure="percent", effect=40.0
    )
    items = [
        _item(0, 0, [_summary(*ARMS[0][1:]), rep]),
        _item(1, 1, [counts, zero], endpoint="metastasis"),
    ]
    comps, left_out = comparisons(items)
    assert left_out == 1
    assert len(comps) == 3
    g, v = _g(*ARMS[0][1:])
    assert comps[0].yi == pytest.approx(g, rel=1e-12)
    assert comps[0].vi == pytest.approx(v, rel=1e-12)
    k = math.sqrt(3) / math.pi
    assert comps[1].yi == pytest.approx(math.log(7 * 6 / (1 * 2)) * k, rel=1e-12)
    assert comps[1].vi == pytest.approx((1 / 7 + 1 + 1 / 2 + 1 / 6) * k**2, rel=1e-12)
    # an empty cell: 0.5 added to all four cells, as metafor does
    assert comps[2].yi == pytest.approx(math.log(5.5 * 5.5 / (0.5 * 1.5)) * k, rel=1e-12)
    assert comps[1].yi > 0  # more metastasis with MSCs reads as promotion


def test_subgroups_are_pooled_multilevel_or_random_effects_and_small_ones_are_named() -> None:
    items = [_item(i, s, [_summary(*a)]) for i, (s, *a) in enumerate(ARMS)]
    items.append(_item(9, 3, [_summary(500.0, 100.0, 6, 400.0, 90.0, 6)], source="adipose_tissue"))
    analyses = {a.key: a for a in pool_subgroups(items)}
    by_source = {s.name: s for s in analyses["growth_by_source"].subgroups}
    bm = by_source["bone marrow"]
    assert (bm.k_studies, bm.k_comparisons) == (3, 4)
    assert isinstance(bm.fit, MultilevelResult)
    y = np.array([_g(*a)[0] for _, *a in ARMS])
    v = np.array([_g(*a)[1] for _, *a in ARMS])
    direct = rma_mv(y, v, [a[0] for a in ARMS], list(range(len(ARMS))))
    assert bm.fit.estimate == pytest.approx(direct.estimate, rel=1e-10)
    adipose = by_source["adipose tissue"]
    assert adipose.fit is None
    assert adipose.reason is not None and "too few to pool" in adipose.reason
    assert "1 comparison(s) from 1 study" in adipose.reason
    # one comparison per study: the usual random-effects model
    single = [_item(i, s, [_summary(*a)]) for i, (s, *a) in enumerate(ARMS) if i != 1]
    (sub,) = next(a for a in pool_subgroups(single) if a.key == "growth_by_delivery").subgroups
    assert sub.name == "cells"
    assert isinstance(sub.fit, MetaResult)
    keep = [0, 2, 3]
    assert sub.fit.estimate == pytest.approx(rma(y[keep], v[keep]).estimate, rel=1e-10)


def test_delivery_and_engineering_subgroups() -> None:
    items = [
        _item(0, 0, [_summary(*ARMS[0][1:])], delivery="co_injection"),
        _item(1, 1, [_summary(*ARMS[2][1:])], delivery="conditioned_medium"),
        _item(2, 2, [_summary(*ARMS[3][1:])], delivery="extracellular_vesicles", engineered=True),
    ]
    analyses = {a.key: a for a in pool_subgroups(items)}
    names = {s.name for s in analyses["growth_by_delivery"].subgroups}
    assert names == {"cells", "conditioned medium", "extracellular vesicles"}
    eng = {s.name: s.k_comparisons for s in analyses["growth_by_engineering"].subgroups}
    assert eng == {"naive": 2, "engineered": 1}
    assert analyses["metastasis"].subgroups == ()


def test_report_section_draws_a_forest_plot_per_pooled_subgroup() -> None:
    items = [_item(i, s, [_summary(*a)]) for i, (s, *a) in enumerate(ARMS)]
    context = pooled_section_context(shipped_dataset().model_copy(update={"evidence": items}))
    growth = next(a for a in context["analyses"] if a["key"] == "growth_by_source")
    (row,) = growth["subgroups"]
    assert row["k_studies"] == 3 and row["k_comparisons"] == 4
    assert "<svg" in row["forest_svg"]
    assert row["ci_lb"] < row["estimate"] < row["ci_ub"]


def test_shipped_data_report_every_analysis_with_its_counts() -> None:
    context = pooled_section_context(shipped_dataset())
    assert [a["key"] for a in context["analyses"]] == [
        "growth_by_source", "growth_by_delivery", "growth_by_engineering", "metastasis",
    ]  # fmt: skip
    for a in context["analyses"]:
        for s in a["subgroups"]:
            assert (s["reason"] is None) == ("forest_svg" in s)
