"""Fixed- and random-effects meta-analysis and meta-regression (metafor's ``rma.uni``).

Model: yᵢ = xᵢβ + uᵢ + εᵢ with εᵢ ~ N(0, vᵢ) known and uᵢ ~ N(0, τ²). τ² comes from one of
the estimators in :mod:`mscatlas.stats.tau2`, then β is the weighted least-squares fit with
weights 1/(vᵢ + τ²). Inference is Wald-type (``test="z"``, normal reference) or
Knapp–Hartung (``test="knha"``: the covariance of β is scaled by the weighted residual
variance and t/F distributions with k − p degrees of freedom are used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special  # not scipy.stats: importing it costs ~0.5 s of start-up (issue 14)

from mscatlas.stats._wls import FloatArray, fit_at, trace_p, wls
from mscatlas.stats.effect_sizes import InputError
from mscatlas.stats.tau2 import METHODS, estimate_tau2, tau2_qprofile_ci

__all__ = ["Coefficient", "CoefficientInference", "MetaResult", "Prediction", "design_matrix", "rma"]

Test = Literal["z", "knha"]


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    se: float
    stat: float
    p: float
    ci_lb: float
    ci_ub: float


@dataclass(frozen=True)
class Prediction:
    """A predicted mean effect with its confidence and prediction intervals."""

    pred: float
    se: float
    ci_lb: float
    ci_ub: float
    pi_lb: float
    pi_ub: float


class CoefficientInference:
    """Wald-type inference on the coefficients of a fitted model, shared by the univariate
    (:class:`MetaResult`) and the multilevel fit: a subclass provides ``beta``, ``vb``,
    ``level``, ``names``, ``X``, ``tau2`` (the variance a prediction interval adds) and ``df``
    (None for the normal reference)."""

    beta: FloatArray
    vb: FloatArray
    level: float
    names: tuple[str, ...]
    X: FloatArray
    tau2: float

    @property
    def df(self) -> int | None:
        return None

    @property
    def k(self) -> int:
        return int(self.X.shape[0])

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    @property
    def crit(self) -> float:
        q = 1 - (1 - self.level) / 2
        return float(special.ndtri(q) if self.df is None else special.stdtrit(self.df, q))  # norm/t ppf

    @property
    def se(self) -> FloatArray:
        return np.sqrt(np.diag(self.vb))

    @property
    def stat(self) -> FloatArray:
        return self.beta / self.se

    @property
    def pval(self) -> FloatArray:
        z = np.abs(self.stat)
        return 2 * (special.ndtr(-z) if self.df is None else special.stdtr(self.df, -z))  # norm/t sf

    @property
    def ci_lb(self) -> FloatArray:
        return self.beta - self.crit * self.se

    @property
    def ci_ub(self) -> FloatArray:
        return self.beta + self.crit * self.se

    @property
    def coefficients(self) -> list[Coefficient]:
        return [
            Coefficient(n, float(b), float(s), float(z), float(pv), float(lo), float(hi))
            for n, b, s, z, pv, lo, hi in zip(
                self.names, self.beta, self.se, self.stat, self.pval, self.ci_lb, self.ci_ub, strict=True
            )
        ]

    @property
    def estimate(self) -> float:
        """The intercept: the pooled effect of a model without moderators."""
        return float(self.beta[0])

    def predict(self, x: ArrayLike | None = None) -> Prediction:
        """Mean effect at moderator row ``x`` (intercept included; default: the intercept alone).

        The prediction interval adds τ² to the variance of the mean and uses the same reference
        distribution as the tests (t with k − p df under Knapp–Hartung), as metafor's ``predict``.
        """
        row = np.zeros(self.p) if x is None else np.asarray(x, dtype=float)
        if x is None:
            row[0] = 1.0
        pred = float(row @ self.beta)
        se = float(np.sqrt(row @ self.vb @ row))
        half_ci = self.crit * se
        half_pi = self.crit * float(np.sqrt(se**2 + self.tau2))
        return Prediction(pred, se, pred - half_ci, pred + half_ci, pred - half_pi, pred + half_pi)


@dataclass(frozen=True)
class MetaResult(CoefficientInference):
    """A fitted model. Heterogeneity statistics are residual ones when there are moderators."""

    method: str
    test: str
    level: float
    names: tuple[str, ...]
    beta: FloatArray
    vb: FloatArray
    tau2: float
    QE: float
    QE_p: float
    I2: float
    H2: float
    QM: float
    QM_p: float
    QM_df: tuple[int, int | None]
    R2: float | None
    yi: FloatArray = field(repr=False)
    vi: FloatArray = field(repr=False)
    X: FloatArray = field(repr=False)

    @property
    def df(self) -> int | None:
        """Degrees of freedom of the t reference (Knapp–Hartung), None for z tests."""
        return self.k - self.p if self.test == "knha" else None

    def tau2_ci(self) -> tuple[float, float]:
        """Q-profile confidence interval for τ² (metafor's ``confint``)."""
        return tau2_qprofile_ci(self.yi, self.vi, self.X, self.tau2, self.level)


def design_matrix(
    k: int, mods: ArrayLike | None, names: Sequence[str] | None, unit: str = "studies"
) -> tuple[FloatArray, tuple[str, ...]]:
    """The intercept column followed by the moderators, and the coefficient names."""
    if mods is None:
        return np.ones((k, 1)), ("intrcpt",)
    m = np.asarray(mods, dtype=float)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[0] != k:
        raise InputError(f"moderators have {m.shape[0]} rows for {k} {unit}")
    labels = tuple(names) if names is not None else tuple(f"mod{i + 1}" for i in range(m.shape[1]))
    if len(labels) != m.shape[1]:
        raise InputError("one name per moderator column is needed")
    return np.column_stack([np.ones(k), m]), ("intrcpt", *labels)


def rma(
    yi: ArrayLike,
    vi: ArrayLike,
    mods: ArrayLike | None = None,
    *,
    method: str = "REML",
    test: Test = "z",
    mod_names: Sequence[str] | None = None,
    level: float = 0.95,
) -> MetaResult:
    """Fit a meta-analysis (``mods=None``) or meta-regression; the intercept is always first."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if test not in ("z", "knha"):
        raise ValueError(f"unknown test {test!r}; choose 'z' or 'knha'")
    if y.shape != v.shape or y.ndim != 1:
        raise InputError("yi and vi must be vectors of the same length")
    bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(v) | (v <= 0))
    if bad.size:
        raise InputError(f"row {bad[0] + 1}: yi must be finite and vi positive", row=int(bad[0]), column="vi")
    k = y.size
    X, names = design_matrix(k, mods, mod_names)
    p = X.shape[1]
    if k < 2 or k <= p:
        raise InputError(
            f"k = {k} studies cannot fit {p} coefficient(s); at least {max(2, p + 1)} are needed"
        )
    if p > 1 and np.linalg.matrix_rank(X) < p:
        raise InputError("the moderators are collinear (or constant)")

    tau2 = estimate_tau2(y, v, X, method)
    fit = fit_at(y, v, X, tau2)
    vb = fit.cov
    if test == "knha":
        vb = vb * (fit.q / (k - p))

    fe = wls(y, 1.0 / v, X)
    qe = max(0.0, fe.q)
    qe_p = float(special.chdtrc(k - p, qe))  # χ² upper tail; scipy.special avoids rv_continuous overhead
    if method == "EE":
        i2 = max(0.0, 100 * (qe - (k - p)) / qe) if qe > 0 else 0.0
        h2 = qe / (k - p)
    else:
        typical_v = (k - p) / trace_p(fe, X)
        i2 = 100 * tau2 / (typical_v + tau2)
        h2 = tau2 / typical_v + 1

    btt = np.arange(1, p) if p > 1 else np.array([0])
    b = fit.beta[btt]
    qm = float(b @ np.linalg.solve(vb[np.ix_(btt, btt)], b))
    m = btt.size
    if test == "knha":
        qm /= m
        qm_p = float(special.fdtrc(m, k - p, qm))
        qm_df: tuple[int, int | None] = (m, k - p)
    else:
        qm_p = float(special.chdtrc(m, qm))
        qm_df = (m, None)

    r2 = _r_squared(y, v, X, method, tau2) if p > 1 else None
    return MetaResult(
        method, test, level, names, fit.beta, vb, tau2, qe, qe_p, i2, h2, qm, qm_p, qm_df, r2, y, v, X
    )


def _r_squared(y: FloatArray, v: FloatArray, X: FloatArray, method: str, tau2: float) -> float:
    """Share (in %) of heterogeneity the moderators account for, as metafor reports it.

    Random-effects models: (τ²₀ − τ²)/τ²₀ with τ²₀ from the model without moderators (same
    estimator), floored at 0, and 0 when τ²₀ = 0. Fixed-effect models have no τ²; metafor then
    reports the adjusted R² of the inverse-variance weighted regression, floored at 0.
    """
    k, p = X.shape
    if method == "EE":
        if np.var(y) == 0:
            return 0.0
        w = 1.0 / v
        rss = wls(y, w, X).q
        tss = wls(y, w, X[:, :1]).q
        adj = 1 - (rss / tss) * (k - 1) / (k - p)
        return max(0.0, 100 * adj)
    tau2_null = estimate_tau2(y, v, X[:, :1], method)
    if tau2_null == 0:
        return 0.0
    return max(0.0, 100 * (tau2_null - tau2) / tau2_null)
