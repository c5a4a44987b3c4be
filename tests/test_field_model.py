"""The field moderator model: new moderators, the paired bootstrap over studies, separability."""

from __future__ import annotations

import numpy as np
import pytest

from mscatlas.stats import moderators
from mscatlas.stats.field_model import FIELD_SPEC, endpoint_family, passage_class, separability
from mscatlas.stats.harmonize import HarmonizedItem
from mscatlas.stats.moderators import ModeratorSpec, design, leave_one_study_out, paired_bootstrap


def hitem(i: int, study: str, direction: str, endpoint: str = "proliferation") -> HarmonizedItem:
    return HarmonizedItem(
        id=f"ev-{i:03d}-a", study=study, msc_source=("bone_marrow",), msc_species="human", engineered=False,
        cancer_type="breast carcinoma", cancer_class="solid", delivery="direct_coculture", setting="in_vitro",
        endpoint=endpoint, direction=direction, inhibition=None, dose_scale="", dose_value=None,
        dose_unit=None, dose_dependent=None,
    )  # fmt: skip


SPEC = ModeratorSpec(categorical={**moderators.MODERATORS, "host": "a"}, binary=("flag",), numeric=("score",))


def items_with_extra(n_studies: int = 14) -> tuple[list[HarmonizedItem], dict[str, dict]]:
    """Host 'b' studies mostly promote, host 'a' studies mostly inhibit; 'flag' and 'score' are noise."""
    rng = np.random.default_rng(3)
    items, extra, k = [], {}, 0
    for s in range(n_studies):
        host = "a" if s % 2 == 0 else "b"
        for _ in range(4):
            p = 0.9 if host == "a" else 0.1
            h = hitem(k, f"s{s:02d}", "inhibits" if rng.random() < p else "promotes")
            items.append(h)
            extra[h.id] = {
                "host": host,
                "flag": bool(k % 3 == 0),
                "score": None if s == 0 else float(rng.random()),
            }
            k += 1
    return items, extra


def test_extra_moderators_enter_the_design_and_are_found() -> None:
    items, extra = items_with_extra()
    d = design(items, SPEC, extra)
    assert {"host=b", "flag", "score_z", "score_missing"} <= set(d.columns)
    np.testing.assert_array_equal(
        d.X[:, d.columns.index("host=b")], [extra[h.id]["host"] == "b" for h in items]
    )
    # Study s00 has no score: its rows carry the missing indicator and a zero z-score.
    rows = d.study == d.studies.index("s00")
    assert np.all(d.X[rows, d.columns.index("score_missing")] == 1)
    assert np.all(d.X[rows, d.columns.index("score_z")] == 0)
    fit = moderators.fit_design(d, seed=1, draws=2000)
    host = next(e for e in fit.effects() if e["name"] == "host=b")
    assert host["supported"] and host["estimate"] < 0
    v = leave_one_study_out(items, seed=1, spec=SPEC, extra=extra)
    assert v.log_loss < v.baseline_log_loss
    boot = paired_bootstrap(v, seed=1)
    assert boot["log_loss"]["ci_ub"] < 0 and boot["n_studies"] == 14


def test_missing_moderator_value_names_the_item() -> None:
    items, extra = items_with_extra()
    del extra[items[5].id]["host"]
    with pytest.raises(ValueError, match=f"{items[5].id}.*host"):
        design(items, SPEC, extra)


def test_paired_bootstrap_matches_a_direct_resampling() -> None:
    """Per-study weights equal resampling studies with their items, done by hand."""
    items, extra = items_with_extra(8)
    v = leave_one_study_out(items, seed=2, spec=SPEC, extra=extra)
    boot = paired_bootstrap(v, n_boot=300, seed=9)
    y = np.array([o for _, o, _ in v.predictions], float)
    p = np.array([q for _, _, q in v.predictions])
    b = np.array([q for _, q in v.held_out])
    studies = sorted({s for s, _ in v.held_out})
    of = np.array([s for s, _ in v.held_out])
    rng = np.random.default_rng(9)
    weights = rng.multinomial(len(studies), np.full(len(studies), 1 / len(studies)), size=300)
    diffs = []
    for w in weights:
        idx = np.concatenate([np.repeat(np.flatnonzero(of == s), c) for s, c in zip(studies, w, strict=True)])
        diffs.append(np.mean((p[idx] - y[idx]) ** 2 - (b[idx] - y[idx]) ** 2))
    np.testing.assert_allclose(boot["brier"]["ci_lb"], np.percentile(diffs, 2.5), rtol=1e-10)
    np.testing.assert_allclose(boot["brier"]["difference"], v.brier - v.baseline_brier, rtol=1e-10)
    # Against itself the difference is exactly zero.
    same = paired_bootstrap(v, v, n_boot=50)
    assert same["log_loss"]["difference"] == 0 and same["log_loss"]["ci_ub"] == 0


