"""The continual reassessment method (CRM, O'Quigley, Pepe & Fisher 1990), one-parameter.

Working models, with the dose labels taken from a skeleton s_1 < ... < s_K:

* ``empiric`` (power): p_i(a) = s_i ** exp(a);
* ``logistic``: p_i(a) = expit(c + exp(a) · x_i) with x_i = logit(s_i) − c and c = 3
  (dfcrm's default intercept), so that a = 0 reproduces the skeleton.

Prior a ~ N(0, σ²) with σ² = 1.34 (dfcrm's default). The toxicity estimate per dose is the
posterior mean of p_i by default; ``estimate="plugin"`` gives s_i ** exp(E[a | data]) (the
posterior mean of a plugged in), which is what dfcrm's ``crm()`` reports as ``ptox``.

Integration: Simpson's rule on one fixed grid of a (1601 points over ±max(10, 8σ)). The
integrands are smooth and bell-shaped, Simpson's error falls as the fourth power of the step,
and the prior makes the far tails negligible; above all, one grid shared by every trial turns
the likelihood of thousands of simulated trials into a single matrix product. The tests check
the grid against adaptive quadrature in mpmath.

Dose assignment: start at dose 1; after each cohort, the dose whose estimate is closest to the
target (ties to the lower), but never more than one level above the current dose (no skipping)
and never above the current dose right after a cohort with a toxicity. The MTD is the dose
that rule recommends after the last cohort. This CRM has no early stopping rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from mscatlas.trials._checks import DesignInputError, check_probabilities, check_skeleton, check_target
from mscatlas.trials.observed import DoseCounts
from mscatlas.trials.oc import OperatingCharacteristics, summarise_simulations
from mscatlas.trials.recommendation import Recommendation

__all__ = ["CrmModel", "crm_next_dose", "crm_posterior", "crm_simulate"]

Model = Literal["empiric", "logistic"]
Estimate = Literal["mean", "plugin"]

DEFAULT_PRIOR_VAR = 1.34
LOGISTIC_INTERCEPT = 3.0
GRID_POINTS = 1601  # odd, as Simpson's rule needs


def _simpson_weights(points: int, step: float) -> NDArray[np.float64]:
    w = np.ones(points)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w * step / 3.0


@dataclass(frozen=True)
class CrmModel:
    """A CRM working model: skeleton, model family, prior variance of a, and the target."""

    skeleton: tuple[float, ...]
    target: float
    model: Model = "empiric"
    prior_var: float = DEFAULT_PRIOR_VAR
    intercept: float = LOGISTIC_INTERCEPT

    def __post_init__(self) -> None:
        check_skeleton(self.skeleton)
        check_target(self.target)
        if self.model not in ("empiric", "logistic"):
            raise DesignInputError(f"model must be 'empiric' or 'logistic', got {self.model!r}")
        if not self.prior_var > 0:
            raise DesignInputError(f"prior variance must be positive, got {self.prior_var!r}")

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    def tox(self, a: NDArray[np.float64]) -> NDArray[np.float64]:
        """Toxicity probability of every dose at each value of a: shape (len(a), doses)."""
        s = np.asarray(self.skeleton)
        a = np.asarray(a, dtype=float)[:, None]
        if self.model == "empiric":
            return s[None, :] ** np.exp(a)
        x = np.log(s / (1 - s)) - self.intercept
        return expit(self.intercept + np.exp(a) * x[None, :])

    def grid(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Integration nodes for a and their weights (Simpson weight × prior density, in logs)."""
        sd = float(np.sqrt(self.prior_var))
        half = max(10.0, 8.0 * sd)
        a = np.linspace(-half, half, GRID_POINTS)
        log_w = np.log(_simpson_weights(GRID_POINTS, a[1] - a[0])) - 0.5 * a**2 / self.prior_var
        return a, log_w


def _posterior_batch(
    model: CrmModel, patients: NDArray[np.int64], toxicities: NDArray[np.int64], estimate: Estimate
) -> NDArray[np.float64]:
    """Toxicity estimates per dose for many trials at once: shape (trials, doses)."""
    a, log_w = model.grid()
    p = model.tox(a)  # (G, K)
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
        log_q = np.log1p(-p)
    # A dose with no patients contributes nothing; guard 0 × -inf when p rounds to 0 or 1.
    log_p = np.where(np.isfinite(log_p), log_p, -745.0)
    log_q = np.where(np.isfinite(log_q), log_q, -745.0)
    y = toxicities.astype(float)
    m = (patients - toxicities).astype(float)
    log_post = y @ log_p.T + m @ log_q.T + log_w[None, :]  # (S, G)
    log_post -= log_post.max(axis=1, keepdims=True)
    weight = np.exp(log_post)
    weight /= weight.sum(axis=1, keepdims=True)
    if estimate == "mean":
        return weight @ p
    return model.tox(weight @ a)  # plug-in: the posterior mean of a, one per trial


