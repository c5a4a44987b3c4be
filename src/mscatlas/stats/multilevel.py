"""Multilevel meta-analysis with nested random effects (metafor's ``rma.mv(random = ~ 1 | outer/inner)``).

Model: yᵢ = xᵢβ + u_outer(i) + u_inner(i) + εᵢ with εᵢ ~ N(0, vᵢ) known, u_outer ~ N(0, σ₁²)
for each outer group (a study, a lab) and u_inner ~ N(0, σ₂²) for each inner group within an
outer one (an outcome within a study). The marginal covariance is
M = diag(v) + σ₁² Z₁Z₁ᵀ + σ₂² Z₂Z₂ᵀ, and β is the generalised least-squares fit with weights
W = M⁻¹. σ₁², σ₂² maximise the log-likelihood (ML) or the restricted one (REML), written as
metafor writes them (``logLik`` is comparable number for number).

Why written here: no maintained Python library fits this model with known sampling variances.
statsmodels' MixedLM estimates the residual variance instead of taking vᵢ as known; PyMARE
has no multilevel model. The fit is dense (k×k matrices): curated outcome sets are at most a
few thousand rows.

Linear algebra runs on one BLAS thread (``threadpoolctl``): the matrices are small, and a
multithreaded BLAS on a busy machine made a fit ten times slower than a single thread.

The variance components are found by Fisher scoring on σ² ≥ 0 (the expected information is
½·tr(P Gᵣ P Gₛ) with Gᵣ = ZᵣZᵣᵀ and P the REML projection, or W for ML), with step halving
so the likelihood never falls, and a component whose score is negative at 0 held at 0. It
stops when the step is below 1e-13 relative, i.e. at the exact optimum; metafor's nlminb
stops earlier (relative change of the objective 1e-10), which the alignment tests allow for.

Profile-likelihood intervals for each σ² follow metafor's ``confint.rma.mv``: the bounds
where −2·(profile log-likelihood − maximum) reaches the χ²₁ quantile, searched on
[0, max(10, 100·σ̂²)]; a bound at an end of that range is reported as the end.

Cluster-robust inference (CR2, Satterthwaite, HTZ) lives in :mod:`mscatlas.stats.robust`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, special
from scipy import stats as sps
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits

from mscatlas.stats._wls import FloatArray, wls
from mscatlas.stats.effect_sizes import InputError
from mscatlas.stats.meta_model import CoefficientInference, design_matrix

if TYPE_CHECKING:
    from mscatlas.stats.robust import RobustResult

__all__ = ["MV_METHODS", "MultilevelResult", "rma_mv"]

MV_METHODS = ("REML", "ML")
_STEP_RTOL = 1e-13
_MAX_ITER = 2000
_BRENT_XTOL = 1e-14
_BRENT_RTOL = 1e-12


@dataclass(frozen=True)
class _Data:
    """What a likelihood evaluation needs: effects, variances, design and group indicators."""

    y: FloatArray
    v: FloatArray
    X: FloatArray
    Z: tuple[FloatArray, ...]  # one k×n indicator matrix per variance component
    reml: bool
    blocks: tuple[np.ndarray, ...]  # row indices of each outer group: M is block-diagonal

    def inverse_marginal(self, sigma2: FloatArray) -> tuple[FloatArray, float]:
        """W = M⁻¹ and log|M|, block by block (outer groups are independent)."""
        k = self.y.size
        W = np.zeros((k, k))
        logdet = 0.0
        for idx in self.blocks:
            Mj = np.diag(self.v[idx])
            for s, Z in zip(sigma2, self.Z, strict=True):
                Zj = Z[idx]
                Mj += s * (Zj @ Zj.T)
            L = np.linalg.cholesky(Mj)
            Linv = linalg.solve_triangular(L, np.eye(idx.size), lower=True)
            W[np.ix_(idx, idx)] = Linv.T @ Linv
            logdet += 2.0 * float(np.sum(np.log(np.diag(L))))
        return W, logdet


@dataclass(frozen=True)
class _Eval:
    """The GLS fit and log-likelihood at one value of the variance components."""

    loglik: float
    beta: FloatArray
    vb: FloatArray  # (XᵀWX)⁻¹
    W: FloatArray
    Py: FloatArray  # P y = W (y − Xβ)
    P: FloatArray  # the REML projection (ML: W)


def _evaluate(d: _Data, sigma2: FloatArray) -> _Eval:
    k, p = d.X.shape
    W, logdet_m = d.inverse_marginal(sigma2)
    xtw = d.X.T @ W
    xtwx = xtw @ d.X
    vb = np.linalg.inv(xtwx)
    beta = vb @ (xtw @ d.y)
    resid = d.y - d.X @ beta
    Py = W @ resid
    rss = float(resid @ Py)
    if d.reml:
        ll = (
            -0.5 * (k - p) * np.log(2 * np.pi)
            + 0.5 * float(np.linalg.slogdet(d.X.T @ d.X)[1])
            - 0.5 * logdet_m
            - 0.5 * float(np.linalg.slogdet(xtwx)[1])
            - 0.5 * rss
        )
        P = W - xtw.T @ vb @ xtw
    else:
        ll = -0.5 * k * np.log(2 * np.pi) - 0.5 * logdet_m - 0.5 * rss
        P = W
    return _Eval(float(ll), beta, vb, W, Py, P)


def _score_info(d: _Data, e: _Eval) -> tuple[FloatArray, FloatArray]:
    """Score and expected information of the (restricted) log-likelihood in σ²."""
    zp = [Z.T @ e.P for Z in d.Z]
    zpy = [Z.T @ e.Py for Z in d.Z]
    score = np.array(
        [-0.5 * float(np.trace(zpr @ Z)) + 0.5 * float(u @ u) for zpr, Z, u in zip(zp, d.Z, zpy, strict=True)]
    )
    m = len(d.Z)
    info = np.empty((m, m))
    for r in range(m):
        for s in range(r, m):
            info[r, s] = info[s, r] = 0.5 * float(np.sum((zp[r] @ d.Z[s]) ** 2))
    return score, info


def _maximise(d: _Data, start: FloatArray, fixed: dict[int, float] | None = None) -> tuple[FloatArray, _Eval]:
    """Fisher scoring on σ² ≥ 0 with step halving; components in ``fixed`` stay at their value."""
    fixed = fixed or {}
    sigma2 = start.copy()
    for r, val in fixed.items():
        sigma2[r] = val
    current = _evaluate(d, sigma2)
    free_all = [r for r in range(sigma2.size) if r not in fixed]
    for _ in range(_MAX_ITER):
        score, info = _score_info(d, current)
        free = [r for r in free_all if sigma2[r] > 0 or score[r] > 0]
        if not free:
            break
        step = np.zeros_like(sigma2)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        scale = max(1.0, float(np.max(sigma2)))
        moved = False
        for _ in range(60):
            trial = np.maximum(sigma2 + step, 0.0)
            cand = _evaluate(d, trial)
            if cand.loglik >= current.loglik - 1e-15 * abs(current.loglik):
                moved = True
                break
            step /= 2
        if not moved:
            break
        change = float(np.max(np.abs(trial - sigma2)))
        sigma2, current = trial, cand
        if change <= _STEP_RTOL * scale:
            break
    return sigma2, current


def _start(d: _Data) -> FloatArray:
    """A start away from the boundary: the residual variance beyond sampling error, split evenly."""
    ols = wls(d.y, np.ones(d.y.size), d.X)
    extra = float(np.mean(ols.resid**2)) - float(np.mean(d.v))
    each = max(extra, 0.01 * float(np.mean(d.v))) / len(d.Z)
    return np.full(len(d.Z), each)


@dataclass(frozen=True)
class MultilevelResult(CoefficientInference):
    """A fitted multilevel model; ``sigma2`` lists the outer level's component first."""

    method: str
    level: float
    names: tuple[str, ...]
    beta: FloatArray
    vb: FloatArray
    sigma2: tuple[float, ...]
    n_levels: tuple[int, ...]
    logLik: float
    QE: float
    QE_p: float
    QM: float
    QM_p: float
    QM_df: int
    yi: FloatArray = field(repr=False)
    vi: FloatArray = field(repr=False)
    X: FloatArray = field(repr=False)
    groups: tuple[FloatArray, ...] = field(repr=False)  # integer codes, outer level first
    W: FloatArray = field(repr=False)

    test = "z"

    @property
    def zval(self) -> FloatArray:
        return self.stat

    @property
    def tau2(self) -> float:
        """Total between-outcome variance (σ₁² + σ₂²): what one new outcome varies by."""
        return float(sum(self.sigma2))

    @property
    def I2(self) -> float:
        """Share (%) of the total variance that lies between outcomes rather than in sampling
        error: 100·Σσ² / (Σσ² + ṽ) with the typical sampling variance ṽ = (k − p)/tr(P) and
        P = V⁻¹ − V⁻¹X(XᵀV⁻¹X)⁻¹XᵀV⁻¹, V = diag(v) (the multilevel I² of metafor's FAQ)."""
        w = 1.0 / self.vi
        xtw = self.X.T * w
        tr_p = float(w.sum() - np.sum(np.linalg.inv(xtw @ self.X) * ((self.X.T * w**2) @ self.X)))
        typical = (self.k - self.p) / tr_p
        return 100.0 * self.tau2 / (self.tau2 + typical)

    def _data(self) -> _Data:
        return _make_data(self.yi, self.vi, self.X, self.groups, self.method == "REML")

    def sigma2_ci(self, component: int) -> tuple[float, float]:
        """Profile-likelihood CI for σ² number ``component`` (0: outer, 1: inner)."""
        d = self._data()
        est = np.array(self.sigma2)
        vc = float(est[component])
        target = float(sps.chi2.ppf(self.level, 1))

        def excess(val: float) -> float:
            _, e = _maximise(d, est, {component: val})
            return -2.0 * (e.loglik - self.logLik) - target

        vc_max = 10.0 if vc <= np.sqrt(np.finfo(float).eps) else max(10.0, 100 * vc)
        with threadpool_limits(limits=1, user_api="blas"):
            if excess(0.0) < 0:
                lower = 0.0
            else:
                lower = float(brentq(excess, 0.0, vc, xtol=_BRENT_XTOL, rtol=_BRENT_RTOL))
            if excess(vc_max) < 0:
                upper = vc_max
            else:
                upper = float(brentq(excess, vc, vc_max, xtol=_BRENT_XTOL, rtol=_BRENT_RTOL))
        return lower, upper

    def robust(self, cluster: ArrayLike | None = None) -> RobustResult:
        """CR2 cluster-robust inference (``robust(fit, cluster, clubSandwich=TRUE)``);
        clusters default to the outer level."""
        from mscatlas.stats.robust import robust_cr2

        return robust_cr2(self, self.groups[0] if cluster is None else cluster)


