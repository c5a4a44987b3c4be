"""Small-study effects: Egger's regression test and Duval & Tweedie's trim-and-fill.

Both follow metafor's defaults. ``regtest`` refits the model with the standard error √vᵢ as an
extra moderator (same τ² estimator, same test) and tests its coefficient. ``trimfill`` uses the
L0 estimator of the number of missing studies; when the side is not given it is the side
opposite to the sign of the slope of that same standard-error regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mscatlas.stats._wls import FloatArray, fit_at
from mscatlas.stats.meta_model import MetaResult, rma
from mscatlas.stats.tau2 import estimate_tau2

__all__ = ["EggerTest", "TrimFill", "regtest", "trimfill"]


@dataclass(frozen=True)
class EggerTest:
    """Test of the standard-error slope; ``df`` is set for Knapp–Hartung (t) tests."""

    stat: float
    p: float
    df: int | None
    limit_estimate: float  # the intercept: the effect expected at standard error 0


@dataclass(frozen=True)
class TrimFill:
    k0: int
    side: Literal["left", "right"]
    filled_yi: FloatArray
    filled_vi: FloatArray
    result: MetaResult  # the model refitted with the filled studies added

    @property
    def estimate(self) -> float:
        return self.result.estimate


def regtest(res: MetaResult) -> EggerTest:
    """Egger's test as metafor's ``regtest`` default (mixed model, predictor √vᵢ)."""
    mods = np.column_stack([res.X[:, 1:], np.sqrt(res.vi)])
    names = (*res.names[1:], "sei")
    fit = rma(res.yi, res.vi, mods, method=res.method, test=res.test, mod_names=names, level=res.level)
    return EggerTest(float(fit.stat[-1]), float(fit.pval[-1]), fit.df, float(fit.beta[0]))


def _pooled(y: FloatArray, v: FloatArray, method: str) -> float:
    X = np.ones((y.size, 1))
    return float(fit_at(y, v, X, estimate_tau2(y, v, X, method)).beta[0])


def trimfill(res: MetaResult, side: Literal["left", "right"] | None = None, maxiter: int = 100) -> TrimFill:
    """Trim-and-fill with the L0 estimator (models without moderators only).

    The filled model is refitted with Wald-type tests, as metafor does whatever the original
    test was; its estimate is the same either way.
    """
    if res.p != 1:
        raise ValueError("trim-and-fill applies to models without moderators")
    y, v = res.yi, res.vi
    if side is None:
        slope = rma(y, v, np.sqrt(v), method=res.method).beta[1]
        side = "right" if slope < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y, kind="stable")
    ys, vs = sign * y[order], v[order]
    k = ys.size

    k0, previous, beta = 0, -1, 0.0
    for _ in range(maxiter):
        if k0 == previous:
            break
        previous = k0
        beta = _pooled(ys[: k - k0], vs[: k - k0], res.method)
        centred = ys - beta
        ranks = np.empty(k, dtype=np.int64)  # rankdata(method="ordinal"): ties by position
        ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
        s_r = float(ranks[centred > 0].sum())
        k0 = max(0, round((4 * s_r - k * (k + 1)) / (2 * k - 1)))
    else:
        raise RuntimeError("trim-and-fill did not converge")

    # Mirror the k0 most extreme studies about the trimmed estimate, back on the original scale.
    filled_y = sign * (2 * beta - ys[k - k0 :])
    filled_v = vs[k - k0 :]
    refit = rma(np.r_[y, filled_y], np.r_[v, filled_v], method=res.method, level=res.level) if k0 > 0 else res
    return TrimFill(k0, side, filled_y, filled_v, refit)
