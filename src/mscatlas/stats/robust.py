"""Cluster-robust inference for multilevel models with the CR2 small-sample correction.

The same numbers as metafor's ``robust(fit, cluster, clubSandwich = TRUE)``, which calls
clubSandwich's ``vcovCR(type = "CR2")``, ``coef_test``/``conf_int`` with Satterthwaite degrees
of freedom and ``Wald_test(test = "HTZ")`` (Pustejovsky & Tipton 2018, J Bus Econ Stat 36:672;
Tipton & Pustejovsky 2015, J Educ Behav Stat 40:604). Written here because no Python library
implements CR2 with these degrees of freedom for a meta-analytic working model.

With working covariance Θⱼ = Mⱼ (the fitted marginal covariance of cluster j, whose inverse
is the weight matrix), bread B = (XᵀWX)⁻¹ and residuals eⱼ:
- adjustment Aⱼ = Rⱼᵀ (Rⱼ (I − Xⱼ B Xⱼᵀ Wⱼ) Θⱼ Rⱼᵀ)^(-1/2) Rⱼ, with Θⱼ = RⱼᵀRⱼ (Cholesky),
  the symmetric inverse square root taken by eigenvalues, those below 1e-12 set to 0;
- V_CR2 = B (Σⱼ Xⱼᵀ Wⱼ Aⱼ eⱼ eⱼᵀ Aⱼ Wⱼ Xⱼ) B;
- with Eⱼ = B Xⱼᵀ Wⱼ Aⱼ and Fⱼ = Eⱼ Xⱼ, the array P[a, b, i, j] = δᵢⱼ (Eᵢ Θᵢ Eᵢᵀ)ₐᵦ − (Fᵢ B Fⱼᵀ)ₐᵦ
  gives the Satterthwaite degrees of freedom of coefficient a, 2·(Σᵢ Pₐₐᵢᵢ)² / (2·Σᵢⱼ Pₐₐᵢⱼ²),
  and, for q constraints C, the HTZ test: Ω = Σᵢ C Pᵢᵢ Cᵀ, B̃ = Ω^(-1/2) C P Cᵀ Ω^(-1/2),
  η = q(q+1) / Σₛₜ Σᵢⱼ (B̃ₛₜᵢⱼ B̃ₜₛᵢⱼ + B̃ₛₛᵢⱼ B̃ₜₜᵢⱼ), F = (η − q + 1)/(η q) · Q on (q, η − q + 1) df.
Intercept-only models report the squared t statistic with its Satterthwaite df, as metafor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from threadpoolctl import threadpool_limits

from mscatlas.stats._wls import FloatArray
from mscatlas.stats.effect_sizes import InputError

if TYPE_CHECKING:
    from mscatlas.stats.multilevel import MultilevelResult

__all__ = ["RobustResult", "robust_cr2"]

_EIG_TOL = 1e-12


@dataclass(frozen=True)
class RobustResult:
    """CR2 covariance of the coefficients with Satterthwaite t tests and the HTZ Wald test."""

    names: tuple[str, ...]
    beta: FloatArray
    vcov: FloatArray
    df: FloatArray
    n_clusters: int
    QM: float
    QM_df: tuple[int, float]
    QM_p: float
    level: float

    @property
    def se(self) -> FloatArray:
        return np.sqrt(np.diag(self.vcov))

    @property
    def tval(self) -> FloatArray:
        return self.beta / self.se

    @property
    def pval(self) -> FloatArray:
        return 2 * sps.t.sf(np.abs(self.tval), self.df)

    @property
    def ci_lb(self) -> FloatArray:
        return self.beta - sps.t.ppf(1 - (1 - self.level) / 2, self.df) * self.se

    @property
    def ci_ub(self) -> FloatArray:
        return self.beta + sps.t.ppf(1 - (1 - self.level) / 2, self.df) * self.se


def _sym_power(a: FloatArray, power: float) -> FloatArray:
    values, vectors = np.linalg.eigh(a)
    scaled = np.where(values > _EIG_TOL, np.abs(values) ** power, 0.0)
    return (vectors * scaled) @ vectors.T


def _clusters(fit: MultilevelResult, cluster: ArrayLike) -> list[np.ndarray]:
    labels = np.asarray([str(c) for c in np.asarray(cluster, dtype=object)])
    if labels.size != fit.k:
        raise InputError(f"the cluster variable has {labels.size} values for {fit.k} outcomes")
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    if len(members) < 2:
        raise InputError("cluster-robust inference needs at least two clusters")
    # Every random effect must lie within one cluster, or the marginal covariance is not
    # block-diagonal by cluster (clubSandwich refuses the same case).
    for codes in fit.groups:
        for g in np.unique(codes):
            if np.unique(labels[codes == g]).size > 1:
                raise InputError("the random effects are not nested within the clustering variable")
    return members


def robust_cr2(fit: MultilevelResult, cluster: ArrayLike) -> RobustResult:
    """CR2 cluster-robust inference for ``fit`` with clusters given by ``cluster`` (one label per row)."""
    members = _clusters(fit, cluster)
    with threadpool_limits(limits=1, user_api="blas"):
        return _cr2(fit, members)


def _cr2(fit: MultilevelResult, members: list[np.ndarray]) -> RobustResult:
    X, W, B = fit.X, fit.W, fit.vb
    resid = fit.yi - X @ fit.beta
    theta_full = np.linalg.inv(W)
    p = fit.p
    J = len(members)
    E_list, F_list, EThE = [], [], []
    meat = np.zeros((p, p))
    for idx in members:
        Xj, Wj, Th = X[idx], W[np.ix_(idx, idx)], theta_full[np.ix_(idx, idx)]
        R = np.linalg.cholesky(Th).T  # upper: Θ = RᵀR
        ih = np.eye(idx.size) - Xj @ B @ Xj.T @ Wj
        G = R @ ih @ Th @ R.T
        A = R.T @ _sym_power((G + G.T) / 2, -0.5) @ R
        est = Xj.T @ Wj @ A  # p × nⱼ
        comp = est @ resid[idx]
        meat += np.outer(comp, comp)
        Ej = B @ est
        E_list.append(Ej)
        F_list.append(Ej @ Xj)
        EThE.append(Ej @ Th @ Ej.T)
    vcov = B @ meat @ B
    F = np.stack(F_list)  # J × p × p
    # P[a, b, i, j]
    cross = np.einsum("iac,cd,jbd->abij", F, B, F)
    P = -cross
    diag = np.stack(EThE)  # J × p × p
    for i in range(J):
        P[:, :, i, i] += diag[i]
    df = np.empty(p)
    for a in range(p):
        paa = P[a, a]
        df[a] = float(np.trace(paa)) ** 2 / float(np.sum(paa**2))

    btt = np.arange(1, p) if p > 1 else np.array([0])
    if p == 1:
        t = fit.beta[0] / np.sqrt(vcov[0, 0])
        qm = float(max(0.0, t**2))
        qm_df: tuple[int, float] = (1, float(df[0]))
        qm_p = float(2 * sps.t.sf(abs(t), df[0]))
    else:
        qm, qm_df, qm_p = _htz(fit.beta, vcov, P, btt)
    return RobustResult(fit.names, fit.beta, vcov, df, J, qm, qm_df, qm_p, fit.level)


def _htz(
    beta: FloatArray, vcov: FloatArray, P: np.ndarray, btt: np.ndarray
) -> tuple[float, tuple[int, float], float]:
    q = btt.size
    C = np.eye(beta.size)[btt]
    Pc = np.einsum("sa,abij,tb->stij", C, P, C)
    omega = np.einsum("stii->st", Pc)
    omega_nsqrt = _sym_power(omega, -0.5)
    Bt = np.einsum("su,uvij,vt->stij", omega_nsqrt, Pc, omega_nsqrt)
    var_mat = np.einsum("stij,tsij->st", Bt, Bt) + np.einsum("ssij,ttij->st", Bt, Bt)
    nu = q * (q + 1) / float(np.sum(var_mat))
    cb = C @ beta
    Q = float(cb @ np.linalg.solve(C @ vcov @ C.T, cb))
    delta = max((nu - q + 1) / nu, 0.0)
    df_denom = nu - q + 1
    F = delta * Q / q
    p_val = float(sps.f.sf(F, q, df_denom)) if df_denom > 0 else float("nan")
    return max(0.0, F), (q, float(df_denom)), p_val
