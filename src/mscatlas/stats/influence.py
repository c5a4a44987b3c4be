"""Leave-one-out sensitivity analysis: the model refitted k times, each time without one study."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mscatlas.stats.meta_model import MetaResult, rma

__all__ = ["LeaveOneOut", "leave1out"]


@dataclass(frozen=True)
class LeaveOneOut:
    omitted: int  # 0-based row of the study left out
    estimate: float
    se: float
    ci_lb: float
    ci_ub: float
    p: float
    tau2: float
    I2: float
    H2: float
    Q: float
    Q_p: float


def leave1out(res: MetaResult) -> list[LeaveOneOut]:
    """Refit a model without moderators once per study, same estimator and test."""
    if res.p != 1:
        raise ValueError("leave-one-out is computed for models without moderators")
    if res.k < 3:
        raise ValueError("leave-one-out needs at least 3 studies")
    rows = []
    keep = np.ones(res.k, dtype=bool)
    for i in range(res.k):
        keep[i] = False
        fit = rma(res.yi[keep], res.vi[keep], method=res.method, test=res.test, level=res.level)  # type: ignore[arg-type]
        keep[i] = True
        rows.append(
            LeaveOneOut(
                i,
                fit.estimate,
                float(fit.se[0]),
                float(fit.ci_lb[0]),
                float(fit.ci_ub[0]),
                float(fit.pval[0]),
                fit.tau2,
                fit.I2,
                fit.H2,
                fit.QE,
                fit.QE_p,
            )
        )
    return rows
