"""The report's pooled subgroup meta-analyses of in vivo outcomes (issue 11, point 4), with
forest plots; the pooling itself is :mod:`mscatlas.stats.outcome_pools`."""

from __future__ import annotations

from typing import Any

from mscatlas.kb.models import Dataset
from mscatlas.stats.meta_plots import forest_plot
from mscatlas.stats.outcome_pools import MIN_COMPARISONS, MIN_STUDIES, pool_subgroups

__all__ = ["pooled_section_context"]

_XLABEL = "Hedges' g, MSC product vs control (> 0: more tumour / metastasis)"


def _summary(sub: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": sub.name,
        "k_studies": sub.k_studies,
        "k_comparisons": sub.k_comparisons,
        "model": sub.model,
        "reason": sub.reason,
    }
    fit = sub.fit
    if fit is None:
        return row
    row.update(estimate=fit.estimate, ci_lb=float(fit.ci_lb[0]), ci_ub=float(fit.ci_ub[0]), I2=fit.I2)
    if hasattr(fit, "sigma2"):
        row["sigma2"] = tuple(float(s) for s in fit.sigma2)
    else:
        row["tau2"] = float(fit.tau2)
    row["forest_svg"] = forest_plot(fit, sub.labels, xlabel=_XLABEL, standalone=False)
    return row


def pooled_section_context(dataset: Dataset) -> dict[str, Any]:
    """The ``pooled_subgroups`` entry of the report context."""
    analyses = pool_subgroups(dataset.evidence)
    return {
        "min_studies": MIN_STUDIES,
        "min_comparisons": MIN_COMPARISONS,
        "analyses": [
            {
                "key": a.key,
                "title": a.title,
                "left_out": a.left_out,
                "k_comparisons": sum(s.k_comparisons for s in a.subgroups),
                "k_studies": len({c.study for s in a.subgroups for c in s.comparisons}),
                "subgroups": [_summary(s) for s in a.subgroups],
            }
            for a in analyses
        ],
    }
