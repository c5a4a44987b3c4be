"""Estimators of the between-study variance τ² and its Q-profile confidence interval.

Closed-form estimators: DL (DerSimonian–Laird), HE (Hedges), HS (Hunter–Schmidt), SJ
(Sidik–Jonkman, one step from the ML-type start var(y)·(k−1)/k). Iterative ones are solved as
one-dimensional root problems with Brent's method (SciPy's brentq, in ``_roots``) to a tight tolerance: ML and
REML (score equations, then the likelihood at τ² = 0 is compared, as metafor does, to avoid a
local maximum), PM (generalised Q equal to k − p) and EB (Morris' empirical Bayes, whose
estimating equation Q·k/(k−p) = k is the same as PM's, so the two coincide).
Every estimate is truncated at 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import gammaincinv  # chi2.ppf's own formula, without importing scipy.stats

from mscatlas.stats._roots import brentq  # scipy.optimize.brentq to the bit, without its import
from mscatlas.stats._wls import FloatArray, fit_at, trace_p, wls

__all__ = ["METHODS", "estimate_tau2", "generalized_q", "tau2_qprofile_ci"]

METHODS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")

_XTOL = 1e-14
_RTOL = 1e-13


def generalized_q(y: FloatArray, v: FloatArray, X: FloatArray, tau2: float) -> float:
    """Q(τ²) = Σ (yᵢ − xᵢβ̂)² / (vᵢ + τ²); decreasing in τ²."""
    return fit_at(y, v, X, tau2).q


def _scale(y: FloatArray, v: FloatArray) -> float:
    """A positive τ² that is already large for these data, to start the bracket search."""
    return float(max(np.var(y), np.mean(v), 1e-12))


def _first_root(f: Callable[[float], float], start: float) -> float:
    """Smallest-bracket root of ``f`` on (0, ∞) given f(0) > 0: double ``start`` until f < 0."""
    hi = start
    for _ in range(200):
        if f(hi) < 0:
            break
        hi *= 2
    else:  # pragma: no cover - f never turned negative
        raise RuntimeError("could not bracket the τ² estimating equation")
    return float(brentq(f, 0.0, hi, xtol=_XTOL, rtol=_RTOL, maxiter=500))


def _loglik(y: FloatArray, v: FloatArray, X: FloatArray, tau2: float, reml: bool) -> float:
    fit = fit_at(y, v, X, tau2)
    ll = -0.5 * float(np.sum(np.log(v + tau2))) - 0.5 * fit.q
    if reml:
        ll += 0.5 * float(np.linalg.slogdet(fit.cov)[1])
    return ll


def _likelihood_root(y: FloatArray, v: FloatArray, X: FloatArray, reml: bool) -> float:
    """Maximise the (restricted) likelihood over τ² ≥ 0 by solving its score equation.

    The likelihood can have more than one local maximum. Like metafor's Fisher scoring, the
    search starts at the Hedges estimate and climbs to the nearest maximum: the root of the
    score is bracketed on the uphill side of the start and polished with ``brentq``.
    """

    def score(t: float) -> float:
        fit = fit_at(y, v, X, t)
        wr2 = float(np.sum((fit.w * fit.resid) ** 2))
        return wr2 - (trace_p(fit, X) if reml else float(fit.w.sum()))

    start = estimate_tau2(y, v, X, "HE")
    s0 = score(start)
    if s0 > 0:
        hi = max(2 * start, _scale(y, v))
        for _ in range(200):
            if score(hi) < 0:
                break
            hi *= 2
        else:  # pragma: no cover - the score never turned negative
            raise RuntimeError("could not bracket the τ² likelihood equation")
        tau2 = float(brentq(score, start, hi, xtol=_XTOL, rtol=_RTOL, maxiter=500))
    elif s0 < 0 and start > 0:
        lo = start / 2
        for _ in range(60):
            if score(lo) > 0:
                break
            lo /= 2
        else:
            lo = 0.0
        tau2 = 0.0 if score(lo) <= 0 else float(brentq(score, lo, start, xtol=_XTOL, rtol=_RTOL, maxiter=500))
    else:
        tau2 = start
    # A root of the score may be a local maximum below the value at the boundary.
    if tau2 > 0 and _loglik(y, v, X, 0.0, reml) > _loglik(y, v, X, tau2, reml):
        return 0.0
    return tau2


def _q_root(y: FloatArray, v: FloatArray, X: FloatArray, target: float) -> float:
    """τ² solving Q(τ²) = target, or 0 when Q(0) is already at or below target."""

    def f(t: float) -> float:
        return generalized_q(y, v, X, t) - target

    if f(0.0) <= 0:
        return 0.0
    return _first_root(f, _scale(y, v))


def estimate_tau2(y: FloatArray, v: FloatArray, X: FloatArray, method: str) -> float:
    """τ² for ``method`` (one of :data:`METHODS`) given effects, variances and design matrix."""
    k, p = X.shape
    if method == "EE":
        return 0.0
    if method in ("DL", "HS"):
        fe = wls(y, 1.0 / v, X)
        est = (fe.q - (k - p)) / trace_p(fe, X) if method == "DL" else (fe.q - k) / float(fe.w.sum())
        return max(0.0, float(est))
    if method == "HE":
        ols = wls(y, np.ones(k), X)
        tr_pv = float(v.sum() - np.sum(ols.cov * ((X.T * v) @ X)))
        return max(0.0, (float(ols.resid @ ols.resid) - tr_pv) / (k - p))
    if method == "SJ":
        start = float(np.var(y))
        return max(0.0, start * fit_at(y, v, X, start).q / (k - p))
    if method in ("PM", "EB"):
        return _q_root(y, v, X, float(k - p))
    if method in ("ML", "REML"):
        return _likelihood_root(y, v, X, reml=method == "REML")
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _chi2_ppf(q: float, df: float) -> float:
    """scipy.stats.chi2.ppf(q, df), by the same formula (2·P⁻¹(df/2, q)): equal to the last bit."""
    return float(2 * gammaincinv(df / 2, q))


def tau2_qprofile_ci(
    y: FloatArray, v: FloatArray, X: FloatArray, tau2: float, level: float = 0.95
) -> tuple[float, float]:
    """Q-profile interval for τ²: the τ² values where Q(τ²) meets the χ²(k−p) quantiles.

    Like metafor's ``confint``, the search is limited to [0, max(100, 10·τ̂²)]: a bound that
    would lie beyond is reported as that limit, and a bound below 0 as 0.
    """
    k, p = X.shape
    alpha = 1 - level
    upper_limit = max(100.0, 10 * tau2)
    q0 = generalized_q(y, v, X, 0.0)
    q_max = generalized_q(y, v, X, upper_limit)

    def bound(target: float) -> float:
        if q0 < target:
            return 0.0
        if q_max > target:
            return upper_limit
        return float(
            brentq(lambda t: generalized_q(y, v, X, t) - target, 0.0, upper_limit, xtol=_XTOL, rtol=_RTOL)
        )

    lower = bound(_chi2_ppf(1 - alpha / 2, k - p))
    upper = bound(_chi2_ppf(alpha / 2, k - p))
    return lower, upper