def _posterior_unique(
    model: CrmModel, patients: NDArray[np.int64], toxicities: NDArray[np.int64], estimate: Estimate
) -> NDArray[np.float64]:
    """As ``_posterior_batch``, fitting each distinct data set once (simulated trials share many)."""
    states, inverse = np.unique(np.hstack([patients, toxicities]), axis=0, return_inverse=True)
    k = patients.shape[1]
    est = _posterior_batch(model, states[:, :k], states[:, k:], estimate)
    return est[inverse.ravel()]


def crm_posterior(
    model: CrmModel, patients: Sequence[int], toxicities: Sequence[int], estimate: Estimate = "mean"
) -> NDArray[np.float64]:
    """Toxicity estimate per dose from the data (posterior mean of p_i, or the plug-in)."""
    n = np.asarray(patients, dtype=np.int64)
    y = np.asarray(toxicities, dtype=np.int64)
    if n.shape != (model.n_doses,) or y.shape != (model.n_doses,):
        raise DesignInputError(f"data need one count per dose ({model.n_doses} doses in the skeleton)")
    if np.any(n < 0) or np.any(y < 0) or np.any(y > n):
        raise DesignInputError("toxicity counts must lie between 0 and the number of patients")
    return _posterior_batch(model, n[None, :], y[None, :], estimate)[0]


def _closest(est: NDArray[np.float64], target: float) -> NDArray[np.int64]:
    """Index of the estimate closest to target per row; ties go to the lower dose."""
    return np.argmin(np.abs(est - target), axis=-1).astype(np.int64)


def _restricted(
    best: NDArray[np.int64], cur: NDArray[np.int64], had_tox: NDArray[np.bool_]
) -> NDArray[np.int64]:
    cap = np.where(had_tox, cur, cur + 1)
    return np.minimum(best, cap)


def crm_next_dose(
    model: CrmModel, data: DoseCounts, last_cohort_toxicities: int | None = None, estimate: Estimate = "mean"
) -> Recommendation:
    """Where the CRM sends the next cohort.

    ``last_cohort_toxicities`` is the number of toxicities in the most recent cohort; None
    means unknown, in which case any toxicity seen at the current dose blocks escalation
    (the cautious reading).
    """
    if data.n_doses != model.n_doses:
        raise DesignInputError(f"data cover {data.n_doses} dose(s) but the skeleton has {model.n_doses}")
    n, y = data.arrays()
    est = crm_posterior(model, n, y, estimate)
    d = data.current
    best = int(_closest(est, model.target))
    if last_cohort_toxicities is None:
        had_tox = bool(y[d - 1] > 0)
        tox_note = f"{int(y[d - 1])} toxicity count at dose {d}"
    else:
        had_tox = last_cohort_toxicities > 0
        tox_note = f"{last_cohort_toxicities} toxicity count in the last cohort"
    nxt = int(_restricted(np.array([best]), np.array([d - 1]), np.array([had_tox]))[0]) + 1
    closest = f"estimated toxicity closest to {model.target:g} is dose {best + 1} ({est[best]:.3f})"
    if nxt < best + 1:
        why = "no escalation right after a toxicity" if had_tox else "no skipping of doses on escalation"
        reason = f"{closest}; capped at dose {nxt}: {why} ({tox_note})"
    else:
        reason = closest
    action = "escalate" if nxt > d else "de-escalate" if nxt < d else "stay"
    return Recommendation(
        design="crm",
        current_dose=d,
        next_dose=nxt,
        action=action,
        reason=reason,
        estimates=tuple(float(v) for v in est),
        mtd=nxt,
    )


def crm_simulate(
    true_tox: Sequence[float],
    model: CrmModel,
    cohort_size: int = 3,
    n_cohorts: int = 10,
    n_sims: int = 10_000,
    seed: int | None = None,
    estimate: Estimate = "mean",
) -> OperatingCharacteristics:
    """Simulated operating characteristics of the CRM, vectorised over trials.

    Each cohort draws every trial's toxicities at once and refits all posteriors with one
    matrix product over the shared grid. Same seed, same result.
    """
    tox = check_probabilities(true_tox)
    if tox.size != model.n_doses:
        raise DesignInputError(f"true toxicity has {tox.size} doses but the skeleton has {model.n_doses}")
    if cohort_size < 1 or n_cohorts < 1 or n_sims < 1:
        raise DesignInputError(
            f"cohort_size, n_cohorts and n_sims must be at least 1, got {cohort_size}, {n_cohorts}, {n_sims}"
        )
    rng = np.random.default_rng(seed)
    rows = np.arange(n_sims)
    n = np.zeros((n_sims, model.n_doses), dtype=np.int64)
    y = np.zeros((n_sims, model.n_doses), dtype=np.int64)
    cur = np.zeros(n_sims, dtype=np.int64)
    for _ in range(n_cohorts):
        dlt = rng.binomial(cohort_size, tox[cur])
        y[rows, cur] += dlt
        n[rows, cur] += cohort_size
        est = _posterior_unique(model, n, y, estimate)
        cur = _restricted(_closest(est, model.target), cur, dlt > 0)
    return summarise_simulations(
        design="crm", target=model.target, true_tox=tox, selected=cur, patients=n, toxicities=y, seed=seed
    )
