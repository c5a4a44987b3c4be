"""Issue 14 point 3: the moderator model fitted on grouped design rows (binomial counts) gives
the numbers of the item-by-item fit, and fits and leave-one-study-out results are cached by
content digest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mscatlas.kb.shipped import shipped_dataset
from mscatlas.stats import cache
from mscatlas.stats.harmonize import harmonize
from mscatlas.stats.moderators import design, fit_design, leave_one_study_out

TOL = 1e-8  # the two fits differ only in summation order: ~1e-14 seen


@pytest.fixture(scope="module")
def items():
    return harmonize(shipped_dataset().evidence)


def _close(a: list[dict], b: list[dict]) -> None:
    assert [e["name"] for e in a] == [e["name"] for e in b]
    for x, y in zip(a, b, strict=True):
        for key in ("estimate", "ci_lb", "ci_ub"):
            assert x[key] == pytest.approx(y[key], abs=TOL), (x["name"], key)
        assert x["n_items"] == y["n_items"]


def test_grouped_fit_equals_the_item_by_item_fit_on_the_shipped_data(items) -> None:
    cache.clear()
    grouped = fit_design(design(items))
    single = fit_design(design(items, grouped=False))
    assert grouped.design.groups.X.shape[0] < single.design.groups.X.shape[0] == len(single.design.y)
    np.testing.assert_allclose(grouped.weights, single.weights, atol=TOL)
    for a, b in zip(grouped.modes, single.modes, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.theta, b.theta, atol=TOL)
            assert a.log_evidence == pytest.approx(b.log_evidence, abs=TOL)
    _close(grouped.effects(), single.effects())


def test_copies_collapse_into_the_same_groups(items) -> None:
    copies = [replace(h, id=f"{h.id}.c{k}") for k in range(3) for h in items]
    d = design(copies)
    assert d.groups.X.shape[0] == design(items).groups.X.shape[0]
    assert d.groups.trials.sum() == 3 * len(design(items).y)
    cache.clear()
    _close(fit_design(d, draws=500).effects(), fit_design(design(copies, grouped=False), draws=500).effects())


def test_grouped_leave_one_study_out_equals_item_by_item(items) -> None:
    studies = sorted({h.study for h in items})[:40]
    some = [h for h in items if h.study in studies]
    some = some + [replace(h, id=f"{h.id}.copy") for h in some]  # duplicates: real groups
    a = leave_one_study_out(some, draws=300)
    b = leave_one_study_out(some, draws=300, grouped=False)
    assert [p[:2] for p in a.predictions] == [p[:2] for p in b.predictions]
    np.testing.assert_allclose([p[2] for p in a.predictions], [p[2] for p in b.predictions], atol=TOL)
    assert a.log_loss == pytest.approx(b.log_loss, abs=TOL)
    assert a.held_out == b.held_out


def test_results_are_cached_by_content_and_fits_are_independent_copies(items) -> None:
    some = items[:120]
    cache.clear()
    first = fit_design(design(some), draws=300)
    first.predict(msc_source="bone_marrow")  # advances this copy's generator only
    second = fit_design(design(some), draws=300)
    assert cache.info()["hits"] == 1 and second is not first
    assert second.effects() == first.effects()
    np.testing.assert_array_equal(second.rng.random(3), fit_design(design(some), draws=300).rng.random(3))
    other = fit_design(design(some[:-1]), draws=300)  # other content: computed, not looked up
    assert cache.info() == {"entries": 2, "hits": 2, "misses": 2}
    assert other.design.items != first.design.items
    v1 = leave_one_study_out(some, draws=200)
    assert leave_one_study_out(some, draws=200) is v1
    assert leave_one_study_out(some, draws=200, seed=5) is not v1
