"""Hierarchical calibration of the in vitro model: partial pooling and study random effects.

Why not the flat fit alone
    :func:`mscatlas.sim.fit.fit` gives every per-source and per-class log-factor a fixed prior
    (sd 1.0 and 0.5, chosen by hand) and treats items of one study as independent. Items of one
    study share cell lines, assays and a lab, so they agree with each other far more than with
    other studies (149 of the 179 in vitro studies report a single direction), and a fit that
    ignores this lets a study with ten items pull a source's factor as hard as ten studies would.

The model
    The latent read-out of item ``i`` (threshold units, as in :mod:`mscatlas.sim.fit`) is

        z_i = S_i(A_i theta) + u_endpoint(i) + b_study(i)

    ``S_i`` is the simulated read-out of the item's protocol at the log-strengths ``A_i theta``
    (the same surrogate grids and per-source / per-class factors as the flat fit); ``u`` is an
    offset per endpoint (the model reads migration, invasion and the other endpoints without a
    read-out of their own from the viable count, and the offset lets the data say how a lab's
    calls on that endpoint sit against the simulated count; without it the model cannot call
    "promotes": the stimulatory channel saturates above z = -1 on every shipped protocol); and
    ``b`` is the study's random effect. The observed direction follows the flat fit's ordered
    logistic in ``z`` (temperature :data:`~mscatlas.sim.fit.TEMPERATURE`).

    Partial pooling: ``theta_source ~ N(0, sd_source^2)``, ``theta_class ~ N(0, sd_class^2)``,
    ``u ~ N(0, sd_endpoint^2)``, ``b ~ N(0, sd_study^2)``, all four sds estimated:

    - the study effects are integrated out of each study's likelihood by Gauss-Hermite
      quadrature (:data:`N_QUAD` nodes), so ``sd_study`` is a maximum (marginal) likelihood
      estimate, optimised jointly with the factors and offsets (L-BFGS-B, analytic gradient);
    - ``sd_source``, ``sd_class`` and ``sd_endpoint`` are empirical-Bayes estimates: the marginal
      likelihood over the factors and offsets is approximated by Laplace's method and maximised
      by its EM fixed point ``sd_g^2 = (sum phi_j^2 + sum (H^-1)_jj) / n_g`` over the parameters
      ``j`` of group ``g``, each step re-solving the penalised likelihood (warm-started). ``H`` is
      the information at the optimum, estimated from the studies' score vectors (BHHH, the
      studies being the independent units) plus the prior precision, so no second derivative of
      the surrogate is needed. The first solve starts from the assumed values (zeros), then from
      seeded draws, since the surrogate makes the likelihood non-convex.

Prediction for a study not in the fit
    Its random effect is unknown, so the predictive probabilities integrate it out:
    ``P(y) = E_b[P(y | S(A theta) + u + b)]`` with ``b ~ N(0, sd_study^2)``, by Gauss-Hermite
    quadrature (:data:`N_QUAD` nodes). An endpoint no training item has gets ``u = 0``, a source
    with no training item its assumed factor.

Hand-written because no kept library fits ordinal likelihoods through a numerical surrogate
with crossed pooling groups; scipy supplies the optimiser and the linear algebra.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from mscatlas.sim.calibration import Calibration
from mscatlas.sim.fit import (
    CLASS_BOUND,
    DIRECTIONS,
    N_STARTS,
    PRIOR_SD_CLASS,
    PRIOR_SD_SOURCE,
    READOUTS,
    SOURCE_BOUND,
    START_SPREAD,
    Surfaces,
    Target,
    direction_probabilities,
    factor_design,
    loglik_terms,
    predict_z,
)

__all__ = [
    "GROUPS",
    "N_QUAD",
    "HierarchicalFit",
    "fit_hierarchical",
    "predictive_probabilities",
    "readout_probabilities",
]

GROUPS = ("source", "class", "endpoint", "study")
SD_START = {"source": PRIOR_SD_SOURCE, "class": PRIOR_SD_CLASS, "endpoint": 1.0, "study": 1.0}
SD_FLOOR, SD_CEIL = 0.02, 5.0
OFFSET_BOUND = 10.0
EM_MAX_ITER = 80
EM_TOL = 1e-3  # largest change of a pooling sd (absolute) that counts as converged
N_QUAD = 20


@dataclass(frozen=True)
class _Design:
    names: list[str]  # log-factors, then endpoint offsets
    group: np.ndarray  # GROUPS index of each parameter
    n_theta: int  # the first n_theta parameters are the model's log-factors
    A: np.ndarray  # (n_targets, 3, n_theta)
    which: np.ndarray  # flat surface index per target
    endpoint_col: np.ndarray  # column of the target's endpoint offset
    study: np.ndarray  # study index per target
    n_studies: int
    observed: np.ndarray
    bounds: list[tuple[float, float]]
    counts: dict[str, int]


def _design(targets: Sequence[Target], surfaces: Surfaces) -> _Design:
    theta_names, used, A = factor_design(targets)
    endpoints = sorted({tg.endpoint for tg in targets})
    studies = sorted({tg.study for tg in targets})
    names = [*theta_names, *(f"endpoint.{e}" for e in endpoints)]
    col = {n: j for j, n in enumerate(names)}
    bounds = [
        (-CLASS_BOUND, CLASS_BOUND)
        if n.startswith("class.")
        else (-SOURCE_BOUND, SOURCE_BOUND)
        if n.startswith("source.")
        else (-OFFSET_BOUND, OFFSET_BOUND)
        for n in names
    ]
    position = {s: k for k, s in enumerate(studies)}
    return _Design(
        names=names,
        group=np.array([GROUPS.index(n.split(".")[0]) for n in names], dtype=int),
        n_theta=len(theta_names),
        A=A,
        which=np.array(
            [surfaces.index[tg.key] * 3 + READOUTS.index(tg.readout) for tg in targets], dtype=int
        ),
        endpoint_col=np.array([col[f"endpoint.{tg.endpoint}"] for tg in targets], dtype=int),
        study=np.array([position[tg.study] for tg in targets], dtype=int),
        n_studies=len(studies),
        observed=np.array([DIRECTIONS.index(tg.observed) for tg in targets], dtype=int),
        bounds=[*bounds, (math.log(SD_FLOOR), math.log(SD_CEIL))],  # the last: log sd_study
        counts=used | dict(Counter(f"endpoint.{tg.endpoint}" for tg in targets)),
    )


_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(N_QUAD)
_LOG_W = np.log(_WEIGHTS / math.sqrt(math.pi))


def _objective(x: np.ndarray, d: _Design, surfaces: Surfaces, prec: np.ndarray) -> tuple[float, np.ndarray]:
    """Penalised negative marginal log-likelihood (study effects integrated out) and its gradient.

    ``x`` holds the log-factors, the endpoint offsets and, last, ``ln sd_study``.
    """
    phi, log_tau = x[:-1], x[-1]
    tau = math.exp(log_tau)
    coords = d.A @ phi[: d.n_theta]
    s, ds = surfaces.evaluate(d.which, coords)
    z = s + phi[d.endpoint_col]
    shift = math.sqrt(2.0) * tau * _NODES  # (q,)
    ll, dll = loglik_terms((z[:, None] + shift[None, :]).ravel(), np.repeat(d.observed, N_QUAD))
    ll, dll = ll.reshape(-1, N_QUAD), dll.reshape(-1, N_QUAD)
    per_study = np.zeros((d.n_studies, N_QUAD))
    np.add.at(per_study, d.study, ll)
    per_study += _LOG_W[None, :]
    top = per_study.max(axis=1, keepdims=True)
    log_l = top[:, 0] + np.log(np.exp(per_study - top).sum(axis=1))
    post = np.exp(per_study - log_l[:, None])  # posterior weights of the nodes, per study
    r = post[d.study]  # (n_targets, q)
    dz = -(r * dll).sum(axis=1)  # d(-log L)/dz per target
    grad = np.zeros_like(x)
    grad[: d.n_theta] = np.einsum("t,td,tdp->p", dz, ds, d.A)
    grad[d.n_theta : len(phi)] = np.bincount(
        d.endpoint_col - d.n_theta, weights=dz, minlength=len(phi) - d.n_theta
    )
    grad[-1] = -float(np.sum(r * dll * shift[None, :]))
    grad[:-1] += prec * phi
    value = -float(log_l.sum()) + 0.5 * float(np.sum(prec * phi**2))
    return value, grad


def _solve(x0: np.ndarray, d: _Design, surfaces: Surfaces, prec: np.ndarray) -> Any:
    return minimize(
        _objective,
        x0,
        args=(d, surfaces, prec),
        jac=True,
        method="L-BFGS-B",
        bounds=d.bounds,
        options={"maxiter": 3000, "gtol": 1e-5, "ftol": 1e-11},
    )


def _information(x: np.ndarray, d: _Design, surfaces: Surfaces, prec: np.ndarray) -> np.ndarray:
    """Observed information of the factors and offsets: outer products of the studies' scores.

    Studies are the independent units of the marginal likelihood, so ``sum_s g_s g_s'`` (the
    BHHH estimate, ``g_s`` the gradient of study ``s``'s term) estimates the information at the
    optimum without second derivatives of the surrogate; the prior adds ``diag(1/sd^2)``.
    """
    phi, tau = x[:-1], math.exp(x[-1])
    coords = d.A @ phi[: d.n_theta]
    s, ds = surfaces.evaluate(d.which, coords)
    z = s + phi[d.endpoint_col]
    shift = math.sqrt(2.0) * tau * _NODES
    ll, dll = loglik_terms((z[:, None] + shift[None, :]).ravel(), np.repeat(d.observed, N_QUAD))
    ll, dll = ll.reshape(-1, N_QUAD), dll.reshape(-1, N_QUAD)
    per_study = np.zeros((d.n_studies, N_QUAD))
    np.add.at(per_study, d.study, ll)
    per_study += _LOG_W[None, :]
    post = np.exp(per_study - per_study.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    dz = -(post[d.study] * dll).sum(axis=1)
    jac = np.zeros((len(z), len(phi)))
    jac[:, : d.n_theta] = np.einsum("td,tdp->tp", ds, d.A)
    jac[np.arange(len(z)), d.endpoint_col] = 1.0
    scores = np.zeros((d.n_studies, len(phi)))
    np.add.at(scores, d.study, dz[:, None] * jac)
    return scores.T @ scores + np.diag(prec)


@dataclass(frozen=True)
class HierarchicalFit:
    """The fitted factors, offsets and pooling sds, with how the fit went."""

    calibration: Calibration
    params: dict[str, float]
    sd: dict[str, float]
    log_marginal: float  # Laplace approximation over the factors and offsets, up to a constant
    em_iterations: int
    converged: bool
    n_targets: int
    counts: dict[str, int] = field(default_factory=dict)


def fit_hierarchical(
    targets: Sequence[Target],
    surfaces: Surfaces,
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    provenance: dict[str, Any] | None = None,
) -> HierarchicalFit:
    """Empirical-Bayes fit of the model of the module doc (deterministic for a seed)."""
    if not targets:
        raise ValueError("no targets to calibrate on")
    d = _design(targets, surfaces)
    k = len(d.names)
    present = [g for g in range(len(GROUPS) - 1) if np.any(d.group == g)]
    sd = np.array([SD_START[g] for g in GROUPS], dtype=float)
    rng = np.random.default_rng(seed)
    low = np.array([b[0] for b in d.bounds[: d.n_theta]])
    high = np.array([b[1] for b in d.bounds[: d.n_theta]])
    starts = []
    for n in range(n_starts):
        x0 = np.zeros(k + 1)
        x0[-1] = math.log(SD_START["study"])
        if n:
            x0[: d.n_theta] = np.clip(
                rng.normal(0.0, 1.0, d.n_theta),
                np.maximum(low, -START_SPREAD),
                np.minimum(high, START_SPREAD),
            )
        starts.append(x0)
    prec = 1.0 / sd[d.group] ** 2
    best = None
    for x0 in starts:
        res = _solve(x0, d, surfaces, prec)
        if best is None or res.fun < best.fun - 1e-9:
            best = res
    assert best is not None
    x = best.x
    converged = False
    iterations = 0
    for iterations in range(1, EM_MAX_ITER + 1):  # noqa: B007 - the count is reported
        inv_diag = np.diag(np.linalg.inv(_information(x, d, surfaces, prec)))
        new = sd.copy()
        for g in present:
            mask = d.group == g
            new[g] = math.sqrt((float(np.sum(x[:k][mask] ** 2)) + float(np.sum(inv_diag[mask]))) / mask.sum())
        new = np.clip(new, SD_FLOOR, SD_CEIL)
        # Absolute, not relative: an sd the data shrink towards zero moves ever more slowly (EM
        # is sublinear at the boundary), and a change below 1e-3 no longer moves a prediction.
        change = float(np.max(np.abs(new[present] - sd[present])))
        sd = new
        prec = 1.0 / sd[d.group] ** 2
        x = _solve(x, d, surfaces, prec).x
        if change < EM_TOL:
            converged = True
            break
    value = _objective(x, d, surfaces, prec)[0]
    _sign, logdet = np.linalg.slogdet(_information(x, d, surfaces, prec))
    log_marginal = -value - float(np.sum(np.log(sd[d.group]))) - 0.5 * logdet
    params = {n: float(v) for n, v in zip(d.names, x[:k], strict=True)}
    source: dict[str, dict[str, float]] = {}
    klass: dict[str, dict[str, float]] = {}
    for name in d.names[: d.n_theta]:
        kind, grp, key = name.split(".")
        (source if kind == "source" else klass).setdefault(grp, {})[key] = params[name]
    sds = {GROUPS[g]: float(sd[g]) for g in present} | {"study": math.exp(float(x[-1]))}
    prov = dict(provenance or {})
    prov["n_items"] = dict(d.counts)
    calibration = Calibration(
        source,
        klass,
        prov,
        endpoint_offset={n.split(".", 1)[1]: v for n, v in params.items() if n.startswith("endpoint.")},
        pooling_sd=sds,
    )
    return HierarchicalFit(
        calibration=calibration,
        params=params,
        sd=sds,
        log_marginal=float(log_marginal),
        em_iterations=iterations,
        converged=converged,
        n_targets=len(targets),
        counts=dict(d.counts),
    )


def predictive_probabilities(
    targets: Sequence[Target],
    surfaces: Surfaces,
    calibration: Calibration,
    *,
    study_effects: dict[str, float] | None = None,
) -> np.ndarray:
    """P(inhibits), P(promotes), P(no_effect) of each target under a calibration: ``(n, 3)``.

    Without ``study_effects`` (items of a study the fit has not seen) the study's effect is
    integrated over ``N(0, sd_study^2)``; with them (study -> fitted effect,
    :attr:`HierarchicalFit.study_effects`) each item's study effect is added (in sample). A
    flat calibration (no pooling sds, no offsets) gives the flat fit's ordered logistic at the
    simulated read-out.
    """
    z = predict_z(targets, surfaces, calibration) + np.array(
        [calibration.endpoint_offset.get(tg.endpoint, 0.0) for tg in targets]
    )
    if study_effects is not None:
        return direction_probabilities(z + np.array([study_effects.get(tg.study, 0.0) for tg in targets]))
    return _new_study(z, calibration.pooling_sd.get("study", 0.0))


def _new_study(z: np.ndarray, tau: float) -> np.ndarray:
    """Direction probabilities at ``z`` with a study effect ``N(0, tau^2)`` integrated out."""
    if tau <= 0:
        return direction_probabilities(z)
    nodes, weights = np.polynomial.hermite.hermgauss(N_QUAD)
    shifted = z[:, None] + math.sqrt(2.0) * tau * nodes[None, :]
    probs = direction_probabilities(shifted)  # (n, N_QUAD, 3)
    return np.einsum("q,nqk->nk", weights / math.sqrt(math.pi), probs)


def readout_probabilities(
    z: float, calibration: Calibration, endpoint: str = "proliferation"
) -> dict[str, float]:
    """What a calibration says of one simulated read-out ``z`` (threshold units) for a new study.

    The endpoint's fitted offset is added and the study effect integrated out, exactly as the
    held-out validation scored the calibration; a flat calibration gives the plain ordered logistic.
    """
    shifted = np.array([z + calibration.endpoint_offset.get(endpoint, 0.0)])
    probs = _new_study(shifted, calibration.pooling_sd.get("study", 0.0))[0]
    return {d: float(p) for d, p in zip(DIRECTIONS, probs, strict=True)}