def _indicators(codes: FloatArray) -> FloatArray:
    levels = np.unique(codes)
    return (codes[:, None] == levels[None, :]).astype(float)


def _make_data(
    y: FloatArray, v: FloatArray, X: FloatArray, groups: tuple[FloatArray, ...], reml: bool
) -> _Data:
    blocks = tuple(np.flatnonzero(groups[0] == g) for g in np.unique(groups[0]))
    return _Data(y, v, X, tuple(_indicators(g) for g in groups), reml, blocks)


def _codes(labels: Sequence[object], what: str) -> FloatArray:
    text = [str(x) for x in labels]
    for i, t in enumerate(text, start=1):
        if t.strip() == "" or t == "nan":
            raise InputError(f"row {i}: the {what} grouping value is empty", row=i - 1, column=what)
    _, codes = np.unique(np.array(text, dtype=object), return_inverse=True)
    return codes.astype(float)


def rma_mv(
    yi: ArrayLike,
    vi: ArrayLike,
    outer: Sequence[object],
    inner: Sequence[object],
    mods: ArrayLike | None = None,
    *,
    method: str = "REML",
    mod_names: Sequence[str] | None = None,
    level: float = 0.95,
) -> MultilevelResult:
    """Fit ``random = ~ 1 | outer/inner``: inner groups are nested in outer ones (an inner
    label is only compared within its outer group, as in R's ``outer/inner``)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    method = method.upper()
    if method not in MV_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(MV_METHODS)}")
    if y.shape != v.shape or y.ndim != 1:
        raise InputError("yi and vi must be vectors of the same length")
    k = y.size
    if len(outer) != k or len(inner) != k:
        raise InputError(f"the grouping columns have {len(outer)} and {len(inner)} rows for {k} outcomes")
    bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(v) | (v <= 0))
    if bad.size:
        raise InputError(f"row {bad[0] + 1}: yi must be finite and vi positive", row=int(bad[0]), column="vi")
    outer_codes = _codes(outer, "outer")
    inner_codes = _codes([f"{o}\x1f{i}" for o, i in zip(outer, inner, strict=True)], "inner")
    X, names = design_matrix(k, mods, mod_names, unit="outcomes")
    p = X.shape[1]
    if k <= p:
        raise InputError(f"k = {k} outcomes cannot fit {p} coefficient(s)")
    if p > 1 and np.linalg.matrix_rank(X) < p:
        raise InputError("the moderators are collinear (or constant)")
    groups = (outer_codes, inner_codes)
    n_levels = tuple(int(np.unique(g).size) for g in groups)
    if n_levels[0] < 2:
        raise InputError("the outer level has a single group: its variance cannot be estimated")

    d = _make_data(y, v, X, groups, method == "REML")
    with threadpool_limits(limits=1, user_api="blas"):
        sigma2, fit = _maximise(d, _start(d))

    fe = wls(y, 1.0 / v, X)
    qe = max(0.0, fe.q)
    qe_p = float(special.chdtrc(k - p, qe))
    btt = np.arange(1, p) if p > 1 else np.array([0])
    b = fit.beta[btt]
    qm = float(b @ np.linalg.solve(fit.vb[np.ix_(btt, btt)], b))
    qm_p = float(special.chdtrc(btt.size, qm))
    return MultilevelResult(
        method,
        level,
        names,
        fit.beta,
        fit.vb,
        tuple(float(s) for s in sigma2),
        n_levels,
        fit.loglik,
        qe,
        qe_p,
        qm,
        qm_p,
        int(btt.size),
        y,
        v,
        X,
        groups,
        fit.W,
    )
