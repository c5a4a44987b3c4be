"""Weighted least squares pieces shared by every estimator.

Everything is written in terms of the k-vector of weights and p×p matrices, so a fit costs
O(k·p²) and never builds the k×k projection matrix P = W − W X (XᵀWX)⁻¹ XᵀW; traces of P and
P² are expanded into p×p products instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Wls:
    """A weighted least-squares fit of ``y`` on ``X`` with weights ``w``."""

    w: FloatArray
    beta: FloatArray
    cov: FloatArray  # (XᵀWX)⁻¹
    resid: FloatArray

    @property
    def q(self) -> float:
        """The weighted residual sum of squares, yᵀPy."""
        return float(self.w @ self.resid**2)


def wls(y: FloatArray, w: FloatArray, X: FloatArray) -> Wls:
    xtw = X.T * w
    # One coefficient (the usual meta-analysis): a division is much cheaper than a 1×1 inverse.
    cov = 1.0 / (xtw @ X) if X.shape[1] == 1 else np.linalg.inv(xtw @ X)
    beta = cov @ (xtw @ y)
    return Wls(w, beta, cov, y - X @ beta)


def fit_at(y: FloatArray, v: FloatArray, X: FloatArray, tau2: float) -> Wls:
    """WLS with inverse-variance weights 1/(vᵢ + τ²)."""
    return wls(y, 1.0 / (v + tau2), X)


def trace_p(fit: Wls, X: FloatArray) -> float:
    """tr(P) = Σw − tr((XᵀWX)⁻¹ XᵀW²X)."""
    w = fit.w
    return float(w.sum() - np.sum(fit.cov * ((X.T * w**2) @ X)))