def test_separability_flags_sparse_one_sided_and_collinear_columns() -> None:
    items, extra = items_with_extra()
    extra[items[0].id]["host"] = "c"  # one item, one study: sparse; it inhibits: one-sided
    for h in items:  # 'flag' copies 'host=b': collinear
        extra[h.id]["flag"] = extra[h.id]["host"] == "b"
    rows = {r["column"]: r for r in separability(design(items, SPEC, extra))}
    assert {"sparse", "one_sided"} <= set(rows["host=c"]["reasons"])
    assert "collinear" in rows["flag"]["reasons"] and rows["flag"]["overlaps"]["column"] == "host=b"
    assert rows["score_z"]["reasons"] == []


def test_field_codings() -> None:
    assert passage_class("P3-P5") == "early" and passage_class("P3 and P7") == "late"
    assert passage_class("third passage used") == "early" and passage_class(None) == "unstated"
    assert endpoint_family("apoptosis") == "death" and endpoint_family("angiogenesis") == "other"
    assert FIELD_SPEC.binary == ("abstract_only",)  # payload replaces 'engineered'


def test_grid_walk_gives_the_full_grid_answer() -> None:
    """Skipping grid points of negligible weight leaves the weights of the others unchanged."""
    items, extra = items_with_extra()
    d = design(items, SPEC, extra)
    fit = moderators.fit_design(d, seed=4, draws=10)
    log_prior = np.log(moderators.SIGMA_GRID) - 0.5 * moderators.SIGMA_GRID**2
    full = (
        np.array(
            [
                moderators.laplace_mode(d.X, d.y, d.study, len(d.studies), s).log_evidence
                for s in moderators.SIGMA_GRID
            ]
        )
        + log_prior
    )
    w = np.exp(full - full.max())
    np.testing.assert_allclose(fit.weights, w / w.sum(), atol=1e-9)


def test_marginal_effects_match_predictions_built_row_by_row() -> None:
    """Each level's P(inhibits) equals the average over items of the fit's own design rows with the
    level set (built by ``Design.row``, an independent path), and follows the simulated truth."""
    from scipy.special import expit

    from mscatlas.stats.field_model import marginal_effects

    items, extra = items_with_extra()
    d = design(items, SPEC, extra)
    fit = moderators.fit_design(d, seed=5, draws=600)
    effects = marginal_effects(fit, draws=600)
    assert [lv["level"] for lv in effects["host"]] == ["a", "b"]
    assert [lv["n_items"] for lv in effects["host"]] == [28, 28]
    for level in effects["host"]:
        rows = np.array([d.row(**{**d.covariates(h, extra), "host": level["level"]}) for h in items])
        expected = expit(fit.beta_draws @ rows.T).mean(axis=1)
        assert level["p_inhibits"] == pytest.approx(expected.mean(), rel=1e-10)
        assert level["ci_lb"] == pytest.approx(np.percentile(expected, 2.5), rel=1e-10)
        assert level["ci_lb"] < level["p_inhibits"] < level["ci_ub"]
    a, b = effects["host"]
    assert a["p_inhibits"] > 0.7 and b["p_inhibits"] < 0.3  # simulated 0.9 vs 0.1
    assert [lv["level"] for lv in effects["score"]] == ["-1 sd", "+0 sd", "+1 sd"]
    assert [lv["level"] for lv in effects["flag"]] == ["no", "yes"]
    assert sum(lv["n_items"] for lv in effects["flag"]) == len(items)


def test_effect_plot_is_an_svg_with_one_interval_per_level() -> None:
    from mscatlas.report.field_section import effect_plot_svg

    levels = [
        {"level": "a_x", "p_inhibits": 0.8, "ci_lb": 0.6, "ci_ub": 0.9, "n_items": 12},
        {"level": "b", "p_inhibits": 0.2, "ci_lb": 0.1, "ci_ub": 0.4, "n_items": 3},
    ]
    svg = effect_plot_svg("host_immune", levels, 0.5)
    assert svg.startswith("<svg") and "a x (12)" in svg and "b (3)" in svg
    assert "host immune (in vivo items)" in svg


def test_report_field_section_has_an_effect_plot_for_each_moderator() -> None:
    from mscatlas.kb.shipped import shipped_dataset
    from mscatlas.report.field_section import field_effects

    effects = field_effects(shipped_dataset())
    expected = {*FIELD_SPEC.categorical, *FIELD_SPEC.binary, *FIELD_SPEC.numeric, "dose"}
    assert set(effects["figures"]) == expected
    assert all(svg.startswith("<svg") for svg in effects["figures"].values())
    for levels in effects["levels"].values():
        assert all(0 <= lv["ci_lb"] <= lv["p_inhibits"] <= lv["ci_ub"] <= 1 for lv in levels)
